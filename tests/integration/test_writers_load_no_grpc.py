"""The requests that write a stream (create, edit, start, stop, delete) go over Firestore's
and Cloud Tasks' REST APIs: a fresh instance serving them against the local stack never loads
gRPC, the protobuf runtime's client stubs or the client libraries (what their cold start
would pay)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.cloud import firestore

from common.settings import get_settings
from emulators.stack import LocalStack
from tests.integration.conftest import Caller, run_beside

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
