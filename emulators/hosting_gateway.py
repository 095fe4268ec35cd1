"""Local stand-in for Firebase Hosting: serves every function at the paths firebase.json rewrites.

``python -m emulators.hosting_gateway --port N`` runs each function through functions-framework,
exactly as deployed, behind one base URL. Like Hosting, it passes only the ``__session`` cookie on
to the functions; ``--forward-all-cookies`` stands in for an edge proxy on the site's domain
(e.g. a Cloudflare Worker or nginx) that passes every cookie through unchanged.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any

import functions_framework
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response

from common.openapi import openapi_document
from emulators.free_ports import USUAL_PORTS
from emulators.function_processes import FunctionProcesses

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_SOURCE = ROOT / "functions" / "main.py"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Firebase Hosting strips every other cookie from requests it rewrites to Cloud Functions or
# Cloud Run, so that its CDN can cache (firebase.google.com/docs/hosting/manage-cache).
HOSTING_FORWARDED_COOKIE = "__session"


class CookiePolicy(StrEnum):
    """Which of the browser's cookies reach the functions."""

    HOSTING = "hosting"  # Firebase Hosting rewrites: ``__session`` only
    EDGE = "edge"  # a proxy on the site's domain that forwards every cookie


def hosting_cookie_header(cookie_header: str) -> str | None:
    """What is left of a ``Cookie`` header once Hosting has removed all but ``__session``."""
    kept = [
        pair.strip()
        for pair in cookie_header.split(";")
        if pair.partition("=")[0].strip() == HOSTING_FORWARDED_COOKIE
    ]
    return "; ".join(kept) or None


def forward_cookies(environ: dict[str, Any], policy: CookiePolicy) -> dict[str, Any]:
    """The WSGI environ a function sees: its ``HTTP_COOKIE`` as ``policy`` leaves it."""
    if policy is CookiePolicy.EDGE or "HTTP_COOKIE" not in environ:
        return environ
    forwarded = {key: value for key, value in environ.items() if key != "HTTP_COOKIE"}
    kept = hosting_cookie_header(environ["HTTP_COOKIE"])
    if kept is not None:
        forwarded["HTTP_COOKIE"] = kept
    return forwarded


def load_rewrites(config_path: Path = ROOT / "firebase.json") -> list[tuple[str, str]]:
    """(source glob, function id) pairs, in the order Hosting tries them."""
    config = json.loads(config_path.read_text())
    return [
        (rule["source"], rule["function"]["functionId"])
        for rule in config["hosting"]["rewrites"]
        if "function" in rule
    ]


def load_event_functions(manifest_path: Path = ROOT / "infra" / "functions.json") -> list[str]:
    """Names of the functions triggered by Firestore events (served at ``/__events/{name}``)."""
    manifest = json.loads(manifest_path.read_text())
    return [f["name"] for f in manifest["functions"] if "firestore" in f["trigger"]]


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Hosting globs: ``**`` spans segments, ``*`` stays within one."""
    pattern = re.escape(glob).replace(r"\*\*", ".*").replace(r"\*", "[^/]+")
    return re.compile(f"^{pattern}/?\\Z")


class HostingGateway:
    """WSGI app that dispatches by rewrite rule to one functions-framework app per function."""

    def __init__(
        self,
        rewrites: list[tuple[str, str]],
        event_functions: list[str],
        cookie_policy: CookiePolicy = CookiePolicy.HOSTING,
        *,
        process_per_function: bool = False,
    ) -> None:
        self.cookie_policy = cookie_policy
        events = [(f"/__events/{name}", name) for name in event_functions]
        self._rules = [(glob_to_regex(source), target) for source, target in rewrites + events]
        targets = list(dict.fromkeys(t for _, t in rewrites + events))
        signatures = {t: "cloudevent" if t in event_functions else "http" for t in targets}
        self._apps: dict[str, WsgiApp]
        if process_per_function:
            processes = FunctionProcesses(FUNCTIONS_SOURCE, signatures.items())
            self._apps = {t: functools.partial(processes.proxy, t) for t in targets}
        else:
            self._apps = {
                t: functions_framework.create_app(  # type: ignore[no-untyped-call]
                    target=t, source=str(FUNCTIONS_SOURCE), signature_type=signatures[t]
                )
                for t in targets
            }

    def target_for(self, path: str) -> str | None:
        return next((t for regex, t in self._rules if regex.match(path)), None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/openapi.json":
            document = json.dumps(openapi_document())
            return Response(document, 200, mimetype="application/json")(environ, start_response)
        path = environ.get("PATH_INFO", "")
        target = None if _CONTROL.search(path) else self.target_for(path)
        if target is None:
            body = json.dumps({"error": "Not found", "code": "not-found"})
            not_found = Response(body, 404, mimetype="application/json")
            not_found.headers["Cache-Control"] = "no-store"  # as the functions' own errors
            return not_found(environ, start_response)
        environ = forward_cookies(environ, self.cookie_policy)
        if path.startswith("/__events/"):
            environ = {**environ, "PATH_INFO": "/"}
        return self._apps[target](environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=USUAL_PORTS.gateway)
    parser.add_argument(
        "--forward-all-cookies",
        action="store_true",
        help="pass every cookie to the functions, as an edge proxy does (Hosting passes __session)",
    )
    parser.add_argument(
        "--process-per-function",
        action="store_true",
        help="run each function in a functions-framework process of its own, as Cloud Run does",
    )
    args = parser.parse_args()
    policy = CookiePolicy.EDGE if args.forward_all_cookies else CookiePolicy.HOSTING
    gateway = HostingGateway(
        load_rewrites(),
        load_event_functions(),
        policy,
        process_per_function=args.process_per_function,
    )
    run_simple("127.0.0.1", args.port, gateway, threaded=True)


if __name__ == "__main__":
    main()
