"""The local stand-in for Firebase Hosting's CDN: nginx ``proxy_cache`` in front of the API
gateway, keeping only what the functions' ``Cache-Control`` allows.

What it does as Hosting's CDN does where it matters for us:

- Only ``s-maxage`` (else ``max-age``) makes an answer cacheable (no ``proxy_cache_valid``):
  ``private``, ``no-store``, ``no-cache``, an answer that says nothing, or one that sets a cookie
  is never kept. ``Vary`` is honoured.
- No user is served another's answer. Hosting makes ``__session`` part of its cache key; here a
  request carrying ``Authorization`` or a ``__session`` cookie passes the cache by (it is neither
  served from it nor stored in it). Keying by the credential instead would fill the cache with
  entries that are never used again (the functions mark such answers ``private, no-store``) and
  would write every token into the key nginx stores in plain text in each cache file.
- ``stale-while-revalidate`` in the answer: for that many seconds after expiry nginx serves the
  stale copy while one background request refreshes it. ``proxy_cache_use_stale updating`` is
  left out on purpose: it would serve stale copies for any time, not the window the answer gives.
- ``proxy_cache_lock``: a stampede of misses on one URL makes one upstream request.
- ``X-Cache-Status`` says what the cache did (HIT, MISS, BYPASS, EXPIRED, STALE, UPDATING,
  REVALIDATED).
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_STATUS_HEADER = "X-Cache-Status"


def cdn_config(workdir: Path, port: int, upstream: str) -> str:
    """An nginx.conf that listens on 127.0.0.1:``port`` and caches ``upstream`` (``host:port``)
    into ``workdir`` (its temporary files, pid and logs live there too)."""
    # Started as root, nginx would hand its workers to `nobody`, who cannot enter private
    # temporary directories; keep them as the user who started the stack.
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  proxy_cache_path {workdir}/cache levels=1:2 keys_zone=cdn:10m max_size=256m inactive=10m
                   use_temp_path=off;
  map "$http_authorization$cookie___session" $credentialed {{
    "" 0;
    default 1;
  }}
  upstream gateway {{
    server {upstream};
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_read_timeout 60s;
      proxy_cache cdn;
      proxy_cache_key "$scheme://$http_host$request_uri";
      proxy_cache_bypass $credentialed;
      proxy_no_cache $credentialed;
      proxy_cache_revalidate on;
      proxy_cache_background_update on;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;
      add_header {CACHE_STATUS_HEADER} $upstream_cache_status always;
    }}
  }}
}}
"""


def prepare_cdn_dir(workdir: Path) -> Path:
    """The directories nginx writes to, and the path of its config (written by the caller)."""
    for sub in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    return workdir / "nginx.conf"
