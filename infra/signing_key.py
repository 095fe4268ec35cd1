"""Create a Stream signing key and store it in Secret Manager (run once; again to rotate).

``python -m infra.signing_key`` asks Cloudflare for a key (``POST
/accounts/{id}/stream/keys``, with a Stream:Edit API token) and adds its ``id`` and ``pem``
(base64, exactly as returned, shown only this once) as new versions of the secrets
``cloudflare-signing-key-id`` and ``cloudflare-signing-key-pem`` (each created if missing,
through ``gcloud secrets``, the value on stdin). It prints the version numbers to pin in
``infra/functions.json`` and never the pem.

Rotation: run it again (a new key; the old one keeps working), pin the new versions in
``infra/functions.json``, ``make deploy``; once the longest token lifetime
(``LS_PLAYBACK_TOKEN_TTL_S``, 2 h by default) has passed since the deploy, revoke the old key
with ``python -m infra.signing_key revoke <old key id>`` (``DELETE /stream/keys/{id}``), which
ends every token it signed.

Environment: PROJECT, CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN; CLOUDFLARE_API_BASE
(default Cloudflare's) and GCLOUD (the gcloud command) are optional.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping

import httpx

from common.settings import CLOUDFLARE_API_BASE

ID_SECRET = "cloudflare-signing-key-id"  # noqa: S105 - a secret's name
PEM_SECRET = "cloudflare-signing-key-pem"  # noqa: S105 - a secret's name
Runner = Callable[[list[str], str | None], subprocess.CompletedProcess[str]]


def _run(args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)  # noqa: S603


def _api(env: Mapping[str, str], http: httpx.Client | None) -> httpx.Client:
    base = env.get("CLOUDFLARE_API_BASE", CLOUDFLARE_API_BASE).rstrip("/")
    account = env["CLOUDFLARE_ACCOUNT_ID"]
    return http or httpx.Client(
        base_url=f"{base}/accounts/{account}/stream",
        headers={"Authorization": f"Bearer {env['CLOUDFLARE_API_TOKEN']}"},
        timeout=30,
    )


def create_key(env: Mapping[str, str], http: httpx.Client | None = None) -> tuple[str, str]:
    """A new signing key at Cloudflare: its ``id`` and base64 ``pem``."""
    response = _api(env, http).post("/keys")
    response.raise_for_status()
    result = response.json()["result"]
    return str(result["id"]), str(result["pem"])


def revoke_key(env: Mapping[str, str], key_id: str, http: httpx.Client | None = None) -> None:
    """Revoke a signing key: every token it signed stops playing."""
    _api(env, http).delete(f"/keys/{key_id}").raise_for_status()


def add_version(project: str, secret: str, value: str, gcloud: str, run: Runner) -> str:
    """Add ``value`` as a new version of ``secret`` (created if missing); its version."""
    exists = run([gcloud, "secrets", "describe", secret, f"--project={project}"], None)
    if exists.returncode != 0:
        created = run([gcloud, "secrets", "create", secret, f"--project={project}"], None)
        if created.returncode != 0:
            raise RuntimeError(f"gcloud secrets create {secret} failed: {created.stderr}")
    added = run(
        [
            gcloud,
            "secrets",
            "versions",
            "add",
            secret,
            "--data-file=-",
            f"--project={project}",
            "--format=value(name)",
        ],
        value,
    )
    if added.returncode != 0:
        raise RuntimeError(f"gcloud secrets versions add {secret} failed: {added.stderr}")
    return added.stdout.strip().rsplit("/", 1)[-1]


def main(
    argv: list[str], env: Mapping[str, str], run: Runner = _run, http: httpx.Client | None = None
) -> int:
    """Create and store a key, or (``revoke <id>``) revoke one; prints what to pin."""
    missing = [
        n for n in ("PROJECT", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN") if not env.get(n)
    ]
    if missing:
        sys.stderr.write(f"missing environment: {', '.join(missing)}\n")
        return 2
    if argv[:1] == ["revoke"] and len(argv) == 2:  # noqa: PLR2004 - "revoke <id>"
        revoke_key(env, argv[1], http)
        sys.stdout.write(f"revoked signing key {argv[1]}\n")
        return 0
    key_id, pem = create_key(env, http)
    gcloud = env.get("GCLOUD", "gcloud")
    project = env["PROJECT"]
    versions = {
        "LS_CLOUDFLARE_SIGNING_KEY_ID": (
            ID_SECRET,
            add_version(project, ID_SECRET, key_id, gcloud, run),
        ),
        "LS_CLOUDFLARE_SIGNING_KEY_PEM": (
            PEM_SECRET,
            add_version(project, PEM_SECRET, pem, gcloud, run),
        ),
    }
    sys.stdout.write(f"signing key {key_id} stored; pin in infra/functions.json secrets:\n")
    for variable, (secret, version) in versions.items():
        sys.stdout.write(f'  "{variable}": "{secret}:{version}"\n')
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], os.environ))
