"""Playback of private streams: short-lived signed URLs for those allowed to watch, and
invitation codes that let guests without an account watch one private stream.

A stream that is not public, or whose memorial is private (``access.requires_signed_playback``),
requires signed URLs at Cloudflare on its live input and every recording. Its viewers get URLs
with a token in place of the uid, signed here (``PlaybackTokens``: no Cloudflare call per
viewer). Public streams get the plain URLs and cost nothing extra.

Nothing tells the backend when a memorial turns private or public (the site writes memorials),
so the stream's signed-URL setting follows its memorial lazily: whenever playback is asked for
(``/playback``, ``/access``) and on every stream update, before anyone is authorized.

Wrong invitation codes are counted per stream and client (a sliding window shared by every
instance, as stream creations are); past the limit every attempt from that client, right or
wrong, gets 429 with ``Retry-After``, so the answers tell a guesser nothing.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ConfigDict, Field

from common.access import (
    Action,
    may_watch_privately,
    requires_signed_playback,
    stream_permissions,
)
from common.access import require as require_permission
from common.errors import (
    AppError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from common.models.api import AwareInstant
from common.models.base import Model
from common.models.delivery import DeliveryUrls, MediaUrls
from common.models.domain import Memorial, Stream, User
from common.ports import (
    Clock,
    CreateQuota,
    CreateQuotaUsage,
    Invitation,
    InvitationStore,
    MemorialDirectory,
    PlaybackToken,
    PlaybackTokens,
    StreamRepository,
)
from common.services.live_inputs import LiveInputProvisioner
from common.services.rate_windows import WindowFull, counted_once
from common.services.stream_access import load_authorized

log = logging.getLogger(__name__)
# 128 bits of randomness, hex: URL-safe and a valid document id.
CODE_BYTES = 16
LINK_PATH = "/livestream/{stream_id}?invite={code}"
MAX_INVITATIONS = 100  # per stream: a family shares links, it does not mint thousands


class PlaybackResponse(Model):
    """Reply of ``GET /streams/{id}/playback`` and ``POST /streams/{id}/access``: what is on
    now (the live input while live, the recording shown on the page after), ready to play."""

    model_config = ConfigDict(extra="forbid")

    streamId: str
    source: Literal["live", "recording"]
    hlsUrl: str
    dashUrl: str
    playerUrl: str
    thumbnailUrl: str
    requiresToken: bool = Field(description="the URLs carry a token in place of the media uid")
    expiresAt: datetime | None = Field(description="when the token stops playing; null: never")


class InvitationCreateRequest(Model):
    """Body of ``POST /streams/{id}/invitations`` (both fields optional)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=100)
    expiresAt: AwareInstant | None = None


class InvitationView(Model):
    """One invitation as the stream's managers see it: the code and the link to share."""

    code: str
    link: str
    label: str | None
    createdAt: datetime
    expiresAt: datetime | None
    revoked: bool
    revokedAt: datetime | None


class InvitationListResponse(Model):
    """Reply of ``GET /streams/{id}/invitations``: newest first, revoked ones included."""

    streamId: str
    invitations: list[InvitationView]


class AccessRequest(Model):
    """Body of ``POST /streams/{id}/access``: the code of an invitation."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)


@dataclass(frozen=True)
class GuestLimits:
    """How many wrong codes one client may try on one stream per window."""

    invitation_attempt_limit: int = 10
    invitation_attempt_window_s: int = 600


class PlaybackService:
    """Signed playback for viewers and invited guests, and the invitations themselves."""

    def __init__(  # noqa: PLR0913 - the ports this service reaches, each named
        self,
        *,
        repo: StreamRepository,
        memorials: MemorialDirectory,
        tokens: PlaybackTokens,
        live_inputs: LiveInputProvisioner,
        invitations: InvitationStore,
        attempts: CreateQuota,
        clock: Clock,
        delivery_base: str,
        site_origin: str,
        limits: GuestLimits = GuestLimits(),
    ) -> None:
        self._repo = repo
        self._memorials = memorials
        self._tokens = tokens
        self._live_inputs = live_inputs
        self._invitations = invitations
        self._attempts = attempts
        self._clock = clock
        self._urls = DeliveryUrls(delivery_base)
        self._site = site_origin.rstrip("/")
        self._limits = limits

    # --- viewers ---------------------------------------------------------------------------

    def playback(self, user: User | None, stream_id: str) -> PlaybackResponse:
        """What ``user`` may watch of the stream now (401/403 if they may not watch it)."""
        stream, memorial = self._current(stream_id)
        permissions = stream_permissions(user, stream, memorial)
        require_permission(permissions, Action.VIEW, user)
        if requires_signed_playback(stream, memorial) and not may_watch_privately(permissions):
            # Any account may read a visible stream of a public memorial (the frontend's
            # contract), but a private service plays for those the family chose: its
            # managers, its allowed users and, through /access, its invited guests.
            raise PermissionDeniedError(
                "This service is private: ask the family for an invitation",
                details={"reason": "invitation-required"},
            )
        return self._playable(stream, memorial)

    def redeem(self, client: str, stream_id: str, code: str) -> PlaybackResponse:
        """Playback for a guest holding one of the stream's invitation codes (view only)."""
        stream, memorial = self._current(stream_id)
        invitation = self._invitations.get(stream.id, code)
        if invitation is None:
            # Only wrong codes are limited: a client whose address others share (or forge)
            # still gets in with the right one, and 128-bit codes make that reveal nothing.
            self._count_wrong_code(_attempts_key(stream.id, client))
            raise PermissionDeniedError(
                "This invitation code is not valid for this stream",
                details={"reason": "invalid-code"},
            )
        if invitation.revoked_at is not None:
            raise PermissionDeniedError(
                "This invitation has been revoked", details={"reason": "revoked"}
            )
        if invitation.expires_at is not None and invitation.expires_at <= self._clock.now():
            raise PermissionDeniedError(
                "This invitation has expired", details={"reason": "expired"}
            )
        return self._playable(stream, memorial, until=invitation.expires_at)

    def _current(self, stream_id: str) -> tuple[Stream, Memorial | None]:
        """The stream (404) with its signed-URL setting brought in line with its privacy and
        its memorial's (the memorial may have changed since)."""
        stream = self._repo.get(stream_id)
        if stream is None:
            raise NotFoundError("Stream not found")
        memorial = self._memorials.get(stream.memorial_id) if stream.memorial_id else None
        try:
            stream = self._live_inputs.apply_signed_urls(stream, memorial)
        except AppError as exc:
            # Viewers still get playback (signed if either setting says so); the next
            # request tries again.
            log.warning("signed URLs of stream %s not applied yet: %s", stream.id, exc.message)
        return stream, memorial

    def _playable(
        self, stream: Stream, memorial: Memorial | None, until: datetime | None = None
    ) -> PlaybackResponse:
        replay = stream.video_id if stream.is_recorded() else None
        media = replay or stream.cloudflare_id
        if media is None:
            raise NotFoundError("This stream has nothing to play yet")
        # Signed whenever either says so: a token also opens media that does not need one.
        signed = stream.signed_urls or requires_signed_playback(stream, memorial)
        token = self._tokens.sign(media, until=until) if signed else None
        urls = self._urls.of(media, token.token if token else None)
        return _response(stream.id, "recording" if replay else "live", urls, token)

    def _count_wrong_code(self, key: str) -> None:
        """Count one more wrong code of a client, refusing it (429) once it has used them up."""
        limit = self._limits.invitation_attempt_limit
        window = timedelta(seconds=self._limits.invitation_attempt_window_s)
        now = self._clock.now()

        this_count = secrets.token_hex(16)

        def admit(usage: CreateQuotaUsage) -> CreateQuotaUsage:
            try:
                return counted_once(usage, this_count, now, window, limit)
            except WindowFull as full:
                raise ResourceExhaustedError(
                    f"Too many wrong invitation codes; try again in {full.retry_after_s} s",
                    details={"limit": limit, "windowSeconds": int(window.total_seconds())},
                    retry_after_s=full.retry_after_s,
                ) from None

        self._attempts.update(key, admit)

    # --- invitations (the stream's managers) -----------------------------------------------

    def invite(
        self, user: User | None, stream_id: str, request: InvitationCreateRequest
    ) -> InvitationView:
        """A new invitation code (and its link) for the stream."""
        stream = self._managed(user, stream_id)
        now = self._clock.now()
        if request.expiresAt is not None and request.expiresAt <= now:
            raise InvalidArgumentError("expiresAt must be in the future")
        if len(self._invitations.list(stream.id)) >= MAX_INVITATIONS:
            raise InvalidArgumentError(
                f"A stream has at most {MAX_INVITATIONS} invitations; revoke unused ones"
            )
        invitation = Invitation(
            code=secrets.token_hex(CODE_BYTES),
            stream_id=stream.id,
            created_by=user.uid if user else "",
            created_at=now,
            label=request.label,
            expires_at=request.expiresAt,
        )
        self._invitations.add(invitation)
        return self._view(invitation)

    def invitations(self, user: User | None, stream_id: str) -> InvitationListResponse:
        """Every invitation of the stream, newest first."""
        stream = self._managed(user, stream_id)
        views = [self._view(i) for i in self._invitations.list(stream.id)]
        return InvitationListResponse(streamId=stream.id, invitations=views)

    def revoke(self, user: User | None, stream_id: str, code: str) -> InvitationView:
        """Revoke an invitation: its code gets 403 and no new token from now on (tokens
        already handed out play until they expire, at most the token lifetime)."""
        stream = self._managed(user, stream_id)
        revoked = self._invitations.revoke(stream.id, code, self._clock.now())
        if revoked is None:
            raise NotFoundError("No such invitation")
        return self._view(revoked)

    def _managed(self, user: User | None, stream_id: str) -> Stream:
        stream, _ = load_authorized(
            self._repo,
            self._memorials,
            user,
            stream_id,
            Action.EDIT,
            message="Only the stream's managers may manage its invitations",
        )
        return stream

    def _view(self, invitation: Invitation) -> InvitationView:
        link = LINK_PATH.format(stream_id=invitation.stream_id, code=invitation.code)
        return InvitationView(
            code=invitation.code,
            link=self._site + link,
            label=invitation.label,
            createdAt=invitation.created_at,
            expiresAt=invitation.expires_at,
            revoked=invitation.revoked_at is not None,
            revokedAt=invitation.revoked_at,
        )


def _response(
    stream_id: str,
    source: Literal["live", "recording"],
    urls: MediaUrls,
    token: PlaybackToken | None,
) -> PlaybackResponse:
    expires_at = token.expires_at if token else None
    return PlaybackResponse(
        streamId=stream_id,
        source=source,
        hlsUrl=urls.hls,
        dashUrl=urls.dash,
        playerUrl=urls.player,
        thumbnailUrl=urls.thumbnail,
        requiresToken=token is not None,
        expiresAt=expires_at,
    )


def _attempts_key(stream_id: str, client: str) -> str:
    """One counter per (stream, client); the client's address is not stored as such."""
    return "invite-" + hashlib.sha256(f"{stream_id}\n{client}".encode()).hexdigest()[:40]
