"""Who watches, counted from what the delivery host serves: the live viewer count
(``GET /<input uid>/views`` → ``{"liveViewers": n}``) and the GraphQL Analytics API's
``streamMinutesViewedAdaptiveGroups`` (``POST /client/v4/graphql``).

A viewer is one HLS client: its ``X-Playback-Session-Id`` header when it sends one (Apple's
players do), else its address and ``User-Agent``. Each manifest or segment it fetches makes it
a live viewer of the input for ``window_s`` seconds (30 by default; Cloudflare counts unique
viewers over a recent window), and adds the time since its previous fetch of the same media
(at most ``window_s``: a longer gap is a new visit) to its minutes viewed, booked to the
minute of the fetch and to the video's uid (a live input's fetches go to the video of its
current broadcast, as Cloudflare's ``uid`` dimension is a video uid).
"""

from __future__ import annotations

import operator
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import flask
from graphql import GraphQLError, parse
from graphql.language import FieldNode, OperationDefinitionNode, SelectionSetNode
from graphql.utilities import value_from_ast_untyped

from emulators.cloudflare_stream.envelopes import current_state

audience_delivery = flask.Blueprint("audience_delivery", __name__)
audience_api = flask.Blueprint("audience_api", __name__)

DEFAULT_WINDOW_S = 30.0
COUNTED_ENDPOINTS = frozenset({"delivery.manifest", "delivery.segment"})
DIMENSIONS = ("uid", "date", "datetimeMinute", "clientCountryName", "creator")


@dataclass
class Audience:
    """What the delivery host saw, per live input (viewers now, the peak) and per video
    (seconds watched, per minute)."""

    window_s: float = DEFAULT_WINDOW_S
    lock: threading.Lock = field(default_factory=threading.Lock)
    # live input uid -> viewer key -> its last fetch
    live: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    peaks: dict[str, int] = field(default_factory=dict)
    # (video uid, unix minute) -> seconds watched
    watched: dict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(float))
    # video uid -> viewer key -> last fetch (recordings, and live videos alike)
    last_fetch: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))

    def seen(self, viewer: str, input_uid: str | None, video_uid: str | None, now: float) -> None:
        with self.lock:
            if input_uid is not None:
                self.live[input_uid][viewer] = now
                count = self._count(input_uid, now)
                self.peaks[input_uid] = max(self.peaks.get(input_uid, 0), count)
            if video_uid is not None:
                previous = self.last_fetch[video_uid].get(viewer)
                self.last_fetch[video_uid][viewer] = now
                if previous is not None:
                    self.watched[(video_uid, int(now // 60))] += min(now - previous, self.window_s)

    def live_viewers(self, input_uid: str, now: float) -> int:
        with self.lock:
            return self._count(input_uid, now)

    def _count(self, input_uid: str, now: float) -> int:
        viewers = self.live.get(input_uid, {})
        return sum(1 for last_seen in viewers.values() if now - last_seen <= self.window_s)

    def minutes(self) -> list[tuple[str, int, float]]:
        """(video uid, unix minute, minutes watched) for every minute anyone watched."""
        with self.lock:
            return [(uid, minute, s / 60) for (uid, minute), s in self.watched.items()]


def current_audience() -> Audience:
    audience: Audience = flask.current_app.extensions.setdefault("audience", Audience())
    return audience


def _viewer_key(request: flask.Request) -> str:
    session = request.headers.get("X-Playback-Session-Id")
    if session:
        return f"session:{session}"
    return f"{request.remote_addr}|{request.headers.get('User-Agent', '')}"


def _attribution(media_id: str) -> tuple[str | None, str | None]:
    """The live input a fetch of ``media_id`` watches (if live) and the video it is of."""
    state = current_state()
    with state.lock:
        live_input = state.live_inputs.get(media_id)
        video = state.videos.get(media_id)
        if live_input is not None:
            return live_input.uid, live_input.current_video
        if video is None:
            return None, None
        if video.state == "live-inprogress":
            return video.live_input, video.uid
        return None, video.uid


@audience_delivery.after_app_request
def _count_fetch(response: flask.Response) -> flask.Response:
    """Every manifest or segment served (200) counts its client as watching."""
    request = flask.request
    if request.endpoint not in COUNTED_ENDPOINTS or response.status_code != 200:
        return response
    media_id = str((request.view_args or {}).get("media_id", ""))
    input_uid, video_uid = _attribution(media_id)
    current_audience().seen(_viewer_key(request), input_uid, video_uid, time.time())
    return response


@audience_delivery.get("/<media_id>/views")
def views(media_id: str) -> Any:
    """Cloudflare's live viewer count of an input (anyone may read it: no token, as for
    ``/lifecycle``; a signed input is counted the same)."""
    state = current_state()
    with state.lock:
        known = media_id in state.live_inputs
    if not known:
        return ("Not found", 404)
    count = current_audience().live_viewers(media_id, time.time())
    response = flask.jsonify({"liveViewers": count})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@audience_delivery.route("/__emulator/audience", methods=["GET", "POST"])
def audience_control() -> Any:
    """Tests: ``POST {"windowS": 5}`` shortens the viewer window; GET shows peaks and minutes."""
    audience = current_audience()
    body = flask.request.get_json(silent=True) if flask.request.method == "POST" else None
    if isinstance(body, dict) and isinstance(body.get("windowS"), int | float):
        audience.window_s = float(body["windowS"])
    minutes: dict[str, float] = defaultdict(float)
    for uid, _minute, watched in audience.minutes():
        minutes[uid] += watched
    with audience.lock:
        peaks = dict(audience.peaks)
    return flask.jsonify({"windowS": audience.window_s, "peaks": peaks, "minutes": minutes})


# --- GraphQL Analytics ------------------------------------------------------------------------


class _QueryError(Exception):
    pass


@audience_api.post("/client/v4/graphql")
def graphql() -> Any:
    """The subset of Cloudflare's GraphQL Analytics API that Stream's minutes viewed need:
    ``viewer.accounts(filter: {accountTag}).streamMinutesViewedAdaptiveGroups(filter, limit,
    orderBy)`` with ``count``, ``sum {minutesViewed}`` and ``dimensions {uid date
    datetimeMinute clientCountryName creator}``. Errors come back as GraphQL errors (HTTP 200,
    ``data: null``), as Cloudflare's do."""
    state = current_state()
    if flask.request.headers.get("Authorization") != f"Bearer {state.api_token}":
        return _graphql_errors("Authentication error", 401)
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _graphql_errors("a JSON body with a query string is required", 400)
    variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
    try:
        data = _run_query(body["query"], variables or {}, state.account_id)
    except (GraphQLError, _QueryError) as exc:
        return _graphql_errors(str(exc))
    return flask.jsonify({"data": data, "errors": None})


def _graphql_errors(message: str, status: int = 200) -> Any:
    return flask.jsonify({"data": None, "errors": [{"message": message}]}), status


def _run_query(query: str, variables: dict[str, Any], account_id: str) -> dict[str, Any]:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    viewer = _only_field(operation.selection_set, "viewer")
    accounts = _only_field(viewer.selection_set, "accounts")
    account_filter = _argument(accounts, "filter", variables) or {}
    if account_filter.get("accountTag") != account_id:
        raise _QueryError("accounts: filter.accountTag must be the account's id")
    groups = _only_field(accounts.selection_set, "streamMinutesViewedAdaptiveGroups")
    rows = _groups(groups, variables)
    return {"viewer": {"accounts": [{"streamMinutesViewedAdaptiveGroups": rows}]}}


def _fields(selection: SelectionSetNode | None) -> list[FieldNode]:
    nodes = selection.selections if selection is not None else ()
    return [node for node in nodes if isinstance(node, FieldNode)]


def _only_field(selection: SelectionSetNode | None, name: str) -> FieldNode:
    found = _fields(selection)
    if [f.name.value for f in found] != [name]:
        raise _QueryError(f"expected exactly the field {name!r} here")
    return found[0]


def _argument(node: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, variables)
    return None


def _groups(node: FieldNode, variables: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = {f.name.value: f for f in _fields(node.selection_set)}
    unknown = set(wanted) - {"count", "sum", "dimensions"}
    if unknown:
        raise _QueryError(f"unknown fields of streamMinutesViewedAdaptiveGroups: {sorted(unknown)}")
    dimensions = (
        [f.name.value for f in _fields(wanted["dimensions"].selection_set)]
        if ("dimensions" in wanted)
        else []
    )
    sums = [f.name.value for f in _fields(wanted["sum"].selection_set)] if "sum" in wanted else []
    if set(dimensions) - set(DIMENSIONS) or set(sums) - {"minutesViewed"}:
        raise _QueryError("unknown dimension or sum field")
    keep = _filter(_argument(node, "filter", variables) or {})
    totals: dict[tuple[Any, ...], list[float]] = {}
    for uid, minute, watched in current_audience().minutes():
        row = _dimension_values(uid, minute)
        if keep(row):
            total = totals.setdefault(tuple(row[d] for d in dimensions), [0.0, 0])
            total[0] += watched
            total[1] += 1
    answer = []
    for key, (minutes_viewed, count) in totals.items():
        group: dict[str, Any] = {}
        if "count" in wanted:
            group["count"] = int(count)
        if sums:
            group["sum"] = {"minutesViewed": round(minutes_viewed, 3)}
        if dimensions:
            group["dimensions"] = dict(zip(dimensions, key, strict=True))
        answer.append(group)
    limit = _argument(node, "limit", variables)
    return answer[: int(limit)] if isinstance(limit, int) else answer


def _dimension_values(uid: str, minute: int) -> dict[str, Any]:
    at = datetime.fromtimestamp(minute * 60, UTC)
    return {
        "uid": uid,
        "date": at.date().isoformat(),
        "datetimeMinute": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datetime": at,
        "clientCountryName": "XX",  # locally there is no country
        "creator": "",
    }


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    "_geq": operator.ge,
    "_gt": operator.gt,
    "_leq": operator.le,
    "_lt": operator.lt,
    "_neq": operator.ne,
}


def _filter(conditions: dict[str, Any]) -> Any:
    """``{uid, uid_in, date_geq, datetime_lt, ...}`` as a test of one row (unknown: an error)."""
    tests = [_condition(name, value) for name, value in conditions.items()]
    return lambda row: all(test(row) for test in tests)


def _condition(name: str, value: Any) -> Any:
    if name == "uid_in":
        wanted = set(value or ())
        return lambda row: row["uid"] in wanted
    for dimension, parse_value in (("datetime", _time), ("date", _date), ("uid", str)):
        suffix = name.removeprefix(dimension)
        if name.startswith(dimension) and suffix in _COMPARE:
            bound, compare = parse_value(value), _COMPARE[suffix]
            key = "date" if dimension == "date" else dimension
            return lambda row: compare(_typed(row[key], parse_value), bound)
    raise _QueryError(f"unknown filter {name!r} of streamMinutesViewedAdaptiveGroups")


def _typed(value: Any, parse_value: Any) -> Any:
    return value if isinstance(value, datetime) else parse_value(value)


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise _QueryError(f"not a Time (RFC 3339): {value!r}") from exc


def _date(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise _QueryError(f"not a Date (YYYY-MM-DD): {value!r}") from exc
