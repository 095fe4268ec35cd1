"""Who may do what to a stream (FRONTEND_CONTRACT.md §1, with denials that really deny)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.errors import PermissionDeniedError, UnauthenticatedError
from common.models.domain import Memorial, Stream, User


class Action(StrEnum):
    """Things a caller can do to a stream."""

    VIEW = "view"
    EDIT = "edit"
    START = "start"
    STOP = "stop"
    DELETE = "delete"
    # Take an MP4 of a recording away: the family (OneRoom's "family contact"), not viewers,
    # invited guests or the funeral director.
    DOWNLOAD = "download"


_ALL = frozenset(Action)
_MANAGE_NOT_DELETE = frozenset({Action.VIEW, Action.EDIT, Action.START, Action.STOP})
_VIEW_ONLY = frozenset({Action.VIEW})
_NOTHING: frozenset[Action] = frozenset()


@dataclass(frozen=True)
class Permissions:
    """The actions one caller may take on one stream."""

    allowed: frozenset[Action]

    def can(self, action: Action) -> bool:
        return action in self.allowed


def is_publicly_viewable(stream: Stream) -> bool:
    """Public and not hidden by its owner: what anonymous visitors may see."""
    return stream.is_public and stream.is_visible


def requires_signed_playback(stream: Stream, memorial: Memorial | None) -> bool:
    """A stream that is not public, or whose memorial is private, plays only through signed
    URLs (its live input and every recording require them at Cloudflare). Hiding a public
    stream (``is_visible``) only takes it off listings: its URLs keep playing."""
    return not stream.is_public or (memorial is not None and not memorial.is_public)


def may_watch_privately(permissions: Permissions) -> bool:
    """Whether signed playback of a private service may go to this caller: those who may edit
    it (its managers and the users it names), not every account that may read it."""
    return permissions.can(Action.EDIT)


def stream_permissions(user: User | None, stream: Stream, memorial: Memorial | None) -> Permissions:
    """Rights of ``user`` on ``stream`` whose memorial (if any) is ``memorial``."""
    memorial_is_public = memorial is None or memorial.is_public
    public = _VIEW_ONLY if is_publicly_viewable(stream) and memorial_is_public else _NOTHING
    if user is None:
        return Permissions(public)
    if user.is_administrator:
        return Permissions(_ALL)
    if stream.created_by == user.uid:
        # A funeral director who made the family's stream (from a template, say) runs it,
        # but its MP4 is the family's to take away.
        directs = (
            memorial is not None
            and memorial.funeral_director_uid == user.uid
            and memorial.owner_uid != user.uid
        )
        return Permissions(_ALL - {Action.DOWNLOAD} if directs else _ALL)
    granted = public | _memorial_rights(user, stream, memorial)
    if user.uid in stream.allowed_users:
        granted |= _MANAGE_NOT_DELETE | {Action.DOWNLOAD}
    return Permissions(granted)


def can_manage_memorial(user: User, memorial: Memorial) -> bool:
    """Admins, the memorial's owner and its funeral director manage its streams."""
    return user.is_administrator or user.uid in (memorial.owner_uid, memorial.funeral_director_uid)


def _memorial_rights(user: User, stream: Stream, memorial: Memorial | None) -> frozenset[Action]:
    if memorial is None:
        return _NOTHING
    if memorial.owner_uid == user.uid:
        return _ALL
    if memorial.funeral_director_uid == user.uid:
        return _MANAGE_NOT_DELETE
    if memorial.is_public and stream.is_visible:
        return _VIEW_ONLY
    return _NOTHING


def may_delete_recordings(user: User | None, stream: Stream, memorial: Memorial | None) -> bool:
    """On a memorial, only its owner (or an administrator) may delete a stream that holds
    recordings: a funeral director who created the stream may not delete the family's
    recorded service."""
    if memorial is None or not (stream.recordings or stream.recording_ready):
        return True
    return user is not None and (user.is_administrator or memorial.owner_uid == user.uid)


def require(
    permissions: Permissions, action: Action, user: User | None, message: str = "Permission denied"
) -> None:
    """Raise 401 for an anonymous caller or 403 for a known one, unless ``action`` is allowed."""
    if permissions.can(action):
        return
    if user is None:
        raise UnauthenticatedError("Authentication required")
    raise PermissionDeniedError(message)
