"""The Cloudflare emulator's answers validate against Cloudflare's own OpenAPI schema extract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from emulators.stack import LocalStack
from tests.integration.conftest import WebhookRouting, live_input_policy
from tests.integration.test_broadcast_e2e import push, ready_videos, wait_for

pytestmark = pytest.mark.emulator
EXTRACT = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "cloudflare-stream-openapi-2024-08-extract.json"
)
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "cloudflare-stream-openapi-extract.json"


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` spelled the JSON Schema way."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


@pytest.fixture(scope="module")
def schema_of() -> Any:
    source = EXTRACT if EXTRACT.exists() else BUNDLED
    document = as_json_schema(json.loads(source.read_text()))

    def validate(name: str, instance: Any) -> None:
        validator = Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]

    return validate


def test_live_input_video_and_webhook_answers_match_the_schema(
    cloudflare: httpx.Client, stack: LocalStack, schema_of: Any, webhook_routing: WebhookRouting
) -> None:
    created = cloudflare.post(
        "/live_inputs",
        json={"meta": {"name": "schema"}, "recording": {"mode": "automatic", "timeoutSeconds": 1}},
    )
    assert created.status_code == 200
    schema_of("stream_live_input_response_single", created.json())
    uid = created.json()["result"]["uid"]
    schema_of("stream_live_input_response_single", cloudflare.get(f"/live_inputs/{uid}").json())
    updated = cloudflare.put(f"/live_inputs/{uid}", json={"recording": {"allowedOrigins": ["a.b"]}})
    schema_of("stream_live_input_response_single", updated.json())
    schema_of("stream_live_input_response_collection", cloudflare.get("/live_inputs").json())

    assert push(stack.rtmp_url, created.json()["result"]["rtmps"]["streamKey"], 2).wait(60) == 0
    video = wait_for(lambda: ready_videos(cloudflare, uid), 60, "the recording")[0]

    schema_of("stream_video_response_collection", cloudflare.get("").json())
    schema_of("stream_video_response_single", cloudflare.get(f"/{video['uid']}").json())
    edited = cloudflare.post(f"/{video['uid']}", json={"allowedOrigins": ["example.com"]})
    schema_of("stream_video_response_single", edited.json())
    hook = cloudflare.put("/webhook", json={"notificationUrl": "http://127.0.0.1:9/x"})
    schema_of("stream_webhook_response_single", hook.json())
    schema_of("stream_webhook_response_single", cloudflare.get("/webhook").json())
    missing = cloudflare.get("/live_inputs/does-not-exist")
    assert missing.status_code == 404
    schema_of("stream_api-response-common-failure", missing.json())


def test_error_answers_match_the_schema(cloudflare: httpx.Client, schema_of: Any) -> None:
    no_route = cloudflare.get("/live_inputs/x/no-such-route")
    assert no_route.status_code == 404
    schema_of("stream_api-response-common-failure", no_route.json())
    too_soon = cloudflare.post("/live_inputs", json={"deleteRecordingAfterDays": 29})
    assert too_soon.status_code == 400
    schema_of("stream_api-response-common-failure", too_soon.json())
    low_latency = cloudflare.post("/live_inputs", json={"preferLowLatency": True})
    schema_of("stream_live_input_response_single", low_latency.json())


# Bundled like the Stream extract, so the check runs (and can fail) on every checkout.
ALERTING_EXTRACT = BUNDLED.with_name("cloudflare-alerting-openapi-extract.json")


def test_notification_answers_match_the_alerting_schema(alerting: httpx.Client) -> None:
    # `mechanisms.*[].id` is oneOf(uuid string, email string): every string matches both, so
    # read the extract's oneOf as the anyOf it means.
    text = ALERTING_EXTRACT.read_text().replace('"oneOf"', '"anyOf"')
    document = as_json_schema(json.loads(text))

    def check(name: str, instance: Any) -> None:
        validator = Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, errors[:5]

    created = alerting.post(
        "/destinations/webhooks",
        json={"name": "schema", "url": "http://127.0.0.1:9/x", "secret": "s"},
    )
    check("aaa_id_response", created.json())
    listed = alerting.get("/destinations/webhooks")
    check("aaa_webhooks_components-schemas-response_collection", listed.json())
    body = live_input_policy("schema", created.json()["result"]["id"], enabled=False)
    policy = alerting.post("/policies", json=body | {"filters": {"input_id": ["none"]}})
    check("aaa_id_response", policy.json())
    policies = alerting.get("/policies")
    check("aaa_policies_components-schemas-response_collection", policies.json())
    refused = alerting.post("/policies", json={})
    assert refused.status_code == 400
    check("aaa_schemas-api-response-common-failure", refused.json())
