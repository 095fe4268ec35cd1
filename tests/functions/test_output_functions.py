"""``streamoutputs`` (a stream's simulcast outputs: list, add) and ``streamoutput`` (enable,
disable or remove one), through functions-framework over fakes."""

from __future__ import annotations

from typing import Any

from common.ports import ProviderUnavailableError
from tests import people
from tests.functions.calls import bearer, client, error, ok
from tests.functions.conftest import Backend

YOUTUBE = "rtmp://a.rtmp.youtube.com/live2"
KEY = "uzya-f19y-g2g9-a2ee-51j2"


def add_output(
    backend: Backend, stream_id: str, prefix: str = "/api", **body: object
) -> dict[str, Any]:
    payload = {"url": YOUTUBE, "streamKey": KEY} | body
    path = f"{prefix}/streams/{stream_id}/outputs"
    response = client("streamoutputs").post(path, json=payload, headers=bearer(people.OWNER))
    created: dict[str, Any] = ok(response, 201)
    return created


def test_a_manager_adds_an_output_and_gets_only_a_hint_of_its_key(
    backend: Backend, prefix: str
) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)

    created = add_output(backend, stream.id, prefix)

    assert created["streamId"] == stream.id and created["url"] == YOUTUBE
    assert created["streamKeyHint"] == "…51j2" and created["enabled"] is True
    assert created["platform"] == "youtube"
    assert "streamKey" not in created
    stored = backend.provider.outputs[stream.cloudflareId][created["id"]]
    assert stored.stream_key.get_secret_value() == KEY


def test_the_list_never_carries_a_key(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream(on_memorial=people.MEMORIAL.id)
    created = add_output(backend, stream.id)

    response = client("streamoutputs").get(
        f"{prefix}/streams/{stream.id}/outputs", headers=bearer(people.FUNERAL_DIRECTOR)
    )

    body = ok(response)
    assert [o["id"] for o in body["outputs"]] == [created["id"]]
    assert body["maxOutputs"] == 50 and body["note"] is None
    assert KEY not in response.get_data(as_text=True)


def test_an_output_url_that_is_not_rtmp_is_a_400_with_a_clear_message(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/outputs"
    body = {"url": "https://www.youtube.com/live", "streamKey": KEY}

    refused = error(
        client("streamoutputs").post(path, json=body, headers=bearer(people.OWNER)),
        400,
        "invalid-argument",
    )

    assert "rtmp:// or rtmps://" in refused["error"] and refused["field"] == "url"
    assert KEY not in refused["error"]
    assert backend.provider.outputs.get(stream.cloudflareId, {}) == {}


def test_a_body_with_unknown_or_missing_fields_is_a_400(backend: Backend) -> None:
    stream = backend.create_stream()
    path = f"/api/streams/{stream.id}/outputs"
    post = client("streamoutputs").post

    error(post(path, json={"url": YOUTUBE}, headers=bearer(people.OWNER)), 400, "invalid-argument")
    extra = {"url": YOUTUBE, "streamKey": KEY, "title": "x"}
    error(post(path, json=extra, headers=bearer(people.OWNER)), 400, "invalid-argument")


def test_others_get_403_and_anonymous_callers_401(backend: Backend) -> None:
    stream = backend.create_stream()
    created = add_output(backend, stream.id)
    outputs = f"/api/streams/{stream.id}/outputs"
    one = f"{outputs}/{created['id']}"
    body = {"url": YOUTUBE, "streamKey": "stranger-key-1234"}

    error(client("streamoutputs").get(outputs, headers=bearer(people.STRANGER)), 403)
    error(client("streamoutputs").post(outputs, json=body, headers=bearer(people.STRANGER)), 403)
    error(
        client("streamoutput").put(one, json={"enabled": False}, headers=bearer(people.STRANGER)),
        403,
    )
    error(client("streamoutput").delete(one, headers=bearer(people.STRANGER)), 403)
    error(client("streamoutputs").get(outputs), 401, "unauthenticated")
    assert backend.provider.outputs[stream.cloudflareId][created["id"]].enabled is True


def test_put_toggles_enabled_and_delete_removes_the_output(backend: Backend, prefix: str) -> None:
    stream = backend.create_stream()
    created = add_output(backend, stream.id)
    path = f"{prefix}/streams/{stream.id}/outputs/{created['id']}"

    off = ok(
        client("streamoutput").put(path, json={"enabled": False}, headers=bearer(people.OWNER))
    )
    assert off["enabled"] is False and off["streamKeyHint"] == "…51j2"
    error(
        client("streamoutput").put(path, json={"enabled": "no"}, headers=bearer(people.OWNER)),
        400,
        "invalid-argument",
    )
    error(
        client("streamoutput").put(path, json={"url": YOUTUBE}, headers=bearer(people.OWNER)),
        400,
        "invalid-argument",
    )

    deleted = ok(client("streamoutput").delete(path, headers=bearer(people.OWNER)))

    assert deleted == {"streamId": stream.id, "id": created["id"], "deleted": True}
    assert backend.provider.outputs[stream.cloudflareId] == {}
    error(client("streamoutput").delete(path, headers=bearer(people.OWNER)), 404, "not-found")


def test_the_same_destination_twice_is_a_409(backend: Backend) -> None:
    stream = backend.create_stream()
    first = add_output(backend, stream.id)
    path = f"/api/streams/{stream.id}/outputs"
    body = {"url": YOUTUBE, "streamKey": KEY}

    refused = error(
        client("streamoutputs").post(path, json=body, headers=bearer(people.OWNER)), 409
    )

    assert refused["outputId"] == first["id"]


def test_a_cloudflare_outage_is_a_503(backend: Backend) -> None:
    stream = backend.create_stream()
    backend.provider.fail("list_outputs", ProviderUnavailableError("down", status=503))

    response = client("streamoutputs").get(
        f"/api/streams/{stream.id}/outputs", headers=bearer(people.OWNER)
    )

    error(response, 503, "unavailable")
