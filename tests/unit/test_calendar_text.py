"""What a family types into an event cannot break or extend the calendar feed (RFC 5545)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.models.events import CalendarEntry, MemorialEvent
from common.services.calendar import CalendarSession, escape_text, render_calendar


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("Chapel, Room 2; East", "Chapel\\, Room 2\\; East"),
        ("Line one\r\nLine two\nthree", "Line one\\nLine two\\nthree"),
        ("Back\\slash", "Back\\\\slash"),
        ("Bell\x07 null\x00 vt\x0b nel\x85 ls\u2028 tab\tend", "Bell null vt nel ls tab\tend"),
    ],
)
def test_text_is_escaped_and_control_characters_dropped(typed: str, written: str) -> None:
    assert escape_text(typed) == written


def test_a_page_url_cannot_add_a_property_to_the_feed() -> None:
    at = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    made = {"id": "e1", "memorial_id": "m1", "created_by": "u", "created_at": at}
    event = MemorialEvent.model_validate(made | {"title": "Funeral", "updated_at": at})
    entry = CalendarEntry(
        stream_id="s1",
        title="Service",
        start=at,
        end=at + timedelta(hours=1),
        state="upcoming",
        changed_at=at,
    )
    # A slug the site wrote with a line break in it.
    feed = render_calendar(
        [CalendarSession(event, entry)],
        domain="example.com",
        page_url="https://example.com/a\r\nX-EVIL:1",
        name=None,
    )
    lines = feed.split("\r\n")
    assert not any(line.startswith("X-EVIL") for line in lines)
    assert "URL:https://example.com/a%0D%0AX-EVIL:1" in lines
