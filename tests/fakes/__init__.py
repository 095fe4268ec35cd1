"""In-memory implementations of the ports, for fast service tests."""

from __future__ import annotations

import base64
import dataclasses
import functools
import itertools
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from common.adapters.cloudflare.signing import LocalPlaybackTokens
from common.errors import ConflictError, NotFoundError
from common.models.domain import (
    ClipSpec,
    DownloadProgress,
    DownloadStatus,
    InputRecordingRules,
    LiveInput,
    LiveInputSpec,
    Memorial,
    MonitorKind,
    MonitorProgress,
    Recording,
    Stream,
    StreamCredentials,
    WhipAnswer,
)
from common.pagination import in_order, page_of, position_of
from common.ports import (
    CreateQuotaUsage,
    IdempotencyChange,
    IdempotencyRecord,
    Invitation,
    LiveOutput,
    MonitorCheck,
    OutputSpec,
    ProviderError,
    ProviderNotFoundError,
    ProviderRejectedError,
    ScheduledTask,
    StreamAndProgress,
    StreamPage,
    StreamQuery,
    TaggedLiveInput,
    WhipSession,
)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


# Cloudflare's limit of outputs per live input, and the schemes it relays to.
MAX_OUTPUTS = 50
OUTPUT_SCHEMES = ("rtmp://", "rtmps://", "srt://")
MEMORIAL_STREAM_LIMIT = 200  # the Firestore repository's cap on one memorial's streams
UPDATE_ATTEMPTS = 25  # optimistic attempts before an update gives up with a 409, as in Firestore

T = TypeVar("T")


class _OptimisticStore:
    """Read-modify-write the way the Firestore adapters do it: the change runs on a snapshot
    outside any lock and only lands if nobody wrote in between (else it re-reads and runs
    again, ``UPDATE_ATTEMPTS`` times at most). With ``replay_changes`` every change also runs
    twice per attempt, the first result thrown away, as a retried transaction would: a change
    with side effects shows up in the service tests, not first in production."""

    def __init__(self, *, replay_changes: bool) -> None:
        self.replay_changes = replay_changes
        self._lock = threading.RLock()
        self._versions: dict[object, int] = {}
        self._clock = itertools.count(1)

    def _wrote(self, key: object) -> None:
        """Note a write of ``key`` (call it holding ``_lock``)."""
        self._versions[key] = next(self._clock)

    def _apply(
        self,
        key: object,
        read: Callable[[], T],
        change: Callable[[T], T],
        write: Callable[[T, T], T],
    ) -> T:
        """Run ``change`` on what ``read`` gives and ``write(before, after)`` if nobody wrote
        ``key`` meanwhile; returns what ``write`` returns."""
        for _ in range(UPDATE_ATTEMPTS):
            with self._lock:
                before, version = read(), self._versions.get(key)
            if self.replay_changes:
                change(before)
            after = change(before)
            with self._lock:
                if self._versions.get(key) == version:
                    return write(before, after)
        raise ConflictError("Too many concurrent changes; try again", retry_after_s=1)


class InMemoryStreamRepository(_OptimisticStore):
    """``StreamRepository`` in a dict, with the Firestore adapter's semantics (the contract
    suite in tests/integration/contract runs both): ``create`` refuses an existing id with
    ``ConflictError``, ``update`` is optimistic (see ``_OptimisticStore``) and re-validates
    what the change returns, a memorial lists up to 200 streams. ``fail_next_create``
    simulates a database outage."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.streams: dict[str, Stream] = {}
        self.credentials: dict[str, StreamCredentials] = {}
        self.fail_next_create: Exception | None = None
        self.whip_sessions: dict[tuple[str, str], WhipSession] = {}
        self.deleted_inputs: dict[str, str] = {}
        self.progress: dict[tuple[str, MonitorKind], MonitorProgress] = {}
        self.progress_writes = 0
        # Reads of each stream and its monitors' progress, and writes of each stream after its
        # creation (each write fires the Firestore trigger).
        self.reads: Counter[str] = Counter()
        self.stream_writes: Counter[str] = Counter()
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"stream-{next(self._ids)}"

    def get(self, stream_id: str) -> Stream | None:
        self.reads[stream_id] += 1
        return self.streams.get(stream_id)

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        if self.fail_next_create is not None:
            error, self.fail_next_create = self.fail_next_create, None
            raise error
        with self._lock:
            if stream.id in self.streams:
                raise ConflictError(f"Stream {stream.id} already exists", retry_after_s=1)
            self.streams[stream.id] = stream
            if credentials is not None:
                self.credentials[stream.id] = credentials
            self._wrote(stream.id)

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        def read() -> Stream:
            self.reads[stream_id] += 1
            current = self.streams.get(stream_id)
            if current is None:
                raise NotFoundError("Stream not found")
            return current

        def validated(current: Stream) -> Stream:
            # As the adapter does: model_copy does not validate, so a bug cannot store junk.
            return Stream.model_validate(change(current).model_dump())

        def write(before: Stream, after: Stream) -> Stream:
            if after != before:
                self.streams[stream_id] = after
                self.stream_writes[stream_id] += 1
                self._wrote(stream_id)
            return after

        return self._apply(stream_id, read, validated, write)

    def delete(self, stream_id: str) -> None:
        with self._lock:
            self.streams.pop(stream_id, None)
            self.credentials.pop(stream_id, None)
            for key in [k for k in self.whip_sessions if k[0] == stream_id]:
                del self.whip_sessions[key]
            for kind in [k for k in self.progress if k[0] == stream_id]:
                del self.progress[kind]
            self._wrote(stream_id)

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        self.reads[stream_id] += 1
        return self.progress.get((stream_id, kind))

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        key = (stream_id, kind)

        def read() -> StreamAndProgress:
            self.reads[stream_id] += 1
            current = self.streams.get(stream_id)
            if current is None:
                raise NotFoundError("Stream not found")
            return current, self.progress.get(key)

        def validated(
            current: StreamAndProgress,
        ) -> StreamAndProgress:
            stream, claimed = change(*current)
            return Stream.model_validate(stream.model_dump()), claimed

        def write(
            before: StreamAndProgress,
            after: StreamAndProgress,
        ) -> StreamAndProgress:
            if after[1] != before[1] and after[1] is not None:
                self.progress[key] = after[1]
                self.progress_writes += 1
                self._wrote(stream_id)
            if after[0] != before[0]:
                self.streams[stream_id] = after[0]
                self.stream_writes[stream_id] += 1
                self._wrote(stream_id)
            return after

        # One version covers the stream and its progress, as the adapter's batch checks both.
        return self._apply(stream_id, read, validated, write)[0]

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        self.deleted_inputs[live_input_uid] = stream_id

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        return self.deleted_inputs.get(live_input_uid)

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        return self.credentials.get(stream_id)

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        self.credentials[stream_id] = credentials

    def find(self, query: StreamQuery) -> StreamPage:
        with self._lock:
            streams = list(self.streams.values())
        matches = [
            s
            for s in streams
            if (query.memorial_id is None or s.memorial_id == query.memorial_id)
            and (query.status is None or s.status == query.status)
            and (query.is_public is None or s.is_public == query.is_public)
            and (query.is_visible is None or s.is_visible == query.is_visible)
            and (query.created_by is None or s.created_by == query.created_by)
        ]
        ranked = in_order(matches, query.order)
        after = position_of(query)
        if after is not None:
            ranked = [s for s in ranked if after.precedes(s, query.order)]
        return page_of(query, ranked[query.offset :])

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        with self._lock:
            streams = list(self.streams.values())
        return next((s for s in streams if s.cloudflare_id == live_input_uid), None)

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        query = StreamQuery(
            memorial_id=memorial_id,
            is_visible=True if visible_only else None,
            limit=MEMORIAL_STREAM_LIMIT,
        )
        return self.find(query).streams

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        self.whip_sessions[(stream_id, session.session_id)] = session

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        return self.whip_sessions.get((stream_id, session_id))

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        self.whip_sessions.pop((stream_id, session_id), None)

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        with self._lock:
            missing = [stream_id for stream_id in orders if stream_id not in self.streams]
            if missing:  # one atomic write: all or nothing
                raise NotFoundError(f"Stream {missing[0]} not found")
            for stream_id, order in orders.items():
                self.streams[stream_id] = self.streams[stream_id].model_copy(
                    update={"display_order": order, "updated_at": updated_at}
                )
                self._wrote(stream_id)


class InMemoryMemorialDirectory:
    """``MemorialDirectory`` over a dict."""

    def __init__(self, *memorials: Memorial) -> None:
        self.memorials = {m.id: m for m in memorials}

    def get(self, memorial_id: str) -> Memorial | None:
        return self.memorials.get(memorial_id)


class FakeStreamProvider:
    """``StreamProvider`` in memory, with failures that can be queued per operation; it
    answers like the Cloudflare emulator (contract suite: tests/integration/contract)."""

    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.inputs: dict[str, tuple[LiveInputSpec, LiveInput]] = {}
        self.recordings: dict[str, list[Recording]] = {}
        self.failures: dict[str, list[ProviderError]] = {}
        self.create_succeeds_before_failing = False
        self.created: dict[str, datetime] = {}
        self.origins: dict[str, tuple[str, ...]] = {}
        self.signed: dict[str, bool] = {}  # media uid -> requires signed URLs
        self.whip_offers: list[tuple[str, str]] = []
        self.whip_ended: list[str] = []
        self.whip_resources: dict[str, str] = {}  # session resource URL -> live input uid
        self.calls: list[str] = []
        # Clips (never listed by an input's videos, as at Cloudflare) and MP4 downloads.
        self.clips: dict[str, Recording] = {}
        self.clip_specs: dict[str, ClipSpec] = {}
        self.downloads: dict[str, DownloadStatus] = {}
        # Audience: live viewers per input, minutes viewed per video, and the analytics asked.
        self.viewers: dict[str, int] = {}
        self.minutes: dict[str, float] = {}
        self.minutes_asked: list[tuple[tuple[str, ...], datetime, datetime]] = []
        # Simulcast outputs per input, in the order added (as the emulator lists them).
        self.outputs: dict[str, dict[str, LiveOutput]] = {}
        self._ids = itertools.count(1)

    def fail(self, operation: str, error: ProviderError) -> None:
        self.failures.setdefault(operation, []).append(error)

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        queued = self.failures.get(operation)
        if queued:
            raise queued.pop(0)

    def create_live_input(self, spec: LiveInputSpec) -> LiveInput:
        uid = f"input-{next(self._ids)}"
        live_input = LiveInput(
            uid=uid,
            rtmp_url="rtmp://ingest.test/live/",
            stream_key=SecretStr(f"key-{uid}"),
            whip_url=SecretStr(f"https://ingest.test/secret-{uid}/webRTC/publish"),
            whep_url=f"https://ingest.test/{uid}/webRTC/play",
            connection="disconnected",
            stream_id=spec.stream_id,
        )
        self.created[uid] = self.clock.now()
        self.signed[uid] = spec.require_signed_urls
        if self.create_succeeds_before_failing:
            self.inputs[uid] = (spec, live_input)
        self._maybe_fail("create_live_input")
        self.inputs[uid] = (spec, live_input)
        return live_input

    def get_live_input(self, uid: str) -> LiveInput:
        self._maybe_fail("get_live_input")
        if uid not in self.inputs:
            raise ProviderNotFoundError(uid, status=404)
        return self.inputs[uid][1]

    def find_live_inputs(self, stream_id: str) -> list[TaggedLiveInput]:
        self._maybe_fail("find_live_inputs")
        return [
            TaggedLiveInput(uid, self.created.get(uid))
            for uid, (spec, _) in self.inputs.items()
            if spec.stream_id == stream_id
        ]

    def delete_live_input(self, uid: str) -> None:
        self._maybe_fail("delete_live_input")
        if self.inputs.pop(uid, None) is None:
            raise ProviderNotFoundError(uid, status=404)
        self.outputs.pop(uid, None)

    def _outputs_of(self, live_input_uid: str) -> dict[str, LiveOutput]:
        if live_input_uid not in self.inputs:
            raise ProviderNotFoundError(live_input_uid, status=404)
        return self.outputs.setdefault(live_input_uid, {})

    def list_outputs(self, live_input_uid: str) -> list[LiveOutput]:
        self._maybe_fail("list_outputs")
        return list(self._outputs_of(live_input_uid).values())

    def create_output(self, live_input_uid: str, spec: OutputSpec) -> LiveOutput:
        self._maybe_fail("create_output")
        outputs = self._outputs_of(live_input_uid)
        if not spec.url.startswith(OUTPUT_SCHEMES):
            raise ProviderRejectedError("output url must be rtmp(s) or srt (400)", status=400)
        if len(outputs) >= MAX_OUTPUTS:
            raise ProviderRejectedError("too many outputs for this live input (400)", status=400)
        uid = f"output-{next(self._ids)}"
        output = LiveOutput(uid, spec.url, spec.stream_key, spec.enabled)
        outputs[uid] = output
        return output

    def set_output_enabled(self, live_input_uid: str, output_uid: str, enabled: bool) -> LiveOutput:
        self._maybe_fail("set_output_enabled")
        outputs = self._outputs_of(live_input_uid)
        if output_uid not in outputs:
            raise ProviderNotFoundError(output_uid, status=404)
        outputs[output_uid] = dataclasses.replace(outputs[output_uid], enabled=enabled)
        return outputs[output_uid]

    def delete_output(self, live_input_uid: str, output_uid: str) -> None:
        self._maybe_fail("delete_output")
        if self._outputs_of(live_input_uid).pop(output_uid, None) is None:
            raise ProviderNotFoundError(output_uid, status=404)

    def delete_recording(self, video_uid: str) -> None:
        self._maybe_fail("delete_recording")
        self.downloads.pop(video_uid, None)
        if self.clips.pop(video_uid, None) is not None:
            return
        for uid, videos in self.recordings.items():
            kept = [v for v in videos if v.video_uid != video_uid]
            if len(kept) != len(videos):
                self.recordings[uid] = kept
                return
        raise ProviderNotFoundError(video_uid, status=404)

    def list_recordings(self, live_input_uid: str) -> list[Recording]:
        self._maybe_fail("list_recordings")
        return list(self.recordings.get(live_input_uid, []))

    def set_input_allowed_origins(self, uid: str, rules: InputRecordingRules) -> tuple[str, ...]:
        self._maybe_fail("set_input_allowed_origins")
        if uid not in self.inputs:
            raise ProviderNotFoundError(uid, status=404)
        self.origins[uid] = rules.allowed_origins
        self.signed[uid] = rules.require_signed_urls
        return rules.allowed_origins

    def set_video_signed_urls(self, video_uid: str, required: bool) -> None:
        self._maybe_fail("set_video_signed_urls")
        if not any(v.video_uid == video_uid for vs in self.recordings.values() for v in vs):
            raise ProviderNotFoundError(video_uid, status=404)
        self.signed[video_uid] = required

    def set_video_allowed_origins(self, video_uid: str, origins: tuple[str, ...]) -> None:
        self._maybe_fail("set_video_allowed_origins")
        if not any(v.video_uid == video_uid for vs in self.recordings.values() for v in vs):
            raise ProviderNotFoundError(video_uid, status=404)
        self.origins[video_uid] = origins

    def _video(self, video_uid: str) -> Recording:
        everything = [*self.clips.values(), *(v for vs in self.recordings.values() for v in vs)]
        found = next((v for v in everything if v.video_uid == video_uid), None)
        if found is None:
            raise ProviderNotFoundError(video_uid, status=404)
        return found

    def create_download(self, video_uid: str) -> DownloadStatus:
        self._maybe_fail("create_download")
        if not self._video(video_uid).is_ready:
            raise ProviderRejectedError("Video is not ready (400)", status=400)
        current = self.downloads.get(video_uid)
        if current is None or current.state == "error":
            url = f"https://delivery.test/{video_uid}/downloads/default.mp4"
            current = self.downloads[video_uid] = DownloadStatus(state="inprogress", url=url)
        return current

    def get_download(self, video_uid: str) -> DownloadStatus | None:
        self._maybe_fail("get_download")
        self._video(video_uid)
        return self.downloads.get(video_uid)

    def progress_download(
        self, video_uid: str, state: DownloadProgress = "ready", percent: float = 100
    ) -> None:
        """Cloudflare's work on a download: ``state`` reached at ``percent``."""
        current = self.downloads[video_uid]
        self.downloads[video_uid] = current.model_copy(
            update={"state": state, "percent_complete": percent}
        )

    def get_recording(self, video_uid: str) -> Recording:
        self._maybe_fail("get_recording")
        return self._video(video_uid)

    def clip_recording(self, spec: ClipSpec) -> Recording:
        self._maybe_fail("clip_recording")
        source = self._video(spec.source_uid)
        if not (source.is_ready and source.duration is not None):
            raise ProviderRejectedError("the video to clip from is not ready (400)", status=400)
        if not 0 <= spec.start_time_seconds < spec.end_time_seconds <= source.duration:
            raise ProviderRejectedError("clip bounds out of range (400)", status=400)
        uid = f"clip-{next(self._ids)}"
        clip = Recording(
            video_uid=uid,
            live_input_uid=None,
            state="queued",
            ready_to_stream=False,
            created=self.clock.now(),
            modified=self.clock.now(),
            clipped_from=source.video_uid,
        )
        self.clips[uid] = clip
        self.clip_specs[uid] = spec
        return clip

    def live_viewers(self, live_input_uid: str) -> int | None:
        self._maybe_fail("live_viewers")
        return self.viewers.get(live_input_uid, 0) if live_input_uid in self.inputs else None

    def minutes_viewed(
        self, video_uids: tuple[str, ...], since: datetime, until: datetime
    ) -> float:
        self._maybe_fail("minutes_viewed")
        self.minutes_asked.append((video_uids, since, until))
        return sum(self.minutes.get(uid, 0.0) for uid in video_uids)

    def finish_clip(self, video_uid: str, state: str = "ready") -> Recording:
        """Cloudflare has cut the clip (or failed to): it is ``state`` now."""
        spec, now = self.clip_specs[video_uid], self.clock.now()
        ready = state == "ready"
        duration = float(spec.end_time_seconds - spec.start_time_seconds)
        hls = f"https://delivery.test/{video_uid}/manifest/video.m3u8"
        finished = self.clips[video_uid].model_copy(
            update={
                "state": state,
                "ready_to_stream": ready,
                "duration": duration if ready else None,
                "hls_url": hls if ready else None,
                "modified": now,
            }
        )
        self.clips[video_uid] = finished
        return finished

    def whip_offer(self, whip_url: SecretStr, offer_sdp: str) -> WhipAnswer:
        self._maybe_fail("whip_offer")
        url = whip_url.get_secret_value()
        uid = next((u for u, (_, i) in self.inputs.items() if i.whip_url == whip_url), None)
        if uid is None:
            raise ProviderNotFoundError("WHIP resource not found", status=404)
        if not offer_sdp.startswith("v=0"):
            raise ProviderRejectedError("WHIP endpoint refused (400): not an SDP offer", status=400)
        self.whip_offers.append((url, offer_sdp))
        resource_url = f"{url}/s{next(self._ids)}"
        self.whip_resources[resource_url] = uid
        return WhipAnswer(sdp="v=0\r\nanswer", resource_url=resource_url)

    def whip_end(self, resource_url: str) -> None:
        self._maybe_fail("whip_end")
        if self.whip_resources.pop(resource_url, None) not in self.inputs:
            raise ProviderNotFoundError("WHIP resource not found", status=404)
        self.whip_ended.append(resource_url)


class RecordingTaskQueue:
    """``TaskQueue`` that keeps what was enqueued and refuses duplicate names."""

    def __init__(self) -> None:
        self.tasks: list[ScheduledTask] = []

    def enqueue(self, task: ScheduledTask) -> bool:
        if any(t.name == task.name for t in self.tasks):
            return False
        self.tasks.append(task)
        return True


class InMemoryCreateQuota(_OptimisticStore):
    """``CreateQuota`` in a dict, optimistic like the Firestore precondition (the change may
    run more than once; whatever it raises aborts without writing)."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.usage: dict[str, CreateQuotaUsage] = {}

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        def write(before: CreateQuotaUsage, after: CreateQuotaUsage) -> CreateQuotaUsage:
            if after != before:
                self.usage[uid] = after
                self._wrote(uid)
            return after

        return self._apply(uid, lambda: self.usage.get(uid, CreateQuotaUsage()), change, write)


class InMemoryIdempotencyStore(_OptimisticStore):
    """``IdempotencyStore`` in a dict, optimistic like the Firestore one; ``fail_updates``:
    what the next updates raise, in order (``None`` lets one through)."""

    def __init__(self, *, replay_changes: bool = True) -> None:
        super().__init__(replay_changes=replay_changes)
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}
        self.fail_updates: list[Exception | None] = []

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        with self._lock:
            failure = self.fail_updates.pop(0) if self.fail_updates else None
        if failure is not None:
            raise failure

        def write(
            before: IdempotencyRecord | None, after: IdempotencyRecord | None
        ) -> IdempotencyRecord | None:
            if after is None or after == before:
                return before  # nothing to write
            self.records[(uid, key)] = after
            self._wrote((uid, key))
            return after

        return self._apply((uid, key), lambda: self.records.get((uid, key)), change, write)


TEST_SIGNING_KEY_ID = "test-signing-key"


@functools.cache
def session_signing_key_pem() -> SecretStr:
    """A Stream signing key's ``pem`` (base64 PEM, PKCS#1 as Cloudflare gives it), made once
    per test session: RSA key generation is the slow part of signing."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return SecretStr(base64.b64encode(pem).decode())


def local_playback_tokens(clock: FixedClock, ttl_s: int = 7200) -> LocalPlaybackTokens:
    """The real ``LocalPlaybackTokens`` with the session's test key (no fake signer)."""
    return LocalPlaybackTokens(TEST_SIGNING_KEY_ID, session_signing_key_pem(), ttl_s, clock)


class InMemoryInvitationStore:
    """``InvitationStore`` in memory (contract suite: tests/integration/contract)."""

    def __init__(self) -> None:
        self.invitations: dict[tuple[str, str], Invitation] = {}

    def add(self, invitation: Invitation) -> None:
        self.invitations[(invitation.stream_id, invitation.code)] = invitation

    def get(self, stream_id: str, code: str) -> Invitation | None:
        return self.invitations.get((stream_id, code))

    def list(self, stream_id: str) -> list[Invitation]:
        mine = [i for (sid, _), i in self.invitations.items() if sid == stream_id]
        return sorted(mine, key=lambda i: i.created_at, reverse=True)

    def revoke(self, stream_id: str, code: str, at: datetime) -> Invitation | None:
        current = self.get(stream_id, code)
        if current is None or current.revoked_at is not None:
            return current
        revoked = dataclasses.replace(current, revoked_at=at)
        self.invitations[(stream_id, code)] = revoked
        return revoked
