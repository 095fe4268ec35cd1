"""A broadcast's life: Start, the encoder or browser (WHIP) on air, Stop."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from common.access import Action
from common.errors import (
    AppError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from common.models.api import (
    CredentialsResponse,
    DeleteResponse,
    PublishCredentials,
    StartResponse,
    StopResponse,
    whip_endpoint,
)
from common.models.domain import Stream, StreamCredentials, StreamStatus, User
from common.models.recording_rules import (
    broadcast_recorded,
    has_recording_since,
    recording_status,
)
from common.ports import (
    ProviderError,
    ProviderRejectedError,
    WhipSession,
)
from common.services.backends import BackendPorts, WithBackends
from common.services.live_inputs import LiveInputProvisioner
from common.services.monitors import MonitorService
from common.services.policy import StreamPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WhipPublication:
    """The SDP answer for the browser and the URL of its session (for DELETE)."""

    answer_sdp: str
    location: str


class BroadcastService(WithBackends):
    """Start, Stop and browser publishing. Every method authorises the caller itself."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        policy: StreamPolicy,
        monitors: MonitorService,
        live_inputs: LiveInputProvisioner,
    ) -> None:
        super().__init__(backends)
        self._policy = policy
        self._monitors = monitors
        self._live_inputs = live_inputs

    def start(self, user: User | None, stream_id: str) -> StartResponse:
        """Mark a stream live and hand its publishing credentials to the caller."""
        stream, _ = self._load(user, stream_id, Action.START, "Permission denied to start stream")
        if stream.status == StreamStatus.LIVE:
            raise ConflictError("Stream is already live")
        stream, credentials = self._live_inputs.ensure(stream)
        self._reopen_ingest(stream)
        now = self._clock.now()

        def go_live(current: Stream) -> Stream:
            if current.status == StreamStatus.LIVE:
                raise ConflictError("Stream is already live")
            return self._monitors.with_monitor("status", current.began_broadcast(now))

        live = self._repo.update(stream.id, go_live)
        self._monitors.schedule_first("status", live)
        assert live.cloudflare_id is not None  # noqa: S101 - set by LiveInputProvisioner.ensure
        publish = _publishing(live, credentials)
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
        # Only a Stop that ends a broadcast closes the ingest: one pressed again, or after the
        # disconnect ended it, must not close it behind a Start made meanwhile.
        closed = stream.status == StreamStatus.LIVE and self.close_ingest(stream)
        now = self._clock.now()

        def end(current: Stream) -> Stream:
            if closed and not current.ingest_closed:
                current = current.model_copy(update={"ingest_closed": True})
            if current.status != StreamStatus.LIVE:
                return current
            # The write that ends the broadcast starts its recording monitor too.
            return self._monitors.with_recording_monitor(current.ended_broadcast(now))

        ended = self._repo.update(stream.id, end)
        ended = self._attach_recordings(ended)
        ready = has_recording_since(ended, ended.actual_start_time)
        if not broadcast_recorded(ended):
            self._monitors.ensure_started("recording", ended)
        return StopResponse(
            streamId=ended.id,
            status=ended.status,
            recordingStatus="ready" if ready else "processing",
            recordingReady=ready,
            recordingUrl=ended.recording_url if ready else None,
            message=_stopped_message(ended, ready=ready),
        )

    def close_ingest(self, stream: Stream) -> bool:
        """Stop means over, as Mux's "complete" does: Cloudflare ends what is still being
        sent (an encoder left on after the service, whose video would grow for hours, hold
        the recording back and take in what follows) and refuses publishers until the next
        Start. Whether it did: should Cloudflare fail it, the broadcast ends all the same."""
        return self._set_ingest(stream, enabled=False)

    def open_ingest(self, stream: Stream) -> bool:
        """Let publishers in again; whether Cloudflare did (a failure is only logged)."""
        return self._set_ingest(stream, enabled=True)

    def _reopen_ingest(self, stream: Stream) -> None:
        """Open the input again before a new broadcast: it must be where a Stop closed it
        (``ingest_closed``: a failure is the caller's). A stream that broadcast before is
        opened too in case a Stop closed it and could not note it (its write failed): there
        a failure is only logged, as the input is most likely open."""
        uid = stream.cloudflare_id
        if not uid or not (stream.ingest_closed or stream.end_time is not None):
            return
        try:
            self._provider.set_input_enabled(uid, True)
        except ProviderError as error:
            if stream.ingest_closed:
                raise UnavailableError(
                    "Cloudflare could not open the stream to encoders again; try again",
                    retry_after_s=5,
                ) from error
            log.warning("could not make sure the ingest of stream %s is open", stream.id)

    def _reopened(self, stream: Stream) -> Stream:
        """``stream`` with its ingest open again, for an encoder about to be set up without
        Start (its connection begins the broadcast, as the contract's credentials-then-poll
        flow does). Should Cloudflare fail it, the credentials are still given: Start opens
        it again."""
        if not stream.ingest_closed or not self.open_ingest(stream):
            return stream
        return self._repo.update(stream.id, lambda s: s.model_copy(update={"ingest_closed": False}))

    def credentials(self, user: User | None, stream_id: str) -> CredentialsResponse:
        """The publishing credentials without going live (the live input is made if missing)."""
        stream, _ = self._load(
            user, stream_id, Action.START, "Permission denied to access stream credentials"
        )
        stream, credentials = self._live_inputs.ensure(stream)
        stream = self._reopened(stream)
        assert stream.cloudflare_id is not None  # noqa: S101 - set by LiveInputProvisioner.ensure
        return CredentialsResponse(
            streamId=stream.id,
            cloudflareId=stream.cloudflare_id,
            status=stream.status,
            credentials=_publishing(stream, credentials),
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
        stream, credentials = self._live_inputs.ensure(stream)
        self._reopen_ingest(stream)
        try:
            answer = self._provider.whip_offer(credentials.whip_url, offer_sdp)
        except ProviderRejectedError as exc:
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
            on_air = (
                current.began_broadcast(now)
                .publisher_connected(now)
                .model_copy(update={"whip_active": True, "ingest_protocol": "whip"})
            )
            return self._monitors.with_monitor("status", on_air)

        live = self._repo.update(stream.id, go_live)
        self._monitors.schedule_first("status", live)
        return WhipPublication(
            answer_sdp=answer.sdp, location=f"{whip_endpoint(stream.id)}/{session.session_id}"
        )

    def _refuse_if_on_air(self, stream: Stream) -> None:
        """409 when a browser or an encoder is already publishing to the stream."""
        if stream.whip_active:
            raise ConflictError("Stream is already live")
        if stream.cloudflare_id is None:
            return
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

    def _attach_recordings(self, stream: Stream) -> Stream:
        try:
            updated, _ = self._monitors.reconcile(stream.id)
        except AppError as exc:
            log.warning("recording check after stop failed: %s", exc.message)
            return stream
        return updated


def _publishing(stream: Stream, credentials: StreamCredentials) -> PublishCredentials:
    """What an encoder or a browser needs to publish to ``stream``."""
    return PublishCredentials(
        streamKey=credentials.stream_key.get_secret_value(),
        streamUrl=credentials.rtmp_url,
        whipEndpoint=whip_endpoint(stream.id),
        playbackUrl=stream.playback_url,
    )


def _stopped_message(stream: Stream, *, ready: bool) -> str:
    if ready:
        return "Stream stopped and recording is ready"
    if recording_status(stream) == "unavailable":
        return "Stream stopped; browser broadcasts are not recorded"
    return "Stream stopped, recording will be available shortly"
