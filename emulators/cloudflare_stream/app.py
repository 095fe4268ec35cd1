"""A local Cloudflare Stream API (base ``/client/v4``) with Cloudflare's envelope and fields.

Control endpoints under ``/__emulator`` let tests inject latency, 5xx and 429 answers.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import flask

from emulators.cloudflare_stream.media import Broadcasts, Webhooks
from emulators.cloudflare_stream.state import (
    EmulatorState,
    Fault,
    LiveInputRecord,
    VideoRecord,
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


def _state() -> EmulatorState:
    state: EmulatorState = flask.current_app.config["EMULATOR_STATE"]
    return state


def _broadcasts() -> Broadcasts:
    broadcasts: Broadcasts = flask.current_app.config["BROADCASTS"]
    return broadcasts


@alerting.url_value_preprocessor
@api.url_value_preprocessor
def _pop_account(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    flask.g.account_id = (values or {}).pop("account_id", None)


def envelope(result: Any, status: int = 200, **extra: Any) -> flask.Response:
    body = {"success": True, "errors": [], "messages": [], "result": result, **extra}
    return flask.make_response(flask.jsonify(body), status)


def failure(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Any:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    response = flask.make_response(flask.jsonify(body), status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


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


@api.post("/live_inputs")
def create_live_input() -> Any:
    state = _state()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return failure(400, 10005, "Invalid request body")
    record = state.new_live_input(body)
    return envelope(state.live_input_json(record))


@api.get("/live_inputs")
def list_live_inputs() -> Any:
    state = _state()
    with state.lock:
        rows = [state.live_input_row(r) for r in state.live_inputs.values()]
    return envelope({"liveInputs": rows, "range": len(rows), "total": len(rows)})


@api.get("/live_inputs/<uid>")
def get_live_input(uid: str) -> Any:
    state = _state()
    record = state.live_inputs.get(uid)
    if record is None:
        return failure(404, 10003, "Live input not found")
    return envelope(state.live_input_json(record))


@api.put("/live_inputs/<uid>")
def update_live_input(uid: str) -> Any:
    state = _state()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return failure(400, 10005, "Invalid request body")
    with state.lock:
        record = state.live_inputs.get(uid)
        if record is None:
            return failure(404, 10003, "Live input not found")
        if "meta" in body:
            record.meta = dict(body["meta"] or {})
        if "recording" in body:
            record.recording = recording_settings({**record.recording, **body["recording"]})
        if "deleteRecordingAfterDays" in body:
            record.delete_recording_after_days = body["deleteRecordingAfterDays"]
        if "enabled" in body:
            record.enabled = body["enabled"] is not False
        record.modified = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return envelope(state.live_input_json(record))


@api.delete("/live_inputs/<uid>")
def delete_live_input(uid: str) -> Any:
    state = _state()
    with state.lock:
        if state.live_inputs.pop(uid, None) is None:
            return failure(404, 10003, "Live input not found")
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


@api.get("/<video_uid>")
def get_video(video_uid: str) -> Any:
    state = _state()
    video = state.videos.get(video_uid)
    if video is None:
        return failure(404, 10003, "Video not found")
    return envelope(state.video_json(video))


@api.post("/<video_uid>")
def edit_video(video_uid: str) -> Any:
    state = _state()
    body = flask.request.get_json(silent=True) or {}
    with state.lock:
        video = state.videos.get(video_uid)
        if video is None:
            return failure(404, 10003, "Video not found")
        if isinstance(body.get("allowedOrigins"), list):
            video.allowed_origins = [str(o) for o in body["allowedOrigins"]]
        if isinstance(body.get("meta"), dict):
            video.meta = body["meta"]
    return envelope(state.video_json(video))


@api.delete("/<video_uid>")
def delete_video(video_uid: str) -> Any:
    state = _state()
    with state.lock:
        if state.videos.pop(video_uid, None) is None:
            return failure(404, 10003, "Video not found")
    return envelope("")


@control.post("/faults")
def inject_faults() -> Any:
    state = _state()
    body = flask.request.get_json(silent=True) or {}
    with state.lock:
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
    return flask.jsonify({"ok": True})


@control.get("/webhooks")
def delivered_webhooks() -> Any:
    webhooks = _broadcasts().webhooks
    with webhooks.state.lock:
        return flask.jsonify(list(webhooks.delivered))


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
    for blueprint in (api, alerting, control, media_callbacks, delivery):
        app.register_blueprint(blueprint)
    return app


@alerting.post("/destinations/webhooks")
def create_notification_destination() -> Any:
    body = flask.request.get_json(silent=True) or {}
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return failure(400, 17000, "url must be an http(s) URL")
    state = _state()
    with state.lock:
        state.notification_destination = {
            "id": secrets.token_hex(16),
            "name": str(body.get("name", "webhook")),
            "url": url,
            "secret": str(body.get("secret") or ""),
        }
        # The secret is never returned, as on Cloudflare.
        return envelope({"id": state.notification_destination["id"]})


@media_callbacks.post("/on_publish")
def media_on_publish() -> Any:
    accepted = _broadcasts().on_publish(flask.request.form.get("name", ""))
    return ("", 200) if accepted else ("unknown or disabled stream key", 403)


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


@delivery.get("/<media_id>/manifest/<segment>")
def segment(media_id: str, segment: str) -> Any:
    directory = _media_dir_for(media_id)
    if directory is None or not segment.endswith(".ts"):
        return ("Not found", 404)
    return flask.send_from_directory(directory, segment, mimetype="video/mp2t")


@delivery.get("/<media_id>/thumbnails/thumbnail.jpg")
def thumbnail(media_id: str) -> Any:
    video = _state().videos.get(media_id)
    if video is None or video.state != "ready":
        return ("Not found", 404)
    return flask.send_from_directory(_broadcasts().video_dir(media_id), "thumbnail.jpg")


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
    source = f"/{media_id}/manifest/video.m3u8"
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
