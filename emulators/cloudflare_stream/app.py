"""A local Cloudflare Stream API (base ``/client/v4``) with Cloudflare's envelope and fields.

Control endpoints under ``/__emulator`` let tests inject latency, 5xx and 429 answers.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import flask
from werkzeug.exceptions import MethodNotAllowed, NotFound

from emulators.cloudflare_stream.audience import audience_api, audience_delivery
from emulators.cloudflare_stream.envelopes import Missing as _Missing
from emulators.cloudflare_stream.envelopes import current_broadcasts as _broadcasts
from emulators.cloudflare_stream.envelopes import current_state as _state
from emulators.cloudflare_stream.envelopes import envelope, failure
from emulators.cloudflare_stream.envelopes import existing as _existing
from emulators.cloudflare_stream.media import Broadcasts, Webhooks
from emulators.cloudflare_stream.outputs import MAX_OUTPUTS, new_output, output_problem
from emulators.cloudflare_stream.private import (
    gate_delivery,
    private_api,
    private_delivery,
    requested_path_id,
)
from emulators.cloudflare_stream.state import (
    CHAOS_EXEMPT_HEADER,
    Chaos,
    ChaosRates,
    EmulatorState,
    Fault,
    LiveInputRecord,
    VideoRecord,
    invalid_delete_after_days,
    invalid_prefer_low_latency,
    recording_settings,
)
from emulators.cloudflare_stream.webrtc import InvalidOfferError, WebRtcServer

api = flask.Blueprint("stream_api", __name__, url_prefix="/client/v4/accounts/<account_id>/stream")
control = flask.Blueprint("emulator_control", __name__, url_prefix="/__emulator")
alerting = flask.Blueprint(
    "alerting_api", __name__, url_prefix="/client/v4/accounts/<account_id>/alerting/v3"
)
media_callbacks = flask.Blueprint("media_callbacks", __name__, url_prefix="/__media")
delivery = flask.Blueprint("delivery", __name__)
# Signed URLs: a token in place of the id is verified and resolved to its video or input.
delivery.before_request(gate_delivery)
private_delivery.before_request(gate_delivery)


@private_api.url_value_preprocessor
@alerting.url_value_preprocessor
@api.url_value_preprocessor
def _pop_account(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    flask.g.account_id = (values or {}).pop("account_id", None)


@private_api.before_request
@alerting.before_request
@api.before_request
def _gate() -> Any:
    state = _state()
    if not flask.request.path.startswith("/client/v4/"):
        return None
    with state.lock:
        state.request_count += 1
        fault = next(
            (
                f
                for f in state.pending_faults
                if f.matches(flask.request.method, flask.request.path)
            ),
            None,
        )
        if fault is not None:
            state.pending_faults.remove(fault)
        elif state.chaos is not None and CHAOS_EXEMPT_HEADER not in flask.request.headers:
            fault = state.chaos.api_fault()
        latency = state.latency_s + (fault.delay_s if fault is not None else 0)
    if latency:
        time.sleep(latency)
    if flask.request.headers.get("Authorization") != f"Bearer {state.api_token}":
        return failure(401, 10000, "Authentication error")
    if flask.g.get("account_id") != state.account_id:
        return failure(403, 10000, "Authentication error")
    if fault is not None and fault.status is not None:
        headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s else None
        return failure(
            fault.status, 10013 if fault.status == 429 else 10002, "injected fault", headers
        )
    return None


Record = dict[str, Any]


class _Refused(Exception):
    """A request body Cloudflare refuses: its 400 with error 10005 (the app's error handler
    renders it)."""


def _live_input_body() -> dict[str, Any]:
    """The body of a live input's create or update; Cloudflare's 400 when it is refused."""
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _Refused("Invalid request body")
    problem = invalid_delete_after_days(body) or invalid_prefer_low_latency(body)
    if problem:
        raise _Refused(problem)
    return body


RecordT = TypeVar("RecordT", LiveInputRecord, VideoRecord)


@dataclass(frozen=True)
class _UidRecords(Generic[RecordT]):
    """Live inputs or videos: one read by uid, or deleted, alike for both but for where they are
    kept, how one is shown and what goes with a deleted one."""

    records: Callable[[EmulatorState], dict[str, RecordT]]
    what: str  # "<what> not found"
    shown: Callable[[EmulatorState, RecordT], Record]
    # Once the record is gone (outside the lock): what goes with it; returns the delete's result.
    deleted: Callable[[EmulatorState, str], Any]

    def add_routes(self, blueprint: flask.Blueprint, path: str, name: str) -> None:
        blueprint.add_url_rule(path, f"get_{name}", self.get, methods=["GET"])
        blueprint.add_url_rule(path, f"delete_{name}", self.delete, methods=["DELETE"])

    def one(self, state: EmulatorState, uid: str) -> RecordT:
        return _existing(self.records(state), uid, self.what)

    def get(self, uid: str) -> Any:
        state = _state()
        return envelope(self.shown(state, self.one(state, uid)))

    def delete(self, uid: str) -> Any:
        state = _state()
        with state.lock:
            del self.records(state)[self.one(state, uid).uid]
        return envelope(self.deleted(state, uid))


def _video_deleted(state: EmulatorState, uid: str) -> str:
    with state.lock:
        state.downloads.pop(uid, None)
    return ""  # Cloudflare's result for a deleted video; a deleted live input's is null


_LIVE_INPUTS = _UidRecords[LiveInputRecord](
    records=lambda state: state.live_inputs,
    what="Live input",
    shown=EmulatorState.live_input_json,
    deleted=lambda _, uid: _broadcasts().relays.input_ended(uid),
)
_LIVE_INPUTS.add_routes(api, "/live_inputs/<uid>", "live_input")
_VIDEOS = _UidRecords[VideoRecord](
    records=lambda state: state.videos,
    what="Video",
    shown=EmulatorState.video_json,
    deleted=_video_deleted,
)
_VIDEOS.add_routes(api, "/<uid>", "video")


@api.post("/live_inputs")
def create_live_input() -> Any:
    state = _state()
    record = state.new_live_input(_live_input_body())
    return envelope(state.live_input_json(record))


@api.get("/live_inputs")
def list_live_inputs() -> Any:
    state = _state()
    with state.lock:
        rows = [state.live_input_row(r) for r in state.live_inputs.values()]
    return envelope({"liveInputs": rows, "range": len(rows), "total": len(rows)})


@api.put("/live_inputs/<uid>")
def update_live_input(uid: str) -> Any:
    body = _live_input_body()
    state = _state()
    with state.lock:
        record = _LIVE_INPUTS.one(state, uid)
        if "meta" in body:
            record.meta = dict(body["meta"] or {})
        if "recording" in body:
            record.recording = recording_settings({**record.recording, **body["recording"]})
        if "deleteRecordingAfterDays" in body:
            record.delete_recording_after_days = body["deleteRecordingAfterDays"]
        if "enabled" in body:
            record.enabled = body["enabled"] is not False
        if "preferLowLatency" in body:
            record.prefer_low_latency = body["preferLowLatency"] is True
        record.modified = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not record.enabled:
        # As Cloudflare: disabling an input "terminates active broadcasts". An RTMP
        # publisher is dropped at its next update callback (``media_on_update``).
        server = _webrtc()
        for session in [s for s in server.publishers.values() if s.input_uid == uid]:
            server.run(server.unpublish(session.session_id))
    return envelope(state.live_input_json(record))


@api.get("/live_inputs/<uid>/outputs")
def list_outputs(uid: str) -> Any:
    state = _state()
    with state.lock:
        live_input = _LIVE_INPUTS.one(state, uid)
        outputs = [output.json() for output in live_input.outputs.values()]
    return envelope(outputs)


@api.post("/live_inputs/<uid>/outputs")
def create_output(uid: str) -> Any:
    state = _state()
    body = flask.request.get_json(silent=True)
    with state.lock:
        live_input = _LIVE_INPUTS.one(state, uid)
        problem = output_problem(body)
        if problem is None and len(live_input.outputs) >= MAX_OUTPUTS:
            problem = f"A live input can have at most {MAX_OUTPUTS} outputs"
        if problem or not isinstance(body, dict):
            return failure(400, 10005, problem or "Invalid request body")
        output = new_output(body)
        live_input.outputs[output.uid] = output
    _broadcasts().relays.sync(uid)
    return envelope(output.json())


@api.put("/live_inputs/<uid>/outputs/<output_uid>")
def update_output(uid: str, output_uid: str) -> Any:
    """Only ``enabled`` changes: an output's url and streamKey are immutable."""
    state = _state()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
        return failure(400, 10005, "enabled is required and must be a boolean")
    with state.lock:
        live_input = _LIVE_INPUTS.one(state, uid)
        output = _existing(live_input.outputs, output_uid, "Output")
        output.enabled = body["enabled"]
    _broadcasts().relays.sync(uid)
    return envelope(output.json())


@api.delete("/live_inputs/<uid>/outputs/<output_uid>")
def delete_output(uid: str, output_uid: str) -> Any:
    state = _state()
    with state.lock:
        live_input = _LIVE_INPUTS.one(state, uid)
        del live_input.outputs[_existing(live_input.outputs, output_uid, "Output").uid]
    _broadcasts().relays.sync(uid)
    return envelope(None)


@api.get("/live_inputs/<uid>/videos")
def list_input_videos(uid: str) -> Any:
    state = _state()
    with state.lock:
        videos = [state.video_json(v) for v in state.videos.values() if v.live_input == uid]
    return envelope(videos)


@api.get("")
@api.get("/")
def list_videos() -> Any:
    state = _state()
    args = flask.request.args
    with state.lock:
        videos = list(state.videos.values())
    live_input = args.get("live_input_id") or args.get("liveInput")
    if live_input:
        videos = [v for v in videos if v.live_input == live_input]
    if args.get("status"):
        videos = [v for v in videos if v.state == args["status"]]
    if args.get("search"):
        videos = [v for v in videos if args["search"] in str(v.meta.get("name", ""))]
    return envelope([state.video_json(v) for v in videos], range=len(videos), total=len(videos))


@api.put("/webhook")
def put_webhook() -> Any:
    state = _state()
    body = flask.request.get_json(silent=True) or {}
    url = body.get("notificationUrl") or body.get("notification_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return failure(400, 10005, "notificationUrl must be an http(s) URL")
    with state.lock:
        secret = state.webhook["secret"] if state.webhook else secrets.token_hex(32)
        state.webhook = {
            "notificationUrl": url,
            "secret": secret,
            "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        result = {**state.webhook, "notification_url": url}
    return envelope(result)


@api.get("/webhook")
def get_webhook() -> Any:
    state = _state()
    if state.webhook is None:
        return failure(404, 10003, "No webhook subscription")
    return envelope(state.webhook)


@api.delete("/webhook")
def delete_webhook() -> Any:
    state = _state()
    state.webhook = None
    return envelope("")


@api.post("/<video_uid>")
def edit_video(video_uid: str) -> Any:
    state = _state()
    body = flask.request.get_json(silent=True) or {}
    with state.lock:
        video = _VIDEOS.one(state, video_uid)
        if isinstance(body.get("allowedOrigins"), list):
            video.allowed_origins = [str(o) for o in body["allowedOrigins"]]
        if isinstance(body.get("meta"), dict):
            video.meta = body["meta"]
        if isinstance(body.get("requireSignedURLs"), bool):
            video.require_signed_urls = body["requireSignedURLs"]
    return envelope(state.video_json(video))


@control.post("/faults")
def inject_faults() -> Any:
    """Replace the injected faults. Besides the one-shot ``failNext`` list, ``latencyMs`` and the
    webhook switches, ``chaos`` turns on seeded, probabilistic faults (see ``ChaosRates``), e.g.
    ``{"chaos": {"seed": 7, "serverErrorRate": 0.05, "rateLimitRate": 0.05, "retryAfter": 1,
    "timeoutRate": 0.02, "timeoutMs": 7000, "webhookDropRate": 0.2,
    "webhookDuplicateRate": 0.2, "webhookReorderRate": 0.2, "reorderMaxMs": 8000}}``.
    A body without ``chaos`` turns it off."""
    state = _state()
    body = flask.request.get_json(silent=True) or {}
    try:
        chaos = Chaos(ChaosRates.from_json(body["chaos"])) if body.get("chaos") else None
    except (TypeError, ValueError, AttributeError) as exc:
        return flask.make_response(flask.jsonify({"ok": False, "error": str(exc)}), 400)
    with state.lock:
        state.chaos = chaos
        state.latency_s = float(body.get("latencyMs", 0)) / 1000
        state.pending_faults = [
            Fault(
                int(f["status"]) if f.get("status") is not None else None,
                f.get("retryAfter"),
                f.get("method"),
                f.get("path"),
                float(f.get("delayMs", 0)) / 1000,
            )
            for f in body.get("failNext", [])
        ]
        faults = _broadcasts().webhooks.faults
        faults.drop_next = int(body.get("dropWebhooks", 0))
        faults.duplicate = bool(body.get("duplicateWebhooks", False))
    _broadcasts().webhooks.release_held()
    return flask.jsonify({"ok": True})


@control.get("/webhooks")
def delivered_webhooks() -> Any:
    webhooks = _broadcasts().webhooks
    with webhooks.state.lock:
        return flask.jsonify(list(webhooks.delivered))


@control.get("/relays/<uid>")
def relays_of(uid: str) -> Any:
    """The outputs of live input ``uid`` being relayed now (one ffmpeg each)."""
    return flask.jsonify({"relaying": _broadcasts().relays.relaying(uid)})


@control.get("/chaos")
def chaos_counts() -> Any:
    """How many faults of each kind chaos has injected since it was turned on."""
    state = _state()
    with state.lock:
        chaos = state.chaos
        if chaos is None:
            return flask.jsonify({"enabled": False, "counts": {}})
        return flask.jsonify(
            {"enabled": True, "seed": chaos.rates.seed, "counts": dict(chaos.counts)}
        )


@control.get("/stats")
def stats() -> Any:
    state = _state()
    with state.lock:
        return flask.jsonify(
            {
                "requests": state.request_count,
                "liveInputs": len(state.live_inputs),
                "videos": len(state.videos),
                "pendingFaults": len(state.pending_faults),
            }
        )


def create_app(state: EmulatorState, media_dir: Path) -> flask.Flask:
    """The emulator's WSGI app over ``state``, with media files under ``media_dir``."""
    app = flask.Flask("cloudflare_stream_emulator")
    app.config["EMULATOR_STATE"] = state
    broadcasts = Broadcasts(state, media_dir, Webhooks(state))
    app.config["BROADCASTS"] = broadcasts
    app.config["WEBRTC"] = WebRtcServer(
        broadcasts.on_webrtc_connected, broadcasts.on_webrtc_disconnected
    )
    blueprints = (api, private_api, alerting, control, media_callbacks, delivery, private_delivery)
    # Viewer counts and GraphQL analytics, from what the delivery blueprints serve.
    for blueprint in (*blueprints, audience_api, audience_delivery):
        app.register_blueprint(blueprint)
    app.register_error_handler(NotFound, _no_route)
    app.register_error_handler(_Missing, lambda missing: failure(404, 10003, str(missing)))
    app.register_error_handler(_Refused, lambda refused: failure(400, 10005, str(refused)))
    app.register_error_handler(MethodNotAllowed, _no_route)
    return app


def _no_route(error: NotFound | MethodNotAllowed) -> Any:
    """Cloudflare's JSON answer for an API path it has no route for (HTML elsewhere)."""
    path = flask.request.path
    if not path.startswith("/client/v4/"):
        return error
    route = path.removeprefix("/client/v4")
    body = {
        "success": False,
        "errors": [
            {
                "code": 7003,
                "message": f"Could not route to {route}, perhaps your object identifier is "
                "invalid?",
            },
            {"code": 7000, "message": "No route for that URI"},
        ],
        "messages": [],
        "result": None,
    }
    if isinstance(error, MethodNotAllowed):
        body["errors"] = [{"code": 10000, "message": f"{flask.request.method} method not allowed"}]
        return flask.make_response(flask.jsonify(body), 405)
    return flask.make_response(flask.jsonify(body), 404)


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class _AlertingCollection:
    """One of the Alerting API's CRUD collections (webhook destinations, notification policies):
    the same list/create/get/update/delete over a dict of records in the emulator's state."""

    records: Callable[[EmulatorState], dict[str, Record]]
    fields: Callable[[Record], Record | str]  # a body's stored fields, or why it is refused
    not_found: str
    shown: Callable[[Record], Record]  # what a read returns of a stored record
    stamps_on_create: Callable[[str], Record]
    stamps_on_update: Callable[[str], Record]

    def add_routes(self, blueprint: flask.Blueprint, path: str, name: str) -> None:
        """Cloudflare's routes: list and create at ``path``, get, update and delete below it."""
        item = f"{path}/<record_id>"
        blueprint.add_url_rule(path, f"list_{name}s", self.list_all, methods=["GET"])
        blueprint.add_url_rule(path, f"create_{name}", self.create, methods=["POST"])
        blueprint.add_url_rule(item, f"get_{name}", self.get, methods=["GET"])
        blueprint.add_url_rule(item, f"update_{name}", self.update, methods=["PUT"])
        blueprint.add_url_rule(item, f"delete_{name}", self.delete, methods=["DELETE"])

    def _fields_of_request(self) -> Record | str:
        body = flask.request.get_json(silent=True)
        return self.fields(body if isinstance(body, dict) else {})

    def list_all(self) -> Any:
        state = _state()
        with state.lock:
            rows = [self.shown(record) for record in self.records(state).values()]
        return envelope(rows, result_info={"count": len(rows), "page": 1, "per_page": len(rows)})

    def create(self) -> Any:
        fields = self._fields_of_request()
        if isinstance(fields, str):
            return failure(400, 17000, fields)
        state = _state()
        record = {"id": str(uuid.uuid4()), **self.stamps_on_create(_stamp()), **fields}
        with state.lock:
            self.records(state)[record["id"]] = record
        return envelope({"id": record["id"]})

    def get(self, record_id: str) -> Any:
        record = self.records(_state()).get(record_id)
        if record is None:
            return failure(404, 17001, self.not_found)
        return envelope(self.shown(record))

    def update(self, record_id: str) -> Any:
        fields = self._fields_of_request()
        if isinstance(fields, str):
            return failure(400, 17000, fields)
        state = _state()
        with state.lock:
            record = self.records(state).get(record_id)
            if record is None:
                return failure(404, 17001, self.not_found)
            record.update(fields, **self.stamps_on_update(_stamp()))
        return envelope({"id": record_id})

    def delete(self, record_id: str) -> Any:
        state = _state()
        with state.lock:
            if self.records(state).pop(record_id, None) is None:
                return failure(404, 17001, self.not_found)
        return envelope(None)


def _destination_fields(body: dict[str, Any]) -> dict[str, Any] | str:
    """The destination's stored fields from a create/update body, or why it is refused."""
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return "url must be an http(s) URL"
    if not isinstance(body.get("name"), str) or not body["name"]:
        return "name is required"
    return {"name": body["name"], "url": url, "secret": str(body.get("secret") or "")}


_DESTINATIONS = _AlertingCollection(
    records=lambda state: state.notification_destinations,
    fields=_destination_fields,
    not_found="Webhook destination not found",
    # The secret is never returned, as on Cloudflare.
    shown=lambda destination: {k: v for k, v in destination.items() if k != "secret"},
    stamps_on_create=lambda now: {"type": "generic", "created_at": now},
    stamps_on_update=lambda _now: {},
)
_DESTINATIONS.add_routes(alerting, "/destinations/webhooks", "notification_destination")


def _mechanisms_ok(mechanisms: Any) -> bool:
    return isinstance(mechanisms, dict) and all(
        isinstance(items, list) and all(isinstance(i, dict) and "id" in i for i in items)
        for items in mechanisms.values()
    )


def _filters_ok(filters: Any) -> bool:
    return isinstance(filters, dict) and all(
        isinstance(values, list) and all(isinstance(v, str) for v in values)
        for values in filters.values()
    )


def _policy_problem(body: dict[str, Any]) -> str | None:
    """Why a policy create/update body is refused, if it is."""
    missing = [k for k in ("name", "alert_type", "enabled", "mechanisms") if k not in body]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    checks: list[tuple[Any, str]] = [
        (
            lambda: isinstance(body["name"], str) and isinstance(body["alert_type"], str),
            "name and alert_type must be strings",
        ),
        (lambda: isinstance(body["enabled"], bool), "enabled must be a boolean"),
        (
            lambda: _mechanisms_ok(body["mechanisms"]),
            "mechanisms must map each type to a list of {id}",
        ),
        (
            lambda: all(
                str(m["id"]) in _state().notification_destinations
                for m in body["mechanisms"].get("webhooks", [])
            ),
            "mechanisms.webhooks names an unknown webhook destination",
        ),
        (
            lambda: _filters_ok(body.get("filters") or {}),
            "filters must map each filter to a list of strings",
        ),
    ]
    return next((message for check, message in checks if not check()), None)


def _policy_fields(body: dict[str, Any]) -> dict[str, Any] | str:
    """A policy's stored fields from a create/update body, or why it is refused."""
    problem = _policy_problem(body)
    if problem:
        return problem
    return {
        "name": body["name"],
        "alert_type": body["alert_type"],
        "enabled": body["enabled"],
        "mechanisms": body["mechanisms"],
        "filters": body.get("filters") or {},
        "description": str(body.get("description") or ""),
    }


_POLICIES = _AlertingCollection(
    records=lambda state: state.notification_policies,
    fields=_policy_fields,
    not_found="Notification policy not found",
    shown=dict,
    stamps_on_create=lambda now: {"created": now, "modified": now},
    stamps_on_update=lambda now: {"modified": now},
)
_POLICIES.add_routes(alerting, "/policies", "notification_policy")


@media_callbacks.post("/on_publish")
def media_on_publish() -> Any:
    accepted = _broadcasts().on_publish(flask.request.form.get("name", ""))
    return ("", 200) if accepted else ("unknown or disabled stream key", 403)


@media_callbacks.post("/on_update")
def media_on_update() -> Any:
    """nginx-rtmp asks every few seconds whether a publisher may go on: one whose input was
    disabled, deleted or given new keys is dropped (any answer but 2xx ends it)."""
    state = _state()
    with state.lock:
        live_input = state.input_by_key(flask.request.form.get("name", ""))
        allowed = live_input is not None and live_input.enabled
    return ("", 200) if allowed else ("live input disabled", 403)


@media_callbacks.post("/on_publish_done")
def media_on_publish_done() -> Any:
    _broadcasts().on_publish_done(flask.request.form.get("name", ""))
    return ("", 200)


@media_callbacks.post("/on_record_done")
def media_on_record_done() -> Any:
    form = flask.request.form
    _broadcasts().on_record_done(form.get("name", ""), form.get("path", ""))
    return ("", 200)


def _media_source(media_id: str) -> tuple[LiveInputRecord | None, VideoRecord | None]:
    state = _state()
    with state.lock:
        live_input = state.live_inputs.get(media_id)
        video = state.videos.get(media_id)
        if live_input is not None and live_input.current_video:
            video = state.videos.get(live_input.current_video)
        if video is not None and live_input is None and video.state == "live-inprogress":
            live_input = state.live_inputs.get(video.live_input or "")
    return live_input, video


def _media_dir_for(media_id: str) -> Path | None:
    """Where the files of ``media_id`` (input or video uid) are served from right now."""
    live_input, video = _media_source(media_id)
    broadcasts = _broadcasts()
    if video is not None and video.state == "ready" and video.uid == media_id:
        return broadcasts.video_dir(video.uid)
    if live_input is not None and live_input.status == "connected" and video is not None:
        return broadcasts.live_playlist_dir(live_input)
    return None


@delivery.get("/<media_id>/manifest/video.m3u8")
def manifest(media_id: str) -> Any:
    directory = _media_dir_for(media_id)
    if directory is None:
        return (
            ("Stream has not yet started", 204)
            if media_id in _state().live_inputs
            else ("Not found", 404)
        )
    playlist = directory / ("video.m3u8" if (directory / "video.m3u8").exists() else "index.m3u8")
    if not playlist.exists():
        return ("Stream has not yet started", 204)
    return flask.send_file(playlist, mimetype="application/vnd.apple.mpegurl", max_age=0)


@delivery.get("/<media_id>/manifest/video.mpd")
def dash_manifest(media_id: str) -> Any:
    """The DASH manifest of a processed recording (ffmpeg's dash muxer, fMP4 segments)."""
    live_input, video = _media_source(media_id)
    if video is None or video.state != "ready" or video.uid != media_id:
        if live_input is not None or video is not None:
            # Live playback here is HLS only; DASH appears once the recording is processed.
            return ("Stream has not yet started", 204)
        return ("Not found", 404)
    mpd = _broadcasts().video_dir(video.uid) / "video.mpd"
    if not mpd.exists():
        return ("Not found", 404)
    return flask.send_file(mpd, mimetype="application/dash+xml", max_age=0)


SEGMENT_TYPES = {".ts": "video/mp2t", ".m4s": "video/iso.segment"}


@delivery.get("/<media_id>/manifest/<segment>")
def segment(media_id: str, segment: str) -> Any:
    directory = _media_dir_for(media_id)
    mimetype = SEGMENT_TYPES.get(Path(segment).suffix)
    if directory is None or mimetype is None:
        return ("Not found", 404)
    return flask.send_from_directory(directory, segment, mimetype=mimetype)


@delivery.get("/<media_id>/thumbnails/thumbnail.jpg")
def thumbnail(media_id: str) -> Any:
    video = _state().videos.get(media_id)
    if video is None or video.state != "ready":
        return ("Not found", 404)
    return flask.send_from_directory(_broadcasts().video_dir(media_id), "thumbnail.jpg")


def _allowed_origins_of(media_id: str) -> list[str] | None:
    """The ``allowedOrigins`` that govern playback by ``media_id``: the input's recording
    settings for an input ID, the video's own for a video ID (None: no such media)."""
    state = _state()
    with state.lock:
        live_input = state.live_inputs.get(media_id)
        if live_input is not None:
            return list(live_input.recording.get("allowedOrigins") or [])
        video = state.videos.get(media_id)
        return list(video.allowed_origins) if video is not None else None


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    """Cloudflare's hotlinking rule: ``example.com`` is that host only (not ``www.``),
    ``*.example.com`` its subdomains (not the apex); a port, when listed, must match, and a
    host listed without one matches only the default ports."""
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return False
    if not host:
        return False
    for entry in allowed:
        pattern = entry.split("://", 1)[-1].rstrip("/").lower()
        pattern_host, _, pattern_port = pattern.partition(":")
        if (str(port) if port is not None else "") != pattern_port:
            continue
        if pattern_host.startswith("*."):
            if host.endswith(pattern_host[1:]) and host != pattern_host[2:]:
                return True
        elif host == pattern_host:
            return True
    return False


@delivery.after_request
def _cors(response: flask.Response) -> flask.Response:
    """CORS for manifests, segments and thumbnails, per the media's ``allowedOrigins``."""
    media_id = (flask.request.view_args or {}).get("media_id")
    section = flask.request.path.split("/")[2:3]
    if media_id is None or section not in (["manifest"], ["thumbnails"]):
        return response
    allowed = _allowed_origins_of(str(media_id))
    if allowed is None:
        return response
    origin = flask.request.headers.get("Origin")
    if not allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.vary.add("Origin")
        if origin is None or not origin_allowed(origin, allowed):
            return response
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "Content-Length, Content-Range"
    if flask.request.method == "OPTIONS":
        response.status_code = 204
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = flask.request.headers.get(
            "Access-Control-Request-Headers", "Range"
        )
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


@delivery.get("/<media_id>/lifecycle")
def lifecycle(media_id: str) -> Any:
    live_input, video = _media_source(media_id)
    if live_input is None and video is None:
        return failure(404, 10003, "Not found")
    live = bool(live_input and live_input.status == "connected")
    if live_input is not None and live_input.uid == media_id:
        return flask.jsonify(
            {"isInput": True, "videoUID": video.uid if video else None, "live": live}
        )
    assert video is not None  # noqa: S101 - one of the two exists
    return flask.jsonify(
        {"isInput": False, "videoUID": video.uid, "live": video.state == "live-inprogress"}
    )


@delivery.get("/<media_id>/iframe")
@delivery.get("/<media_id>/watch")
def player(media_id: str) -> Any:
    # The page plays what it was opened with: a signed URL's token, not the id behind it.
    source = f"/{requested_path_id(media_id)}/manifest/video.m3u8"
    return (
        "<!doctype html><title>Stream player (emulator)</title>"
        f'<video controls autoplay muted playsinline src="{source}" style="width:100%"></video>'
        f'<p>HLS: <a href="{source}">{source}</a></p>'
    )


def _webrtc() -> WebRtcServer:
    server: WebRtcServer = flask.current_app.config["WEBRTC"]
    return server


def _sdp_offer() -> str | None:
    content_type = flask.request.headers.get("Content-Type", "")
    body = flask.request.get_data(as_text=True)
    if not content_type.startswith("application/sdp") or not body.startswith("v=0"):
        return None
    return body


@delivery.post("/<whip_secret>/webRTC/publish")
def whip_publish(whip_secret: str) -> Any:
    state = _state()
    with state.lock:
        state.whip_requests.append({"authorization": "Authorization" in flask.request.headers})
        live_input = next(
            (r for r in state.live_inputs.values() if r.whip_secret == whip_secret), None
        )
    if live_input is None:
        return ("Not found", 404)
    if not live_input.enabled:
        return ("Live input disabled", 403)
    offer = _sdp_offer()
    if offer is None:
        return ("Expected an application/sdp offer", 400)
    server = _webrtc()
    if server.is_publishing(live_input.uid):
        return ("Already publishing", 409)
    try:
        session_id, answer = server.run(server.publish(live_input.uid, offer))
    except InvalidOfferError as exc:
        return (f"Invalid SDP offer: {exc}", 400)
    response = flask.make_response(answer, 201)
    response.headers["Content-Type"] = "application/sdp"
    response.headers["Location"] = f"/{whip_secret}/webRTC/publish/{session_id}"
    return response


@delivery.delete("/<whip_secret>/webRTC/publish/<session_id>")
def whip_unpublish(whip_secret: str, session_id: str) -> Any:
    server = _webrtc()
    session = server.publishers.get(session_id)
    live_input = _state().live_inputs.get(session.input_uid) if session else None
    if session is None or live_input is None or live_input.whip_secret != whip_secret:
        return ("Not found", 404)
    server.run(server.unpublish(session_id))
    return ("", 200)


@delivery.post("/<input_uid>/webRTC/play")
def whep_play(input_uid: str) -> Any:
    if input_uid not in _state().live_inputs:
        return ("Not found", 404)
    offer = _sdp_offer()
    if offer is None:
        return ("Expected an application/sdp offer", 400)
    server = _webrtc()
    try:
        answer = server.run(server.play(input_uid, offer))
    except InvalidOfferError as exc:
        return (f"Invalid SDP offer: {exc}", 400)
    if answer is None:
        return ("Stream is not live", 409)
    response = flask.make_response(answer, 201)
    response.headers["Content-Type"] = "application/sdp"
    return response


@control.get("/whip-requests")
def whip_requests() -> Any:
    state = _state()
    with state.lock:
        return flask.jsonify(list(state.whip_requests))
