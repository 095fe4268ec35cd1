"""The dry-run deploy plan (infra/deploy.py): what it deploys, as whom, and what it leaves alone."""

from __future__ import annotations

import io
import json
import re
import shlex
import sys
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from common.adapters.cloud_tasks import TASK_FUNCTIONS
from common.settings import Settings
from infra import deploy

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = deploy.load_manifest()
ENV = {
    "PROJECT": "memorials-prod",
    "PROJECT_NUMBER": "123456789012",
    "REGION": "europe-west1",
    "FIRESTORE_LOCATION": "eur3",
    "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef",
    "CLOUDFLARE_CUSTOMER_CODE": "f00ba7",
    "DRY_RUN": "1",
    "SOURCE": "/src",
    "FIREBASE": "firebase",
}
ACCOUNTS = {
    role: f"{spec['id']}@memorials-prod.iam.gserviceaccount.com"
    for role, spec in MANIFEST["serviceAccounts"].items()
}
TASK_TARGETS = {"runmonitorcheck", "sweeporphanedinputs", "runkeepsakecheck", "runwindowedge"}


def dry_run(*argv: str, **overrides: str) -> tuple[int, list[str], str]:
    env = {k: v for k, v in {**ENV, **overrides}.items() if v}
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = deploy.main(list(argv), env)
    return code, out.getvalue().splitlines(), err.getvalue()


def commands(lines: list[str]) -> list[list[str]]:
    """Each printed step as argv; for ``check || create`` steps, both halves."""
    parsed = []
    for line in lines:
        for part in line.split(" >/dev/null 2>&1 || "):
            parsed.append(shlex.split(part))
    return parsed


def plan(**overrides: str) -> list[list[str]]:
    code, lines, err = dry_run(**overrides)
    assert code == 0, err
    return commands(lines)


def deploys(steps: list[list[str]]) -> dict[str, list[str]]:
    return {a[3]: a for a in steps if a[:3] == ["gcloud", "functions", "deploy"]}


def flag(args: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    return value


def env_vars(args: list[str]) -> dict[str, str]:
    value = flag(args, "--set-env-vars")
    match = re.fullmatch(r"\^(.+?)\^(.*)", value)
    assert match, value
    return dict(item.split("=", 1) for item in match.group(2).split(match.group(1)))


@pytest.mark.parametrize("missing", list(deploy.REQUIRED))
def test_refuses_clearly_when_a_required_variable_is_missing(missing: str) -> None:
    code, lines, err = dry_run(**{missing: ""})
    assert code == 2 and lines == []
    assert missing in err and deploy.REQUIRED[missing] in err


def test_make_deploy_reads_the_interface_variables() -> None:
    assert set(deploy.REQUIRED) == {
        "PROJECT",
        "REGION",
        "FIRESTORE_LOCATION",
        "CLOUDFLARE_ACCOUNT_ID",
        "CLOUDFLARE_CUSTOMER_CODE",
    }


def test_by_default_only_the_backends_indexes_reach_firebase_never_hosting_or_rules() -> None:
    steps = plan()
    firebase = [a for a in steps if a[:2] == ["firebase", "deploy"]]
    assert len(firebase) == 1
    only = firebase[0][firebase[0].index("--only") + 1]
    assert only == "firestore:indexes"
    assert "--non-interactive" in firebase[0]  # never deletes the site's own indexes
    assert not any("hosting" in arg or "firestore:rules" in arg for a in steps for arg in a)


def test_the_site_flag_adds_hosting_and_rules_and_refuses_a_region_they_do_not_target() -> None:
    steps = plan(DEPLOY_SITE_CONFIG="1", REGION="us-central1")
    (firebase,) = [a for a in steps if a[:2] == ["firebase", "deploy"]]
    assert firebase[firebase.index("--only") + 1] == "hosting,firestore:rules,firestore:indexes"
    code, _, err = dry_run(DEPLOY_SITE_CONFIG="1", REGION="europe-west1")
    assert code == 2 and "merge the snippets" in err


def test_snippets_print_the_rewrites_for_the_region_and_the_rules_block() -> None:
    code, lines, _ = dry_run("snippets", REGION="europe-west1")
    assert code == 0
    text = "\n".join(lines)
    start = text.index("[")
    rewrites = json.loads(text[start : text.index("\n]", start) + 2])
    firebase = json.loads((ROOT / "firebase.json").read_text())["hosting"]["rewrites"]
    public = [r["source"] for r in firebase if not r["source"].startswith("/api/tasks/")]
    assert [r["source"] for r in rewrites] == public  # task targets stay private
    assert {r["function"]["region"] for r in rewrites} == {"europe-west1"}
    assert "match /streams/{streamId}" in text and "match /mvp_two_streams/" in text
    assert "service cloud.firestore" not in text  # only the block to paste inside
    assert "migrat" in text  # run the stream migration before the rules go live
    code, _, err = dry_run("snippets", REGION="")
    assert code == 2 and "REGION" in err


def test_the_makefile_prints_snippets_and_deploys_without_installing_media_servers() -> None:
    makefile = (ROOT / "Makefile").read_text()
    deploy_rule = re.search(r"^deploy:(.*)$", makefile, flags=re.MULTILINE)
    assert deploy_rule and "install" not in deploy_rule.group(1).replace(".installed", "")
    assert "system-deps" not in deploy_rule.group(1)
    assert re.search(r"^deploy-snippets:", makefile, flags=re.MULTILINE)
    assert "infra.deploy snippets" in makefile


def test_every_function_runs_as_the_service_account_of_its_role() -> None:
    functions = deploys(plan())
    assert set(functions) == {f["name"] for f in MANIFEST["functions"]}
    for name, args in functions.items():
        if name in TASK_TARGETS:
            expected = ACCOUNTS["tasks"]
        elif name == "onstreamwritten":
            expected = ACCOUNTS["events"]
        else:
            expected = ACCOUNTS["api"]
        assert flag(args, "--service-account") == expected, name
        assert flag(args, "--build-service-account").endswith(ACCOUNTS["build"])


def test_task_targets_and_the_trigger_are_private_and_only_http_functions_public() -> None:
    for name, args in deploys(plan()).items():
        private = name in TASK_TARGETS or name == "onstreamwritten"
        assert ("--no-allow-unauthenticated" in args) is private, name
        assert ("--allow-unauthenticated" in args) is not private, name
    assert set(TASK_FUNCTIONS.values()) == TASK_TARGETS


def test_private_functions_are_invokable_only_by_their_callers() -> None:
    steps = plan()
    bindings = {
        a[3]: flag(a, "--member")
        for a in steps
        if a[:3] == ["gcloud", "functions", "add-invoker-policy-binding"]
    }
    invoker = f"serviceAccount:{ACCOUNTS['taskInvoker']}"
    eventarc = f"serviceAccount:{ACCOUNTS['eventarc']}"
    assert bindings == {
        "runmonitorcheck": invoker,
        "sweeporphanedinputs": invoker,
        "runkeepsakecheck": invoker,
        "runwindowedge": invoker,
        "onstreamwritten": eventarc,
    }
    # after the deploys: the services must exist
    last_deploy = max(i for i, a in enumerate(steps) if a[:3] == ["gcloud", "functions", "deploy"])
    first_binding = min(
        i
        for i, a in enumerate(steps)
        if a[:3] == ["gcloud", "functions", "add-invoker-policy-binding"]
    )
    assert first_binding > last_deploy


def test_the_trigger_lives_where_the_database_is_and_runs_as_the_eventarc_identity() -> None:
    trigger = deploys(plan(FIRESTORE_LOCATION="nam5", REGION="us-central1"))["onstreamwritten"]
    assert flag(trigger, "--trigger-location") == "nam5"
    assert flag(trigger, "--region") == "us-central1"
    assert flag(trigger, "--trigger-service-account") == ACCOUNTS["eventarc"]
    assert "--trigger-event-filters-path-pattern=document=streams/{streamId}" in trigger


def test_the_environment_names_the_real_account_delivery_host_queue_and_task_targets() -> None:
    for args in deploys(plan()).values():
        env = env_vars(args)
        assert env["LS_ENVIRONMENT"] == "production"
        assert env["LS_CLOUDFLARE_ACCOUNT_ID"] == "0123456789abcdef"
        assert env["LS_CLOUDFLARE_DELIVERY_BASE"] == "https://customer-f00ba7.cloudflarestream.com"
        assert env["LS_TASKS_LOCATION"] == "europe-west1"
        assert env["LS_GCP_PROJECT"] == "memorials-prod"
        assert env["LS_TASKS_INVOKER_SERVICE_ACCOUNT"] == ACCOUNTS["taskInvoker"]
        assert env["LS_TASKS_TARGET_BASE_URL"] == (
            "https://{function}-123456789012.europe-west1.run.app"
        )


def test_the_planned_environment_passes_the_production_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = deploys(plan())["streams"]
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"LS_{name.upper()}", raising=False)
    for name, value in env_vars(args).items():
        monkeypatch.setenv(name, value)
    for variable in deploy.load_manifest()["secrets"]:
        monkeypatch.setenv(variable, "from-secret-manager")
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.allowed_origins and settings.task_auth_token is None


def test_each_function_gets_only_the_secrets_its_account_may_read() -> None:
    steps = plan()
    readable: dict[str, set[str]] = {}
    for a in steps:
        if a[:3] == ["gcloud", "secrets", "add-iam-policy-binding"]:
            assert flag(a, "--role") == "roles/secretmanager.secretAccessor"
            readable.setdefault(flag(a, "--member"), set()).add(a[3])
    for name, args in deploys(steps).items():
        account = f"serviceAccount:{flag(args, '--service-account')}"
        secrets = {
            v.split("=", 1)[1].split(":")[0] for v in flag(args, "--set-secrets")[3:].split("|")
        }
        assert secrets <= readable[account], name
    assert readable[f"serviceAccount:{ACCOUNTS['tasks']}"] == {"cloudflare-api-token"}


def test_iam_is_least_privilege() -> None:
    steps = plan()
    project_roles: dict[str, set[str]] = {}
    for a in steps:
        if a[:3] == ["gcloud", "projects", "add-iam-policy-binding"]:
            project_roles.setdefault(flag(a, "--member").split(":", 1)[1], set()).add(
                flag(a, "--role")
            )
    assert project_roles == {
        ACCOUNTS["api"]: {
            "roles/datastore.user",
            "roles/firebaseauth.viewer",
            "roles/cloudtasks.enqueuer",
        },
        ACCOUNTS["tasks"]: {"roles/datastore.user", "roles/cloudtasks.enqueuer"},
        ACCOUNTS["events"]: {"roles/datastore.user", "roles/cloudtasks.enqueuer"},
        ACCOUNTS["eventarc"]: {"roles/eventarc.eventReceiver"},
        ACCOUNTS["build"]: {"roles/cloudbuild.builds.builder"},
    }
    forbidden = {"roles/editor", "roles/owner", "roles/secretmanager.secretAccessor"}
    assert not forbidden & set().union(*project_roles.values())
    act_as = {
        flag(a, "--member").split(":", 1)[1]
        for a in steps
        if a[:4] == ["gcloud", "iam", "service-accounts", "add-iam-policy-binding"]
        and a[4] == ACCOUNTS["taskInvoker"]
    }
    assert act_as == {ACCOUNTS["api"], ACCOUNTS["tasks"], ACCOUNTS["events"]}


def test_service_accounts_are_created_only_when_describe_finds_none() -> None:
    code, lines, _ = dry_run()
    assert code == 0
    creates = [line for line in lines if "service-accounts create" in line]
    assert len(creates) == len(MANIFEST["serviceAccounts"])
    for line in creates:
        check, create = line.split(" >/dev/null 2>&1 || ")
        email = shlex.split(check)[4]
        assert shlex.split(check)[:4] == ["gcloud", "iam", "service-accounts", "describe"]
        assert email.startswith(shlex.split(create)[4] + "@")
    step = deploy.service_accounts(deploy.load_config(ENV), MANIFEST)[0]
    assert step.unless is not None  # run_plan skips the create when the check succeeds


def test_the_plan_enables_every_api_it_uses_first() -> None:
    steps = plan()
    assert steps[0][:3] == ["gcloud", "services", "enable"]
    for api in (
        "cloudfunctions.googleapis.com",
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "eventarc.googleapis.com",
        "cloudtasks.googleapis.com",
        "secretmanager.googleapis.com",
        "identitytoolkit.googleapis.com",
        "firestore.googleapis.com",
    ):
        assert api in steps[0]


def test_the_queue_is_created_if_missing_and_its_rate_fits_the_cloudflare_budget() -> None:
    steps = plan()
    (update,) = [a for a in steps if a[:4] == ["gcloud", "tasks", "queues", "update"]]
    (create,) = [a for a in steps if a[:4] == ["gcloud", "tasks", "queues", "create"]]
    assert any(a[:4] == ["gcloud", "tasks", "queues", "describe"] for a in steps)
    rate = float(flag(update, "--max-dispatches-per-second"))
    assert rate == float(flag(create, "--max-dispatches-per-second"))
    assert flag(update, "--location") == "europe-west1"
    worst_calls_per_task = deploy.CLOUDFLARE_CALLS_PER_TASK * (
        1 + deploy.CLOUDFLARE_RETRIES_PER_CALL
    )
    # Cloudflare: 1,200 calls per 5 minutes; the queue's worst case stays within it.
    assert rate * worst_calls_per_task * 300 <= 1200
    assert Settings().cloudflare_max_retries <= deploy.CLOUDFLARE_RETRIES_PER_CALL


def test_a_queue_rate_above_the_budget_is_refused() -> None:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["queue"]["maxDispatchesPerSecond"] = 20
    with pytest.raises(ValueError, match="Cloudflare budget"):
        deploy.build_plan(deploy.load_config(ENV), manifest)


def test_the_project_number_is_resolved_when_not_given() -> None:
    env = {k: v for k, v in ENV.items() if k != "PROJECT_NUMBER"}
    cfg = deploy.load_config(env, lambda project: {"memorials-prod": "42"}[project])
    assert cfg.task_target_pattern == "https://{function}-42.europe-west1.run.app"


def test_pyproject_declares_what_the_code_imports_and_the_lock_pins_it_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert {"flask", "grpcio", "protobuf", "cloudevents"} <= declared
    lock = (ROOT / "infra" / "requirements.lock").read_text()
    for name in declared:
        pinned = re.search(rf"^{re.escape(name)}==(\S+) \\$", lock, flags=re.MULTILINE | re.I)
        assert pinned, name
    blocks = re.split(r"\n(?=[a-z0-9])", lock.split("\n\n", 1)[1].strip())
    assert all("--hash=sha256:" in block for block in blocks)
    assert "--find-links" not in lock and "--index-url" not in lock


def test_main_is_importable_as_a_module() -> None:
    assert sys.modules["infra.deploy"].main is deploy.main


# Instance sizes (infra/SIZING.md).


def test_every_function_has_a_size_and_concurrency_above_one_gets_a_whole_vcpu() -> None:
    sizes = MANIFEST["sizes"]
    for fn in MANIFEST["functions"]:
        size = sizes[fn["size"]]
        # Cloud Run refuses concurrency above 1 with less than one vCPU.
        assert size["concurrency"] == 1 or float(size["cpu"]) >= 1, fn["name"]
        assert int(size["memory"].removesuffix("Mi")) >= 512, fn["name"]
    assert set(sizes) == {fn["size"] for fn in MANIFEST["functions"]}


def test_the_deploy_plan_sizes_each_function_and_gives_it_a_thread_per_concurrent_request() -> None:
    cfg = deploy.load_config(ENV)
    for fn in MANIFEST["functions"]:
        size = MANIFEST["sizes"][fn["size"]]
        args = deploy.deploy_function(cfg, MANIFEST, fn).command
        assert f"--memory={size['memory']}" in args
        assert f"--cpu={size['cpu']}" in args
        assert f"--concurrency={size['concurrency']}" in args
        (env_flag,) = [a for a in args if a.startswith("--set-env-vars=")]
        assert f"THREADS={size['concurrency']}" in env_flag
