"""The TLS context every httpx client of an instance shares: the CA bundle (``certifi``, as
httpx uses) loaded once. Each client would otherwise load it again (about 20 ms each)."""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Callable

import certifi

_lock = threading.Lock()


def roots_loader() -> Callable[[], ssl.SSLContext]:
    """``trusted_roots``, for another thread to call without importing anything: the bundle's
    path is found here first (certifi's first call loads importlib's resource readers)."""
    certifi.where()
    return trusted_roots


def trusted_roots() -> ssl.SSLContext:
    """The instance's one context (loaded on first use; concurrent first uses wait for it)."""
    with _lock:
        return _load()


@functools.cache
def _load() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
