"""``created_once``: how a refused create of an invitation or an event is read back."""

from __future__ import annotations

from typing import Any

import pytest

from common.adapters.firestore.rest_guards import created_once
from common.errors import ConflictError

DOCUMENT = {"code": "abc", "label": None}


def attempt(answers: list[bool], stored: list[dict[str, Any] | None]) -> list[str]:
    """Run ``created_once`` over scripted commit answers and read-backs; what it did."""
    calls: list[str] = []

    def create() -> bool:
        calls.append("create")
        return answers.pop(0)

    def read_back() -> dict[str, Any] | None:
        calls.append("read")
        return stored.pop(0)

    created_once(create, read_back, DOCUMENT, "taken")
    return calls


def test_a_create_that_lands_is_not_read_back() -> None:
    assert attempt([True], []) == ["create"]


def test_a_refusal_that_finds_the_same_document_is_an_answer_lost() -> None:
    assert attempt([False], [dict(DOCUMENT)]) == ["create", "read"]


def test_a_refusal_that_finds_nothing_was_aborted_and_is_tried_again() -> None:
    assert attempt([False, True], [None]) == ["create", "read", "create"]


def test_a_refusal_that_finds_another_document_is_a_conflict() -> None:
    with pytest.raises(ConflictError) as refused:
        attempt([False], [{"code": "abc", "label": "another"}])
    assert refused.value.message == "taken"


def test_a_create_aborted_every_time_ends_in_a_retryable_conflict() -> None:
    with pytest.raises(ConflictError) as refused:
        attempt([False] * 100, [None] * 100)
    assert refused.value.retry_after_s == 1
