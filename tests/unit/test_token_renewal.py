"""An access token refused before its expiry (revoked, or the service account's key rotated) is
renewed once: each REST adapter answers 401 by asking the metadata server again and retrying,
and gives up after one renewal. One stand-in plays the metadata server and the API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from common.adapters.cloud_tasks import CloudTasksQueue
from common.adapters.firestore.rest import FirestoreRest, FirestoreRestError
from common.adapters.google_tokens import TOKEN_PATH, MetadataServerError, MetadataServerTokens
from common.adapters.identity_toolkit import IdentityToolkit
from common.errors import InternalError, UnavailableError
from common.ports import ScheduledTask
from tests.local_http import Seen, serving

QUEUE = "projects/p/locations/l/queues/q"


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


@contextmanager
def google(
    accepted: Callable[[str], bool], answer: tuple[int, Any]
) -> Iterator[tuple[MetadataServerTokens, str, Seen]]:
    """Tokens from a stand-in metadata server issuing ``token-0``, ``token-1``... and an API
    that answers ``answer`` to the tokens it ``accepted`` and 401 to the others."""
    issued: list[str] = []

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
        if path == TOKEN_PATH:
            issued.append(f"token-{len(issued)}")
            return 200, {"access_token": issued[-1], "expires_in": 3599}
        if not accepted(headers["authorization"].removeprefix("Bearer ")):
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        return answer

    with serving(handle) as (origin, seen):
        yield MetadataServerTokens(origin.removeprefix("http://")), origin, seen


def firestore_get(tokens: MetadataServerTokens, origin: str) -> Any:
    return FirestoreRest(origin, "p", tokens, sleep=lambda _s: None).get("streams", "s1").exists


def tasks_enqueue(tokens: MetadataServerTokens, origin: str) -> Any:
    queue = CloudTasksQueue(origin, tokens, QUEUE, "http://gateway", FixedClock())
    return queue.enqueue(ScheduledTask(name="t1", path="/api/tasks/monitor", payload={}))


def account_lookup(tokens: MetadataServerTokens, origin: str) -> Any:
    return IdentityToolkit("p", api_origin=origin, tokens=tokens, keys=None).account("user-1")


# (the call, the API's answer to an accepted token, what the call then gives, its error)
ADAPTERS = [
    pytest.param(firestore_get, (404, {}), False, FirestoreRestError, id="firestore"),
    pytest.param(
        tasks_enqueue, (200, {"name": f"{QUEUE}/tasks/t1"}), True, InternalError, id="tasks"
    ),
    pytest.param(account_lookup, (200, {}), None, UnavailableError, id="identity-toolkit"),
]


def api_calls(seen: Seen) -> list[str]:
    return [headers["authorization"] for _, path, headers in seen if path != TOKEN_PATH]


@pytest.mark.parametrize(("call", "answer", "result", "_"), ADAPTERS)
def test_a_revoked_token_is_renewed_and_the_request_retried(
    call: Callable[[MetadataServerTokens, str], Any],
    answer: tuple[int, Any],
    result: Any,
    _: type,
) -> None:
    with google(lambda token: token != "token-0", answer) as (tokens, origin, seen):
        first = call(tokens, origin)
        second = call(tokens, origin)

    assert first is result and second is result
    assert api_calls(seen) == ["Bearer token-0", "Bearer token-1", "Bearer token-1"]


@pytest.mark.parametrize(("call", "answer", "_", "error"), ADAPTERS)
def test_a_token_refused_again_after_renewal_is_an_error_not_a_loop(
    call: Callable[[MetadataServerTokens, str], Any],
    answer: tuple[int, Any],
    _: Any,
    error: type[Exception],
) -> None:
    with google(lambda _token: False, answer) as (tokens, origin, seen), pytest.raises(error):
        call(tokens, origin)
    assert api_calls(seen) == ["Bearer token-0", "Bearer token-1"]


def test_a_refusal_with_no_time_left_to_renew_is_answered_at_once() -> None:
    # The token fetch may take up to its own timeout: within a budget too short for it, the
    # refusal is the answer.
    with (
        google(lambda token: token != "token-0", (404, {})) as (tokens, origin, seen),
        pytest.raises(FirestoreRestError),
    ):
        FirestoreRest(origin, "p", tokens, budget_s=1.0).get("streams", "s1")
    assert api_calls(seen) == ["Bearer token-0"]


def test_refusals_of_a_token_already_renewed_keep_the_new_one() -> None:
    # Requests that went out with the old token come back refused after one of them renewed
    # it: the new token is kept, not fetched again for each.
    with google(lambda _token: True, (200, {})) as (tokens, _, seen):
        stale = tokens.header()
        tokens.refused(stale)
        fresh = tokens.header()
        threads = [threading.Thread(target=tokens.refused, args=(stale,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        kept = tokens.header()

    assert (stale, fresh, kept) == ("Bearer token-0", "Bearer token-1", "Bearer token-1")
    assert [path for _, path, _ in seen] == [TOKEN_PATH, TOKEN_PATH]


def test_a_metadata_server_that_fails_once_is_asked_again() -> None:
    # As google-auth: a 503 (or no answer) from the metadata server is tried again.
    answers = iter([(503, {}), (200, {"access_token": "token-1", "expires_in": 3599})])
    with serving(lambda *_: next(answers)) as (origin, seen):
        header = MetadataServerTokens(origin.removeprefix("http://")).header()
    assert header == "Bearer token-1"
    assert len(seen) == 2


def test_a_metadata_server_that_stays_down_is_a_503_and_waiting_requests_fail_at_once() -> None:
    now = [100.0]
    with serving(lambda *_: (503, {})) as (origin, seen):
        tokens = MetadataServerTokens(origin.removeprefix("http://"), clock=lambda: now[0])
        with pytest.raises(UnavailableError):
            tokens.header()
        asked = len(seen)
        with pytest.raises(UnavailableError):
            tokens.header()  # within the hold: no fetch of its own
        held = len(seen)
        now[0] += 2.0
        with pytest.raises(UnavailableError):
            tokens.header()

    assert asked == 3  # FETCH_TRIES
    assert held == asked
    assert len(seen) == 2 * asked


def test_a_metadata_server_refusing_for_good_is_a_deployment_fault() -> None:
    with serving(lambda *_: (403, {})) as (origin, seen), pytest.raises(MetadataServerError):
        MetadataServerTokens(origin.removeprefix("http://")).header()
    assert len(seen) == 1


def test_a_renewal_the_metadata_server_fails_keeps_the_token_until_it_expires() -> None:
    now = [100.0]
    answers = iter([(200, {"access_token": "token-0", "expires_in": 3600})])

    def handle(*_: Any) -> tuple[Any, ...]:
        return next(answers, (503, {}))

    with serving(handle) as (origin, _):
        tokens = MetadataServerTokens(origin.removeprefix("http://"), clock=lambda: now[0])
        assert tokens.header() == "Bearer token-0"
        now[0] += 3600 - 30  # renewal due (a minute before expiry), the server down
        assert tokens.header() == "Bearer token-0"
        now[0] += 60  # expired
        with pytest.raises(UnavailableError):
            tokens.header()
