"""Stream management: create, update, delete and reorder (the reads are
``common/services/stream_listings.py``)."""

from __future__ import annotations

import logging

from common.access import (
    Action,
    can_manage_memorial,
    may_delete_recordings,
    stream_permissions,
)
from common.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from common.models.api import (
    DeleteResponse,
    ReorderedStream,
    ReorderRequest,
    ReorderResponse,
    StreamCreateRequest,
    StreamManagerView,
    StreamOwnerView,
    StreamUpdateRequest,
    window_problem,
)
from common.models.domain import (
    Stream,
    StreamStatus,
    User,
)
from common.models.recording_rules import broadcast_recorded
from common.ports import (
    CreateQuota,
    IdempotencyStore,
)
from common.services.backends import BackendPorts, WithBackends
from common.services.create_guards import (
    CreateGuards,
    checked_idempotency_key,
    request_fingerprint,
)
from common.services.live_inputs import LiveInputProvisioner
from common.services.policy import StreamPolicy
from common.services.schedule_windows import ScheduleWindowService
from common.services.stream_access import MemorialCache

log = logging.getLogger(__name__)


class StreamService(WithBackends):
    """Use-cases on streams. Every method authorises the caller itself."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        policy: StreamPolicy,
        live_inputs: LiveInputProvisioner,
        create_quota: CreateQuota | None = None,
        idempotency: IdempotencyStore | None = None,
        windows: ScheduleWindowService | None = None,
    ) -> None:
        """``create_quota`` and ``idempotency`` switch the creation rate limit and
        ``Idempotency-Key`` on (the composition root always wires both). ``windows`` arms the
        schedule window of every stream given a start time."""
        super().__init__(backends)
        self._windows = windows
        self._guards = CreateGuards(
            quota=create_quota, keys=idempotency, clock=backends.clock, limits=policy.create_limits
        )
        self._policy = policy
        self._live_inputs = live_inputs

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
            request.model_copy(
                update={"memorial_id": memorial_id, "is_public": memorial.is_public}
            ),
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
        loved_one_name, private_memorial = None, False
        if request.memorial_id is not None:
            memorial = self._memorials.get(request.memorial_id)
            if memorial is None:
                raise NotFoundError("Memorial not found")
            if not can_manage_memorial(user, memorial):
                raise PermissionDeniedError("Permission denied for memorial")
            loved_one_name, private_memorial = memorial.loved_one_name, not memorial.is_public
        fingerprint = request_fingerprint("streams", request.model_dump(mode="json"))
        return self._create_authorized(
            user, request, loved_one_name, key, fingerprint, private_memorial=private_memorial
        )

    def _create_authorized(
        self,
        user: User,
        request: StreamCreateRequest,
        loved_one_name: str | None,
        key: str | None,
        fingerprint: str,
        *,
        private_memorial: bool = False,
    ) -> StreamOwnerView:
        """Rate limit and idempotency around the creation itself (the caller may create)."""
        signed = private_memorial or not request.is_public
        if key is None or not self._guards.keys_enabled:
            self._guards.count(user)
            return self._create_stream(
                user, request, loved_one_name, self._repo.new_id(), signed=signed
            )
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
            view = self._create_stream(
                user, request, loved_one_name, claim.stream_id, signed=signed
            )
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
        return StreamOwnerView.with_credentials(stream, credentials)

    def _create_stream(
        self,
        user: User,
        request: StreamCreateRequest,
        loved_one_name: str | None,
        stream_id: str,
        *,
        signed: bool = False,
    ) -> StreamOwnerView:
        live_input = self._live_inputs.create(stream_id, request.title, signed=signed)
        now = self._clock.now()
        stream = Stream.model_validate(
            request.stream_fields()
            | {
                "id": stream_id,
                "memorial_name": request.memorial_name or loved_one_name,
                "created_by": user.uid,
                "status": StreamStatus.SCHEDULED,
                "cloudflare_id": live_input.uid,
                "playback_url": self._live_inputs.player_url(live_input.uid),
                "webrtc_playback_url": live_input.whep_url,
                "signed_urls": signed,
                "created_at": now,
                "updated_at": now,
            }
        )
        if self._windows:
            stream = self._windows.with_window(stream)
        try:
            self._repo.create(stream, live_input.credentials())
        except Exception:
            if not self._live_inputs.landed(stream_id, live_input.uid):
                self._live_inputs.discard(stream_id, live_input.uid)
                raise
            log.warning("stream %s was written although its create reported a failure", stream_id)
        if self._windows:
            self._windows.queue_edges(stream)
        return StreamOwnerView.with_credentials(stream, live_input.credentials())

    def update(
        self, user: User | None, stream_id: str, request: StreamUpdateRequest
    ) -> StreamManagerView:
        """Change the editable fields of a stream."""
        stream, permissions = self._load(user, stream_id, Action.EDIT)
        if "allowed_users" in request.model_fields_set and not permissions.can(Action.DELETE):
            raise PermissionDeniedError("Only the stream's owner may change who manages it")
        now = self._clock.now()

        changes = request.changes() | {"updated_at": now}
        problem = window_problem(
            changes.get("scheduled_start_time", stream.scheduled_start_time),  # type: ignore[arg-type]
            changes.get("scheduled_end_time", stream.scheduled_end_time),  # type: ignore[arg-type]
        )
        if problem:
            raise InvalidArgumentError(problem)
        updated = self._repo.update(stream.id, lambda s: self._rescheduled(s, changes))
        if self._windows and updated.schedule_window != stream.schedule_window:
            # Rescheduled: the new revision's tasks; those of the old one are stale now.
            self._windows.queue_edges(updated)
        if updated.is_public != stream.is_public:
            # Private playback follows at Cloudflare: the input and every recording.
            memorial = self._memorials.get(updated.memorial_id) if updated.memorial_id else None
            updated = self._live_inputs.apply_signed_urls(updated, memorial)
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
        # that arrive after the stream is gone are deleted as well (see ProviderEventService).
        recordings = [entry.video_uid for entry in stream.recordings]
        if stream.pending_clip and stream.pending_clip.video_uid not in recordings:
            recordings.append(stream.pending_clip.video_uid)  # a trim being made, too
        if stream.cloudflare_id:
            made = self._provider.list_recordings(stream.cloudflare_id)
            recordings += [r.video_uid for r in made if r.video_uid not in recordings]
            self._repo.remember_deleted_input(stream.cloudflare_id, stream.id, self._clock.now())
        for video_uid in recordings:
            try:
                self._provider.delete_recording(video_uid)
            except NotFoundError:
                log.info("recording %s was already gone", video_uid)
        if stream.cloudflare_id:
            try:
                self._provider.delete_live_input(stream.cloudflare_id)
            except NotFoundError:
                log.info("live input %s was already gone", stream.cloudflare_id)
        self._repo.delete(stream.id)
        return DeleteResponse()

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

    def _rescheduled(self, stream: Stream, changes: dict[str, object]) -> Stream:
        changed = stream.model_copy(update=changes)
        return self._windows.with_window(changed) if self._windows else changed


def recording_pending(stream: Stream) -> bool:
    """Whether a recording of the stream's last broadcast is still expected from Cloudflare."""
    monitor = stream.recording_monitor
    return (
        stream.status == StreamStatus.COMPLETED
        and stream.went_on_air
        and stream.ingest_protocol != "whip"
        and not broadcast_recorded(stream)
        and monitor is not None
        and monitor.state == "running"
    )
