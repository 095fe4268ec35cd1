from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.access import Action, require, stream_permissions
from common.errors import PermissionDeniedError, UnauthenticatedError
from common.models.domain import Stream
from tests.conftest import (
    ADMIN,
    FUNERAL_DIRECTOR,
    HELPER,
    MEMORIAL,
    MEMORIAL_OWNER,
    OWNER,
    PRIVATE_MEMORIAL,
    STRANGER,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)
ALL = set(Action)
MANAGE = ALL - {Action.DELETE}


def stream(**fields: object) -> Stream:
    base: dict[str, object] = {
        "id": "s1",
        "title": "t",
        "created_by": OWNER.uid,
        "memorial_id": MEMORIAL.id,
        "allowed_users": (HELPER.uid,),
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Stream.model_validate(base | fields)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, {Action.VIEW}),
        (STRANGER, {Action.VIEW}),
        (OWNER, ALL),
        (MEMORIAL_OWNER, ALL),
        (FUNERAL_DIRECTOR, MANAGE - {Action.DOWNLOAD}),
        (ADMIN, ALL),
        (HELPER, MANAGE),
    ],
)
def test_rights_on_a_public_stream_of_a_public_memorial(
    user: object, expected: set[Action]
) -> None:
    assert set(stream_permissions(user, stream(), MEMORIAL).allowed) == expected  # type: ignore[arg-type]


def test_private_stream_is_invisible_to_outsiders_but_not_to_managers() -> None:
    private = stream(is_public=False)
    assert not stream_permissions(None, private, MEMORIAL).allowed
    # A logged-in visitor of a public memorial may view its visible streams (contract §1 rule 5).
    assert set(stream_permissions(STRANGER, private, MEMORIAL).allowed) == {Action.VIEW}
    assert not stream_permissions(
        STRANGER, private.model_copy(update={"is_visible": False}), MEMORIAL
    ).allowed
    assert set(stream_permissions(FUNERAL_DIRECTOR, private, MEMORIAL).allowed) == MANAGE - {
        Action.DOWNLOAD
    }


def test_public_stream_of_a_private_memorial_is_not_public() -> None:
    assert not stream_permissions(None, stream(), PRIVATE_MEMORIAL).allowed


def test_a_funeral_director_who_made_the_stream_runs_it_but_does_not_download_it() -> None:
    made_by_director = stream(created_by=FUNERAL_DIRECTOR.uid)
    rights = stream_permissions(FUNERAL_DIRECTOR, made_by_director, MEMORIAL)
    assert set(rights.allowed) == set(Action) - {Action.DOWNLOAD}
    assert stream_permissions(MEMORIAL_OWNER, made_by_director, MEMORIAL).can(Action.DOWNLOAD)
    # Off a memorial, whoever made the stream is its family.
    assert stream_permissions(FUNERAL_DIRECTOR, made_by_director, None).can(Action.DOWNLOAD)


def test_require_distinguishes_anonymous_from_forbidden() -> None:
    nothing = stream_permissions(None, stream(is_public=False), MEMORIAL)
    with pytest.raises(UnauthenticatedError):
        require(nothing, Action.VIEW, None)
    with pytest.raises(PermissionDeniedError):
        require(stream_permissions(STRANGER, stream(), MEMORIAL), Action.EDIT, STRANGER)
    require(stream_permissions(ADMIN, stream(), None), Action.DELETE, ADMIN)
