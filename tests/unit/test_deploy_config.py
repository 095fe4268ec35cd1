"""firebase.json, the indexes and the code agree."""

from __future__ import annotations

import json
from pathlib import Path

import functions.main as entry_points
from common.adapters.firestore.streams import FILTER_FIELDS, ORDERINGS
from emulators.hosting_gateway import HostingGateway, load_event_functions, load_rewrites

ROOT = Path(__file__).resolve().parents[2]


def test_every_filter_and_ordering_pair_has_a_composite_index() -> None:
    indexes = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    declared = {
        tuple((f["fieldPath"], f["order"]) for f in index["fields"])
        for index in indexes
        if index["collectionGroup"] == "mvp_two_streams"
    }
    for ordering in ORDERINGS.values():
        for field in FILTER_FIELDS:
            assert ((field, "ASCENDING"), *ordering) in declared, (field, ordering)


def test_every_rewrite_targets_a_function_and_every_function_is_routed() -> None:
    targets = {target for _, target in load_rewrites()} | set(load_event_functions())
    exported = {
        name
        for name, value in vars(entry_points).items()
        if callable(value)
        and getattr(value, "__module__", "") == entry_points.__name__
        and not name.startswith("_")
    }
    assert targets == exported


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
