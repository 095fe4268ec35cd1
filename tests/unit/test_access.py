from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.access import Action, require, stream_permissions
from common.errors import PermissionDeniedError, UnauthenticatedError
from common.models.domain import Stream
from tests import people

NOW = datetime(2026, 11, 24, tzinfo=UTC)
ALL = set(Action)
MANAGE = ALL - {Action.DELETE}


def stream(**fields: object) -> Stream:
    base: dict[str, object] = {
        "id": "s1",
        "title": "t",
        "created_by": people.OWNER.uid,
        "memorial_id": people.MEMORIAL.id,
        "allowed_users": (people.HELPER.uid,),
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Stream.model_validate(base | fields)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, {Action.VIEW}),
        (people.STRANGER, {Action.VIEW}),
        (people.OWNER, ALL),
        (people.MEMORIAL_OWNER, ALL),
        (people.FUNERAL_DIRECTOR, MANAGE - {Action.DOWNLOAD}),
        (people.ADMIN, ALL),
        (people.HELPER, MANAGE),
    ],
)
def test_rights_on_a_public_stream_of_a_public_memorial(
    user: object, expected: set[Action]
) -> None:
    assert set(stream_permissions(user, stream(), people.MEMORIAL).allowed) == expected  # type: ignore[arg-type]


def test_private_stream_is_invisible_to_outsiders_but_not_to_managers() -> None:
    private = stream(is_public=False)
    assert not stream_permissions(None, private, people.MEMORIAL).allowed
    # A logged-in visitor of a public memorial may view its visible streams (contract §1 rule 5).
    assert set(stream_permissions(people.STRANGER, private, people.MEMORIAL).allowed) == {
        Action.VIEW
    }
    assert not stream_permissions(
        people.STRANGER, private.model_copy(update={"is_visible": False}), people.MEMORIAL
    ).allowed
    assert set(
        stream_permissions(people.FUNERAL_DIRECTOR, private, people.MEMORIAL).allowed
    ) == MANAGE - {Action.DOWNLOAD}


def test_public_stream_of_a_private_memorial_is_not_public() -> None:
    assert not stream_permissions(None, stream(), people.PRIVATE_MEMORIAL).allowed


def test_a_funeral_director_who_made_the_stream_runs_it_but_does_not_download_it() -> None:
    made_by_director = stream(created_by=people.FUNERAL_DIRECTOR.uid)
    rights = stream_permissions(people.FUNERAL_DIRECTOR, made_by_director, people.MEMORIAL)
    assert set(rights.allowed) == set(Action) - {Action.DOWNLOAD}
    assert stream_permissions(people.MEMORIAL_OWNER, made_by_director, people.MEMORIAL).can(
        Action.DOWNLOAD
    )
    # Off a memorial, whoever made the stream is its family.
    assert stream_permissions(people.FUNERAL_DIRECTOR, made_by_director, None).can(Action.DOWNLOAD)


def test_require_distinguishes_anonymous_from_forbidden() -> None:
    nothing = stream_permissions(None, stream(is_public=False), people.MEMORIAL)
    with pytest.raises(UnauthenticatedError):
        require(nothing, Action.VIEW, None)
    with pytest.raises(PermissionDeniedError):
        require(
            stream_permissions(people.STRANGER, stream(), people.MEMORIAL),
            Action.EDIT,
            people.STRANGER,
        )
    require(stream_permissions(people.ADMIN, stream(), None), Action.DELETE, people.ADMIN)
