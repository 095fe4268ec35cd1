"""The requests that write a stream (create, edit, start, stop, delete), and those of
invitations, guests, templates and events, go over Firestore's and Cloud Tasks' REST APIs: a
fresh instance serving them against the local stack never loads gRPC, the protobuf runtime's
client stubs or the client libraries (what their cold start would pay)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.cloud import firestore

from common.settings import get_settings
from emulators.stack import LocalStack
from tests.integration.conftest import Caller, create_memorial, run_beside

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["grpc", "google.cloud.firestore_v1", "google.cloud.tasks_v2", "firebase_admin"]

# One fresh instance, as functions-framework serves each function, answering the requests in
# turn; it prints each answer's status and which of HEAVY it has loaded by then.
PROBE = """
import json, sys
import functions_framework

token, memorial, heavy = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
headers = {"Authorization": f"Bearer {token}"}
def client(target):
    return functions_framework.create_app(target=target, source="functions/main.py").test_client()
created = client("memorialstreams").post(
    f"/api/memorials/{memorial}/streams", json={"title": "Written over REST"}, headers=headers
)
stream = created.get_json()["id"]
credentials = client("streamcredentials").get(
    f"/api/streams/{stream}/credentials", headers=headers
)
has_key = bool(credentials.get_json()["credentials"]["streamKey"])
answers = [
    ("create", created.status_code),
    ("credentials", credentials.status_code, has_key),
    ("edit", client("stream").put(f"/api/streams/{stream}", json={"title": "Edited"},
                                  headers=headers).status_code),
    ("start", client("startstream").post(f"/api/streams/{stream}/start",
                                         headers=headers).status_code),
    ("stop", client("stopstream").post(f"/api/streams/{stream}/stop",
                                       headers=headers).status_code),
    ("delete", client("stream").delete(f"/api/streams/{stream}", headers=headers).status_code),
]
loaded = sorted(set(heavy) & sys.modules.keys())
print(json.dumps({"stream": stream, "answers": answers, "loaded": loaded}))
"""


def test_creating_editing_starting_stopping_and_deleting_a_stream_load_no_grpc(
    stack: LocalStack, db: firestore.Client, callers: dict[str, Caller], memorial_id: str
) -> None:
    owner = callers["memorial_owner"]
    argv = [sys.executable, "-c", PROBE, owner.id_token, memorial_id, json.dumps(HEAVY)]
    result = run_beside(stack, argv, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == [
        ["create", 200],
        ["credentials", 200, True],  # created with the stream
        ["edit", 200],
        ["start", 200],
        ["stop", 200],
        ["delete", 200],
    ]
    assert report["loaded"] == []
    # Deleted for real, with its private documents (credentials, monitor progress).
    document = db.collection(get_settings().streams_collection).document(report["stream"])
    assert not document.get().exists
    assert list(document.collection("private").list_documents()) == []


# Invitations, a guest's access and playback, templates and events, in one fresh instance.
GUESTS_AND_EVENTS_PROBE = """
import json, sys
import functions_framework

owner, director, memorial, heavy = sys.argv[1:4] + [json.loads(sys.argv[4])]
family, planner = ({"Authorization": f"Bearer {token}"} for token in (owner, director))
guest = {"X-Forwarded-For": "203.0.113.9"}
def client(target):
    return functions_framework.create_app(target=target, source="functions/main.py").test_client()
stream = client("memorialstreams").post(
    f"/api/memorials/{memorial}/streams", json={"title": "Private"}, headers=family
).get_json()["id"]
base = f"/api/streams/{stream}"
invited = client("streaminvitations").post(f"{base}/invitations", json={}, headers=family)
code = invited.get_json()["code"]
template = client("eventtemplates").post("/api/templates", json={
    "name": "Service", "title": "Celebration of life", "timeZone": "America/New_York",
    "sessions": [{"title": "Funeral", "offsetMinutes": 0, "durationMinutes": 60}],
}, headers=planner)
events = f"/api/memorials/{memorial}/events"
event = client("memorialevents").post(events, json={
    "templateId": template.get_json()["id"], "startTime": "2026-12-05T10:00:00-05:00",
}, headers=planner)
event_id = event.get_json()["id"]
answers = [
    ("invite", invited.status_code),
    ("list invitations", client("streaminvitations").get(f"{base}/invitations",
                                                         headers=family).status_code),
    ("guest", client("streamaccess").post(f"{base}/access", json={"code": code},
                                          headers=guest).status_code),
    ("wrong code", client("streamaccess").post(f"{base}/access", json={"code": "0" * 32},
                                               headers=guest).status_code),
    ("playback", client("streamplayback").get(f"{base}/playback", headers=family).status_code),
    ("revoke", client("streaminvitation").delete(f"{base}/invitations/{code}",
                                                 headers=family).status_code),
    ("template", template.status_code),
    ("templates", client("eventtemplates").get("/api/templates", headers=planner).status_code),
    ("event", event.status_code),
    ("events", client("memorialevents").get(events).status_code),
    ("calendar", client("memorialcalendar").get(f"/api/memorials/{memorial}/calendar.ics")
     .status_code),
    ("edit event", client("memorialevent").put(f"{events}/{event_id}", json={"title": "Edited"},
                                               headers=planner).status_code),
    ("delete event", client("memorialevent").delete(f"{events}/{event_id}",
                                                    headers=planner).status_code),
    ("delete template", client("eventtemplate").delete(
        f"/api/templates/{template.get_json()['id']}", headers=planner).status_code),
]
loaded = sorted(set(heavy) & sys.modules.keys())
print(json.dumps({"answers": answers, "loaded": loaded}))
"""


def test_invitations_a_guests_access_templates_and_events_load_no_grpc(
    stack: LocalStack, db: firestore.Client, callers: dict[str, Caller]
) -> None:
    memorial = create_memorial(db, callers, public=False)
    tokens = [callers[role].id_token for role in ("memorial_owner", "funeral_director")]
    argv = [sys.executable, "-c", GUESTS_AND_EVENTS_PROBE, *tokens, memorial, json.dumps(HEAVY)]
    result = run_beside(stack, argv, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == [
        ["invite", 201],
        ["list invitations", 200],
        ["guest", 200],
        ["wrong code", 403],
        ["playback", 200],
        ["revoke", 200],
        ["template", 200],
        ["templates", 200],
        ["event", 200],  # its session's stream created too
        ["events", 200],
        ["calendar", 200],
        ["edit event", 200],
        ["delete event", 200],
        ["delete template", 200],
    ]
    assert report["loaded"] == []
