"""The one-time signing-key command: Cloudflare's key stored as two new secret versions (the
pem on stdin, never on a command line or in the output), the versions printed to pin."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from infra import signing_key

ENV = {"PROJECT": "p", "CLOUDFLARE_ACCOUNT_ID": "acc", "CLOUDFLARE_API_TOKEN": "tok"}


def cloudflare(seen: list[str]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        result = {"id": "kid-1", "pem": "UEVNLWJhc2U2NA==", "created": "now"}
        return httpx.Response(200, json={"success": True, "result": result})

    return httpx.Client(
        base_url="https://cf/accounts/acc/stream", transport=httpx.MockTransport(answer)
    )


def test_the_key_goes_to_secret_manager_and_only_its_versions_are_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[tuple[list[str], str | None]] = []

    def run(args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        calls.append((args, stdin))
        missing = args[2] == "describe" and args[3] == signing_key.PEM_SECRET
        return subprocess.CompletedProcess(
            args, 1 if missing else 0, "projects/p/secrets/s/versions/3", ""
        )

    seen: list[str] = []
    assert signing_key.main([], ENV, run, cloudflare(seen)) == 0

    assert seen == ["POST /accounts/acc/stream/keys"]
    stdins = {args[4]: stdin for args, stdin in calls if args[2:4] == ["versions", "add"]}
    assert stdins == {signing_key.ID_SECRET: "kid-1", signing_key.PEM_SECRET: "UEVNLWJhc2U2NA=="}
    assert [a[3] for a, _ in calls if a[2] == "create"] == [signing_key.PEM_SECRET]
    assert all("UEVNLWJhc2U2NA==" not in " ".join(args) for args, _ in calls)
    out = capsys.readouterr().out
    assert '"LS_CLOUDFLARE_SIGNING_KEY_PEM": "cloudflare-signing-key-pem:3"' in out
    assert "UEVNLWJhc2U2NA==" not in out


def test_revoke_deletes_the_old_key_and_missing_variables_are_refused() -> None:
    seen: list[str] = []
    assert signing_key.main(["revoke", "kid-0"], ENV, http=cloudflare(seen)) == 0
    assert seen == ["DELETE /accounts/acc/stream/keys/kid-0"]
    assert signing_key.main([], {}) == 2  # noqa: PLR2004
