"""Private videos and keepsakes, in Cloudflare's wire format: signing keys
(``/stream/keys``), signed tokens (``/stream/{uid}/token``), MP4 downloads
(``/stream/{uid}/downloads``, served at ``/<id>/downloads/default.mp4``) and clips
(``/stream/clip``); and the delivery host's check of signed URLs (``gate_delivery``).

The API routes share the main API's gate (auth, faults), registered on ``private_api`` by
``app.py``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import flask

from emulators.cloudflare_stream.envelopes import (
    current_broadcasts,
    current_state,
    envelope,
    existing,
    failure,
)
from emulators.cloudflare_stream.signing import (
    MAX_TOKEN_LIFETIME_S,
    SigningKey,
    TokenRefusedError,
    access_allowed,
    access_rules_problem,
    looks_like_token,
    private_key_from_pem,
    sign,
)
from emulators.cloudflare_stream.state import DownloadRecord, EmulatorState, VideoRecord

private_api = flask.Blueprint(
    "stream_private_api", __name__, url_prefix="/client/v4/accounts/<account_id>/stream"
)
private_delivery = flask.Blueprint("private_delivery", __name__)

INVALID = 10005  # the emulator's code for a refused body, as on its other routes
DEFAULT_TOKEN_LIFETIME_S = 3600


def _body() -> dict[str, Any]:
    body = flask.request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@private_api.post("/keys")
def create_signing_key() -> Any:
    key = SigningKey.generate()
    keyring = current_state().keyring
    with current_state().lock:
        keyring.keys[key.id] = key
    return envelope(key.created_json())


@private_api.get("/keys")
def list_signing_keys() -> Any:
    with current_state().lock:
        keys = list(current_state().keyring.keys.values())
    return envelope([{"id": k.id, "created": k.created} for k in keys])


@private_api.delete("/keys/<key_id>")
def delete_signing_key(key_id: str) -> Any:
    state = current_state()
    with state.lock:
        del state.keyring.keys[existing(state.keyring.keys, key_id, "Signing key").id]
    return envelope("Revoked")


def _media_exists(state: EmulatorState, uid: str) -> None:
    with state.lock:
        if uid not in state.videos:
            existing(state.live_inputs, uid, "Video")


def _token_problem(body: dict[str, Any], now: int) -> str | None:
    """Why a ``/token`` body is refused, if it is."""
    for name in ("exp", "nbf"):
        if name in body and (isinstance(body[name], bool) or not isinstance(body[name], int)):
            return f"{name} must be a unix timestamp (integer)"
    if "exp" in body and not now < body["exp"] <= now + MAX_TOKEN_LIFETIME_S:
        return "exp must be in the future and at most 24 hours from now"
    if "downloadable" in body and not isinstance(body["downloadable"], bool):
        return "downloadable must be a boolean"
    if "accessRules" in body:
        return access_rules_problem(body["accessRules"])
    if ("id" in body) != ("pem" in body):
        return "id and pem must be given together"
    return None


def _signing_key_of(body: dict[str, Any]) -> SigningKey | str:
    """The key a ``/token`` body asks to sign with (its own ``id`` + ``pem``, or Cloudflare's)."""
    state = current_state()
    if "id" not in body:
        return state.keyring.internal()
    with state.lock:
        issued = state.keyring.keys.get(str(body["id"]))
    private_key = private_key_from_pem(str(body["pem"]))
    if issued is None or private_key is None:
        return "id must name a signing key and pem be its base64 PEM"
    return SigningKey(issued.id, issued.created, private_key)


@private_api.post("/<uid>/token")
def create_token(uid: str) -> Any:
    """Cloudflare signs: ``exp`` defaults to 1 h ahead and ``nbf`` to 1 h back, both sent as
    numeric strings as in Cloudflare's examples."""
    state = current_state()
    _media_exists(state, uid)
    body, now = _body(), int(time.time())
    problem = _token_problem(body, now)
    key = _signing_key_of(body) if problem is None else problem
    if isinstance(key, str):
        return failure(400, INVALID, key)
    claims: dict[str, Any] = {
        "sub": uid,
        "kid": key.id,
        "exp": str(body.get("exp", now + DEFAULT_TOKEN_LIFETIME_S)),
        "nbf": str(body.get("nbf", now - DEFAULT_TOKEN_LIFETIME_S)),
    }
    if body.get("downloadable") is True:
        claims["downloadable"] = True
    if body.get("accessRules"):
        claims["accessRules"] = body["accessRules"]
    return envelope({"token": sign(claims, key)})


def _downloads_json(uid: str, record: DownloadRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    url = f"{current_state().public_base}/{uid}/downloads/default.mp4"
    default = {"status": record.status, "url": url, "percentComplete": record.percent_complete}
    return {"default": default}


@private_api.post("/<uid>/downloads")
def create_download(uid: str) -> Any:
    state = current_state()
    with state.lock:
        video = existing(state.videos, uid, "Video")
        if video.state != "ready":
            return failure(400, INVALID, "Video is not ready: downloads need a ready video")
        record = state.downloads.get(uid)
        started = record is None or record.status == "error"
        if started:
            record = state.downloads[uid] = DownloadRecord()
    if started and record is not None:
        current_broadcasts().start_download(video, record)
    return envelope(_downloads_json(uid, record))


@private_api.get("/<uid>/downloads")
def list_downloads(uid: str) -> Any:
    state = current_state()
    with state.lock:
        existing(state.videos, uid, "Video")
        return envelope(_downloads_json(uid, state.downloads.get(uid)))


@private_api.delete("/<uid>/downloads")
def delete_downloads(uid: str) -> Any:
    state = current_state()
    with state.lock:
        existing(state.videos, uid, "Video")
        state.downloads.pop(uid, None)
    current_broadcasts().download_path(uid).unlink(missing_ok=True)
    return envelope("ok")


def _clip_problem(body: dict[str, Any], source: VideoRecord) -> str | None:
    """Why a ``/clip`` body is refused for ``source``, if it is."""
    bounds = (body.get("startTimeSeconds"), body.get("endTimeSeconds"))
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        return "startTimeSeconds and endTimeSeconds are required integers"
    start, end = int(bounds[0] or 0), int(bounds[1] or 0)
    if source.state != "ready":
        return "the video to clip from is not ready"
    if not 0 <= start < end <= source.duration:
        return (
            f"clip bounds must satisfy 0 <= startTimeSeconds < endTimeSeconds <= "
            f"{source.duration} (the video's duration)"
        )
    return None


@private_api.post("/clip")
def create_clip() -> Any:
    """A new video cut from ``clippedFromVideoUID``: the video object (uid, ``clippedFrom``,
    status ``queued``) with the clipping fields of Cloudflare's ``stream_clipping``."""
    state, body = current_state(), _body()
    if not isinstance(body.get("clippedFromVideoUID"), str):
        return failure(400, INVALID, "clippedFromVideoUID is required")
    with state.lock:
        source = existing(state.videos, body["clippedFromVideoUID"], "Video")
        problem = _clip_problem(body, source)
        clip = None if problem else state.new_clip(source, body)
    if clip is None:
        return failure(400, INVALID, str(problem))
    start, end = clip.clip_bounds or (0, 0)
    clipping = {"clippedFromVideoUID": source.uid, "startTimeSeconds": start}
    answer = envelope({**state.video_json(clip), **clipping, "endTimeSeconds": end})
    current_broadcasts().start_clip(clip, source)  # after the answer is made: it says queued
    return answer


@private_delivery.get("/<media_id>/downloads/default.mp4")
def download(media_id: str) -> Any:
    state = current_state()
    with state.lock:
        record = state.downloads.get(media_id)
        ready = record is not None and record.status == "ready"
    if not ready:
        return ("Not found", 404)
    name = flask.request.args.get("filename", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,120}", name):
        name = media_id
    return flask.send_file(
        current_broadcasts().download_path(media_id),
        mimetype="video/mp4",
        as_attachment=True,
        download_name=f"{name}.mp4",
    )


# Delivery endpoints a signed video or input refuses without a token (lifecycle and WebRTC
# are not among them).
GATED = {
    "delivery.manifest",
    "delivery.dash_manifest",
    "delivery.segment",
    "delivery.thumbnail",
    "delivery.player",
    "private_delivery.download",
}


def _requires_signed_urls(state: EmulatorState, uid: str) -> bool:
    """Videos by their own setting; live inputs by ``recording.requireSignedURLs``."""
    with state.lock:
        video = state.videos.get(uid)
        if video is not None:
            return video.require_signed_urls
        live_input = state.live_inputs.get(uid)
        return live_input is not None and live_input.recording.get("requireSignedURLs") is True


def requested_path_id(media_id: str) -> str:
    """The id the request's path carried: the token of a signed URL, else ``media_id``."""
    return str(flask.g.get("path_id", media_id))


def gate_delivery() -> Any:
    """Signed URLs at the delivery host: a token in place of the id is verified (signature by
    a live key, ``exp``/``nbf``, ``accessRules``) and the view then serves its ``sub``; an id
    alone is refused (401) for media that require signed URLs, and a download of such media
    needs ``downloadable: true`` (403). Preflights are resolved but never refused."""
    values, endpoint = flask.request.view_args, flask.request.endpoint or ""
    if endpoint not in GATED or values is None:
        return None
    path_id = str(values["media_id"])
    state = current_state()
    claims: dict[str, Any] | None = None
    refusal: tuple[str, int] | None = None
    if looks_like_token(path_id):
        try:
            claims = state.keyring.verify(path_id)
        except TokenRefusedError as refused:
            refusal = (refused.reason, refused.status)
        else:
            flask.g.path_id = path_id
            values["media_id"] = claims["sub"]
            if not access_allowed(claims.get("accessRules"), flask.request.remote_addr or ""):
                refusal = ("Blocked by the token's accessRules", 403)
    uid = str(values["media_id"])
    if refusal is None and _requires_signed_urls(state, uid):
        if claims is None:
            refusal = ("This video requires a signed URL", 401)
        elif endpoint.endswith(".download") and claims.get("downloadable") is not True:
            refusal = ("The token does not allow downloads (downloadable)", 403)
    if refusal is None or flask.request.method == "OPTIONS":
        return None
    return refusal
