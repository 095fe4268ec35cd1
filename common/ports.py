"""The interfaces services depend on. Adapters implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import SecretStr

from common.errors import (
    AppError,
    ErrorCode,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)
from common.models.domain import (
    ClipSpec,
    DownloadStatus,
    LiveInput,
    LiveInputNotice,
    LiveInputSpec,
    Memorial,
    MonitorKind,
    MonitorProgress,
    Recording,
    Stream,
    StreamCredentials,
    StreamStatus,
    User,
    VideoReport,
    WhipAnswer,
)

if TYPE_CHECKING:
    # Only the event stores' signatures name them: a function that never reads an event
    # does not load their models.
    from common.models.events import EventTemplate, MemorialEvent


class ProviderError(AppError):
    """A stream provider call failed. Each kind is also the app error it means to our callers,
    so services let it through untranslated; the provider's own words stay in ``str(error)``
    for the log, and callers get a fixed sentence. Subclasses say whether retrying can help."""

    code = ErrorCode.INTERNAL
    retryable: bool = False
    public_message = "Unexpected answer from the video platform"

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(self.public_message, retry_after_s=retry_after_s)
        self.detail = detail
        self.status = status

    def __str__(self) -> str:
        return self.detail


class ProviderNotFoundError(ProviderError, NotFoundError):
    """The provider has no such resource."""

    code = ErrorCode.NOT_FOUND
    public_message = "The stream's Cloudflare live input or recording no longer exists"


class ProviderRejectedError(ProviderError):
    """The provider refused the request as invalid: a bug on our side."""


class ProviderRateLimitedError(ProviderError, ResourceExhaustedError):
    """The provider's rate limit was hit."""

    code = ErrorCode.RESOURCE_EXHAUSTED
    retryable = True
    public_message = "Cloudflare rate limit reached; try again later"

    def __init__(self, detail: str, *, retry_after_s: int, status: int | None = 429) -> None:
        super().__init__(detail, status=status, retry_after_s=retry_after_s)


class ProviderUnavailableError(ProviderError, UnavailableError):
    """5xx, timeout or connection failure; the outcome of a write is unknown."""

    code = ErrorCode.UNAVAILABLE
    retryable = True
    public_message = "Cloudflare is temporarily unavailable; try again"

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail, status=status, retry_after_s=5)


@dataclass(frozen=True)
class TaggedLiveInput:
    """A live input found by the stream id in its meta."""

    uid: str
    created: datetime | None


@dataclass(frozen=True)
class OutputSpec:
    """A simulcast destination to add to a live input: the platform's ingest ``url`` and the
    ``stream_key`` it authenticates with (Cloudflare sends to ``url + "/" + stream_key``).

    The key is a secret of the family's YouTube or Facebook account: ``SecretStr``, so no
    ``repr`` or log line shows it.
    """

    url: str
    stream_key: SecretStr
    enabled: bool = True


@dataclass(frozen=True)
class LiveOutput:
    """A simulcast output of a live input, as the provider keeps it.

    Attributes:
        uid: The provider's id of the output (unique per live input).
        url: Where the broadcast is relayed to.
        stream_key: The destination's key; never shown whole to anyone.
        enabled: Whether broadcasts to the input are relayed to it now.
    """

    uid: str
    url: str
    stream_key: SecretStr
    enabled: bool


@dataclass(frozen=True)
class InputRecordingRules:
    """An input's recording settings, which its live playback and future recordings follow."""

    allowed_origins: tuple[str, ...]
    timeout_seconds: int
    # Private streams: the input and the recordings it makes play only through signed URLs.
    require_signed_urls: bool = False


class StreamProvider(Protocol):
    """Live inputs and recordings at the video platform (Cloudflare Stream in production)."""

    def create_live_input(self, spec: LiveInputSpec) -> LiveInput:
        """Create an ingest point tagged with ``spec.stream_id``. Never retried blindly."""
        ...

    def get_live_input(self, uid: str) -> LiveInput:
        """Read one input with credentials and connection state."""
        ...

    def find_live_inputs(self, stream_id: str) -> list[TaggedLiveInput]:
        """The inputs whose meta names ``stream_id`` (to clean up after a failure)."""
        ...

    def delete_live_input(self, uid: str) -> None:
        """Delete an input; raises ``ProviderNotFoundError`` if it is already gone."""
        ...

    def delete_recording(self, video_uid: str) -> None:
        """Delete one recorded video; raises ``ProviderNotFoundError`` if it is already gone."""
        ...

    def list_recordings(self, live_input_uid: str) -> list[Recording]:
        """Every video recorded from the input, oldest first."""
        ...

    def set_input_enabled(self, uid: str, enabled: bool) -> None:
        """Let encoders and browsers publish to the input, or not: disabling it ends the
        broadcast on it now (its recording is finished) and refuses publishers until it is
        enabled again."""
        ...

    def set_input_allowed_origins(self, uid: str, rules: InputRecordingRules) -> tuple[str, ...]:
        """Apply ``rules`` (the allowed origins, whether signed URLs are required) to the
        input's recording settings; returns the origins stored."""
        ...

    def set_video_signed_urls(self, video_uid: str, required: bool) -> None:
        """Require (or stop requiring) signed URLs for one existing recording."""
        ...

    def set_video_allowed_origins(self, video_uid: str, origins: tuple[str, ...]) -> None:
        """Apply ``origins`` to one existing recording."""
        ...

    def whip_offer(self, whip_url: SecretStr, offer_sdp: str) -> WhipAnswer:
        """POST a WHIP offer to the input's publish URL (never with our API token)."""
        ...

    def whip_end(self, resource_url: str) -> None:
        """DELETE a WHIP session resource; ``ProviderNotFoundError`` if already gone."""
        ...

    def create_download(self, video_uid: str) -> DownloadStatus:
        """Start the MP4 download of a ready video (asking again answers the one made)."""
        ...

    def get_download(self, video_uid: str) -> DownloadStatus | None:
        """Where the video's MP4 download stands; ``None`` if none was asked for."""
        ...

    def get_recording(self, video_uid: str) -> Recording:
        """Read one video (a clip included); ``ProviderNotFoundError`` if it is gone."""
        ...

    def clip_recording(self, spec: ClipSpec) -> Recording:
        """Cut a new video from a ready one. Never retried blindly: each call makes one."""
        ...

    def live_viewers(self, live_input_uid: str) -> int | None:
        """How many watch the input's broadcast now (Cloudflare: the delivery host's
        ``/views``, outside the API's rate limit); ``None`` when the platform does not say."""
        ...

    def minutes_viewed(
        self, video_uids: tuple[str, ...], since: datetime, until: datetime
    ) -> float:
        """Minutes of the videos delivered to viewers from ``since`` until ``until``
        (Cloudflare: GraphQL Analytics, ``streamMinutesViewedAdaptiveGroups``)."""
        ...

    def list_outputs(self, live_input_uid: str) -> list[LiveOutput]:
        """The input's simulcast outputs, in the order they were added.

        Raises:
            ProviderNotFoundError: the input does not exist.
        """
        ...

    def create_output(self, live_input_uid: str, spec: OutputSpec) -> LiveOutput:
        """Add a simulcast output to the input. Never retried blindly: each call adds one.

        Raises:
            ProviderNotFoundError: the input does not exist.
            ProviderRejectedError: the provider refused the URL or key.
        """
        ...

    def set_output_enabled(self, live_input_uid: str, output_uid: str, enabled: bool) -> LiveOutput:
        """Start (or stop) relaying the input's broadcasts to the output; its URL and key
        cannot change (Cloudflare's PUT only toggles ``enabled``).

        Raises:
            ProviderNotFoundError: the input or the output does not exist.
        """
        ...

    def delete_output(self, live_input_uid: str, output_uid: str) -> None:
        """Remove the output (a relay in progress stops).

        Raises:
            ProviderNotFoundError: the input or the output does not exist.
        """
        ...


# "newest": createdAt descending; "display": displayOrder ascending, then newest first. Ties
# are broken by document id (common.pagination), so the order is total and pages are stable.
StreamOrder = Literal["newest", "display"]


@dataclass(frozen=True)
class StreamQuery:
    """Filters of the stream listing (``None`` means "any"), its order and which page.

    A page starts either ``offset`` streams in (each skipped one is a billed read) or just
    after the position ``cursor`` names: the ``next_cursor`` of an earlier page of the same
    filters and order (see common.pagination), which costs no skipped reads.
    """

    memorial_id: str | None = None
    status: StreamStatus | None = None
    is_public: bool | None = None
    is_visible: bool | None = None
    created_by: str | None = None
    order: StreamOrder = "newest"
    limit: int = 20
    offset: int = 0
    cursor: str | None = None


@dataclass(frozen=True)
class StreamPage:
    """One page of streams, whether more follow and the cursor of the next page.

    ``passed`` is how many documents of the listing the page went past from where it started
    (the next page by offset starts that much further; ``None``: by the page's limit), those
    unreadable as streams included; ``positions`` says where each stream sat among them
    (empty on a page made without them: one after another), and ``cursor_after(i)`` gives
    the cursor of the page just after its ``i``-th stream (``None`` where no cursor can name
    that stream's place; made only when asked for: a page seldom needs one).
    """

    streams: list[Stream]
    has_more: bool
    next_cursor: str | None = None
    passed: int | None = None
    positions: tuple[int, ...] = ()
    cursor_after: Callable[[int], str | None] = field(default=lambda _: None, compare=False)

    @property
    def went_past(self) -> int:
        """How many documents of the listing the page went past (``passed``, else its streams)."""
        return len(self.streams) if self.passed is None else self.passed

    def passed_through(self, shown: int) -> int:
        """How many documents the page went past up to and including its ``shown``-th stream."""
        if shown == 0:
            return 0
        return self.positions[shown - 1] + 1 if self.positions else shown


# A stream with its monitor's progress, as one monitor check reads them and leaves them.
StreamAndProgress = tuple[Stream, MonitorProgress | None]
# One monitor check: from the stream and its monitor's progress, the stream and the progress
# it claims.
MonitorCheck = Callable[[Stream, MonitorProgress | None], StreamAndProgress]


class StreamReads(Protocol):
    """The reads of streams, over a lighter client than the writes' where deployed (see
    common/adapters/firestore/rest.py): a request that writes nothing never builds the
    writing client, and a write later in the request starts from what these read."""

    def get(self, stream_id: str) -> Stream | None:
        """The stream, or ``None``."""
        ...

    def get_credentials(self, stream_id: str) -> StreamCredentials | None:
        """The publishing credentials, or ``None``."""
        ...

    def find(self, query: StreamQuery) -> StreamPage:
        """Streams matching ``query``, in its order; ``next_cursor`` is set when more follow.

        Raises:
            InvalidArgumentError: the cursor is not one this query gave, or comes with an offset.
        """
        ...

    def list_by_memorial(self, memorial_id: str, *, visible_only: bool) -> list[Stream]:
        """All streams of a memorial, newest first."""
        ...

    def find_by_live_input(self, live_input_uid: str) -> Stream | None:
        """The stream whose Cloudflare live input is ``live_input_uid``, if any."""
        ...

    def deleted_stream_of_input(self, live_input_uid: str) -> str | None:
        """The deleted stream that used this input, if one was noted (kept for 30 days)."""
        ...


class StreamRepository(StreamReads, Protocol):
    """Persistence of streams and, separately, of their credentials (its reads are the
    ``StreamReads``; a write after a read in one request starts from that read)."""

    def new_id(self) -> str:
        """A fresh, unique stream id."""
        ...

    def create(self, stream: Stream, credentials: StreamCredentials | None) -> None:
        """Write the stream and its credentials atomically; fail if the id exists."""
        ...

    def update(self, stream_id: str, change: Callable[[Stream], Stream]) -> Stream:
        """Apply ``change`` in a transaction and return the result.

        Raises:
            NotFoundError: the stream does not exist.
        """
        ...

    def delete(self, stream_id: str) -> None:
        """Delete the stream and its credentials atomically."""
        ...

    def monitor_progress(self, stream_id: str, kind: MonitorKind) -> MonitorProgress | None:
        """How far the stream's ``kind`` monitor has got, if it has run a check."""
        ...

    def record_check(self, stream_id: str, kind: MonitorKind, change: MonitorCheck) -> Stream:
        """Apply one monitor check: the progress it claims and its effect on the stream land
        together or not at all, and the stream is written only if ``change`` altered it.

        Raises:
            NotFoundError: the stream does not exist.
        """
        ...

    def remember_deleted_input(self, live_input_uid: str, stream_id: str, at: datetime) -> None:
        """Note that a deleted stream used this input, for recordings Cloudflare sends late."""
        ...

    def save_credentials(self, stream_id: str, credentials: StreamCredentials) -> None:
        """Store (replace) the publishing credentials."""
        ...

    def set_display_orders(self, orders: dict[str, int], updated_at: datetime) -> None:
        """Set ``display_order`` of several streams in one atomic write."""
        ...

    def save_whip_session(self, stream_id: str, session: WhipSession) -> None:
        """Remember a WHIP session's provider resource (private, like credentials)."""
        ...

    def whip_session(self, stream_id: str, session_id: str) -> WhipSession | None:
        """A WHIP session of the stream, or ``None``."""
        ...

    def delete_whip_session(self, stream_id: str, session_id: str) -> None:
        """Forget a WHIP session."""
        ...


@dataclass(frozen=True)
class ScheduledTask:
    """An HTTP call to one of our task endpoints, to run after ``delay_s`` seconds.

    ``name`` is deterministic so that enqueueing the same check twice is harmless.
    """

    name: str
    path: str
    payload: dict[str, object]
    delay_s: float = 0


def check_task(
    path: str, chain: dict[str, str], generation: int, attempt: int, delay_s: float
) -> ScheduledTask:
    """The task of one check of a chain of checks (a monitor's, a keepsake's): ``chain``
    names what it checks (its kind, its stream...), ``generation`` which run of the chain.
    Named after all of them and the attempt, so queueing a check twice is harmless."""
    return ScheduledTask(
        name="-".join([*chain.values(), str(generation), str(attempt)]),
        path=path,
        payload={**chain, "generation": generation, "attempt": attempt},
        delay_s=delay_s,
    )


class TaskQueue(Protocol):
    """Delayed, retried delivery of task calls (Cloud Tasks in production)."""

    def enqueue(self, task: ScheduledTask) -> bool:
        """Schedule ``task``; ``False`` when a task of that name already exists."""
        ...


@dataclass(frozen=True)
class WhipSession:
    """A browser broadcast: our session id and the provider's resource URL to end it.

    Stored sessions expire (Firestore TTL on ``expiresAt``): a browser that closes without a
    DELETE must not leave its session behind forever.
    """

    session_id: str
    resource_url: str | None
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class CreateQuotaUsage:
    """The stream creations of one user still inside the rate window, oldest first.

    ``expires_at`` is when the last one leaves the window (Firestore TTL deletes the record);
    ``recent_counts`` names the writes that counted the latest ones, so that a write whose
    answer was lost, run again on what it wrote, recognises itself.
    """

    creations: tuple[datetime, ...] = ()
    expires_at: datetime | None = None
    recent_counts: tuple[str, ...] = ()


class CreateQuota(Protocol):
    """Per-user stream-creation counts shared by every instance (Firestore in production)."""

    def update(
        self, uid: str, change: Callable[[CreateQuotaUsage], CreateQuotaUsage]
    ) -> CreateQuotaUsage:
        """Apply ``change`` to the user's usage atomically (it may run more than once, and
        whatever it raises aborts without writing); returns what was stored."""
        ...


IdempotencyState = Literal["pending", "done", "failed"]


@dataclass(frozen=True)
class IdempotencyRecord:
    """What one ``Idempotency-Key`` of one user stands for.

    ``stream_id`` is fixed by the first request with the key, so every attempt made under it
    (a retry after a failure included) can only ever create that one stream, and every live
    input it made is tagged with that id (the orphan sweep deletes the ones it does not use).
    """

    fingerprint: str
    stream_id: str
    state: IdempotencyState
    lease_until: datetime
    expires_at: datetime


IdempotencyChange = Callable[[IdempotencyRecord | None], IdempotencyRecord | None]


class IdempotencyStore(Protocol):
    """Idempotency keys of stream creation, scoped per user (Firestore in production)."""

    def update(self, uid: str, key: str, change: IdempotencyChange) -> IdempotencyRecord | None:
        """Apply ``change`` to the record of ``key`` atomically (it may run more than once;
        returning ``None`` or the record unchanged writes nothing, raising aborts); returns
        the record as stored afterwards."""
        ...


@dataclass(frozen=True)
class PendingMigration:
    """One stream document the migration would change; ``handle`` is the adapter's own."""

    stream_id: str
    collection: str
    actions: tuple[str, ...]
    conflict: bool
    handle: object


class StreamMigrationStore(Protocol):
    """Stream documents written by earlier backends, brought to the current shape and place."""

    def pending_migrations(self) -> list[PendingMigration]:
        """Every document that needs a change, in a stable order."""
        ...

    def apply_migration(self, item: PendingMigration) -> None:
        """Migrate one document atomically (a concurrent write makes it a no-op)."""
        ...


class MemorialDirectory(Protocol):
    """Read access to memorial pages (owned by another part of the product)."""

    def get(self, memorial_id: str) -> Memorial | None:
        """The memorial, or ``None``."""
        ...

    def get_many(self, memorial_ids: Collection[str]) -> dict[str, Memorial | None]:
        """Each of the memorials (``None`` where there is none), in one read where the store
        can: a listing's page names up to a hundred."""
        ...


@dataclass(frozen=True)
class RequestCredentials:
    """What a request presented to prove who sent it."""

    session_cookie: str | None = None
    bearer_token: str | None = None


class Authenticator(Protocol):
    """Turns request credentials into a user."""

    def authenticate(self, credentials: RequestCredentials) -> User | None:
        """The user, or ``None`` for an anonymous caller.

        Raises:
            UnauthenticatedError: an explicit bearer token is invalid.
        """
        ...


class ProviderWebhooks(Protocol):
    """The video platform's webhooks, authenticated and read into domain events."""

    def video_report(self, signature: str | None, body: bytes) -> VideoReport:
        """The video a signed Stream webhook reports.

        Raises:
            UnauthenticatedError: the signature is missing, stale or wrong.
            InvalidArgumentError: the body is not a video.
        """
        ...

    def live_input_notice(self, auth: str | None, body: bytes) -> LiveInputNotice | None:
        """The live-input event a notification carries; ``None`` for a test message.

        Raises:
            UnauthenticatedError: the shared secret is missing or wrong.
            InvalidArgumentError: the body is not a notification.
        """
        ...


@dataclass(frozen=True)
class Invitation:
    """A code that lets a guest without an account watch one private stream (view only).

    ``expires_at`` (optional) and ``revoked_at`` end it; the code is the guest's only secret
    and never appears in a ``repr``.
    """

    code: str = field(repr=False)
    stream_id: str
    created_by: str
    created_at: datetime
    label: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class InvitationStore(Protocol):
    """Invitation codes of streams, never readable by clients (Firestore in production)."""

    def add(self, invitation: Invitation) -> None:
        """Store a new invitation (its code is fresh and random)."""
        ...

    def get(self, stream_id: str, code: str) -> Invitation | None:
        """The stream's invitation with this code, or ``None`` (another stream's is ``None``)."""
        ...

    def list(self, stream_id: str) -> list[Invitation]:
        """Every invitation of the stream, revoked ones included, newest first."""
        ...

    def revoke(self, stream_id: str, code: str, at: datetime) -> Invitation | None:
        """Revoke the invitation (an already revoked one keeps its first ``revoked_at``);
        returns it as stored, or ``None`` when the stream has no such code."""
        ...


@dataclass(frozen=True)
class PlaybackToken:
    """A signed token that opens one media uid (a recording or a live input) until
    ``expires_at``; it stands in place of the uid in every delivery URL."""

    token: str = field(repr=False)
    expires_at: datetime


class PlaybackTokens(Protocol):
    """Short-lived playback tokens for media that requires signed URLs, made without a call
    to the video platform per viewer (Cloudflare: self-signed with a Stream signing key)."""

    def sign(
        self, media_uid: str, *, downloadable: bool = False, until: datetime | None = None
    ) -> PlaybackToken:
        """A token for ``media_uid``; ``downloadable`` also opens its MP4 download; ``until``
        ends it earlier than the usual lifetime (an invitation that expires sooner).

        Raises:
            UnavailableError: no signing key is configured.
        """
        ...


class Clock(Protocol):
    """The current time, injectable for tests."""

    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class EventStore(Protocol):
    """Events of memorials (``common.models.events``), tombstones included."""

    def new_id(self) -> str:
        """A fresh, unique event id."""
        ...

    def get(self, event_id: str) -> MemorialEvent | None:
        """The event (a deleted one's tombstone too), or ``None``."""
        ...

    def create(self, event: MemorialEvent) -> None:
        """Store a new event; ``ConflictError`` if the id holds another one (the same event
        again, as a retry whose first answer was lost sends it, is stored once)."""
        ...

    def update(
        self, event_id: str, change: Callable[[MemorialEvent], MemorialEvent]
    ) -> MemorialEvent:
        """Apply ``change`` optimistically (it may run more than once) and return the result.

        Raises:
            NotFoundError: the event does not exist.
        """
        ...

    def list_by_memorial(self, memorial_id: str) -> list[MemorialEvent]:
        """Every event of the memorial, tombstones included, oldest first."""
        ...


class TemplateStore(Protocol):
    """Event templates of funeral directors (``common.models.events``)."""

    def new_id(self) -> str:
        """A fresh, unique template id."""
        ...

    def get(self, template_id: str) -> EventTemplate | None:
        """The template, or ``None``."""
        ...

    def save(self, template: EventTemplate) -> None:
        """Store (create or replace) the template."""
        ...

    def delete(self, template_id: str) -> None:
        """Forget the template (nothing happens if it is gone)."""
        ...

    def list_by_owner(self, owner_uid: str) -> list[EventTemplate]:
        """The owner's templates, oldest first."""
        ...
