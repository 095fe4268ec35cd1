"""``Services.preload``: the Cloudflare client's TLS roots load in the background, beside a
request's first round trips, without importing or building the client and without holding
the parts' lock. The probe runs in a fresh interpreter, where nothing is loaded yet."""

from __future__ import annotations

import json

from tests.unit.fresh_interpreter import run_fresh

PROBE = """
import json, sys, threading
from common.bootstrap import Given, Services
from common.settings import Settings

def loaded():
    return sorted({"httpx", "httpcore", "common.adapters.cloudflare.client"} & sys.modules.keys())

started = []  # every thread started from here on, finished or not
start = threading.Thread.start
def recorded_start(thread):
    started.append(thread)
    start(thread)
threading.Thread.start = recorded_start

imported_in_background = []  # every module first imported by a thread other than this one
class ImportWatcher:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if threading.current_thread() is not threading.main_thread():
            imported_in_background.append(name)
        return None  # the usual finders find it
sys.meta_path.insert(0, ImportWatcher)

import ssl
loaded_by = []  # the thread each TLS context was made in
make_context = ssl.create_default_context
def recorded_context(*args, **kwargs):
    loaded_by.append(threading.current_thread().name)
    return make_context(*args, **kwargs)
ssl.create_default_context = recorded_context
services = Services(Settings())
before = loaded()
# Another request building a part meanwhile (holding the parts' lock) holds nothing up.
building, done = threading.Event(), threading.Event()
released_by_us = []
def build_meanwhile():
    with services._building:
        building.set()
        released_by_us.append(done.wait(timeout=10))  # False: the preload waited for it
builder = threading.Thread(target=build_meanwhile)
builder.start()
building.wait(timeout=30)
services.preload("provider")
services.preload("provider")  # once per instance
preloads = [t for t in started if t.name == "preload-provider"]
for thread in preloads:
    thread.join(timeout=30)
done.set()
builder.join(timeout=30)
after = loaded()
from common.adapters import tls_roots
handed_in = Services(Settings(), Given(provider=object()))
handed_in.preload("provider")
print(json.dumps({
    "before": before,
    "after": after,
    "threads": len(preloads),
    "beside a build": released_by_us,
    "roots loaded": tls_roots._load.cache_info().currsize,
    "loaded by": loaded_by,
    "imported in the background": imported_in_background,
    "built": "provider" in services.__dict__,
    "unknown part": services.preload("no-such-part"),
    "handed in": [t.name for t in started[len(preloads) + 1:]],
}))
"""


def test_preloading_the_cloudflare_client_loads_its_tls_roots_in_the_background_alone() -> None:
    report = json.loads(run_fresh(PROBE))
    assert report == {
        "before": [],
        "after": [],  # nothing imported in the background
        "threads": 1,
        "beside a build": [True],
        "roots loaded": 1,
        "loaded by": ["preload-provider"],
        "imported in the background": [],
        "built": False,
        "unknown part": None,
        "handed in": [],
    }
