"""A small RFC 5545 (iCalendar) writer for a memorial's sessions: the published calendar of
``GET /api/memorials/{id}/calendar.ics``. Times are UTC (``Z``, §3.3.5 form 2), so no
VTIMEZONE is needed; text is escaped (§3.3.11) and lines folded at 75 octets (§3.1)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from common.models.events import CalendarEntry, MemorialEvent

PRODUCT = "-//Tributestream//Memorial livestreams//EN"
_FOLD_AT = 75  # octets per line, CRLF excluded (RFC 5545 §3.1)
_STATE_WORDS = {
    "live": "Live now.",
    "upcoming": "Upcoming.",
    "recorded": "The recording can be watched on the memorial page.",
    "processing": "The recording is being prepared.",
    "ended": "This service has ended.",
    "cancelled": "This service has been cancelled.",
}


@dataclass(frozen=True)
class CalendarSession:
    """One VEVENT: a session as published, with its event's words."""

    event: MemorialEvent
    entry: CalendarEntry


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")


def escape_text(value: str) -> str:
    """A TEXT value (§3.3.11): backslash, semicolon, comma and newlines escaped, and the
    control characters TEXT may not hold (§3.3.11: no CTLs but HTAB) dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded (§3.1): at most 75 octets a line, never inside a UTF-8
    character; each continuation starts with one space."""
    pieces: list[str] = []
    current, size, limit = "", 0, _FOLD_AT
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            pieces.append(current)
            current, size, limit = "", 0, _FOLD_AT - 1
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def utc(moment: datetime) -> str:
    """A DATE-TIME in UTC (§3.3.5, form 2)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_calendar(
    sessions: Iterable[CalendarSession], *, domain: str, page_url: str, name: str | None
) -> str:
    """The VCALENDAR of ``sessions`` (CRLF line ends), ordered by start then UID."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODUCT}", "CALSCALE:GREGORIAN"]
    if name:
        lines.append(f"X-WR-CALNAME:{escape_text(f'Services for {name}')}")
    for session in sorted(sessions, key=lambda s: (s.entry.start, s.entry.stream_id)):
        lines += _vevent(session, domain, page_url)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _vevent(session: CalendarSession, domain: str, page_url: str) -> list[str]:
    event, entry = session.event, session.entry
    # A cancelled session shows only what was published of it: its event's words may have
    # changed since, or its memorial gone private, and subscribers keep fetching the feed.
    words = event if not entry.cancelled else None
    summary = f"{words.title}: {entry.title}" if words and words.title else entry.title
    parts = (words.description if words else None, _STATE_WORDS.get(entry.state))
    description = "\n\n".join(p for p in parts if p)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{entry.stream_id}@{domain}",
        # No METHOD: DTSTAMP is the last change of what the entry shows (§3.8.7.2).
        f"DTSTAMP:{utc(entry.changed_at)}",
        f"LAST-MODIFIED:{utc(entry.changed_at)}",
        f"SEQUENCE:{entry.sequence}",
        f"DTSTART:{utc(entry.start)}",
        f"DTEND:{utc(entry.end)}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
    ]
    if words and words.location:
        lines.append(f"LOCATION:{escape_text(words.location)}")
    lines += [
        f"URL:{quote(page_url, safe=':/?#[]@!$&()*+=%-._~')}",
        f"STATUS:{'CANCELLED' if entry.cancelled else 'CONFIRMED'}",
        "END:VEVENT",
    ]
    return lines
