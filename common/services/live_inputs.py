"""Live inputs at the video platform: made for a stream, found again after a failure, and the
orphans a failed create may leave behind swept away."""

from __future__ import annotations

import logging
from datetime import timedelta

from common.access import requires_signed_playback
from common.errors import AppError, UnavailableError
from common.models.delivery import DeliveryUrls
from common.models.domain import LiveInput, LiveInputSpec, Memorial, Stream, StreamCredentials
from common.ports import (
    ProviderError,
    ProviderNotFoundError,
    ScheduledTask,
)
from common.services.backends import BackendPorts, WithBackends
from common.services.policy import StreamPolicy

log = logging.getLogger(__name__)
ORPHAN_SWEEP_TASK_PATH = "/api/tasks/sweep-live-inputs"
# A live input this young may be one a concurrent start is about to attach to its stream.
ORPHAN_MIN_AGE = timedelta(seconds=60)


class LiveInputProvisioner(WithBackends):
    """Each stream's one live input, and no live input without its stream."""

    def __init__(self, backends: BackendPorts, *, policy: StreamPolicy) -> None:
        super().__init__(backends)
        self._policy = policy
        self._urls = DeliveryUrls(policy.delivery_base)

    def player_url(self, live_input_uid: str) -> str:
        return self._urls.player(live_input_uid)

    def create(self, stream_id: str, title: str, *, signed: bool = False) -> LiveInput:
        spec = LiveInputSpec(
            stream_id=stream_id,
            name=f"{title} - {stream_id}",
            recording_timeout_seconds=self._policy.recording_timeout_seconds,
            allowed_origins=self._policy.allowed_origins,
            delete_recording_after_days=self._policy.delete_recording_after_days,
            require_signed_urls=signed,
        )
        try:
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
        tagged = self._provider.find_live_inputs(stream_id)
        too_young_after = self._clock.now() - ORPHAN_MIN_AGE
        deleted, undecided = 0, 0
        for live_input in tagged:
            if live_input.uid == in_use:
                continue
            if stream is not None and live_input.created and live_input.created > too_young_after:
                undecided += 1
                continue
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

    def landed(self, stream_id: str, live_input_uid: str) -> bool:
        """Whether a create whose answer was an error was written all the same (a commit can
        time out after it landed): then its live input is the stream's and must stay."""
        try:
            written = self._repo.get(stream_id)
        except AppError:
            # Unknown: keep the input. The orphan sweep deletes it if no stream uses it.
            self._schedule_sweep(stream_id)
            return True
        return written is not None and written.cloudflare_id == live_input_uid

    def discard(self, stream_id: str, uid: str) -> None:
        try:
            self._provider.delete_live_input(uid)
        except ProviderNotFoundError:
            return
        except ProviderError:
            # Tagged with our stream id in meta, so the sweep finds it later.
            log.error("live input %s could not be deleted yet", uid)
            self._schedule_sweep(stream_id)

    def ensure(self, stream: Stream) -> tuple[Stream, StreamCredentials]:
        if stream.cloudflare_id is None:
            signed = stream.signed_urls or not stream.is_public
            live_input = self.create(stream.id, stream.title, signed=signed)
            attach = {
                "cloudflare_id": live_input.uid,
                "playback_url": self.player_url(live_input.uid),
                "signed_urls": signed,
            }
            try:
                attached = self._repo.update(
                    stream.id,
                    lambda s: s if s.cloudflare_id else s.model_copy(update=attach),
                )
            except Exception:
                self.discard(stream.id, live_input.uid)
                raise
            if attached.cloudflare_id != live_input.uid:
                # A concurrent start attached its own input first: use that one.
                self.discard(stream.id, live_input.uid)
                return self.ensure(attached)
            self._repo.save_credentials(stream.id, live_input.credentials())
            return attached, live_input.credentials()
        credentials = self._reads.get_credentials(stream.id)
        if credentials is None:
            credentials = self._provider.get_live_input(stream.cloudflare_id).credentials()
            self._repo.save_credentials(stream.id, credentials)
        return stream, credentials

    def apply_signed_urls(self, stream: Stream, memorial: Memorial | None) -> Stream:
        """Make Cloudflare require signed URLs for the stream's live input and every recording
        when ``requires_signed_playback`` says so (and stop when it no longer does), then note
        it on the stream. Nothing is called when Cloudflare was already told."""
        required = requires_signed_playback(stream, memorial)
        if stream.signed_urls == required:
            return stream
        if stream.cloudflare_id:
            self._provider.set_input_allowed_origins(
                stream.cloudflare_id, self._policy.recording_rules(require_signed_urls=required)
            )
            for video_uid in self._videos_of(stream, stream.cloudflare_id):
                try:
                    self._provider.set_video_signed_urls(video_uid, required)
                except ProviderNotFoundError:
                    continue  # deleted at Cloudflare: nothing left to protect
        log.info("stream %s: signed URLs %s", stream.id, "required" if required else "lifted")

        def note(current: Stream) -> Stream:
            # A concurrent change of privacy applies its own setting: leave the note to it.
            if requires_signed_playback(current, memorial) != required:
                return current
            return current.model_copy(update={"signed_urls": required})

        return self._repo.update(stream.id, note)

    def _videos_of(self, stream: Stream, live_input_uid: str) -> list[str]:
        """Every video of the stream: what its input recorded (one still being recorded
        included) and what the stream lists (clips have no input)."""
        recorded = [r.video_uid for r in self._provider.list_recordings(live_input_uid)]
        listed = [entry.video_uid for entry in stream.recordings]
        return list(dict.fromkeys([*recorded, *listed]))
