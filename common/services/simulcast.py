"""Simulcast: a stream's broadcast sent on to YouTube, Facebook or any RTMP(S) server, as
outputs of its Cloudflare live input (Cloudflare does the relaying, so nothing of ours sits in
the video path). Managers add, list, enable, disable and remove outputs; a destination's stream
key is write-only: Cloudflare keeps it, and nothing we answer or log shows more than its last
characters."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr

from common.access import Action, Permissions
from common.errors import (
    AppError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from common.models.domain import Stream, StreamStatus, User
from common.models.outputs import (
    MAX_OUTPUTS,
    OutputCreate,
    OutputDeleted,
    OutputListView,
    OutputUpdate,
    OutputView,
    Platform,
)
from common.ports import (
    IdempotencyRecord,
    IdempotencyState,
    IdempotencyStore,
    LiveOutput,
    OutputSpec,
    ProviderNotFoundError,
    ProviderRejectedError,
)
from common.services.backends import BackendPorts, WithBackends
from common.services.live_inputs import LiveInputProvisioner

log = logging.getLogger(__name__)

SCHEMES = ("rtmp", "rtmps")
# A key shorter than this shows nothing of itself: four characters of six give it away.
HINT_MIN_KEY_LENGTH = 12
HINT_LENGTH = 4
WHIP_NOTE = (
    "This stream is broadcast from a browser (WHIP), and Cloudflare does not simulcast browser "
    "broadcasts: outputs receive only broadcasts sent over RTMP(S) or SRT (OBS, an encoder)."
)
_PLATFORM_HOSTS: tuple[tuple[Platform, tuple[str, ...]], ...] = (
    ("youtube", ("youtube.com",)),
    ("facebook", ("facebook.com", "fbcdn.net")),
    ("twitch", ("twitch.tv", "live-video.net")),
)
_BLANK = re.compile(r"[\s\x00-\x1f\x7f]")
# While one request adds a destination, another adding the same one (a double click) is told
# to wait: the claim lasts at most this long (a Cloudflare create answers within seconds) and
# its record is deleted by Firestore's TTL after a day.
ADD_CLAIM = timedelta(seconds=30)
ADD_CLAIM_RECORD_KEPT = timedelta(days=1)


class SimulcastService(WithBackends):
    """The simulcast outputs of streams, for those who may edit them."""

    def __init__(
        self,
        backends: BackendPorts,
        *,
        live_inputs: LiveInputProvisioner,
        claims: IdempotencyStore | None = None,
    ) -> None:
        """``claims`` makes two concurrent adds of one destination a single output (the
        composition root always wires it: the store of ``Idempotency-Key``, one record per
        stream and destination)."""
        super().__init__(backends)
        self._claims = claims
        self._live_inputs = live_inputs

    def list(self, user: User | None, stream_id: str) -> OutputListView:
        """The stream's outputs, keys masked (none before it has a live input)."""
        stream, _ = self._load(user, stream_id, Action.EDIT)
        outputs = self._provider.list_outputs(stream.cloudflare_id) if stream.cloudflare_id else []
        return OutputListView(
            streamId=stream.id,
            outputs=[_view(stream, output) for output in outputs],
            note=_note(stream),
        )

    def add(self, user: User | None, stream_id: str, request: OutputCreate) -> OutputView:
        """Add a destination; a stream without a live input yet gets one first, as a start
        would. The same URL and key twice is a 409 (the broadcast would be sent twice)."""
        stream, permissions = self._load(user, stream_id, Action.EDIT)
        _may_send_away(stream, permissions)
        spec = output_spec(request)
        if stream.status == StreamStatus.CANCELLED:
            # A cancelled service broadcasts nothing: no live input is made for it.
            raise ConflictError("Stream is cancelled")
        if stream.cloudflare_id is None:
            stream, _ = self._live_inputs.ensure(stream)
        live_input = _live_input_of(stream)
        destination = _destination_digest(spec)
        lease = self._claim(stream.id, destination)
        try:
            return self._add_unclaimed(stream, live_input, spec)
        finally:
            self._release(stream.id, destination, lease)

    def _add_unclaimed(self, stream: Stream, live_input: str, spec: OutputSpec) -> OutputView:
        existing = self._provider.list_outputs(live_input)
        same = next((o for o in existing if _same_destination(o, spec)), None)
        if same is not None:
            raise ConflictError(
                "This destination is already an output of the stream",
                details={"outputId": same.uid},
            )
        if len(existing) >= MAX_OUTPUTS:
            raise ConflictError(
                f"A stream can have at most {MAX_OUTPUTS} outputs; delete one first",
                details={"maxOutputs": MAX_OUTPUTS},
            )
        try:
            output = self._provider.create_output(live_input, spec)
        except ProviderRejectedError as exc:
            # Its words may quote what was sent: only the status goes to the log.
            log.warning("stream %s: Cloudflare refused an output (%s)", stream.id, exc.status)
            raise _invalid(
                "url", "Cloudflare refused this output; check the server URL and the stream key"
            ) from exc
        log.info(
            "stream %s: output %s added (%s, %s)",
            stream.id,
            output.uid,
            urlsplit(output.url).hostname,
            "enabled" if output.enabled else "disabled",
        )
        return _view(stream, output)

    def _claim(self, stream_id: str, destination: str) -> datetime | None:
        """Hold ``destination`` of the stream for this request, or refuse with a 409 if
        another request holds it now; the end of this request's lease (it tells the claim
        apart from a later one's)."""
        if self._claims is None:
            return None
        now = self._clock.now()

        def claim(held: IdempotencyRecord | None) -> IdempotencyRecord:
            if held is not None and held.state == "pending" and held.lease_until > now:
                raise ConflictError(
                    "This destination is being added by another request",
                    retry_after_s=max(1, int((held.lease_until - now).total_seconds())),
                )
            return _claim_record(stream_id, "pending", now + ADD_CLAIM, now)

        self._claims.update(_claim_scope(stream_id), destination, claim)
        return now + ADD_CLAIM

    def _release(self, stream_id: str, destination: str, lease: datetime | None) -> None:
        """Let the next add of ``destination`` through (it finds the output, if one was made),
        unless this request's claim lapsed and another request holds it now."""
        if self._claims is None:
            return
        now = self._clock.now()
        done = _claim_record(stream_id, "done", now, now)

        def release(held: IdempotencyRecord | None) -> IdempotencyRecord | None:
            ours = held is not None and held.state == "pending" and held.lease_until == lease
            return done if ours else held  # held unchanged: nothing is written

        try:
            self._claims.update(_claim_scope(stream_id), destination, release)
        except AppError:
            log.warning("stream %s: an output claim stays until it lapses", stream_id)

    def set_enabled(
        self, user: User | None, stream_id: str, output_id: str, request: OutputUpdate
    ) -> OutputView:
        """Start or stop sending the stream's broadcasts to one output (at once, mid-broadcast
        too)."""
        stream, permissions = self._load(user, stream_id, Action.EDIT)
        if request.enabled:
            _may_send_away(stream, permissions)
        live_input = _live_input_of(stream, output_id)
        try:
            output = self._provider.set_output_enabled(live_input, output_id, request.enabled)
        except ProviderNotFoundError as exc:
            raise _no_such_output(output_id) from exc
        log.info("stream %s: output %s enabled=%s", stream.id, output_id, output.enabled)
        return _view(stream, output)

    def remove(self, user: User | None, stream_id: str, output_id: str) -> OutputDeleted:
        """Remove one output (a relay in progress stops within seconds)."""
        stream, _ = self._load(user, stream_id, Action.EDIT)
        live_input = _live_input_of(stream, output_id)
        try:
            self._provider.delete_output(live_input, output_id)
        except ProviderNotFoundError as exc:
            raise _no_such_output(output_id) from exc
        log.info("stream %s: output %s removed", stream.id, output_id)
        return OutputDeleted(streamId=stream.id, id=output_id)


def output_spec(request: OutputCreate) -> OutputSpec:
    """The request as Cloudflare takes it, or a 400 saying what is wrong with it."""
    url = request.url.strip().rstrip("/")
    if _BLANK.search(url):
        raise _invalid("url", "The output URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise _invalid("url", "The output URL is not a valid URL") from exc
    scheme = parts.scheme.lower()
    url = parts._replace(scheme=scheme).geturl()
    if scheme not in SCHEMES:
        given = f"{scheme}://" if scheme and "://" in url else "no rtmp:// prefix"
        raise _invalid(
            "url",
            f"The output URL must be an rtmp:// or rtmps:// server URL (got {given}); YouTube, "
            "Facebook and other platforms show it beside the stream key",
        )
    try:
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError as exc:
        raise _invalid("url", "The output URL's port is not a valid port number") from exc
    if not host:
        raise _invalid("url", "The output URL has no server name")
    if parts.username is not None or parts.password is not None:
        raise _invalid("url", "Put the destination's credentials in streamKey, not in the URL")
    if parts.query or parts.fragment:
        raise _invalid(
            "url", "The output URL must not have a query or fragment; that part goes in streamKey"
        )
    key = request.streamKey.strip()
    if not key:
        raise _invalid("streamKey", "The stream key must not be empty")
    if _BLANK.search(key):
        raise _invalid("streamKey", "The stream key must not contain spaces or control characters")
    return OutputSpec(url=url, stream_key=SecretStr(key), enabled=request.enabled)


def _may_send_away(stream: Stream, permissions: Permissions) -> None:
    """A private service (signed playback) goes to other platforms only by the family's
    choice, like its MP4: not by its funeral director or the stream's other managers."""
    if stream.signed_urls and not permissions.can(Action.DOWNLOAD):
        raise PermissionDeniedError("Only the family may send a private service to other platforms")


def key_hint(key: SecretStr) -> str:
    """What anyone is shown of a stream key: its last characters, or nothing of a short one."""
    value = key.get_secret_value()
    return f"…{value[-HINT_LENGTH:]}" if len(value) >= HINT_MIN_KEY_LENGTH else "…"


def platform_of(url: str) -> Platform:
    """The platform an output URL points at, by its host."""
    host = (urlsplit(url).hostname or "").lower()
    for platform, domains in _PLATFORM_HOSTS:
        if any(host == d or host.endswith(f".{d}") for d in domains):
            return platform
    return "custom"


def _view(stream: Stream, output: LiveOutput) -> OutputView:
    return OutputView(
        id=output.uid,
        streamId=stream.id,
        url=output.url,
        streamKeyHint=key_hint(output.stream_key),
        enabled=output.enabled,
        platform=platform_of(output.url),
        note=_note(stream),
    )


def _note(stream: Stream) -> str | None:
    return WHIP_NOTE if stream.ingest_protocol == "whip" or stream.whip_active else None


def _claim_scope(stream_id: str) -> str:
    # The store's records are scoped like users' keys: outputs get a scope per stream.
    return f"simulcast:{stream_id}"


def _destination_digest(spec: OutputSpec) -> str:
    """What names a destination in a claim: never the stream key itself."""
    material = f"{spec.url}\n{spec.stream_key.get_secret_value()}".encode()
    return hashlib.sha256(material).hexdigest()


def _claim_record(
    stream_id: str, state: IdempotencyState, lease_until: datetime, now: datetime
) -> IdempotencyRecord:
    return IdempotencyRecord(
        fingerprint="simulcast-output",
        stream_id=stream_id,
        state=state,
        lease_until=lease_until,
        expires_at=now + ADD_CLAIM_RECORD_KEPT,
    )


def _same_destination(output: LiveOutput, spec: OutputSpec) -> bool:
    return (
        output.url.rstrip("/") == spec.url
        and output.stream_key.get_secret_value() == spec.stream_key.get_secret_value()
    )


def _live_input_of(stream: Stream, output_id: str | None = None) -> str:
    if stream.cloudflare_id is None:
        if output_id is not None:
            raise _no_such_output(output_id)
        raise NotFoundError("This stream has no live input")  # ensure() gives every stream one
    return stream.cloudflare_id


def _no_such_output(output_id: str) -> NotFoundError:
    return NotFoundError("This stream has no such output", details={"outputId": output_id})


def _invalid(field: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, details={"field": field})
