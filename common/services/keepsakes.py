"""Keepsakes of a service: MP4 downloads of its recordings for the family, trims that become the
recording the page shows, and deleting one recording.

Each keepsake is asked of Cloudflare first and written only once Cloudflare took it (a failed
call leaves nothing behind), and a chain of scheduled checks follows it to ready, as the
monitors follow recordings: deterministic task names, bounded attempts, each check claimed on
the recording (or the pending trim) so a duplicate delivery does nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pydantic import Field, model_validator

from common.access import Action, may_delete_recordings, requires_signed_playback
from common.errors import (
    AppError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from common.models.api import CheckTaskPayload, StreamManagerView
from common.models.base import Model
from common.models.domain import (
    ClipSpec,
    DownloadStatus,
    FollowedRequest,
    PendingClip,
    Recording,
    RecordingDownload,
    RecordingEntry,
    Stream,
    StreamIssue,
    User,
)
from common.models.recording_rules import entry_of, merge_recordings, with_recordings
from common.ports import (
    PlaybackTokens,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    check_task,
)
from common.services.backends import BackendPorts, WithBackends

log = logging.getLogger(__name__)

KEEPSAKE_TASK_PATH = "/api/tasks/keepsake"
KeepsakeKind = Literal["download", "clip"]
FoundT = TypeVar("FoundT")
# "unanswered": Cloudflare failed this check; the next one is queued as usual.
KeepsakeOutcome = Literal["rescheduled", "unanswered", "done", "gave_up", "failed", "stale", "gone"]
_CHAIN_GOES_ON: frozenset[KeepsakeOutcome] = frozenset({"rescheduled", "unanswered"})
# A check's outcome, and how long its successor should wait beyond the usual interval.
CheckResult = tuple[KeepsakeOutcome, float | None]
# A week: no funeral recording is longer (Cloudflare truncates live recordings at 7 days).
MAX_SECONDS = 7 * 24 * 3600
# A chain this far past its next check has stopped (the queue's retries back off to 5 min).
STALLED_AFTER = timedelta(minutes=10)
CLIP_NOT_READY = "CLIP_NOT_READY"


@dataclass(frozen=True)
class KeepsakePolicy:
    """How often and how long the checks follow a download or a trim (30 minutes)."""

    keepsake_checks: int = 180
    keepsake_check_interval_s: float = 10
    # While Cloudflare does not answer, the checks go on past ``keepsake_checks``, up to this
    # many (2 hours): the chain goes on by its own next check, not by the queue's retries,
    # which end, and would leave the keepsake "preparing" for good.
    keepsake_max_checks: int = 720


class ClipRequest(Model):
    """Body of ``POST /streams/{id}/recordings/{videoId}/clip``: the part of the recording to
    keep, in whole seconds from its start (Cloudflare cuts at whole seconds)."""

    model_config = {"extra": "forbid", "defer_build": True}

    startTimeSeconds: int = Field(ge=0, le=MAX_SECONDS, strict=True)
    endTimeSeconds: int = Field(gt=0, le=MAX_SECONDS, strict=True)

    @model_validator(mode="after")
    def _in_order(self) -> "ClipRequest":
        if self.endTimeSeconds <= self.startTimeSeconds:
            raise ValueError("endTimeSeconds must be after startTimeSeconds")
        return self


DownloadViewState = Literal["none", "preparing", "ready", "error"]


class RecordingKeepsakeView(Model):
    """A keepsake of one recording of a stream (``videoId``: for a trim, the new one)."""

    streamId: str
    videoId: str


class RecordingDownloadView(RecordingKeepsakeView):
    """Where the MP4 download of one recording stands; ``url`` once it is ready (signed, and
    valid until ``expiresAt``, when the stream is private)."""

    state: DownloadViewState = Field(
        description="none: never asked for; error: it could not be made, ask again"
    )
    percentComplete: float = Field(description="Cloudflare's progress making the MP4, 0 to 100")
    url: str | None = Field(default=None, description="The MP4, once ready")
    expiresAt: datetime | None = Field(
        default=None, description="When a signed url stops working (null: no url, or unsigned)"
    )
    requestedAt: datetime | None = Field(
        default=None, description="When this download was last asked for"
    )


class RecordingClipView(RecordingKeepsakeView):
    """A trim being made: the new recording, which becomes the primary one when ready."""

    clippedFrom: str = Field(description="The recording it is cut from, which stays as it is")
    startTimeSeconds: int = Field(description="Where the cut starts in that recording")
    endTimeSeconds: int = Field(description="Where the cut ends in that recording")
    state: Literal["processing"] = "processing"


class KeepsakeTaskPayload(CheckTaskPayload):
    """Body of a scheduled keepsake check."""

    kind: KeepsakeKind
    videoId: str = Field(min_length=1)


class KeepsakeTaskResult(Model):
    """Reply of a keepsake check."""

    outcome: str


class KeepsakeService(WithBackends):
    """Downloads, trims and deletions of a stream's recordings."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        policy: KeepsakePolicy,
        allowed_origins: tuple[str, ...],
        tokens: Callable[[], PlaybackTokens],
    ) -> None:
        super().__init__(backends)
        self.policy = policy
        self._allowed_origins = allowed_origins
        self._tokens = tokens

    # Downloads.

    def download(self, user: User | None, stream_id: str, video_id: str) -> RecordingDownloadView:
        """Where the recording's MP4 download stands, with its URL once ready."""
        stream, _ = self._load(user, stream_id, Action.DOWNLOAD)
        return self._download_view(stream, _entry(stream, video_id))

    def request_download(
        self, user: User | None, stream_id: str, video_id: str
    ) -> RecordingDownloadView:
        """Ask Cloudflare for the recording's MP4 and follow it; asking again while one is
        being made, or once it is ready, starts nothing."""
        stream, _ = self._load(user, stream_id, Action.DOWNLOAD)
        entry = _entry(stream, video_id)
        if not entry.ready:
            raise ConflictError("This recording is not ready yet; download it once it is")
        if entry.download is not None and entry.download.state != "error":
            if entry.download.state == "preparing":
                self._resume("download", stream_id, video_id, entry.download)
            return self._download_view(stream, entry)
        status = self._provider.create_download(video_id)
        now = self._clock.now()

        def begin(current: Stream) -> Stream:
            found = _entry(current, video_id)
            if found.download is not None and found.download.state != "error":
                return current  # a concurrent request started it
            started = _downloaded(RecordingDownload(requested_at=now), status)
            return _with_entry(current, found.model_copy(update={"download": started}))

        updated = self._repo.update(stream_id, begin)
        entry = _entry(updated, video_id)
        if entry.download is not None and entry.download.state == "preparing":
            self._schedule("download", stream_id, video_id, entry.download.generation, 0)
        return self._download_view(updated, entry)

    def _download_view(self, stream: Stream, entry: RecordingEntry) -> RecordingDownloadView:
        download = entry.download
        view = RecordingDownloadView(
            streamId=stream.id,
            videoId=entry.video_uid,
            state=download.state if download else "none",
            percentComplete=download.percent_complete if download else 0,
            requestedAt=download.requested_at if download else None,
        )
        if download is None or download.state != "ready" or not download.url:
            return view
        memorial = self._memorials.get(stream.memorial_id) if stream.memorial_id else None
        if not requires_signed_playback(stream, memorial):
            return view.model_copy(update={"url": download.url})
        token = self._tokens().sign(entry.video_uid, downloadable=True)
        url = download.url.replace(f"/{entry.video_uid}/", f"/{token.token}/", 1)
        return view.model_copy(update={"url": url, "expiresAt": token.expires_at})

    # Trims.

    def clip(
        self, user: User | None, stream_id: str, video_id: str, request: ClipRequest
    ) -> RecordingClipView:
        """Cut a new recording from one of the stream's; it becomes the primary one when ready.
        Asking again for the trim being made answers it; another trim meanwhile is a 409."""
        stream, _ = self._load(user, stream_id, Action.EDIT)
        source = _entry(stream, video_id)
        bounds = (request.startTimeSeconds, request.endTimeSeconds)
        pending = stream.pending_clip
        if pending is not None:
            if (pending.clipped_from, pending.start_time_seconds, pending.end_time_seconds) == (
                video_id,
                *bounds,
            ):
                self._resume("clip", stream.id, pending.video_uid, pending)
                return _clip_view(stream.id, pending)
            raise ConflictError("Another trim of this stream is being made; try once it is ready")
        if not source.ready or source.duration is None:
            raise ConflictError("This recording is not ready yet; trim it once it is")
        if request.endTimeSeconds > source.duration:
            raise InvalidArgumentError(
                f"endTimeSeconds ({request.endTimeSeconds}) is past the end of the recording "
                f"({source.duration:g} s)",
                details={"durationSeconds": source.duration},
            )
        memorial = self._memorials.get(stream.memorial_id) if stream.memorial_id else None
        spec = ClipSpec(
            source_uid=video_id,
            start_time_seconds=bounds[0],
            end_time_seconds=bounds[1],
            stream_id=stream.id,
            name=f"{stream.title} (trimmed)",
            require_signed_urls=requires_signed_playback(stream, memorial),
            allowed_origins=self._allowed_origins,
        )
        clip = self._provider.clip_recording(spec)
        pending = PendingClip(
            video_uid=clip.video_uid,
            clipped_from=video_id,
            start_time_seconds=bounds[0],
            end_time_seconds=bounds[1],
            requested_at=self._clock.now(),
        )
        self._attach_clip(stream_id, clip, pending)
        self._schedule("clip", stream_id, clip.video_uid, pending.generation, 0)
        return _clip_view(stream_id, pending)

    def _attach_clip(self, stream_id: str, clip: Recording, pending: PendingClip) -> None:
        """Note the clip on the stream before its webhook can need it; a clip we cannot note
        is deleted again, so none is left at Cloudflare that no stream knows."""
        now = self._clock.now()

        def attach(current: Stream) -> Stream:
            if current.pending_clip is not None:
                raise ConflictError("Another trim of this stream is being made")
            entry = entry_of(clip).model_copy(update={"clipped_from": pending.clipped_from})
            noted = current.model_copy(update={"pending_clip": pending, "updated_at": now})
            return with_recordings(noted, merge_recordings(current.recordings, [entry]), now)

        try:
            self._repo.update(stream_id, attach)
        except AppError:
            try:
                self._provider.delete_recording(clip.video_uid)
            except AppError:
                log.exception(
                    "clip %s of stream %s is left at Cloudflare", clip.video_uid, stream_id
                )
            raise

    # Deleting one recording.

    def delete_recording(
        self, user: User | None, stream_id: str, video_id: str
    ) -> StreamManagerView:
        """Delete one recording at Cloudflare and from the stream; never the last one that
        plays (delete the stream for that)."""
        stream, _ = self._load(user, stream_id, Action.EDIT)
        memorial = self._memorials.get(stream.memorial_id) if stream.memorial_id else None
        if not may_delete_recordings(user, stream, memorial):
            raise PermissionDeniedError("Only the memorial's owner may delete its recordings")
        entry = _entry(stream, video_id)
        if _last_playable(stream, entry):
            raise ConflictError(
                "This is the stream's only playable recording; delete the stream instead"
            )
        try:
            self._provider.delete_recording(video_id)
        except NotFoundError:
            log.info("recording %s was already gone", video_id)
        now = self._clock.now()

        def remove(current: Stream) -> Stream:
            kept = tuple(e for e in current.recordings if e.video_uid != video_id)
            deleted = tuple(dict.fromkeys((*current.deleted_video_ids, video_id)))
            changes: dict[str, object] = {"updated_at": now, "deleted_video_ids": deleted}
            if current.primary_video_id == video_id:
                changes["primary_video_id"] = None
            if current.pending_clip is not None and current.pending_clip.video_uid == video_id:
                changes["pending_clip"] = None
            return with_recordings(current.model_copy(update=changes), kept, now)

        return StreamManagerView.of(self._repo.update(stream_id, remove))

    # The scheduled checks.

    def run_check(
        self, kind: KeepsakeKind, stream_id: str, video_id: str, generation: int, attempt: int
    ) -> KeepsakeOutcome:
        """One scheduled check of a download or a trim. Duplicate or stale deliveries, and
        those of a stream or recording since deleted, change nothing."""
        stream = self._repo.get(stream_id)
        if stream is None:
            return "gone"
        if kind == "download":
            outcome, wait_s = self._check_download(stream, video_id, generation, attempt)
        else:
            outcome, wait_s = self._check_clip(stream, video_id, generation, attempt)
        if outcome in _CHAIN_GOES_ON:
            self._schedule(kind, stream_id, video_id, generation, attempt + 1, wait_s=wait_s)
        return outcome

    def _check_download(
        self, stream: Stream, video_id: str, generation: int, attempt: int
    ) -> CheckResult:
        def settle(
            current: Stream, status: DownloadStatus | None, last: bool
        ) -> tuple[Stream, KeepsakeOutcome]:
            entry = _entry(current, video_id)
            assert entry.download is not None  # noqa: S101 - _due checked it
            claimed = entry.download.model_copy(update={"checks": attempt + 1})
            # No status: the video is gone, and so is its download.
            download = _downloaded(claimed, status) if status else _failed(claimed)
            if download.state == "preparing" and last:
                log.error("download of %s not ready after %d checks", video_id, attempt + 1)
                download = _failed(download)
            updated = _with_entry(current, entry.model_copy(update={"download": download}))
            return updated, _outcome_of(download.state)

        def unanswered(current: Stream, last: bool) -> tuple[Stream, KeepsakeOutcome]:
            entry = _entry(current, video_id)
            assert entry.download is not None  # noqa: S101 - _due checked it
            claimed = entry.download.model_copy(
                update={"checks": attempt + 1, "unanswered": entry.download.unanswered + 1}
            )
            if last:
                log.error("no answer on the download of %s after %d checks", video_id, attempt + 1)
                claimed = _failed(claimed)
            updated = _with_entry(current, entry.model_copy(update={"download": claimed}))
            return updated, "gave_up" if last else "unanswered"

        return self._follow(
            stream,
            _due("download", video_id, generation, attempt),
            lambda: self._provider.get_download(video_id),
            settle=settle,
            unanswered=unanswered,
            attempt=attempt,
        )

    def _check_clip(
        self, stream: Stream, video_id: str, generation: int, attempt: int
    ) -> CheckResult:
        now = self._clock.now()

        def settle(
            current: Stream, clip: Recording | None, last: bool
        ) -> tuple[Stream, KeepsakeOutcome]:
            if clip is None:
                return current.model_copy(update={"pending_clip": None, "updated_at": now}), "gone"
            pending = current.pending_clip
            assert pending is not None  # noqa: S101 - _due checked it
            claimed = current.model_copy(
                update={"pending_clip": pending.model_copy(update={"checks": attempt + 1})}
            )
            entry = entry_of(clip).model_copy(update={"clipped_from": pending.clipped_from})
            merged = with_recordings(claimed, merge_recordings(current.recordings, [entry]), now)
            if merged.pending_clip is None:  # ready (now the primary recording) or failed
                return merged, "done" if merged.primary_video_id == video_id else "failed"
            if not last:
                return merged, "rescheduled"
            log.error("trim %s not ready after %d checks", video_id, attempt + 1)
            issue = StreamIssue(
                code=CLIP_NOT_READY, message="The trim did not finish; try again", at=now
            )
            return merged.model_copy(update={"pending_clip": None, "last_error": issue}), "gave_up"

        def unanswered(current: Stream, last: bool) -> tuple[Stream, KeepsakeOutcome]:
            pending = current.pending_clip
            assert pending is not None  # noqa: S101 - _due checked it
            if not last:
                claimed = pending.model_copy(
                    update={"checks": attempt + 1, "unanswered": pending.unanswered + 1}
                )
                return current.model_copy(update={"pending_clip": claimed}), "unanswered"
            log.error("no answer on the trim %s after %d checks", video_id, attempt + 1)
            issue = StreamIssue(
                code=CLIP_NOT_READY, message="The trim did not finish; try again", at=now
            )
            return current.model_copy(update={"pending_clip": None, "last_error": issue}), "gave_up"

        return self._follow(
            stream,
            _due("clip", video_id, generation, attempt),
            lambda: self._provider.get_recording(video_id),
            settle=settle,
            unanswered=unanswered,
            attempt=attempt,
        )

    def _follow(
        self,
        stream: Stream,
        due: Callable[[Stream], FollowedRequest | None],
        read: Callable[[], FoundT | None],
        *,
        settle: Callable[[Stream, FoundT | None, bool], tuple[Stream, KeepsakeOutcome]],
        unanswered: Callable[[Stream, bool], tuple[Stream, KeepsakeOutcome]],
        attempt: int,
    ) -> CheckResult:
        """One check of a followed request: what the provider says now (``None``: the video
        is gone) is settled onto the stream in the write that claims the check, given whether
        it is the last. When the provider fails to answer, the check is claimed by
        ``unanswered`` and the chain goes on, up to ``keepsake_max_checks`` (the next check
        no sooner than a rate limit's Retry-After: asking sooner spends the account's
        budget for nothing). A duplicate delivery, or a request since replaced, is no longer
        ``due`` (which gives the request while it is) and changes nothing."""
        if due(stream) is None:
            return "stale", None
        answered = True
        wait_s: float | None = None
        found: FoundT | None = None
        try:
            found = read()
        except NotFoundError:
            found = None
        except (ProviderUnavailableError, ProviderRateLimitedError) as error:
            log.warning(
                "no answer from Cloudflare for check %d of %s: %s", attempt, stream.id, error
            )
            answered = False
            if isinstance(error, ProviderRateLimitedError):
                wait_s = error.retry_after_s
        checks = attempt + 1
        outcome: list[KeepsakeOutcome] = ["stale"]

        def record(current: Stream) -> Stream:
            request = due(current)
            if request is None:
                outcome[:] = ["stale"]
                return current
            # The budget counts the checks the provider answered, this one included if it was.
            answered_checks = checks - request.unanswered - (0 if answered else 1)
            last = checks >= self.policy.keepsake_max_checks or (
                answered and answered_checks >= self.policy.keepsake_checks
            )
            updated, result = (
                settle(current, found, last) if answered else unanswered(current, last)
            )
            outcome[:] = [result]
            return updated

        self._repo.update(stream.id, record)
        return outcome[-1], wait_s

    def _resume(
        self, kind: KeepsakeKind, stream_id: str, video_id: str, followed: FollowedRequest
    ) -> None:
        """Asked again while being made: queue the chain's next check again, in case it
        stopped (its successor could not be queued: ``_enqueue`` only logs that). By its
        name, a queue that holds that check already keeps one. A chain stalled well past its
        next check may have lost that check for good (it failed, and Cloud Tasks refuses its
        name for an hour): it goes on from the next attempt number instead, which makes the
        lost one stale should it ever come."""
        interval = timedelta(seconds=self.policy.keepsake_check_interval_s)
        next_check = followed.requested_at + interval * (followed.checks + 1)
        attempt = followed.checks
        if self._clock.now() > next_check + STALLED_AFTER:
            skipped = followed.model_copy(update={"checks": followed.checks + 1})

            def skip(current: Stream) -> Stream:
                if _followed(kind, current, video_id) != followed:
                    return current  # a check ran meanwhile: the chain is alive
                return _with_followed(kind, current, video_id, skipped)

            updated = self._repo.update(stream_id, skip)
            now_followed = _followed(kind, updated, video_id)
            if now_followed is None or now_followed.generation != followed.generation:
                return
            attempt = now_followed.checks
            log.warning("%s of %s stalled; resumed at check %d", kind, video_id, attempt)
        self._schedule(kind, stream_id, video_id, followed.generation, attempt)

    def _schedule(
        self,
        kind: KeepsakeKind,
        stream_id: str,
        video_id: str,
        generation: int,
        attempt: int,
        *,
        wait_s: float | None = None,
    ) -> None:
        """Queue check ``attempt``, one interval from now (or ``wait_s``, if longer)."""
        # Should it fail, asking again (POST) queues it again (``_resume``); the Stream
        # webhook still finishes a trim.
        chain = {"kind": kind, "streamId": stream_id, "videoId": video_id}
        delay = max(self.policy.keepsake_check_interval_s, wait_s or 0)
        self._enqueue(check_task(KEEPSAKE_TASK_PATH, chain, generation, attempt, delay))


def _entry(stream: Stream, video_id: str) -> RecordingEntry:
    entry = next((e for e in stream.recordings if e.video_uid == video_id), None)
    if entry is None:
        raise NotFoundError("This stream has no such recording")
    return entry


def _with_entry(stream: Stream, entry: RecordingEntry) -> Stream:
    entries = tuple(entry if e.video_uid == entry.video_uid else e for e in stream.recordings)
    return stream.model_copy(update={"recordings": entries})


def _downloaded(download: RecordingDownload, status: DownloadStatus) -> RecordingDownload:
    """``download`` as Cloudflare's status says; progress never goes back."""
    if status.state == "error":
        return _failed(download)
    ready = status.state == "ready"
    percent = 100.0 if ready else max(download.percent_complete, status.percent_complete)
    return download.model_copy(
        update={"state": "ready" if ready else "preparing", "percent_complete": percent}
        | ({"url": status.url} if ready else {})
    )


def _failed(download: RecordingDownload) -> RecordingDownload:
    return download.model_copy(update={"state": "error", "url": None})


def _outcome_of(state: str) -> KeepsakeOutcome:
    return "done" if state == "ready" else "failed" if state == "error" else "rescheduled"


def _followed(kind: KeepsakeKind, stream: Stream, video_id: str) -> FollowedRequest | None:
    """The request of ``kind`` a chain follows for ``video_id``, if it is still being made."""
    if kind == "download":
        download = _followed_download(stream, video_id)
        return download if download is not None and download.state == "preparing" else None
    pending = stream.pending_clip
    return pending if pending is not None and pending.video_uid == video_id else None


def _with_followed(
    kind: KeepsakeKind, stream: Stream, video_id: str, followed: FollowedRequest
) -> Stream:
    if kind == "clip":
        return stream.model_copy(update={"pending_clip": followed})
    entry = _entry(stream, video_id)
    return _with_entry(stream, entry.model_copy(update={"download": followed}))


def _followed_download(stream: Stream, video_id: str) -> RecordingDownload | None:
    entry = next((e for e in stream.recordings if e.video_uid == video_id), None)
    return entry.download if entry else None


def _due(
    kind: KeepsakeKind, video_id: str, generation: int, attempt: int
) -> Callable[[Stream], FollowedRequest | None]:
    """Whether check ``attempt`` of chain ``generation`` is due on a stream: the request it
    follows, still being made and not yet past that check, or ``None``."""

    def due(stream: Stream) -> FollowedRequest | None:
        request = _followed(kind, stream, video_id)
        if request is None or (request.generation, request.checks) != (generation, attempt):
            return None
        return request

    return due


def _last_playable(stream: Stream, entry: RecordingEntry) -> bool:
    """Whether ``entry`` is the only recording the page could show."""
    if not entry.ready or entry.hidden:
        return False
    return not any(
        e.ready and not e.hidden and e.video_uid != entry.video_uid for e in stream.recordings
    )


def _clip_view(stream_id: str, pending: PendingClip) -> RecordingClipView:
    return RecordingClipView(
        streamId=stream_id,
        videoId=pending.video_uid,
        clippedFrom=pending.clipped_from,
        startTimeSeconds=pending.start_time_seconds,
        endTimeSeconds=pending.end_time_seconds,
    )
