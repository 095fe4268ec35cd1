"""What a family types into an event cannot break or extend the calendar feed (RFC 5545), and
long lines fold within 75 octets (checked by a real iCalendar parser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from common.models.events import CalendarEntry, MemorialEvent
from common.services.calendar import CalendarSession, escape_text, fold, render_calendar

AT = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)


def one_session_feed(
    *, session_title: str = "Service", page_url: str = "https://example.com/m", **event: str
) -> tuple[MemorialEvent, str]:
    """The feed of an event (``event``: its fields, beside a title) with one upcoming hour-long
    session, and the event it was written from."""
    made = {"id": "e1", "memorial_id": "m1", "created_by": "u", "created_at": AT}
    memorial_event = MemorialEvent.model_validate(
        made | {"title": "Funeral", "updated_at": AT} | event
    )
    entry = CalendarEntry(
        stream_id="s1",
        title=session_title,
        start=AT,
        end=AT + timedelta(hours=1),
        state="upcoming",
        changed_at=AT,
    )
    feed = render_calendar(
        [CalendarSession(memorial_event, entry)],
        domain="example.com",
        page_url=page_url,
        name=None,
    )
    return memorial_event, feed


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        pytest.param("Chapel, Room 2; East", "Chapel\\, Room 2\\; East", id="separators"),
        pytest.param("Line one\r\nLine two\nthree", "Line one\\nLine two\\nthree", id="breaks"),
        pytest.param("Back\\slash", "Back\\\\slash", id="backslash"),
        pytest.param(
            "Bell\x07 null\x00 vt\x0b nel\x85 ls\u2028 tab\tend",
            "Bell null vt nel ls tab\tend",
            id="control-characters",
        ),
    ],
)
def test_text_is_escaped_and_control_characters_dropped(typed: str, written: str) -> None:
    assert escape_text(typed) == written


def test_a_page_url_cannot_add_a_property_to_the_feed() -> None:
    # A slug the site wrote with a line break in it.
    _, feed = one_session_feed(page_url="https://example.com/a\r\nX-EVIL:1")
    lines = feed.split("\r\n")
    assert not any(line.startswith("X-EVIL") for line in lines)
    assert "URL:https://example.com/a%0D%0AX-EVIL:1" in lines


def test_text_is_escaped_and_long_lines_fold_within_75_octets() -> None:
    title = "Ünïcödé, service; with\\ a newline\nand a title long enough to fold " * 3
    place = "St. Mary's, Main St; Springfield"

    event, text = one_session_feed(session_title=title, title="Celebration", location=place)

    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert "\n" not in text.replace("\r\n", "")
    (parsed,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert str(parsed["SUMMARY"]) == f"Celebration: {title}"
    assert str(parsed["LOCATION"]) == event.location
    assert fold("x" * 75) == "x" * 75
    assert fold("é" * 40).split("\r\n ")[0] == "é" * 37  # 74 octets: never half a character
