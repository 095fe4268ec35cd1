"""The Cloudflare emulator's simulcast outputs answer as Cloudflare's OpenAPI schema says, and
refuse what Cloudflare refuses (PUT changes only ``enabled``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_emulator_schema import schema_of  # noqa: F401 - the fixture

pytestmark = pytest.mark.emulator


def test_output_answers_match_the_schema(
    cloudflare: httpx.Client,
    schema_of: Any,  # noqa: F811 - the fixture imported above
) -> None:
    uid = cloudflare.post("/live_inputs", json={"meta": {"name": "outputs"}}).json()["result"][
        "uid"
    ]
    outputs = f"/live_inputs/{uid}/outputs"
    body = {"url": "rtmp://a.rtmp.youtube.com/live2", "streamKey": "uzya-f19y-g2g9-a2ee-51j2"}

    created = cloudflare.post(outputs, json=body)
    schema_of("stream_output_response_single", created.json())
    output = created.json()["result"]
    assert output["enabled"] is True and output["streamKey"] == body["streamKey"]
    schema_of("stream_output_response_collection", cloudflare.get(outputs).json())
    toggled = cloudflare.put(f"{outputs}/{output['uid']}", json={"enabled": False})
    schema_of("stream_output_response_single", toggled.json())
    assert toggled.json()["result"] == {**output, "enabled": False}

    refused = [
        cloudflare.post(outputs, json={"url": "https://example.org/live", "streamKey": "k"}),
        cloudflare.post(outputs, json={"url": "rtmp://example.org/live"}),
        cloudflare.put(f"{outputs}/{output['uid']}", json={"url": "rtmp://elsewhere/live"}),
    ]
    for answer in refused:
        assert answer.status_code == 400, answer.text
        schema_of("stream_api-response-common-failure", answer.json())
    missing = cloudflare.put(f"{outputs}/{'0' * 32}", json={"enabled": True})
    assert missing.status_code == 404
    schema_of("stream_api-response-common-failure", missing.json())

    assert cloudflare.delete(f"{outputs}/{output['uid']}").json()["success"] is True
    assert cloudflare.get(outputs).json()["result"] == []
