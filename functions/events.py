"""The Firestore trigger on ``streams/{id}``: reacts to status changes."""

from __future__ import annotations

import logging

import functions_framework
from cloudevents.http import CloudEvent

from common.adapters.firestore.events import decode_stream_change
from common.bootstrap import get_services

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def onstreamwritten(event: CloudEvent) -> None:
    """Firestore ``document.v1.written`` on ``streams/{id}``: react to status changes."""
    try:
        before, after = decode_stream_change(event.get_data())
    except ValueError:
        # Redelivery cannot make unreadable data readable; retrying would loop for days.
        log.exception("dropping unreadable Firestore event %s", event["id"])
        return
    get_services().stream_changes.on_stream_written(before, after)
