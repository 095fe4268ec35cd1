from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr, ValidationError

from common.adapters.firestore.documents import stream_from_fields, stream_to_document
from common.models.api import (
    StreamCreateRequest,
    StreamOwnerView,
    StreamPublicView,
    StreamUpdateRequest,
)
from common.models.domain import Stream, StreamCredentials, StreamStatus

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SECRET_FIELDS = {"streamKey", "streamUrl", "whipUrl", "rtmpStreamKey"}


def sample() -> Stream:
    return Stream(
        id="s1",
        title="Service",
        created_by="u1",
        cloudflare_id="in1",
        recording_url="https://v/1.m3u8",
        end_time=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def test_public_view_has_no_credential_fields_by_construction() -> None:
    assert not SECRET_FIELDS & set(StreamPublicView.model_fields)
    with pytest.raises(ValidationError):
        StreamPublicView.model_validate(
            StreamPublicView.of(sample()).model_dump() | {"streamKey": "k"}
        )


def test_views_emit_legacy_and_unified_names_with_iso_timestamps() -> None:
    data = StreamPublicView.of(sample()).model_dump(mode="json")
    assert data["cloudflareId"] == data["cloudflareStreamId"] == "in1"
    assert data["recordingUrl"] == data["recordingPlaybackUrl"] == "https://v/1.m3u8"
    assert data["endTime"] == data["actualEndTime"] == "2026-11-24T12:00:00Z"


def test_owner_view_adds_credentials() -> None:
    creds = StreamCredentials(
        rtmp_url="rtmp://x/live/",
        stream_key=SecretStr("k"),
        whip_url=SecretStr("https://x/s/webRTC/publish"),
    )
    view = StreamOwnerView.with_credentials(sample(), creds)
    assert (view.stream_key, view.stream_url) == ("k", "rtmp://x/live/")
    assert view.whip_endpoint == f"/api/streams/{view.id}/whip"
    assert "publish" not in repr(creds)
    assert repr(creds.stream_key) == "SecretStr('**********')"


def test_requests_reject_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        StreamCreateRequest.model_validate({"title": "x", "rtmpUrl": "evil"})
    with pytest.raises(ValidationError):
        StreamCreateRequest.model_validate({"title": "   "})
    with pytest.raises(ValidationError):
        StreamCreateRequest.model_validate({"title": "x", "scheduleType": "scheduled"})
    with pytest.raises(ValidationError):
        StreamUpdateRequest.model_validate({})
    accepted = StreamCreateRequest.model_validate(
        {"title": " x ", "scheduledDateTime": "2026-12-01T10:00:00Z"}
    )
    assert accepted.title == "x"
    assert accepted.scheduled_start == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_document_reads_either_legacy_or_unified_names_and_writes_both() -> None:
    legacy = stream_from_fields(
        "s9",
        {
            "title": "t",
            "createdBy": "u",
            "cloudflareStreamId": "in9",
            "recordingPlaybackUrl": "r",
            "actualEndTime": NOW,
            "status": "ended",
            "createdAt": NOW,
            "unknownLegacy": 1,
            "isVisible": None,
        },
    )
    assert (legacy.cloudflare_id, legacy.recording_url, legacy.end_time) == ("in9", "r", NOW)
    assert legacy.status == StreamStatus.COMPLETED
    assert legacy.is_visible  # a legacy null reads as the default
    written = stream_to_document(legacy)
    assert written["cloudflareId"] == written["cloudflareStreamId"] == "in9"
    assert written["endTime"] == written["actualEndTime"] == NOW
