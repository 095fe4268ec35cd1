"""The deploy plan of the livestream backend, as data, and the command that prints or runs it.

``python -m infra.deploy`` (``make deploy``) deploys what the backend owns in a Firebase
project where the site already runs, and nothing else:

1. the APIs it needs (``gcloud services enable``, idempotent);
2. one service account per role of function, created only where ``describe`` finds none:
   the public HTTP functions, the Cloud Tasks targets, the Firestore trigger, the task
   invoker (the identity of the tasks' OIDC tokens), the Eventarc trigger identity and the
   Cloud Build identity; each gets only the roles it needs (project roles, the secrets it
   reads, ``actAs`` on the task invoker for those that enqueue tasks);
3. the Cloud Tasks queue (created when missing, then updated), its rate sized from
   Cloudflare's API budget (``queue_rate_limit``);
4. every function of ``infra/functions.json`` with its service account, its secrets, the
   production environment and its access: public HTTP functions ``--allow-unauthenticated``,
   task targets and the trigger ``--no-allow-unauthenticated`` (the task invoker and the
   Eventarc identity get ``roles/run.invoker`` on them);
5. the Firestore indexes and TTL policy (``firebase deploy --only firestore:indexes``; in
   non-interactive mode it deletes no index it does not know).

The site's Hosting config and Firestore rules are the site's: ``python -m infra.deploy
snippets`` prints the rewrites and the rules block to merge into them. Only
``DEPLOY_SITE_CONFIG=1`` deploys this repository's ``firebase.json`` Hosting and
``firestore.rules`` as they are (a project with no other site, e.g. staging).

Environment: PROJECT, REGION, FIRESTORE_LOCATION, CLOUDFLARE_ACCOUNT_ID and
CLOUDFLARE_CUSTOMER_CODE are required; PROJECT_NUMBER (else ``gcloud projects describe``),
ALLOWED_ORIGINS (comma-separated; else the non-local defaults of ``common.settings``),
SOURCE (``build/functions``), FIREBASE (the firebase CLI), DEPLOY_SITE_CONFIG=1 and
DRY_RUN=1 (print the plan, run nothing) are optional.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "infra" / "functions.json"
FIREBASE_JSON = ROOT / "firebase.json"
RULES_PATH = ROOT / "firestore.rules"

REQUIRED = {
    "PROJECT": "the Google Cloud / Firebase project id",
    "REGION": "the functions' and queue's region, e.g. us-central1",
    "FIRESTORE_LOCATION": "the Firestore database's location, e.g. nam5, eur3 or us-central1"
    " (Firestore console, or gcloud firestore databases describe)",
    "CLOUDFLARE_ACCOUNT_ID": "the Cloudflare account id (dashboard, right sidebar)",
    "CLOUDFLARE_CUSTOMER_CODE": "the <CODE> of https://customer-<CODE>.cloudflarestream.com"
    " (Stream dashboard)",
}

# Cloudflare's API allows 1,200 calls per 5 minutes per user token, shared by everything the
# backend does (user requests, webhooks, the monitors). A queued task is one monitor check:
# one Cloudflare call (status: GET live input; recording: list the input's videos), retried at
# most ``cloudflare_max_retries`` (2) times by our client. The orphan sweep, rare (only after a
# live-input create that got no answer), lists inputs and deletes the orphans it finds.
CLOUDFLARE_CALLS_PER_WINDOW = 1200
CLOUDFLARE_WINDOW_S = 300
CLOUDFLARE_CALLS_PER_TASK = 1
CLOUDFLARE_RETRIES_PER_CALL = 2


def queue_rate_limit() -> int:
    """The most tasks per second whose worst case (every call retried) fits the whole budget.

    4 calls/s of budget / 3 calls per task worst case -> 1 dispatch/s: typically 300 calls per
    5 min (a quarter of the budget), at worst 900, leaving the rest to the API and webhooks.
    At one check per live stream per minute that serves about 60 concurrent live streams
    before checks queue up (they are delayed, not lost).
    """
    budget_per_s = CLOUDFLARE_CALLS_PER_WINDOW / CLOUDFLARE_WINDOW_S
    worst_calls_per_task = CLOUDFLARE_CALLS_PER_TASK * (1 + CLOUDFLARE_RETRIES_PER_CALL)
    return max(1, math.floor(budget_per_s / worst_calls_per_task))


APIS = (
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "firestore.googleapis.com",
    "cloudtasks.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "identitytoolkit.googleapis.com",
    "logging.googleapis.com",
)
SITE_APIS = ("firebasehosting.googleapis.com", "firebaserules.googleapis.com")

ROLE_INVOKER = "roles/run.invoker"
ROLE_ACT_AS = "roles/iam.serviceAccountUser"
ROLE_SECRET = "roles/secretmanager.secretAccessor"  # noqa: S105 - a role name
ROLE_TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"  # noqa: S105 - a role name


class MissingEnvironment(Exception):  # noqa: N818 - the message is what the operator reads
    """Required variables are not set."""


@dataclass(frozen=True)
class Config:
    """Everything the plan depends on besides the manifest."""

    project: str
    region: str
    firestore_location: str
    cloudflare_account_id: str
    cloudflare_customer_code: str
    project_number: str
    allowed_origins: tuple[str, ...]
    source: str
    firebase: str
    deploy_site_config: bool = False

    @property
    def delivery_base(self) -> str:
        return f"https://customer-{self.cloudflare_customer_code}.cloudflarestream.com"

    @property
    def task_target_pattern(self) -> str:
        # Cloud Run's deterministic URL of each function's service, which is also the OIDC
        # audience Cloud Run accepts; {function} is filled in per task (common.adapters).
        return f"https://{{function}}-{self.project_number}.{self.region}.run.app"

    def email(self, account_id: str) -> str:
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Step:
    """One command; with ``unless``, it runs only when that check command fails."""

    command: tuple[str, ...]
    unless: tuple[str, ...] | None = None

    def shell(self) -> str:
        line = shlex.join(self.command)
        if self.unless is None:
            return line
        return f"{shlex.join(self.unless)} >/dev/null 2>&1 || {line}"


def missing_variables(env: Mapping[str, str]) -> list[str]:
    return [name for name in REQUIRED if not env.get(name, "").strip()]


def default_allowed_origins() -> tuple[str, ...]:
    """The settings' default origins without the local ones (the production guard refuses
    those)."""
    from common.settings import Settings, is_local_origin  # noqa: PLC0415 - needs the venv

    factory = Settings.model_fields["allowed_origins"].default_factory
    defaults: list[str] = factory() if factory else []  # type: ignore[call-arg]
    return tuple(o for o in defaults if not is_local_origin(o))


def load_config(
    env: Mapping[str, str], resolve_project_number: Callable[[str], str] | None = None
) -> Config:
    """The config from the environment; refuses clearly when a required variable is missing."""
    missing = missing_variables(env)
    if missing:
        lines = "\n".join(f"  {name}: {REQUIRED[name]}" for name in missing)
        raise MissingEnvironment(f"set these variables before deploying:\n{lines}")
    project = env["PROJECT"].strip()
    number = env.get("PROJECT_NUMBER", "").strip()
    if not number:
        number = resolve_project_number(project) if resolve_project_number else "PROJECT_NUMBER"
    origins = env.get("ALLOWED_ORIGINS", "").strip()
    firebase = ROOT / "emulators" / "node_modules" / ".bin" / "firebase"
    return Config(
        project=project,
        region=env["REGION"].strip(),
        firestore_location=env["FIRESTORE_LOCATION"].strip(),
        cloudflare_account_id=env["CLOUDFLARE_ACCOUNT_ID"].strip(),
        cloudflare_customer_code=env["CLOUDFLARE_CUSTOMER_CODE"].strip(),
        project_number=number,
        allowed_origins=(
            tuple(o.strip() for o in origins.split(",") if o.strip())
            if origins
            else default_allowed_origins()
        ),
        source=env.get("SOURCE") or str(ROOT / "build" / "functions"),
        firebase=env.get("FIREBASE") or (str(firebase) if firebase.exists() else "firebase"),
        deploy_site_config=env.get("DEPLOY_SITE_CONFIG") == "1",
    )


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def function_role(function: Mapping[str, Any]) -> str:
    """Which service account runs a function: its trigger decides."""
    trigger = function["trigger"]
    if "firestore" in trigger:
        return "events"
    if "cloudTasksQueue" in trigger:
        return "tasks"
    return "api"


def is_public(function: Mapping[str, Any]) -> bool:
    return function_role(function) == "api"


def production_environment(cfg: Config, manifest: Mapping[str, Any]) -> dict[str, str]:
    """The LS_* variables every function gets (secrets come from Secret Manager)."""
    accounts = manifest["serviceAccounts"]
    return {
        **manifest["environment"],
        "LS_GCP_PROJECT": cfg.project,
        "LS_TASKS_LOCATION": cfg.region,
        "LS_CLOUDFLARE_ACCOUNT_ID": cfg.cloudflare_account_id,
        "LS_CLOUDFLARE_DELIVERY_BASE": cfg.delivery_base,
        "LS_TASKS_TARGET_BASE_URL": cfg.task_target_pattern,
        "LS_TASKS_INVOKER_SERVICE_ACCOUNT": cfg.email(accounts["taskInvoker"]["id"]),
        "LS_ALLOWED_ORIGINS": json.dumps(list(cfg.allowed_origins), separators=(",", ":")),
    }


def _dict_flag(flag: str, values: Mapping[str, str]) -> str:
    # gcloud's alternate delimiter (gcloud topic escaping): values may hold commas (JSON).
    delimiter = "|"
    if any(delimiter in f"{k}{v}" for k, v in values.items()):
        raise ValueError(f"a value of {flag} contains {delimiter!r}")
    return f"{flag}=^{delimiter}^" + delimiter.join(f"{k}={v}" for k, v in values.items())


def enable_apis(cfg: Config) -> list[Step]:
    apis = APIS + (SITE_APIS if cfg.deploy_site_config else ())
    return [Step(("gcloud", "services", "enable", *apis, f"--project={cfg.project}"))]


def service_accounts(cfg: Config, manifest: Mapping[str, Any]) -> list[Step]:
    steps = []
    for role in manifest["serviceAccounts"].values():
        email = cfg.email(role["id"])
        steps.append(
            Step(
                (
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "create",
                    role["id"],
                    f"--project={cfg.project}",
                    f"--display-name=Livestream backend: {role['id']}",
                    f"--description=Runs {role['runs']}",
                ),
                unless=(
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "describe",
                    email,
                    f"--project={cfg.project}",
                ),
            )
        )
    return steps


def _member(email: str) -> str:
    return f"--member=serviceAccount:{email}"


def iam_bindings(cfg: Config, manifest: Mapping[str, Any]) -> list[Step]:
    """Least privilege: project roles, each secret to those that read it, actAs on the task
    invoker to those that enqueue, and token creation on the Eventarc identity to the Pub/Sub
    service agent (needed by projects created before April 2021). Adding a binding that
    exists changes nothing, so the plan can run again."""
    accounts = manifest["serviceAccounts"]
    secrets = manifest["secrets"]
    invoker = cfg.email(accounts["taskInvoker"]["id"])
    steps = []
    for role in accounts.values():
        email = cfg.email(role["id"])
        for project_role in role["projectRoles"]:
            steps.append(
                Step(
                    (
                        "gcloud",
                        "projects",
                        "add-iam-policy-binding",
                        cfg.project,
                        _member(email),
                        f"--role={project_role}",
                        "--condition=None",
                    )
                )
            )
        for variable in role["secrets"]:
            secret = secrets[variable].split(":", 1)[0]
            steps.append(
                Step(
                    (
                        "gcloud",
                        "secrets",
                        "add-iam-policy-binding",
                        secret,
                        f"--project={cfg.project}",
                        _member(email),
                        f"--role={ROLE_SECRET}",
                    )
                )
            )
        if role["enqueuesTasks"]:
            steps.append(_on_account(cfg, invoker, email, ROLE_ACT_AS))
    pubsub_agent = f"service-{cfg.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    eventarc = cfg.email(accounts["eventarc"]["id"])
    steps.append(_on_account(cfg, eventarc, pubsub_agent, ROLE_TOKEN_CREATOR))
    return steps


def _on_account(cfg: Config, account: str, member: str, role: str) -> Step:
    return Step(
        (
            "gcloud",
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            account,
            f"--project={cfg.project}",
            _member(member),
            f"--role={role}",
        )
    )


def queue(cfg: Config, manifest: Mapping[str, Any]) -> list[Step]:
    spec = manifest["queue"]
    if spec["maxDispatchesPerSecond"] > queue_rate_limit():
        raise ValueError(
            f"queue maxDispatchesPerSecond {spec['maxDispatchesPerSecond']} exceeds the"
            f" Cloudflare budget's {queue_rate_limit()}/s"
        )
    flags = (
        f"--project={cfg.project}",
        f"--location={cfg.region}",
        f"--max-attempts={spec['maxAttempts']}",
        f"--min-backoff={spec['minBackoff']}",
        f"--max-backoff={spec['maxBackoff']}",
        f"--max-doublings={spec['maxDoublings']}",
        f"--max-concurrent-dispatches={spec['maxConcurrentDispatches']}",
        f"--max-dispatches-per-second={spec['maxDispatchesPerSecond']}",
    )
    name = spec["name"]
    describe = ("gcloud", "tasks", "queues", "describe", name, *flags[:2])
    return [
        Step(("gcloud", "tasks", "queues", "create", name, *flags), unless=describe),
        Step(("gcloud", "tasks", "queues", "update", name, *flags)),
    ]


def deploy_function(cfg: Config, manifest: Mapping[str, Any], fn: Mapping[str, Any]) -> Step:
    accounts = manifest["serviceAccounts"]
    role = accounts[function_role(fn)]
    secrets = {name: manifest["secrets"][name] for name in role["secrets"]}
    build = cfg.email(accounts["build"]["id"])
    size = manifest["sizes"][fn["size"]]
    # functions-framework serves with gunicorn's threads (THREADS): one per request the
    # instance takes at once, so the thread count follows the concurrency.
    environment = {**production_environment(cfg, manifest), "THREADS": str(size["concurrency"])}
    args = [
        "gcloud",
        "functions",
        "deploy",
        fn["name"],
        "--gen2",
        f"--project={cfg.project}",
        f"--region={cfg.region}",
        f"--runtime={manifest['runtime']}",
        f"--source={cfg.source}",
        f"--entry-point={fn['entryPoint']}",
        f"--memory={size['memory']}",
        f"--cpu={size['cpu']}",
        f"--concurrency={size['concurrency']}",
        f"--timeout={fn['timeoutSeconds']}s",
        f"--service-account={cfg.email(role['id'])}",
        f"--build-service-account=projects/{cfg.project}/serviceAccounts/{build}",
        _dict_flag("--set-env-vars", environment),
    ]
    if secrets:
        args.append(_dict_flag("--set-secrets", secrets))
    trigger = fn["trigger"]
    if "firestore" in trigger:
        event = trigger["firestore"]
        args += [
            f"--trigger-event-filters=type={event['eventType']}",
            f"--trigger-event-filters=database={event['database']}",
            f"--trigger-event-filters-path-pattern=document={event['document']}",
            # Eventarc's Firestore triggers live where the database is (nam5, eur3, ...).
            f"--trigger-location={cfg.firestore_location}",
            f"--trigger-service-account={cfg.email(accounts['eventarc']['id'])}",
            "--retry",
            "--no-allow-unauthenticated",
        ]
    else:
        args += [
            "--trigger-http",
            "--allow-unauthenticated" if is_public(fn) else "--no-allow-unauthenticated",
        ]
    return Step(tuple(args))


def invoker_bindings(cfg: Config, manifest: Mapping[str, Any]) -> list[Step]:
    """run.invoker on the private functions: the task invoker on the task targets, the
    Eventarc identity on the trigger (after the deploys: the services must exist)."""
    accounts = manifest["serviceAccounts"]
    callers = {
        "tasks": cfg.email(accounts["taskInvoker"]["id"]),
        "events": cfg.email(accounts["eventarc"]["id"]),
    }
    return [
        Step(
            (
                "gcloud",
                "functions",
                "add-invoker-policy-binding",
                fn["name"],
                f"--project={cfg.project}",
                f"--region={cfg.region}",
                _member(callers[function_role(fn)]),
            )
        )
        for fn in manifest["functions"]
        if not is_public(fn)
    ]


def firebase_steps(cfg: Config) -> list[Step]:
    only = "firestore:indexes"
    if cfg.deploy_site_config:
        rewrite_regions = {
            rule["function"].get("region", "us-central1")
            for rule in json.loads(FIREBASE_JSON.read_text())["hosting"]["rewrites"]
            if "function" in rule
        }
        if rewrite_regions != {cfg.region}:
            raise ValueError(
                f"firebase.json's rewrites target {sorted(rewrite_regions)}, not REGION"
                f" {cfg.region}: merge the snippets into the site's config instead"
            )
        only = "hosting,firestore:rules,firestore:indexes"
    return [
        Step(
            (
                cfg.firebase,
                "deploy",
                "--project",
                cfg.project,
                "--config",
                str(FIREBASE_JSON),
                "--only",
                only,
                "--non-interactive",
            )
        )
    ]


def build_plan(cfg: Config, manifest: Mapping[str, Any] | None = None) -> list[Step]:
    """Every command of a deploy, in order."""
    manifest = manifest if manifest is not None else load_manifest()
    return [
        *enable_apis(cfg),
        *service_accounts(cfg, manifest),
        *iam_bindings(cfg, manifest),
        *queue(cfg, manifest),
        *(deploy_function(cfg, manifest, fn) for fn in manifest["functions"]),
        *invoker_bindings(cfg, manifest),
        *firebase_steps(cfg),
    ]


# --- snippets: what the site's own firebase.json and firestore.rules must gain ----------------


TASK_PATH_PREFIX = "/api/tasks/"


def hosting_rewrites(region: str) -> list[dict[str, Any]]:
    """The backend's Hosting rewrites, for the site's ``hosting.rewrites`` (before its
    catch-all rewrite to the SvelteKit server, order kept)."""
    rewrites = json.loads(FIREBASE_JSON.read_text())["hosting"]["rewrites"]
    return [
        {"source": rule["source"], "function": {**rule["function"], "region": region}}
        for rule in rewrites
        # Task targets are private and called at their own URL: never through the site.
        if "function" in rule and not rule["source"].startswith(TASK_PATH_PREFIX)
    ]


def rules_block(path: Path = RULES_PATH) -> str:
    """The helper functions and ``match`` blocks inside ``match /databases/{database}/documents``
    of firestore.rules, for the same place in the site's rules."""
    lines = path.read_text().splitlines()
    start = next(
        i for i, line in enumerate(lines) if "match /databases/{database}/documents" in line
    )
    body = lines[start + 1 :]
    # Drop the closing braces of the documents match and of the service.
    closing = [i for i, line in enumerate(body) if line.strip() == "}"]
    return "\n".join(body[: closing[-2]]).rstrip() + "\n"


def snippets(region: str) -> str:
    rewrites = json.dumps(hosting_rewrites(region), indent=2)
    return (
        "// 1. firebase.json of the site: add to hosting.rewrites, BEFORE the site's own\n"
        "//    catch-all rewrite (Hosting applies the first match):\n"
        f"{rewrites}\n\n"
        "// 2. firestore.rules of the site: add inside\n"
        "//    match /databases/{database}/documents { ... }\n"
        "//    (rename signedIn/isAdmin/managesMemorial if the site already defines them).\n"
        "//    Run the stream migration (POST /api/streams/migrate until done) BEFORE these\n"
        "//    rules go live: they let managers read stream documents.\n"
        f"{rules_block()}"
    )


# --- running ------------------------------------------------------------------------------------


def _gcloud_project_number(project: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["gcloud", "projects", "describe", project, "--format=value(projectNumber)"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def run_plan(plan: Sequence[Step]) -> None:
    for step in plan:
        print(f"+ {step.shell()}", flush=True)  # noqa: T201
        if step.unless is not None:
            check = subprocess.run(step.unless, capture_output=True, check=False)  # noqa: S603
            if check.returncode == 0:
                continue
        subprocess.run(step.command, check=True)  # noqa: S603


def _snippets_command(env: Mapping[str, str]) -> int:
    region = env.get("REGION", "").strip()
    if not region:
        print(f"infra.deploy snippets: set REGION ({REQUIRED['REGION']})", file=sys.stderr)  # noqa: T201
        return 2
    print(snippets(region), end="")  # noqa: T201
    return 0


def _deploy_command(env: Mapping[str, str]) -> int:
    dry_run = env.get("DRY_RUN") == "1"
    try:
        cfg = load_config(env, None if dry_run else _gcloud_project_number)
        plan = build_plan(cfg)
    except (MissingEnvironment, ValueError) as error:
        print(f"make deploy: {error}", file=sys.stderr)  # noqa: T201
        return 2
    if dry_run:
        for step in plan:
            print(step.shell())  # noqa: T201
        return 0
    if not Path(cfg.source, "main.py").exists():
        print(f"make deploy: {cfg.source} has no main.py: run make build", file=sys.stderr)  # noqa: T201
        return 2
    run_plan(plan)
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``deploy`` (default; DRY_RUN=1 prints the plan) or ``snippets``."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    command = args[0] if args else "deploy"
    if command == "snippets":
        return _snippets_command(env)
    if command == "deploy":
        return _deploy_command(env)
    print("usage: python -m infra.deploy [deploy|snippets]", file=sys.stderr)  # noqa: T201
    return 2


if __name__ == "__main__":
    sys.exit(main())
