"""Stream management: create, read, update, delete, start, stop, reorder and listings."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from common.access import (
    Action,
    Permissions,
    can_manage_memorial,
    may_delete_recordings,
    require,
    stream_permissions,
)
from common.errors import (
    AppError,
    ConflictError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from common.models.api import (
    CredentialsResponse,
    DeleteResponse,
    MemorialStreamStatusResponse,
    PublishCredentials,
    ReorderedStream,
    ReorderRequest,
    ReorderResponse,
    StartResponse,
    StopResponse,
    StreamCreateRequest,
    StreamManagerView,
    StreamOwnerView,
    StreamPublicView,
    StreamUpdateRequest,
)
from common.models.delivery import DeliveryUrls
from common.models.domain import (
    LiveInput,
    LiveInputSpec,
    Memorial,
    Stream,
    StreamCredentials,
    StreamStatus,
    User,
)
from common.ports import (
    Clock,
    CreateQuota,
    IdempotencyStore,
    MemorialDirectory,
    ProviderError,
    ProviderNotFoundError,
    ScheduledTask,
    StreamPage,
    StreamProvider,
    StreamQuery,
    StreamRepository,
    TaskQueue,
    WhipSession,
)
from common.services.create_guards import (
    CreateGuards,
    CreateLimits,
    checked_idempotency_key,
    request_fingerprint,
)
from common.services.provider import provider_errors
from common.services.recordings import RecordingService, has_recording_since

log = logging.getLogger(__name__)
ORPHAN_SWEEP_TASK_PATH = "/api/tasks/sweep-live-inputs"
# A live input this young may be one a concurrent start is about to attach to its stream.
ORPHAN_MIN_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class StreamPolicy:
    """Product choices applied to every new live input."""

    delivery_base: str
    recording_timeout_seconds: int
    allowed_origins: tuple[str, ...]
    delete_recording_after_days: int | None = None
    orphan_sweep_delay_s: float = 120
    whip_session_ttl_s: int = 24 * 3600
    create_limits: CreateLimits = CreateLimits()


@dataclass(frozen=True)
class WhipPublication:
    """The SDP answer for the browser and the URL of its session (for DELETE)."""

    answer_sdp: str
    location: str


def whip_endpoint(stream_id: str) -> str:
    """Our own WHIP URL for a stream: the provider's publish URL never reaches the browser."""
    return f"/api/streams/{stream_id}/whip"


def load_authorized(
    repo: StreamRepository,
    memorials: MemorialDirectory,
    user: User | None,
    stream_id: str,
    action: Action,
    *,
    message: str = "Permission denied",
) -> tuple[Stream, Permissions]:
    """The stream, if it exists (404) and ``user`` may take ``action`` on it (401/403)."""
    stream = repo.get(stream_id)
    if stream is None:
        raise NotFoundError("Stream not found")
    memorial = memorials.get(stream.memorial_id) if stream.memorial_id else None
    permissions = stream_permissions(user, stream, memorial)
    require(permissions, action, user, message)
    return stream, permissions


class MemorialCache:
    """Memorial lookups for the duration of one request."""

    def __init__(self, directory: MemorialDirectory) -> None:
        self._directory = directory
        self._seen: dict[str, Memorial | None] = {}

    def get(self, memorial_id: str | None) -> Memorial | None:
        if memorial_id is None:
            return None
        if memorial_id not in self._seen:
            self._seen[memorial_id] = self._directory.get(memorial_id)
        return self._seen[memorial_id]


class StreamService:
    """Use-cases on streams. Every method authorises the caller itself."""

    def __init__(
        self,
        *,
        repo: StreamRepository,
        memorials: MemorialDirectory,
        provider: StreamProvider,
        clock: Clock,
        policy: StreamPolicy,
        recordings: RecordingService,
        tasks: TaskQueue,
        create_quota: CreateQuota | None = None,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        """``create_quota`` and ``idempotency`` switch the creation rate limit and
        ``Idempotency-Key`` on (the composition root always wires both)."""
        self._guards = CreateGuards(
            quota=create_quota, keys=idempotency, clock=clock, limits=policy.create_limits
        )
        self._recordings = recordings
        self._tasks = tasks
        self._repo = repo
        self._memorials = memorials
        self._provider = provider
        self._clock = clock
        self._policy = policy
        self._urls = DeliveryUrls(policy.delivery_base)

    # --- reads -----------------------------------------------------------------------------

    def list_streams(
        self, user: User | None, query: StreamQuery
    ) -> tuple[list[StreamPublicView], bool]:
        """Streams matching ``query`` that ``user`` may view; anonymous callers see public ones."""
        if user is None:
            if query.is_public is False or query.is_visible is False:
                return [], False
            query = replace(query, is_public=True, is_visible=True)
        page = self._repo.find(query)
        return self._views_for(user, page.streams), page.has_more

    def list_public(self, status: StreamStatus | None, limit: int, offset: int) -> StreamPage:
        """Public, visible streams of public memorials, in display order."""
        page = self._repo.find(
            StreamQuery(
                is_public=True,
                is_visible=True,
                status=status,
                order="display",
                limit=limit,
                offset=offset,
            )
        )
        memorials = MemorialCache(self._memorials)
        visible = [
            s
            for s in page.streams
            if stream_permissions(None, s, memorials.get(s.memorial_id)).can(Action.VIEW)
        ]
        return StreamPage(streams=visible, has_more=page.has_more)

    def memorial_streams(self, user: User | None, memorial_id: str) -> list[StreamPublicView]:
        """The streams of one memorial that ``user`` may view: visitors see visible ones,
        managers also the hidden ones (so they can show them again)."""
        streams = self._repo.list_by_memorial(memorial_id, visible_only=False)
        return self._views_for(user, streams)

    def memorial_status(self, user: User | None, memorial_id: str) -> MemorialStreamStatusResponse:
        """Live, upcoming and completed streams of a memorial, stamped with the server time."""
        views = self.memorial_streams(user, memorial_id)
        return MemorialStreamStatusResponse.grouped(views, self._clock.now())

    def get(self, user: User | None, stream_id: str) -> StreamPublicView:
        """One stream, in the richest view the caller is entitled to."""
        stream, permissions = self._load(user, stream_id, Action.VIEW)
        if permissions.can(Action.START):
            credentials = self._repo.get_credentials(stream.id)
            return StreamOwnerView.with_credentials(stream, credentials, whip_endpoint(stream.id))
        return _view(stream, permissions)

    # --- writes ----------------------------------------------------------------------------

    def create_for_memorial(
        self,
        user: User | None,
        memorial_id: str,
        request: StreamCreateRequest,
        *,
        idempotency_key: str | None = None,
    ) -> StreamOwnerView:
        """``POST /memorials/{id}/streams``: as the original handler did, the stream is as
        public as its memorial, whatever ``isPublic`` the management page sends (always
        ``false``). Hiding it is what ``isVisible`` is for."""
        if user is None:
            raise UnauthenticatedError("Authentication required")
        key = checked_idempotency_key(idempotency_key)
        memorial = self._memorials.get(memorial_id)
        if memorial is None:
            raise NotFoundError("Memorial not found")
        if not can_manage_memorial(user, memorial):
            raise PermissionDeniedError("Permission denied to create memorial streams")
        fingerprint = request_fingerprint(
            f"memorials/{memorial_id}/streams", request.model_dump(mode="json")
        )
        return self._create_authorized(
            user,
            request.model_copy(update={"memorialId": memorial_id, "isPublic": memorial.is_public}),
            memorial.loved_one_name,
            key,
            fingerprint,
        )

    def create(
        self,
        user: User | None,
        request: StreamCreateRequest,
        *,
        idempotency_key: str | None = None,
    ) -> StreamOwnerView:
        """Create a stream and its Cloudflare live input; neither survives without the other.

        Counts against the caller's creation rate (429 beyond it). With an
        ``idempotency_key``, a repeated request returns the stream the first one created.
        """
        if user is None:
            raise UnauthenticatedError("Authentication required")
        key = checked_idempotency_key(idempotency_key)
        loved_one_name = None
        if request.memorialId is not None:
            memorial = self._memorials.get(request.memorialId)
            if memorial is None:
                raise NotFoundError("Memorial not found")
            if not can_manage_memorial(user, memorial):
                raise PermissionDeniedError("Permission denied for memorial")
            loved_one_name = memorial.loved_one_name
        fingerprint = request_fingerprint("streams", request.model_dump(mode="json"))
        return self._create_authorized(user, request, loved_one_name, key, fingerprint)

    def _create_authorized(
        self,
        user: User,
        request: StreamCreateRequest,
        loved_one_name: str | None,
        key: str | None,
        fingerprint: str,
    ) -> StreamOwnerView:
        """Rate limit and idempotency around the creation itself (the caller may create)."""
        if key is None or not self._guards.keys_enabled:
            self._guards.count(user)
            return self._create_stream(user, request, loved_one_name, self._repo.new_id())
        claim = self._guards.claim(user, key, fingerprint, self._repo.new_id())
        if not claim.replay and self._repo.get(claim.stream_id) is not None:
            # An earlier attempt created the stream but never said so (it failed late, or
            # its instance stopped): that stream is the key's result.
            self._guards.succeeded(user, key, claim.stream_id)
            return self._replay(user, claim.stream_id)
        if claim.replay:
            return self._replay(user, claim.stream_id)
        try:
            self._guards.count(user)
            view = self._create_stream(user, request, loved_one_name, claim.stream_id)
        except BaseException:
            self._guards.failed(user, key, claim.stream_id)
            raise
        self._guards.succeeded(user, key, claim.stream_id)
        return view

    def _replay(self, user: User, stream_id: str) -> StreamOwnerView:
        """The stream an earlier request with the same key created, as it is now."""
        stream = self._repo.get(stream_id)
        if stream is None:
            raise ConflictError(
                "The stream created with this Idempotency-Key has been deleted;"
                " use a new key to create another",
                details={"header": "Idempotency-Key", "streamId": stream_id},
            )
        stream, _ = self._load(user, stream_id, Action.START)
        credentials = self._repo.get_credentials(stream.id)
        return StreamOwnerView.with_credentials(stream, credentials, whip_endpoint(stream.id))

    def _create_stream(
        self,
        user: User,
        request: StreamCreateRequest,
        loved_one_name: str | None,
        stream_id: str,
    ) -> StreamOwnerView:
        memorial_name = request.memorialName or loved_one_name
        live_input = self._create_live_input(stream_id, request.title)
        now = self._clock.now()
        stream = Stream(
            id=stream_id,
            title=request.title,
            description=request.description,
            memorial_id=request.memorialId,
            memorial_name=memorial_name,
            created_by=user.uid,
            allowed_users=tuple(request.allowedUsers),
            status=StreamStatus.SCHEDULED,
            is_visible=request.isVisible,
            is_public=request.isPublic,
            display_order=request.displayOrder,
            featured=request.featured,
            scheduled_start_time=request.scheduled_start,
            cloudflare_id=live_input.uid,
            playback_url=self._urls.player(live_input.uid),
            webrtc_playback_url=live_input.whep_url,
            created_at=now,
            updated_at=now,
        )
        try:
            self._repo.create(stream, live_input.credentials())
        except Exception:
            if not self._landed(stream_id, live_input.uid):
                self._discard_live_input(stream_id, live_input.uid)
                raise
            log.warning("stream %s was written although its create reported a failure", stream_id)
        return StreamOwnerView.with_credentials(
            stream, live_input.credentials(), whip_endpoint(stream_id)
        )

    def update(
        self, user: User | None, stream_id: str, request: StreamUpdateRequest
    ) -> StreamManagerView:
        """Change the editable fields of a stream."""
        stream, permissions = self._load(user, stream_id, Action.EDIT)
        fields = request.model_fields_set
        if "allowedUsers" in fields and not permissions.can(Action.DELETE):
            raise PermissionDeniedError("Only the stream's owner may change who manages it")
        now = self._clock.now()

        def apply(current: Stream) -> Stream:
            changes: dict[str, object] = {"updated_at": now}
            simple = {
                "title": "title",
                "description": "description",
                "isVisible": "is_visible",
                "isPublic": "is_public",
                "displayOrder": "display_order",
                "featured": "featured",
            }
            for wire_name, attr in simple.items():
                if wire_name in fields:
                    changes[attr] = getattr(request, wire_name)
            if fields & {"scheduledStartTime", "scheduledDateTime"}:
                changes["scheduled_start_time"] = (
                    request.scheduledStartTime or request.scheduledDateTime
                )
            if request.allowedUsers is not None:
                changes["allowed_users"] = tuple(request.allowedUsers)
            return current.model_copy(update=changes)

        updated = self._repo.update(stream.id, apply)
        return StreamManagerView.of(updated)

    def delete(self, user: User | None, stream_id: str) -> DeleteResponse:
        """Delete a stream that is not live, with its live input and its recordings."""
        stream, _ = self._load(user, stream_id, Action.DELETE)
        if stream.status == StreamStatus.LIVE:
            raise ConflictError("Cannot delete live stream. Stop it first.")
        memorial = self._memorials.get(stream.memorial_id) if stream.memorial_id else None
        if not may_delete_recordings(user, stream, memorial):
            raise PermissionDeniedError(
                "Only the memorial's owner may delete a stream that holds its recordings"
            )
        if recording_pending(stream):
            # Deleting now would strand the recording Cloudflare is about to finish.
            raise ConflictError(
                "The recording of this stream is still being processed; delete it once it is ready",
                retry_after_s=30,
            )
        # The recordings go with the stream, those Cloudflare made but never reported too:
        # none is left playable and unfindable. Its live input is noted first, so recordings
        # that arrive after the stream is gone are deleted as well (see RecordingService).
        recordings = [entry.video_uid for entry in stream.recordings]
        if stream.cloudflare_id:
            with provider_errors():
                made = self._provider.list_recordings(stream.cloudflare_id)
            recordings += [r.video_uid for r in made if r.video_uid not in recordings]
            self._repo.remember_deleted_input(stream.cloudflare_id, stream.id, self._clock.now())
        for video_uid in recordings:
            try:
                with provider_errors():
                    self._provider.delete_recording(video_uid)
            except NotFoundError:
                log.info("recording %s was already gone", video_uid)
        if stream.cloudflare_id:
            try:
                with provider_errors():
                    self._provider.delete_live_input(stream.cloudflare_id)
            except NotFoundError:
                log.info("live input %s was already gone", stream.cloudflare_id)
        self._repo.delete(stream.id)
        return DeleteResponse()

    def start(self, user: User | None, stream_id: str) -> StartResponse:
        """Mark a stream live and hand its publishing credentials to the caller."""
        stream, _ = self._load(user, stream_id, Action.START, "Permission denied to start stream")
        if stream.status == StreamStatus.LIVE:
            raise ConflictError("Stream is already live")
        stream, credentials = self._ensure_live_input(stream)
        now = self._clock.now()

        def go_live(current: Stream) -> Stream:
            if current.status == StreamStatus.LIVE:
                raise ConflictError("Stream is already live")
            return current.began_broadcast(now)

        live = self._repo.update(stream.id, go_live)
        self._recordings.start_monitor("status", live)
        assert live.cloudflare_id is not None  # noqa: S101 - set by _ensure_live_input
        publish = PublishCredentials(
            streamKey=credentials.stream_key.get_secret_value(),
            streamUrl=credentials.rtmp_url,
            whipEndpoint=whip_endpoint(live.id),
            playbackUrl=live.playback_url,
        )
        return StartResponse(
            streamId=live.id,
            cloudflareId=live.cloudflare_id,
            status=live.status,
            credentials=publish,
            **publish.model_dump(),
        )

    def stop(self, user: User | None, stream_id: str) -> StopResponse:
        """End a live stream; the recording is attached now if Cloudflare already has it.

        Stopping a broadcast that already ended (Cloudflare reported the disconnect first) is
        not an error: the reply describes where its recording stands.
        """
        stream, _ = self._load(user, stream_id, Action.STOP, "Permission denied to stop stream")
        if stream.status not in (StreamStatus.LIVE, StreamStatus.COMPLETED):
            raise ConflictError("Stream is not currently live")
        now = self._clock.now()

        def end(current: Stream) -> Stream:
            if current.status != StreamStatus.LIVE:
                return current
            return current.ended_broadcast(now)

        ended = self._repo.update(stream.id, end)
        ended = self._attach_recordings(ended)
        ready = has_recording_since(ended, ended.actual_start_time)
        if not ready:
            self._recordings.start_monitor("recording", ended)
        return StopResponse(
            streamId=ended.id,
            status=ended.status,
            recordingStatus="ready" if ready else "processing",
            recordingReady=ready,
            recordingUrl=ended.recording_url if ready else None,
            message="Stream stopped and recording is ready"
            if ready
            else "Stream stopped, recording will be available shortly",
        )

    def credentials(self, user: User | None, stream_id: str) -> CredentialsResponse:
        """The publishing credentials without going live (the live input is made if missing)."""
        stream, _ = self._load(
            user, stream_id, Action.START, "Permission denied to access stream credentials"
        )
        stream, credentials = self._ensure_live_input(stream)
        assert stream.cloudflare_id is not None  # noqa: S101 - set by _ensure_live_input
        return CredentialsResponse(
            streamId=stream.id,
            cloudflareId=stream.cloudflare_id,
            status=stream.status,
            credentials=PublishCredentials(
                streamKey=credentials.stream_key.get_secret_value(),
                streamUrl=credentials.rtmp_url,
                whipEndpoint=whip_endpoint(stream.id),
                playbackUrl=stream.playback_url,
            ),
        )

    def publish_whip(self, user: User | None, stream_id: str, offer_sdp: str) -> WhipPublication:
        """Relay a browser's WHIP offer to the live input and go live (not recorded)."""
        stream, _ = self._load(user, stream_id, Action.START, "Permission denied to start stream")
        if not offer_sdp.startswith(("v=0\r\n", "v=0\n")):
            raise InvalidArgumentError("The body must be an SDP offer (application/sdp)")
        if stream.status == StreamStatus.CANCELLED:
            raise ConflictError("Stream is cancelled")
        if stream.status == StreamStatus.LIVE:
            # Start arms a stream before any encoder comes (the management page posts its
            # offer right after Start); only a publisher really on air makes it a conflict.
            self._refuse_if_on_air(stream)
        stream, credentials = self._ensure_live_input(stream)
        try:
            with provider_errors():
                answer = self._provider.whip_offer(credentials.whip_url, offer_sdp)
        except InternalError as exc:
            raise InvalidArgumentError("The WHIP endpoint refused the SDP offer") from exc
        now = self._clock.now()
        session = WhipSession(
            session_id=secrets.token_urlsafe(12),
            resource_url=answer.resource_url,
            expires_at=now + timedelta(seconds=self._policy.whip_session_ttl_s),
        )
        self._repo.save_whip_session(stream.id, session)

        def go_live(current: Stream) -> Stream:
            if current.whip_active:
                raise ConflictError("Stream is already live")
            return (
                current.began_broadcast(now)
                .publisher_connected(now)
                .model_copy(update={"whip_active": True, "ingest_protocol": "whip"})
            )

        live = self._repo.update(stream.id, go_live)
        self._recordings.start_monitor("status", live)
        return WhipPublication(
            answer_sdp=answer.sdp, location=f"{whip_endpoint(stream.id)}/{session.session_id}"
        )

    def _refuse_if_on_air(self, stream: Stream) -> None:
        """409 when a browser or an encoder is already publishing to the stream."""
        if stream.whip_active:
            raise ConflictError("Stream is already live")
        if stream.cloudflare_id is None:
            return
        with provider_errors():
            connection = self._provider.get_live_input(stream.cloudflare_id).connection
        if connection in ("connected", "reconnecting"):
            raise ConflictError("Stream is already live")

    def end_whip(self, user: User | None, stream_id: str, session_id: str) -> DeleteResponse:
        """End a browser broadcast (the WHIP session DELETE)."""
        stream, _ = self._load(user, stream_id, Action.STOP, "Permission denied to stop stream")
        session = self._repo.whip_session(stream.id, session_id)
        # Firestore's TTL deletes expired sessions within a day, not at once.
        if session is None or session.expired(self._clock.now()):
            raise NotFoundError("WHIP session not found")
        if session.resource_url:
            try:
                with provider_errors():
                    self._provider.whip_end(session.resource_url)
            except NotFoundError:
                log.info("WHIP session %s was already gone upstream", session_id)
        self._repo.delete_whip_session(stream.id, session_id)
        now = self._clock.now()

        def end(current: Stream) -> Stream:
            if current.status == StreamStatus.LIVE:
                return current.ended_broadcast(now)
            return current.model_copy(update={"whip_active": False, "updated_at": now})

        self._repo.update(stream.id, end)
        return DeleteResponse(message="Browser broadcast ended")

    def reorder(self, user: User | None, request: ReorderRequest) -> ReorderResponse:
        """Set the display order of several streams at once (all or nothing)."""
        if user is None:
            raise UnauthenticatedError("Authentication required")
        memorials = MemorialCache(self._memorials)
        streams: list[Stream] = []
        for stream_id in request.streamIds:
            stream = self._repo.get(stream_id)
            if stream is None:
                raise NotFoundError(f"Stream {stream_id} not found")
            if request.memorialId is not None and stream.memorial_id != request.memorialId:
                raise InvalidArgumentError(
                    f"Stream {stream_id} does not belong to memorial {request.memorialId}"
                )
            permissions = stream_permissions(user, stream, memorials.get(stream.memorial_id))
            if not permissions.can(Action.EDIT):
                raise PermissionDeniedError(f"Permission denied for stream {stream_id}")
            streams.append(stream)
        orders = {stream.id: index for index, stream in enumerate(streams)}
        self._repo.set_display_orders(orders, self._clock.now())
        updated = [
            ReorderedStream(
                streamId=s.id, title=s.title, oldOrder=s.display_order, newOrder=orders[s.id]
            )
            for s in streams
        ]
        return ReorderResponse(
            message=f"Reordered {len(updated)} streams",
            updatedStreams=updated,
            totalUpdated=len(updated),
        )

    # --- helpers ---------------------------------------------------------------------------

    def _load(
        self,
        user: User | None,
        stream_id: str,
        action: Action,
        message: str = "Permission denied",
    ) -> tuple[Stream, Permissions]:
        return load_authorized(
            self._repo, self._memorials, user, stream_id, action, message=message
        )

    def _views_for(self, user: User | None, streams: Sequence[Stream]) -> list[StreamPublicView]:
        memorials = MemorialCache(self._memorials)
        views: list[StreamPublicView] = []
        for stream in streams:
            permissions = stream_permissions(user, stream, memorials.get(stream.memorial_id))
            if permissions.can(Action.VIEW):
                views.append(_view(stream, permissions))
        return views

    def _create_live_input(self, stream_id: str, title: str) -> LiveInput:
        spec = LiveInputSpec(
            stream_id=stream_id,
            name=f"{title} - {stream_id}",
            recording_timeout_seconds=self._policy.recording_timeout_seconds,
            allowed_origins=self._policy.allowed_origins,
            delete_recording_after_days=self._policy.delete_recording_after_days,
        )
        try:
            with provider_errors():
                return self._provider.create_live_input(spec)
        except UnavailableError:
            # The create may have happened although no answer came, or may still happen:
            # look for the input by its tag now, and once more when it has surely landed.
            self._sweep_now(stream_id)
            self._schedule_sweep(stream_id)
            raise

    def sweep_orphaned_inputs(self, stream_id: str) -> int:
        """Delete the live inputs tagged with ``stream_id`` that the stream does not use.

        Returns how many were deleted. Raises ``UnavailableError`` (so the task is retried)
        while an unattached input of an existing stream is too young to judge.
        """
        stream = self._repo.get(stream_id)
        in_use = stream.cloudflare_id if stream is not None else None
        with provider_errors():
            tagged = self._provider.find_live_inputs(stream_id)
        too_young_after = self._clock.now() - ORPHAN_MIN_AGE
        deleted, undecided = 0, 0
        for live_input in tagged:
            if live_input.uid == in_use:
                continue
            if stream is not None and live_input.created and live_input.created > too_young_after:
                undecided += 1
                continue
            with provider_errors():
                try:
                    self._provider.delete_live_input(live_input.uid)
                except ProviderNotFoundError:
                    continue
            log.warning("deleted orphaned live input %s of stream %s", live_input.uid, stream_id)
            deleted += 1
        if undecided:
            raise UnavailableError(
                "A live input of this stream is too new to judge",
                retry_after_s=int(ORPHAN_MIN_AGE.total_seconds()),
            )
        return deleted

    def _sweep_now(self, stream_id: str) -> None:
        try:
            self.sweep_orphaned_inputs(stream_id)
        except AppError as exc:
            log.warning("orphan sweep of stream %s deferred: %s", stream_id, exc.message)

    def _schedule_sweep(self, stream_id: str) -> None:
        task = ScheduledTask(
            name=f"sweep-{stream_id}-{int(self._clock.now().timestamp() * 1000)}",
            path=ORPHAN_SWEEP_TASK_PATH,
            payload={"streamId": stream_id},
            delay_s=self._policy.orphan_sweep_delay_s,
        )
        try:
            self._tasks.enqueue(task)
        except AppError as exc:
            log.error("could not schedule the orphan sweep of stream %s: %s", stream_id, exc)

    def _landed(self, stream_id: str, live_input_uid: str) -> bool:
        """Whether a create whose answer was an error was written all the same (a commit can
        time out after it landed): then its live input is the stream's and must stay."""
        try:
            written = self._repo.get(stream_id)
        except AppError:
            # Unknown: keep the input. The orphan sweep deletes it if no stream uses it.
            self._schedule_sweep(stream_id)
            return True
        return written is not None and written.cloudflare_id == live_input_uid

    def _discard_live_input(self, stream_id: str, uid: str) -> None:
        try:
            self._provider.delete_live_input(uid)
        except ProviderNotFoundError:
            return
        except ProviderError:
            # Tagged with our stream id in meta, so the sweep finds it later.
            log.error("live input %s could not be deleted yet", uid)
            self._schedule_sweep(stream_id)

    def _ensure_live_input(self, stream: Stream) -> tuple[Stream, StreamCredentials]:
        if stream.cloudflare_id is None:
            live_input = self._create_live_input(stream.id, stream.title)
            attach = {
                "cloudflare_id": live_input.uid,
                "playback_url": self._urls.player(live_input.uid),
            }
            try:
                attached = self._repo.update(
                    stream.id,
                    lambda s: s if s.cloudflare_id else s.model_copy(update=attach),
                )
            except Exception:
                self._discard_live_input(stream.id, live_input.uid)
                raise
            if attached.cloudflare_id != live_input.uid:
                # A concurrent start attached its own input first: use that one.
                self._discard_live_input(stream.id, live_input.uid)
                return self._ensure_live_input(attached)
            self._repo.save_credentials(stream.id, live_input.credentials())
            return attached, live_input.credentials()
        credentials = self._repo.get_credentials(stream.id)
        if credentials is None:
            with provider_errors():
                credentials = self._provider.get_live_input(stream.cloudflare_id).credentials()
            self._repo.save_credentials(stream.id, credentials)
        return stream, credentials

    def _attach_recordings(self, stream: Stream) -> Stream:
        try:
            updated, _ = self._recordings.reconcile(stream.id)
        except AppError as exc:
            log.warning("recording check after stop failed: %s", exc.message)
            return stream
        return updated


def recording_pending(stream: Stream) -> bool:
    """Whether a recording of the stream's last broadcast is still expected from Cloudflare."""
    monitor = stream.recording_monitor
    return (
        stream.status == StreamStatus.COMPLETED
        and stream.went_on_air
        and stream.ingest_protocol != "whip"
        and not has_recording_since(stream, stream.actual_start_time)
        and monitor is not None
        and monitor.state == "running"
    )


def _view(stream: Stream, permissions: Permissions) -> StreamPublicView:
    if permissions.can(Action.EDIT):
        return StreamManagerView.of(stream)
    return StreamPublicView.of(stream)
