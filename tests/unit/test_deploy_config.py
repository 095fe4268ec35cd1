"""firebase.json, the indexes and the code agree."""

from __future__ import annotations

import inspect
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import functions.main as entry_points
from common.adapters.firestore.documents import (
    CREDENTIALS_SUBCOLLECTION,
    DELETED_INPUTS_COLLECTION,
    EXPIRES_AT_FIELD,
    FILTER_FIELDS,
    ORDERINGS,
)
from common.adapters.firestore.guard_documents import (
    CREATE_QUOTA_COLLECTION,
    IDEMPOTENCY_COLLECTION,
)
from common.adapters.firestore.memorial_events import EVENT_QUERIES
from common.bootstrap import INVITATION_ATTEMPTS_COLLECTION
from common.settings import Settings
from emulators import firestore_events
from emulators.hosting_gateway import HostingGateway, load_event_functions, load_rewrites

ROOT = Path(__file__).resolve().parents[2]


def _declared_indexes(collection: str) -> set[tuple[tuple[str, str], ...]]:
    indexes = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    return {
        tuple((f["fieldPath"], f["order"]) for f in index["fields"])
        for index in indexes
        if index["collectionGroup"] == collection
    }


def test_every_filter_and_ordering_pair_has_a_composite_index_in_every_served_collection() -> None:
    settings = Settings()
    for collection in (settings.streams_collection, *settings.legacy_streams_collections):
        declared = _declared_indexes(collection)
        for ordering in ORDERINGS.values():
            for field in FILTER_FIELDS:
                assert ((field, "ASCENDING"), *ordering) in declared, (collection, field)


def test_every_event_and_template_listing_has_its_composite_index() -> None:
    for collection, field, ordering in EVENT_QUERIES:
        assert ((field, "ASCENDING"), ordering) in _declared_indexes(collection), collection


def test_the_memorial_pages_own_query_has_its_index() -> None:
    # [fullSlug]/+page.server.ts and the management page's listener (FRONTEND_CONTRACT.md §7.5):
    # streams where memorialId == X order by actualStartTime desc.
    assert (("memorialId", "ASCENDING"), ("actualStartTime", "DESCENDING")) in _declared_indexes(
        "streams"
    )


def test_the_trigger_and_the_local_event_bridge_watch_the_collection_the_backend_writes() -> None:
    (trigger,) = [
        f["trigger"]["firestore"] for f in MANIFEST["functions"] if "firestore" in f["trigger"]
    ]
    collection = Settings().streams_collection
    assert trigger["document"] == f"{collection}/{{streamId}}"
    assert MANIFEST["environment"]["LS_STREAMS_COLLECTION"] == collection
    assert firestore_events.build_parser().get_default("collection") == collection


MANIFEST = json.loads((ROOT / "infra" / "functions.json").read_text())


def exported_functions() -> set[str]:
    """The functions ``functions/main.py`` names (each defined in its module)."""
    return set(entry_points.FUNCTION_MODULES)


def test_each_function_is_defined_in_the_module_main_names_and_nowhere_else() -> None:
    entry_points.load_all()
    defined = {
        name: value.__module__
        for module in set(entry_points.FUNCTION_MODULES.values())
        for name, value in vars(sys.modules[module]).items()
        if inspect.isfunction(value) and value.__module__ == module and not name.startswith("_")
    }
    assert defined == entry_points.FUNCTION_MODULES


def test_manifest_deploys_exactly_the_exported_functions_and_hosting_routes_the_http_ones() -> None:
    deployed = {f["name"] for f in MANIFEST["functions"]}
    http = {f["name"] for f in MANIFEST["functions"] if "http" in f["trigger"]}
    assert deployed == exported_functions()
    assert {target for _, target in load_rewrites()} == http
    assert set(load_event_functions()) == deployed - http


def test_build_is_self_contained_and_loads_every_function(tmp_path: Path) -> None:
    build = tmp_path / "functions"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-functions"), str(build)], check=True
    )
    on_runtime = MANIFEST["runtime"] == f"python{sys.version_info.major}{sys.version_info.minor}"
    assert {p.name for p in build.iterdir()} == {
        "main.py",
        "functions",
        "common",
        "requirements.txt",
        ".gcloudignore",  # uploads everything, the bytecode too
        *(["__pycache__"] if on_runtime else []),  # main.py's bytecode
    }
    assert (build / ".gcloudignore").read_text() == ".gcloudignore\n"
    assert not (build / "functions" / "main.py").exists()
    requirements = (build / "requirements.txt").read_text()
    assert requirements == (ROOT / "infra" / "requirements.lock").read_text()
    assert "google-cloud-firestore==" in requirements and "--hash=sha256:" in requirements
    loader = (
        "import functions_framework, json, sys\n"
        "for fn in json.loads(sys.argv[1]):\n"
        "    kind = 'cloudevent' if 'firestore' in fn['trigger'] else 'http'\n"
        "    functions_framework.create_app(target=fn['name'], source='main.py',"
        " signature_type=kind)\n"
        "import common, importlib.util, os\n"
        "print(common.__file__)\n"
        "for module in list(sys.modules.values()):\n"
        "    source = getattr(module, '__file__', None) or ''\n"
        "    if source.startswith(os.getcwd()):\n"
        "        cached = importlib.util.cache_from_source(source)\n"
        "        flags = 'missing'\n"
        "        if os.path.exists(cached):\n"
        "            with open(cached, 'rb') as pyc:\n"
        "                flags = int.from_bytes(pyc.read(8)[4:], 'little')\n"
        "        print('bytecode', source, flags)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", loader, json.dumps(MANIFEST["functions"])],
        cwd=build,
        capture_output=True,
        text=True,
        check=True,
        # Nothing is written while loading: the bytecode found is the build's own.
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    first, *loaded = result.stdout.strip().splitlines()
    assert first.startswith(str(build)), result.stdout
    if not on_runtime:
        pytest.skip("the build ships bytecode only when built by the deployed runtime's Python")
    # Every module of ours a function loads comes with its bytecode, hash-checked (flags 3:
    # valid whatever timestamps the upload gives the files), so no cold start compiles it.
    sources = {line.split()[1]: line.split()[2] for line in loaded}
    assert str(build / "functions" / "streams.py") in sources
    assert str(build / "common" / "models" / "domain.py") in sources
    assert set(sources.values()) == {"3"}, sources


def test_deploy_plan_covers_queue_functions_triggers_secrets_and_site_indexes() -> None:
    # Through the thin infra/deploy.sh wrapper, as `make deploy DRY_RUN=1` would.
    env = {
        "PATH": "/usr/bin:/bin",
        "DRY_RUN": "1",
        "SOURCE": "/src",
        "PROJECT": "demo-plan",
        "PROJECT_NUMBER": "123456789",
        "REGION": "europe-west1",
        "FIRESTORE_LOCATION": "eur3",
        "CLOUDFLARE_ACCOUNT_ID": "acct",
        "CLOUDFLARE_CUSTOMER_CODE": "code",
    }
    output = subprocess.run(
        [str(ROOT / "infra" / "deploy.sh")], env=env, capture_output=True, text=True, check=True
    ).stdout
    plan = [shlex.split(line.split(" || ")[-1]) for line in output.splitlines()]
    deploys = {args[3]: args for args in plan if args[:3] == ["gcloud", "functions", "deploy"]}
    assert set(deploys) == exported_functions()
    assert ["gcloud", "tasks", "queues", "update", "recording-monitor"] in [a[:5] for a in plan]
    trigger = deploys["onstreamwritten"]
    assert "--trigger-event-filters=type=google.cloud.firestore.document.v1.written" in trigger
    assert "--retry" in trigger and "--trigger-http" not in trigger
    # gcloud gives no choice of encoding: Eventarc sends protobuf, as the local bridge does.
    firestore_trigger = next(
        fn["trigger"]["firestore"] for fn in MANIFEST["functions"] if "firestore" in fn["trigger"]
    )
    assert firestore_trigger["eventDataContentType"] == firestore_events.PROTOBUF
    for args in deploys.values():
        secrets = next(a for a in args if a.startswith("--set-secrets="))
        assert "LS_CLOUDFLARE_API_TOKEN=cloudflare-api-token:1" in secrets
        assert "LS_TASK_AUTH_TOKEN" not in secrets  # tasks carry OIDC tokens now
    assert plan[-1][-3:] == ["--only", "firestore:indexes", "--non-interactive"]


def test_every_rewrite_targets_a_function_and_every_function_is_routed() -> None:
    targets = {target for _, target in load_rewrites()} | set(load_event_functions())
    assert targets == exported_functions()


def test_rewrites_send_each_path_to_the_function_that_serves_it() -> None:
    gateway = HostingGateway(load_rewrites(), load_event_functions())
    expected = {
        "/api/streams": "streams",
        "/api/livestreamMVPTwo/streams": "streams",
        "/api/streams/public": "publicstreams",
        "/api/livestreamMVPTwo/public-streams": "publicstreams",
        "/api/livestreamMVPTwo/public/streams": "publicstreams",
        "/api/streams/reorder": "reorderstreams",
        "/api/streams/abc": "stream",
        "/api/livestreamMVPTwo/streams/abc/start": "startstream",
        "/api/streams/abc/stop": "stopstream",
        "/api/memorials/m1/streams": "memorialstreams",
        "/api/memorials/m1/streams/status": "memorialstreamstatus",
        "/api/streams/abc/sync-recording": "syncrecording",
        "/api/livestreamMVPTwo/streams/abc/fix-status": "fixstatus",
        "/api/webhooks/cloudflare/recording": "cloudflarerecordingwebhook",
        "/api/tasks/monitor": "runmonitorcheck",
        "/__events/onstreamwritten": "onstreamwritten",
    }
    for path, target in expected.items():
        assert gateway.target_for(path) == target, path
    assert gateway.target_for("/api/unknown") is None


def test_the_ttl_policy_expires_whip_sessions_and_firebase_accepts_the_index_file() -> None:
    overrides = json.loads((ROOT / "firestore.indexes.json").read_text())["fieldOverrides"]
    # WHIP sessions, stream-creation counts, deleted inputs' notes and idempotency keys expire.
    assert overrides == [
        {
            "collectionGroup": collection,
            "fieldPath": EXPIRES_AT_FIELD,
            "ttl": True,
            "indexes": [],  # a TTL timestamp needs no index, and an index on it hotspots
        }
        for collection in (
            CREDENTIALS_SUBCOLLECTION,
            CREATE_QUOTA_COLLECTION,
            DELETED_INPUTS_COLLECTION,
            INVITATION_ATTEMPTS_COLLECTION,
            IDEMPOTENCY_COLLECTION,
        )
    ]
    firestore_api = ROOT / "emulators/node_modules/firebase-tools/lib/firestore/api"
    index_file = ROOT / "firestore.indexes.json"
    validate = (
        f"const {{FirestoreApi}} = require({json.dumps(str(firestore_api))});"
        "const api = new FirestoreApi();"
        f"api.validateSpec(api.upgradeOldSpec(require({json.dumps(str(index_file))})));"
    )
    result = subprocess.run(["node", "-e", validate], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
