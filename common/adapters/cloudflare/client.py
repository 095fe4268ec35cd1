"""Cloudflare Stream over httpx: envelope parsing, retries that are safe, errors translated."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import SecretStr, ValidationError

from common.adapters.cloudflare.wire import (
    CfAnalyticsData,
    CfDownloads,
    CfEnvelope,
    CfGraphqlAnswer,
    CfLiveInput,
    CfLiveInputList,
    CfLiveViewers,
    CfOutput,
    CfVideo,
)
from common.adapters.tls_roots import trusted_roots
from common.models.domain import (
    ClipSpec,
    DownloadProgress,
    DownloadStatus,
    LiveInput,
    LiveInputSpec,
    Recording,
    WhipAnswer,
)
from common.ports import (
    InputRecordingRules,
    LiveOutput,
    OutputSpec,
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
    TaggedLiveInput,
)

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_BACKOFF_START_S = 0.5
_BACKOFF_CAP_S = 8.0
# A Retry-After longer than this is handed to our caller rather than slept through.
_MAX_INLINE_WAIT_S = 10.0


class RetryPolicy:
    """Which failures are retried and how long to wait (jitter and sleep are injectable)."""

    def __init__(
        self,
        max_retries: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return retry_after_s
        ceiling = min(_BACKOFF_CAP_S, _BACKOFF_START_S * 2**attempt)
        return self._jitter(ceiling / 2, ceiling)

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)


class CloudflareStreamClient:
    """Thin typed client of the Stream API for one account."""

    def __init__(
        self,
        *,
        api_base: str,
        account_id: str,
        api_token: SecretStr,
        retry: RetryPolicy,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=f"{api_base.rstrip('/')}/accounts/{account_id}/stream",
            headers={"Authorization": f"Bearer {api_token.get_secret_value()}"},
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
            verify=trusted_roots(),
        )
        self._retry = retry
        # GraphQL Analytics sits beside the REST API, outside the account's /stream prefix.
        self.account_id = account_id
        self._graphql_url = f"{api_base.rstrip('/')}/graphql"

    def close(self) -> None:
        self._http.close()

    def graphql(self, query: str, variables: dict[str, Any]) -> CfAnalyticsData:
        """A GraphQL Analytics query: read-only, so retried like a GET."""
        body = {"query": query, "variables": variables}
        answer: CfAnalyticsData = self._call(
            "POST", self._graphql_url, json=body, unwrap=_graphql_data
        )
        return answer

    def create_live_input(self, body: dict[str, Any]) -> CfLiveInput:
        # A create is never retried after it may have reached Cloudflare: a retry could
        # make a second, orphaned input. Only a refused connection is safe to retry.
        result = self._call("POST", "/live_inputs", json=body, idempotent=False)
        return CfLiveInput.model_validate(result)

    def get_live_input(self, uid: str) -> CfLiveInput:
        return CfLiveInput.model_validate(self._call("GET", f"/live_inputs/{uid}"))

    def update_live_input(self, uid: str, body: dict[str, Any]) -> CfLiveInput:
        return CfLiveInput.model_validate(self._call("PUT", f"/live_inputs/{uid}", json=body))

    def delete_live_input(self, uid: str) -> None:
        self._call("DELETE", f"/live_inputs/{uid}")

    def delete_video(self, uid: str) -> None:
        self._call("DELETE", f"/{uid}")

    def list_live_inputs(self) -> CfLiveInputList:
        return CfLiveInputList.model_validate(self._call("GET", "/live_inputs"))

    def list_input_videos(self, uid: str) -> list[CfVideo]:
        result = self._call("GET", f"/live_inputs/{uid}/videos")
        return [CfVideo.model_validate(item) for item in result or []]

    def get_video(self, uid: str) -> CfVideo:
        return CfVideo.model_validate(self._call("GET", f"/{uid}"))

    def edit_video(self, uid: str, body: dict[str, Any]) -> CfVideo:
        return CfVideo.model_validate(self._call("POST", f"/{uid}", json=body))

    def create_downloads(self, uid: str) -> CfDownloads:
        # Asking again for a download that exists answers it, so a retry makes no second one.
        return CfDownloads.model_validate(self._call("POST", f"/{uid}/downloads", json={}))

    def get_downloads(self, uid: str) -> CfDownloads:
        return CfDownloads.model_validate(self._call("GET", f"/{uid}/downloads"))

    def clip(self, body: dict[str, Any]) -> CfVideo:
        # Each call makes a new video: never retried once it may have reached Cloudflare.
        result = self._call("POST", "/clip", json=body, idempotent=False)
        try:
            return CfVideo.model_validate(result)
        except ValidationError as exc:
            raise ProviderRejectedError(f"the clip's answer names no video: {exc}") from exc

    def list_outputs(self, input_uid: str) -> list[CfOutput]:
        result = self._call("GET", f"/live_inputs/{input_uid}/outputs")
        return [CfOutput.model_validate(item) for item in result or []]

    def create_output(self, input_uid: str, body: dict[str, Any]) -> CfOutput:
        # Each call adds an output: a retry after it may have landed would relay twice.
        path = f"/live_inputs/{input_uid}/outputs"
        return CfOutput.model_validate(self._call("POST", path, json=body, idempotent=False))

    def update_output(self, input_uid: str, output_uid: str, body: dict[str, Any]) -> CfOutput:
        path = f"/live_inputs/{input_uid}/outputs/{output_uid}"
        return CfOutput.model_validate(self._call("PUT", path, json=body))

    def delete_output(self, input_uid: str, output_uid: str) -> None:
        self._call("DELETE", f"/live_inputs/{input_uid}/outputs/{output_uid}")

    def set_webhook(self, notification_url: str) -> str:
        """Subscribe the account's Stream webhook; returns the signing secret."""
        result = self._call("PUT", "/webhook", json={"notificationUrl": notification_url})
        return str(result["secret"])

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        idempotent: bool = True,
        unwrap: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_once(method, path, json, unwrap or _unwrap)
            except ProviderError as exc:
                wait = self._retry_wait(exc, attempt, idempotent)
                if wait is None:
                    raise
                log.warning(
                    "cloudflare call failed, retrying",
                    extra={"method": method, "path": path, "attempt": attempt, "wait_s": wait},
                )
                self._retry.wait(wait)
                attempt += 1

    def _retry_wait(self, exc: ProviderError, attempt: int, idempotent: bool) -> float | None:
        if attempt >= self._retry.max_retries or not exc.retryable:
            return None
        if not idempotent and not isinstance(exc, _NotSentError):
            return None
        retry_after = exc.retry_after_s if isinstance(exc, ProviderRateLimitedError) else None
        if retry_after is not None and retry_after > _MAX_INLINE_WAIT_S:
            return None
        return self._retry.delay(attempt, retry_after)

    def _send_once(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None,
        unwrap: Callable[[httpx.Response], Any],
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.ConnectError as exc:
            raise _NotSentError(f"cannot connect to Cloudflare: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderUnavailableError(f"Cloudflare timed out on {method} {path}") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(f"Cloudflare transport error: {exc}") from exc
        return unwrap(response)


class _NotSentError(ProviderUnavailableError):
    """The request never reached Cloudflare, so even a create may be retried."""


def _unwrap(response: httpx.Response) -> Any:
    envelope = _envelope(response)
    if response.is_success and envelope.success:
        return envelope.result
    text = "; ".join(e.message for e in envelope.errors) or response.reason_phrase
    status = response.status_code
    if status == 404:
        raise ProviderNotFoundError(f"Cloudflare: not found ({text})", status=status)
    if status == 429:
        raise ProviderRateLimitedError(
            f"Cloudflare rate limit: {text}",
            retry_after_s=_retry_after(response),
        )
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise ProviderUnavailableError(f"Cloudflare {status}: {text}", status=status)
    raise ProviderRejectedError(
        f"Cloudflare rejected the request ({status}): {text}", status=status
    )


def _graphql_data(response: httpx.Response) -> CfAnalyticsData:
    """GraphQL answers ``{data, errors}``: HTTP failures are translated as the REST API's are,
    and errors in a 200 are a query Cloudflare refused."""
    if not response.is_success:
        _unwrap(response)  # raises the error the status means
    try:
        answer = CfGraphqlAnswer.model_validate(response.json())
    except ValueError:
        answer = CfGraphqlAnswer()
    if answer.errors or answer.data is None:
        text = "; ".join(e.message for e in answer.errors or []) or "no data"
        raise ProviderRejectedError(f"Cloudflare GraphQL refused the query: {text}")
    return answer.data


def _envelope(response: httpx.Response) -> CfEnvelope:
    try:
        return CfEnvelope.model_validate(response.json())
    except ValueError:
        return CfEnvelope(success=False)


def _retry_after(response: httpx.Response) -> int:
    try:
        return max(1, int(float(response.headers.get("retry-after", "60"))))
    except ValueError:
        return 60


class CloudflareStreamProvider:
    """``StreamProvider`` backed by Cloudflare Stream."""

    def __init__(
        self,
        client: CloudflareStreamClient,
        whip_http: httpx.Client | None = None,
        *,
        delivery_base: str | None = None,
        delivery_http: httpx.Client | None = None,
    ) -> None:
        self._client = client
        # A client of its own, with no Authorization header: the WHIP host must never see
        # our API token (FRONTEND_CONTRACT.md §11.2 item 4).
        self._whip_http = whip_http or httpx.Client(
            timeout=httpx.Timeout(15.0, connect=5.0), verify=trusted_roots()
        )
        # The customer host (/views), also without our token: its calls are not API calls.
        self._delivery_base = delivery_base.rstrip("/") if delivery_base else None
        self._delivery_http = delivery_http or httpx.Client(
            timeout=httpx.Timeout(5.0, connect=3.0), verify=trusted_roots()
        )

    def whip_offer(self, whip_url: SecretStr, offer_sdp: str) -> WhipAnswer:
        url = whip_url.get_secret_value()
        try:
            response = self._whip_http.post(
                url, content=offer_sdp.encode(), headers={"Content-Type": "application/sdp"}
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"WHIP endpoint unreachable: {exc}") from exc
        _raise_for_whip(response)
        location = response.headers.get("Location")
        return WhipAnswer(
            sdp=response.text, resource_url=urljoin(url, location) if location else None
        )

    def whip_end(self, resource_url: str) -> None:
        try:
            response = self._whip_http.delete(resource_url)
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"WHIP endpoint unreachable: {exc}") from exc
        _raise_for_whip(response)

    def create_live_input(self, spec: LiveInputSpec) -> LiveInput:
        body: dict[str, Any] = {
            "meta": {"name": spec.name, "streamId": spec.stream_id},
            "recording": {
                "mode": "automatic",
                "timeoutSeconds": spec.recording_timeout_seconds,
                "requireSignedURLs": spec.require_signed_urls,
                "allowedOrigins": list(spec.allowed_origins),
                "hideLiveViewerCount": False,
            },
        }
        if spec.delete_recording_after_days is not None:
            body["deleteRecordingAfterDays"] = spec.delete_recording_after_days
        return _live_input(self._client.create_live_input(body))

    def get_live_input(self, uid: str) -> LiveInput:
        live_input = _live_input(self._client.get_live_input(uid))
        if live_input.connection != "unknown":
            return live_input
        # "new_configuration_accepted" says nothing of the connection: a video of the input
        # being recorded now says an encoder is sending (inputs record automatically); none
        # still says nothing (a browser, which is never recorded, may be sending).
        sending = any(
            video.to_recording().state == "live-inprogress"
            for video in self._client.list_input_videos(uid)
        )
        return live_input.model_copy(update={"connection": "connected"}) if sending else live_input

    def find_live_inputs(self, stream_id: str) -> list[TaggedLiveInput]:
        rows = self._client.list_live_inputs().liveInputs
        return [
            TaggedLiveInput(row.uid, row.created)
            for row in rows
            if row.meta.get("streamId") == stream_id
        ]

    def delete_live_input(self, uid: str) -> None:
        self._client.delete_live_input(uid)

    def delete_recording(self, video_uid: str) -> None:
        self._client.delete_video(video_uid)

    def set_input_enabled(self, uid: str, enabled: bool) -> None:
        # ``enabled: false`` "terminates active broadcasts".
        self._update_input(uid, {"enabled": enabled})

    def _update_input(self, uid: str, changes: dict[str, Any]) -> CfLiveInput:
        """PUT ``changes`` with the rest of the input's settings as they are: whether a PUT
        resets the fields it omits is not documented (its recording mode, its meta, whether
        it is enabled, its retention)."""
        current = self._client.get_live_input(uid)
        body: dict[str, Any] = {"meta": current.meta}
        if current.enabled is not None:
            body["enabled"] = current.enabled
        if current.deleteRecordingAfterDays is not None:
            body["deleteRecordingAfterDays"] = current.deleteRecordingAfterDays
        recording = {**(current.recording or {}), **changes.get("recording", {})}
        if recording:
            body["recording"] = recording
        return self._client.update_live_input(
            uid, body | {k: v for k, v in changes.items() if k != "recording"}
        )

    def set_input_allowed_origins(self, uid: str, rules: InputRecordingRules) -> tuple[str, ...]:
        # PUT replaces the recording settings, so the whole object is sent.
        body = {
            "recording": {
                "mode": "automatic",
                "timeoutSeconds": rules.timeout_seconds,
                "requireSignedURLs": rules.require_signed_urls,
                "allowedOrigins": list(rules.allowed_origins),
                "hideLiveViewerCount": False,
            }
        }
        stored = self._update_input(uid, body).recording or {}
        return tuple(stored.get("allowedOrigins") or ())

    def set_video_allowed_origins(self, video_uid: str, origins: tuple[str, ...]) -> None:
        self._client.edit_video(video_uid, {"uid": video_uid, "allowedOrigins": list(origins)})

    def set_video_signed_urls(self, video_uid: str, required: bool) -> None:
        self._client.edit_video(video_uid, {"uid": video_uid, "requireSignedURLs": required})

    def list_recordings(self, live_input_uid: str) -> list[Recording]:
        videos = self._client.list_input_videos(live_input_uid)
        recordings = [video.to_recording() for video in videos]
        return sorted(recordings, key=lambda r: (r.created is None, r.created))

    def create_download(self, video_uid: str) -> DownloadStatus:
        return _download(self._client.create_downloads(video_uid), video_uid)

    def get_download(self, video_uid: str) -> DownloadStatus | None:
        downloads = self._client.get_downloads(video_uid)
        return _download(downloads, video_uid) if downloads.default else None

    def get_recording(self, video_uid: str) -> Recording:
        return self._client.get_video(video_uid).to_recording()

    def clip_recording(self, spec: ClipSpec) -> Recording:
        body: dict[str, Any] = {
            "clippedFromVideoUID": spec.source_uid,
            "startTimeSeconds": spec.start_time_seconds,
            "endTimeSeconds": spec.end_time_seconds,
            # A clip inherits neither setting from its source (CLOUDFLARE_STREAM_FACTS.md).
            "requireSignedURLs": spec.require_signed_urls,
            "allowedOrigins": list(spec.allowed_origins),
            "meta": {"name": spec.name, "streamId": spec.stream_id, "clippedFrom": spec.source_uid},
        }
        return self._client.clip(body).to_recording()

    def list_outputs(self, live_input_uid: str) -> list[LiveOutput]:
        return [_output(wire) for wire in self._client.list_outputs(live_input_uid)]

    def create_output(self, live_input_uid: str, spec: OutputSpec) -> LiveOutput:
        body = {
            "url": spec.url,
            "streamKey": spec.stream_key.get_secret_value(),
            "enabled": spec.enabled,
        }
        return _output(self._client.create_output(live_input_uid, body))

    def set_output_enabled(self, live_input_uid: str, output_uid: str, enabled: bool) -> LiveOutput:
        # PUT can only toggle ``enabled``: url and streamKey are immutable (FACTS: outputs).
        wire = self._client.update_output(live_input_uid, output_uid, {"enabled": enabled})
        return _output(wire)

    def delete_output(self, live_input_uid: str, output_uid: str) -> None:
        self._client.delete_output(live_input_uid, output_uid)

    def live_viewers(self, live_input_uid: str) -> int | None:
        # One try: the next status check reads it again. Whether Cloudflare wants a token for
        # a signed input is not documented; a refusal leaves the count as it was.
        if self._delivery_base is None:
            return None
        url = f"{self._delivery_base}/{live_input_uid}/views"
        try:
            response = self._delivery_http.get(url)
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(f"viewer count unreachable: {exc}") from exc
        if response.status_code in (401, 403, 404):
            log.warning("no viewer count for %s (%d)", live_input_uid, response.status_code)
            return None
        if not response.is_success:
            raise ProviderUnavailableError(f"viewer count failed ({response.status_code})")
        try:
            return CfLiveViewers.model_validate(response.json()).liveViewers
        except ValueError as exc:
            raise ProviderUnavailableError(f"viewer count unreadable: {exc}") from exc

    def minutes_viewed(
        self, video_uids: tuple[str, ...], since: datetime, until: datetime
    ) -> float:
        variables = {
            "accountTag": self._client.account_id,
            "uids": list(video_uids),
            "since": _rfc3339(since),
            "until": _rfc3339(until),
        }
        data = self._client.graphql(_MINUTES_VIEWED_QUERY, variables)
        accounts = data.viewer.accounts if data.viewer else []
        groups = [g for a in accounts for g in a.streamMinutesViewedAdaptiveGroups]
        return float(sum(group.sum.minutesViewed for group in groups))


# Cloudflare's schema names its scalars ``string`` and ``Time`` (RFC 3339); ``uid`` is a video's.
_MINUTES_VIEWED_QUERY = """
query StreamMinutesViewed($accountTag: string!, $uids: [string!], $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      streamMinutesViewedAdaptiveGroups(
        filter: {uid_in: $uids, datetime_geq: $since, datetime_lt: $until}
        limit: 1000
      ) {
        sum { minutesViewed }
        dimensions { uid }
      }
    }
  }
}
"""


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _download(downloads: CfDownloads, video_uid: str) -> DownloadStatus:
    default = downloads.default
    if default is None:
        raise ProviderRejectedError(f"the downloads of {video_uid} came back without default")
    state: DownloadProgress = "inprogress"
    if default.status in ("ready", "error"):
        state = "ready" if default.status == "ready" else "error"
    return DownloadStatus(
        state=state,
        url=default.url,
        percent_complete=max(0.0, min(100.0, default.percentComplete)),
    )


def _output(wire: CfOutput) -> LiveOutput:
    return LiveOutput(
        uid=wire.uid, url=wire.url, stream_key=SecretStr(wire.streamKey), enabled=wire.enabled
    )


def _live_input(wire: CfLiveInput) -> LiveInput:
    if not (wire.rtmps and wire.rtmps.url and wire.rtmps.streamKey):
        raise ProviderRejectedError(f"live input {wire.uid} came back without RTMPS credentials")
    return LiveInput(
        uid=wire.uid,
        rtmp_url=wire.rtmps.url,
        stream_key=SecretStr(wire.rtmps.streamKey),
        whip_url=SecretStr(wire.webRTC.url if wire.webRTC and wire.webRTC.url else ""),
        whep_url=wire.webRTCPlayback.url if wire.webRTCPlayback else None,
        connection=wire.connection(),
        stream_id=str(wire.meta["streamId"]) if "streamId" in wire.meta else None,
    )


def _raise_for_whip(response: httpx.Response) -> None:
    if response.is_success:
        return
    status = response.status_code
    if status == 404:
        raise ProviderNotFoundError("WHIP resource not found", status=status)
    if status >= 500:
        raise ProviderUnavailableError(f"WHIP endpoint failed ({status})", status=status)
    raise ProviderRejectedError(
        f"WHIP endpoint refused ({status}): {response.text[:200]}", status=status
    )
