"""Seed the running local stack (``make run``) with a memorial, its family owner and its funeral
director, and print fresh ID tokens for both as shell exports::

    eval "$(make -s seed)"                    # or: eval "$(.venv/bin/python -m emulators.seed)"

Running it again updates the same memorial and users. It only talks to emulators on this machine
(FIRESTORE_EMULATOR_HOST / FIREBASE_AUTH_EMULATOR_HOST, else the ports ``make run`` uses).
Messages go to stderr so that stdout stays fit for ``eval``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

import firebase_admin
import httpx
from firebase_admin import auth
from firebase_admin.exceptions import FirebaseError
from google.api_core import exceptions as google_errors
from google.cloud import firestore

from common.settings import Settings
from emulators.free_ports import USUAL_PORTS
from emulators.stack import PROJECT_ID

# Set on Auth emulator accounts only, so that a developer can also sign in to a local frontend.
LOCAL_PASSWORD = "local-seed-pass"  # noqa: S105
DEFAULT_FIRESTORE_HOST = f"127.0.0.1:{USUAL_PORTS.firestore}"
DEFAULT_AUTH_HOST = f"127.0.0.1:{USUAL_PORTS.auth}"
DEFAULT_LOVED_ONE = "Jane Doe"
DEFAULT_OWNER_EMAIL = "family@example.com"
DEFAULT_DIRECTOR_EMAIL = "director@example.com"
OWNER_CLAIMS = {"role": "owner"}
DIRECTOR_CLAIMS = {"role": "funeral_director"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CONNECT_TIMEOUT_S = 2.0


class SeedError(Exception):
    """A reason to stop, worded for the person who ran the seed."""


@dataclass(frozen=True)
class SeedRequest:
    memorial_id: str
    loved_one_name: str
    slug: str
    is_public: bool
    owner_email: str
    director_email: str
    firestore_host: str
    auth_host: str


@dataclass(frozen=True)
class SeededAccount:
    email: str
    uid: str
    id_token: str


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_request(argv: list[str] | None = None) -> SeedRequest:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.seed", description=__doc__.split("::")[0]
    )
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument(
        "--public",
        dest="is_public",
        action="store_true",
        default=True,
        help="visitors see its public streams (default)",
    )
    visibility.add_argument(
        "--private",
        dest="is_public",
        action="store_false",
        help="only those who manage the memorial see its streams",
    )
    parser.add_argument(
        "--name", dest="loved_one_name", default=DEFAULT_LOVED_ONE, help="the loved one's name"
    )
    parser.add_argument(
        "--slug", help="memorial slug (default: celebration-of-life-for-<name as a slug>)"
    )
    parser.add_argument(
        "--memorial-id", help="Firestore document id (default: the slug, so reruns update it)"
    )
    parser.add_argument("--owner-email", default=DEFAULT_OWNER_EMAIL)
    parser.add_argument("--director-email", default=DEFAULT_DIRECTOR_EMAIL)
    parser.add_argument(
        "--firestore-host",
        default=os.environ.get("FIRESTORE_EMULATOR_HOST") or DEFAULT_FIRESTORE_HOST,
        help=f"host:port (default: $FIRESTORE_EMULATOR_HOST, else {DEFAULT_FIRESTORE_HOST})",
    )
    parser.add_argument(
        "--auth-host",
        default=os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or DEFAULT_AUTH_HOST,
        help=f"host:port (default: $FIREBASE_AUTH_EMULATOR_HOST, else {DEFAULT_AUTH_HOST})",
    )
    args = parser.parse_args(argv)
    slug = args.slug or f"celebration-of-life-for-{slugify(args.loved_one_name)}"
    memorial_id = args.memorial_id or slug
    if not memorial_id or "/" in memorial_id:
        parser.error(f"not a usable memorial id: {memorial_id!r}")
    if args.owner_email.lower() == args.director_email.lower():
        parser.error("the owner and the funeral director need different emails")
    return SeedRequest(**{**vars(args), "memorial_id": memorial_id, "slug": slug})


def require_local_emulator(host: str, what: str) -> None:
    """Refuse anything but a listening emulator on this machine: never a real project."""
    try:
        address = urlsplit(f"//{host}")
        name, port = address.hostname, address.port
    except ValueError as exc:
        raise SeedError(f"{what} address {host!r} is not host:port") from exc
    if name is None or port is None:
        raise SeedError(f"{what} address {host!r} is not host:port")
    if name not in LOOPBACK_NAMES and not name.startswith("127."):
        raise SeedError(f"{what} address {host!r} is not on this machine; refusing to seed it")
    try:
        socket.create_connection((name, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise SeedError(f"nothing answers on {host} ({what}): is `make run` going?") from exc


def ensure_account(app: firebase_admin.App, email: str, claims: dict[str, str]) -> str:
    """The uid of the account with ``email``, created or reset to the local password."""
    try:
        uid = str(auth.get_user_by_email(email, app=app).uid)
    except auth.UserNotFoundError:
        uid = str(auth.create_user(email=email, password=LOCAL_PASSWORD, app=app).uid)
    else:
        auth.update_user(uid, password=LOCAL_PASSWORD, disabled=False, app=app)
    auth.set_custom_user_claims(uid, claims, app=app)
    return uid


def sign_in(auth_host: str, email: str) -> str:
    """A fresh ID token (with the custom claims just set), as a browser would get it."""
    response = httpx.post(
        f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
        params={"key": "local"},  # the emulator accepts any API key
        json={"email": email, "password": LOCAL_PASSWORD, "returnSecureToken": True},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["idToken"])


def upsert_memorial(db: firestore.Client, request: SeedRequest, owner: str, director: str) -> None:
    memorial = db.collection(Settings().memorials_collection).document(request.memorial_id)
    fields = {
        "ownerUid": owner,
        "funeralDirectorUid": director,
        "isPublic": request.is_public,
        "lovedOneName": request.loved_one_name,
        "slug": request.slug,
        "fullSlug": request.slug,
    }
    try:
        memorial.create({**fields, "createdAt": firestore.SERVER_TIMESTAMP})
    except google_errors.AlreadyExists:
        # Merge: fields a local frontend added to the memorial stay; createdAt keeps its value.
        memorial.set(fields, merge=True)


def seed(request: SeedRequest) -> tuple[SeededAccount, SeededAccount]:
    require_local_emulator(request.firestore_host, "Firestore emulator")
    require_local_emulator(request.auth_host, "Auth emulator")
    # Both client libraries take the emulator addresses from the environment only.
    os.environ["FIRESTORE_EMULATOR_HOST"] = request.firestore_host
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = request.auth_host
    app = firebase_admin.initialize_app(options={"projectId": PROJECT_ID}, name="memorial-seed")
    try:
        owner_uid = ensure_account(app, request.owner_email, OWNER_CLAIMS)
        director_uid = ensure_account(app, request.director_email, DIRECTOR_CLAIMS)
    finally:
        firebase_admin.delete_app(app)
    upsert_memorial(firestore.Client(project=PROJECT_ID), request, owner_uid, director_uid)
    owner = SeededAccount(
        request.owner_email, owner_uid, sign_in(request.auth_host, request.owner_email)
    )
    director = SeededAccount(
        request.director_email, director_uid, sign_in(request.auth_host, request.director_email)
    )
    return owner, director


def main(argv: list[str] | None = None) -> int:
    request = parse_request(argv)
    try:
        owner, director = seed(request)
    except SeedError as exc:
        sys.stderr.write(f"seed: {exc}\n")
        return 1
    except (FirebaseError, google_errors.GoogleAPIError, httpx.HTTPError, ValueError) as exc:
        sys.stderr.write(f"seed: the emulators refused: {exc}\n")
        return 1
    visibility = "public" if request.is_public else "private"
    sys.stderr.write(
        f"Memorial {request.memorial_id} ({visibility}, {request.loved_one_name}) in project "
        f"{PROJECT_ID}\n"
        f"  owner            {owner.email} uid {owner.uid}\n"
        f"  funeral director {director.email} uid {director.uid}\n"
        f"  password of both (local only): {LOCAL_PASSWORD}\n"
    )
    exports = {
        "MEMORIAL_ID": request.memorial_id,
        "OWNER_TOKEN": owner.id_token,
        "DIRECTOR_TOKEN": director.id_token,
    }
    sys.stdout.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
