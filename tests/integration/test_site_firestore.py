"""What the site reads from Firestore itself, not through the API (FRONTEND_CONTRACT.md §7.5,
§9): the memorial page's Admin SDK query, the management page's client-SDK listener under the
security rules, and the admin migration that brings earlier backends' documents into view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from emulators.stack import PROJECT_ID, LocalStack
from tests.integration.conftest import Caller, create_memorial, stored

pytestmark = pytest.mark.emulator
Callers = dict[str, Caller]
LONG_AGO = datetime(2025, 9, 30, 18, 0, tzinfo=UTC)


def new_memorial(db: firestore.Client, callers: Callers, *, public: bool = True) -> str:
    return create_memorial(db, callers, public=public, loved_one="Ada Lovelace")


def family_stream(
    api: httpx.Client, callers: Callers, memorial: str, **body: Any
) -> dict[str, Any]:
    """A stream the memorial's family makes through `POST /api/memorials/{id}/streams`."""
    made = api.post(
        f"/api/memorials/{memorial}/streams",
        json={"title": "Funeral"} | body,
        headers=callers["memorial_owner"].bearer,
    )
    assert made.is_success, made.text
    made_stream: dict[str, Any] = made.json()
    return made_stream


def plant(db: firestore.Client, collection: str, document: dict[str, Any], prefix: str) -> str:
    """``document`` written into ``collection`` as an earlier backend left it, under a new id
    that starts with ``prefix``; returns the id."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    db.collection(collection).document(name).set(document)
    return name


def memorial_page_query(db: firestore.Client, memorial: str) -> list[str]:
    """`[fullSlug]/+page.server.ts`, exactly: streams where memorialId == X by actualStartTime."""
    query = (
        db.collection("streams")
        .where(filter=FieldFilter("memorialId", "==", memorial))
        .order_by("actualStartTime", direction=firestore.Query.DESCENDING)
    )
    return [snapshot.id for snapshot in query.stream()]


def sveltekit_document(memorial: str, owner: str, **changes: Any) -> dict[str, Any]:
    """A stream as the SvelteKit server wrote it into `streams` (§2.2), secrets included."""
    document: dict[str, Any] = {
        "title": "Memorial service",
        "description": "",
        "memorialId": memorial,
        "memorialName": "Ada Lovelace",
        "cloudflareId": f"old-input-{uuid.uuid4().hex[:8]}",
        "streamKey": "old-secret-key",
        "streamUrl": "rtmps://live.cloudflare.com:443/live/",
        "playbackUrl": "https://cloudflarestream.com/x/iframe",
        "status": "ready",
        "scheduledStartTime": None,
        "actualStartTime": None,
        "endTime": None,
        "recordingReady": False,
        "recordingUrl": None,
        "recordingDuration": None,
        "isVisible": True,
        "isPublic": True,
        "createdBy": owner,
        "allowedUsers": [],
        "displayOrder": 0,
        "viewerCount": 0,
        "recordingSessions": [],
        "createdAt": LONG_AGO,
        "updatedAt": LONG_AGO,
    }
    document.update(changes)
    return document


def mvp_two_document(memorial: str, owner: str, status: str) -> dict[str, Any]:
    """A stream as the MVP Two handlers wrote it into `mvp_two_streams` (§2.1)."""
    return {
        "title": "Visitation",
        "memorialId": memorial,
        "cloudflareStreamId": f"mvp-input-{uuid.uuid4().hex[:8]}",
        "rtmpStreamKey": "mvp-secret-key",
        "recordingPlaybackUrl": "https://customer-x.cloudflarestream.com/v/manifest/video.m3u8",
        "recordingReady": True,
        "videoId": "mvp-video",
        "status": status,
        "isVisible": True,
        "isPublic": True,
        "whipActive": False,
        "actualStartTime": LONG_AGO,
        "actualEndTime": LONG_AGO + timedelta(hours=1),
        "createdBy": owner,
        "displayOrder": 1,
        "featured": True,
        "freshInputCreated": LONG_AGO,
        "createdAt": LONG_AGO,
        "updatedAt": LONG_AGO,
    }


def migrate_until_done(api: httpx.Client, admin: Caller) -> list[dict[str, Any]]:
    """POST the migration one document at a time, as a resumed run would, until done."""
    replies = []
    for _ in range(1000):
        reply = api.post("/api/streams/migrate?limit=1", headers=admin.bearer)
        assert reply.status_code == 200, reply.text
        replies.append(reply.json())
        if reply.json()["done"]:
            return replies
    raise AssertionError("the migration never finished")


def test_memorial_page_query_finds_every_visible_stream_after_migration(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial = new_memorial(db, callers)
    director, family = callers["funeral_director"], callers["memorial_owner"]
    from_memorial_path = family_stream(api, callers, memorial, isPublic=False)["id"]
    broadcast = api.post(
        "/api/streams", json={"title": "Committal", "memorialId": memorial}, headers=director.bearer
    ).json()["id"]
    api.post(f"/api/streams/{broadcast}/start", headers=director.bearer).raise_for_status()
    api.post(f"/api/streams/{broadcast}/stop", headers=director.bearer).raise_for_status()
    old_server = plant(db, "streams", sveltekit_document(memorial, family.uid), "old")
    partial = sveltekit_document(memorial, family.uid)
    del partial["actualStartTime"]
    no_start_field = plant(db, "streams", partial, "old")
    mvp_two = plant(db, "mvp_two_streams", mvp_two_document(memorial, family.uid, "ended"), "mvp")
    failed = plant(db, "mvp_two_streams", mvp_two_document(memorial, family.uid, "failed"), "mvp")
    everything = {from_memorial_path, broadcast, old_server, no_start_field, mvp_two, failed}

    # Served before any migration, from either collection, legacy statuses mapped.
    listed = api.get(f"/api/memorials/{memorial}/streams", headers=family.bearer).json()
    assert ids_of(listed["allStreams"]) == everything
    legacy = api.get(f"/api/streams/{mvp_two}", headers=family.bearer).json()
    assert (legacy["status"], legacy["cloudflareId"]) == ("completed", legacy["cloudflareStreamId"])
    assert legacy["recordingUrl"].endswith("video.m3u8") and legacy["streamKey"] is None
    assert api.get(f"/api/streams/{failed}").json()["status"] == "error"
    # What the page cannot see yet: the other collection, and a document without the field.
    assert set(memorial_page_query(db, memorial)) == everything - {no_start_field, mvp_two, failed}

    report = api.get("/api/streams/migrate", headers=callers["admin"].bearer).json()
    planned = {change["streamId"]: change["actions"] for change in report["changes"]}
    assert from_memorial_path not in planned and broadcast not in planned
    assert "move to streams" in planned[mvp_two]
    assert "add actualStartTime" in planned[no_start_field]
    assert "remove credential field streamKey" in planned[old_server]
    assert stored(db.collection("mvp_two_streams").document(mvp_two))  # a report writes nothing

    replies = migrate_until_done(api, callers["admin"])
    assert all(reply["migrated"] <= 1 for reply in replies)
    assert sum(reply["migrated"] for reply in replies) >= 4
    again = api.post("/api/streams/migrate", headers=callers["admin"].bearer).json()
    assert (again["migrated"], again["done"]) == (0, True)

    assert set(memorial_page_query(db, memorial)) == everything
    moved = stored(db.collection("streams").document(mvp_two))
    assert moved["cloudflareId"] == moved["cloudflareStreamId"] == legacy["cloudflareId"]
    assert moved["status"] == "completed" and moved["endTime"] == moved["actualEndTime"]
    assert moved["freshInputCreated"] == LONG_AGO  # fields we do not know are kept
    assert "rtmpStreamKey" not in moved
    assert not db.collection("mvp_two_streams").document(mvp_two).get().exists
    assert stored(db.collection("streams").document(failed))["status"] == "error"
    cleaned = stored(db.collection("streams").document(old_server))
    assert "streamKey" not in cleaned and "streamUrl" not in cleaned
    assert cleaned["recordingSessions"] == [] and cleaned["status"] == "ready"
    assert api.get(f"/api/streams/{mvp_two}", headers=family.bearer).json()["id"] == mvp_two


def ids_of(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def planted_with_credentials(db: firestore.Client, callers: Callers) -> tuple[str, str]:
    """A new memorial, and a completed stream of its family's that MVP Two left in
    ``mvp_two_streams`` with its private credentials."""
    memorial = new_memorial(db, callers)
    family = callers["memorial_owner"].uid
    legacy = plant(db, "mvp_two_streams", mvp_two_document(memorial, family, "completed"), "mvp")
    db.collection("mvp_two_streams").document(legacy).collection("private").document(
        "credentials"
    ).set({"streamUrl": "rtmp://x/", "streamKey": "k", "whipUrl": "https://x/publish"})
    return memorial, legacy


def test_writing_to_a_legacy_stream_moves_it_where_the_site_reads(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial, legacy = planted_with_credentials(db, callers)

    renamed = api.put(
        f"/api/streams/{legacy}",
        json={"title": "Visitation (evening)"},
        headers=callers["funeral_director"].bearer,
    )

    assert renamed.status_code == 200, renamed.text
    assert not db.collection("mvp_two_streams").document(legacy).get().exists
    moved = stored(db.collection("streams").document(legacy))
    assert moved["title"] == "Visitation (evening)" and "rtmpStreamKey" not in moved
    private = db.collection("streams").document(legacy).collection("private")
    assert stored(private.document("credentials"))["streamKey"] == "k"
    assert legacy in memorial_page_query(db, memorial)


def test_migration_is_for_admins_only(api: httpx.Client, callers: Callers) -> None:
    assert api.get("/api/streams/migrate").status_code == 401
    for role in ("owner", "memorial_owner", "funeral_director", "stranger"):
        for method in ("GET", "POST"):
            refused = api.request(method, "/api/streams/migrate", headers=callers[role].bearer)
            assert refused.status_code == 403 and refused.json()["error"] == "Admin access required"


# The emulator's first evaluations of the rules (each reads the memorial) can take seconds on a
# loaded 2-core machine; httpx's default of 5 s is not an answer about the rules.
RULES_TIMEOUT_S = 30


def run_query(
    stack: LocalStack, caller: Caller | None, memorial: str, *, ordered: bool
) -> httpx.Response:
    """The management page's client-SDK listener query, as the SDK sends it, under the rules."""
    query: dict[str, Any] = {
        "from": [{"collectionId": "streams"}],
        "where": {
            "fieldFilter": {
                "field": {"fieldPath": "memorialId"},
                "op": "EQUAL",
                "value": {"stringValue": memorial},
            }
        },
    }
    if ordered:
        query["orderBy"] = [{"field": {"fieldPath": "actualStartTime"}, "direction": "DESCENDING"}]
    return httpx.post(
        f"http://127.0.0.1:{stack.ports.firestore}/v1/projects/{PROJECT_ID}/databases/(default)"
        "/documents:runQuery",
        json={"structuredQuery": query},
        headers={"Authorization": f"Bearer {caller.id_token}"} if caller else {},
        timeout=RULES_TIMEOUT_S,
    )


def read_document(stack: LocalStack, caller: Caller, path: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{stack.ports.firestore}/v1/projects/{PROJECT_ID}/databases/(default)"
        f"/documents/{path}",
        headers={"Authorization": f"Bearer {caller.id_token}"},
        timeout=RULES_TIMEOUT_S,
    )


def test_management_pages_listener_works_under_the_rules_and_sees_no_secrets(
    api: httpx.Client, db: firestore.Client, callers: Callers, stack: LocalStack
) -> None:
    memorial = new_memorial(db, callers, public=False)
    made = family_stream(api, callers, memorial, isPublic=False)

    for role in ("memorial_owner", "funeral_director", "admin"):
        for ordered in (False, True):
            answer = run_query(stack, callers[role], memorial, ordered=ordered)
            assert answer.status_code == 200, (role, answer.text)
            documents = [row["document"] for row in answer.json() if "document" in row]
            assert [d["name"].rsplit("/", 1)[1] for d in documents] == [made["id"]]
            assert not {"streamKey", "streamUrl", "whipUrl"} & documents[0]["fields"].keys()
    for role in ("stranger", "owner", "helper"):
        assert run_query(stack, callers[role], memorial, ordered=False).status_code == 403, role
    assert run_query(stack, None, memorial, ordered=True).status_code == 403

    private = f"streams/{made['id']}/private/credentials"
    assert stored(db.document(private))["streamKey"]
    assert read_document(stack, callers["memorial_owner"], private).status_code == 403
    assert read_document(stack, callers["admin"], private).status_code == 403
    assert (
        read_document(stack, callers["memorial_owner"], f"streams/{made['id']}").status_code == 200
    )
    legacy = plant(db, "mvp_two_streams", {"memorialId": memorial}, "mvp")
    assert read_document(stack, callers["admin"], f"mvp_two_streams/{legacy}").status_code == 403


def test_any_write_drops_stream_keys_an_earlier_backend_left_on_the_document(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial = new_memorial(db, callers)
    family = callers["memorial_owner"].uid
    planted = sveltekit_document(memorial, family, rtmps={"streamKey": "k2"})
    old = plant(db, "streams", planted, "old")

    renamed = api.put(
        f"/api/streams/{old}", json={"title": "Renamed"}, headers=callers["memorial_owner"].bearer
    )

    assert renamed.status_code == 200, renamed.text
    document = stored(db.collection("streams").document(old))
    assert document["title"] == "Renamed"
    assert not {"streamKey", "streamUrl", "rtmps"} & document.keys()


def test_migration_keeps_recordings_the_old_server_keyed_its_own_way(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial = new_memorial(db, callers)
    entry = {
        "id": "recording_1759250000_ab12",
        "cloudflareVideoId": "video-uid-1",
        "recordingUrl": "https://customer-x.cloudflarestream.com/video-uid-1/manifest/video.m3u8",
        "playbackUrl": "https://cloudflarestream.com/video-uid-1/iframe",
        "title": "Service - Recording 1",
        "sequenceNumber": 1,
        "recordingReady": True,
    }
    family = callers["memorial_owner"].uid
    old = plant(db, "streams", sveltekit_document(memorial, family, recordings=[entry]), "old")
    listed = api.get(f"/api/streams/{old}/recordings").json()
    assert [r["cloudflareVideoId"] for r in listed["recordings"]] == ["video-uid-1"]

    migrate_until_done(api, callers["admin"])

    (kept,) = stored(db.collection("streams").document(old))["recordings"]
    assert kept["cloudflareVideoId"] == "video-uid-1" and kept["title"] == entry["title"]
    assert kept["recordingUrl"] == entry["recordingUrl"] and kept["recordingReady"] is True


def test_an_unreadable_document_is_skipped_by_listings_and_left_by_the_migration(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial = new_memorial(db, callers)
    readable = family_stream(api, callers, memorial)["id"]
    document = sveltekit_document(memorial, callers["memorial_owner"].uid)
    broken = plant(db, "streams", document | {"recordingMonitor": {"x": 1}}, "broken")

    listed = api.get(f"/api/memorials/{memorial}/streams", headers=callers["admin"].bearer)

    assert listed.status_code == 200
    assert ids_of(listed.json()["allStreams"]) == {readable}
    report = api.get("/api/streams/migrate", headers=callers["admin"].bearer).json()
    (left,) = [c for c in report["changes"] if c["streamId"] == broken]
    assert left["actions"] == ["unreadable as a stream: left in place"]
    assert report["skipped"] >= 1
    assert stored(db.collection("streams").document(broken))["recordingMonitor"] == {"x": 1}


def test_deleting_a_stream_removes_every_copy(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    memorial = new_memorial(db, callers)
    made = family_stream(api, callers, memorial)["id"]
    stale = mvp_two_document(memorial, callers["memorial_owner"].uid, "completed")
    db.collection("mvp_two_streams").document(made).set(stale)

    deleted = api.delete(f"/api/streams/{made}", headers=callers["memorial_owner"].bearer)

    assert deleted.status_code == 200, deleted.text
    assert api.get(f"/api/streams/{made}", headers=callers["admin"].bearer).status_code == 404
    assert not db.collection("mvp_two_streams").document(made).get().exists
    assert not list(db.collection("streams").document(made).collection("private").stream())


def test_deleting_a_legacy_stream_removes_it_and_its_private_documents_where_it_lives(
    api: httpx.Client, db: firestore.Client, callers: Callers
) -> None:
    _, legacy = planted_with_credentials(db, callers)
    private = db.collection("mvp_two_streams").document(legacy).collection("private")

    deleted = api.delete(f"/api/streams/{legacy}", headers=callers["memorial_owner"].bearer)

    assert deleted.status_code == 200, deleted.text
    assert not db.collection("mvp_two_streams").document(legacy).get().exists
    assert list(private.list_documents()) == []
    assert not db.collection("streams").document(legacy).get().exists
