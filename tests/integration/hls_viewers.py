"""Real HLS clients for the audience tests: each one polls a live manifest and fetches its
newest segment about once a second, as a player does, with a User-Agent of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from emulators.stack import LocalStack

# Locally a viewer counts this long after its last fetch (Cloudflare's window is longer).
WINDOW_S = 4


class HlsViewer(threading.Thread):
    """One player watching ``manifest_url`` until ``stop``; it notes when it first and last
    fetched media the server served (200)."""

    def __init__(self, manifest_url: str, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.manifest_url = manifest_url
        self.headers = {"User-Agent": f"audience-test-player/{name}"}
        self.first: float | None = None
        self.last: float | None = None
        self.segments = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10, headers=self.headers) as http:
            while not self._stopped.is_set():
                self._watch_once(http)
                self._stopped.wait(1.0)

    def _watch_once(self, http: httpx.Client) -> None:
        playlist = http.get(self.manifest_url)
        if playlist.status_code != 200:
            return
        self._served()
        segments = [line for line in playlist.text.splitlines() if line.endswith(".ts")]
        if segments:
            base = self.manifest_url.rsplit("/", 1)[0]
            if http.get(f"{base}/{segments[-1]}").status_code == 200:
                self._served()
                self.segments += 1

    def _served(self) -> None:
        now = time.time()
        self.first = self.first or now
        self.last = now

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=15)

    @property
    def watched_s(self) -> float:
        return (self.last or 0) - (self.first or 0)


def watch(manifest_url: str, count: int) -> list[HlsViewer]:
    """Start ``count`` players of ``manifest_url``."""
    viewers = [HlsViewer(manifest_url, f"viewer-{n}") for n in range(count)]
    for viewer in viewers:
        viewer.start()
    return viewers


MINUTES_QUERY = """
query Minutes($accountTag: string!, $uids: [string!], $since: Time!, $until: Time!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      streamMinutesViewedAdaptiveGroups(
        filter: {uid_in: $uids, datetime_geq: $since, datetime_lt: $until}, limit: 100
      ) {
        count
        sum { minutesViewed }
        dimensions { uid }
      }
    }
  }
}
"""


@pytest.fixture
def short_window(stack: LocalStack) -> Iterator[None]:
    """A viewer counts for ``WINDOW_S`` after its last fetch (30 s by default)."""
    control = f"{stack.cloudflare_url}/__emulator/audience"
    httpx.post(control, json={"windowS": WINDOW_S}).raise_for_status()
    yield
    httpx.post(control, json={"windowS": 30}).raise_for_status()
