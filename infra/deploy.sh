#!/usr/bin/env bash
# Deploys everything infra/functions.json and firebase.json describe to PROJECT:
# the Cloud Tasks queue, every function (HTTP, Cloud Tasks target, Firestore trigger) with its
# secrets from Secret Manager (pinned versions), then Hosting rewrites, Firestore rules and
# indexes (with the TTL policy). DRY_RUN=1 prints the commands instead of running them.
# `gcloud tasks queues update` is Cloud Tasks' UpdateQueue, which creates a missing queue.
# The Firestore trigger gets Eventarc's default protobuf event data, which onstreamwritten reads.
set -euo pipefail
: "${PROJECT:?set PROJECT to the Google Cloud project id}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOURCE=${SOURCE:-$ROOT/build/functions}
FIREBASE=${FIREBASE:-$ROOT/emulators/node_modules/.bin/firebase}
run() { if [ "${DRY_RUN:-}" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi; }

python3 - "$ROOT/infra/functions.json" "$PROJECT" "$SOURCE" > "${TMPDIR:-/tmp}/deploy-plan.$$" <<'PY'
import json, shlex, sys
manifest, project, source = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
region, runtime = manifest["region"], manifest["runtime"]
queue = manifest["queue"]
env = ",".join(f"{k}={v}" for k, v in {**manifest["environment"], "LS_GCP_PROJECT": project,
               "LS_TASKS_TARGET_BASE_URL": f"https://{project}.web.app"}.items())
secrets = ",".join(f"{k}={v}" for k, v in manifest["secrets"].items())
q = lambda args: " ".join(shlex.quote(a) for a in args)
print(q(["gcloud", "tasks", "queues", "update", queue["name"], f"--project={project}",
         f"--location={region}", f"--max-attempts={queue['maxAttempts']}",
         f"--min-backoff={queue['minBackoff']}", f"--max-backoff={queue['maxBackoff']}",
         f"--max-doublings={queue['maxDoublings']}",
         f"--max-concurrent-dispatches={queue['maxConcurrentDispatches']}",
         f"--max-dispatches-per-second={queue['maxDispatchesPerSecond']}"]))
for fn in manifest["functions"]:
    args = ["gcloud", "functions", "deploy", fn["name"], "--gen2", f"--project={project}",
            f"--region={region}", f"--runtime={runtime}", f"--source={source}",
            f"--entry-point={fn['entryPoint']}", f"--memory={fn['memory']}",
            f"--timeout={fn['timeoutSeconds']}s", f"--set-env-vars={env}",
            f"--set-secrets={secrets}"]
    trigger = fn["trigger"]
    if "firestore" in trigger:
        event = trigger["firestore"]
        args += [f"--trigger-event-filters=type={event['eventType']}",
                 f"--trigger-event-filters=database={event['database']}",
                 f"--trigger-event-filters-path-pattern=document={event['document']}",
                 f"--trigger-location={region}", "--retry"]
    else:
        args += ["--trigger-http", "--allow-unauthenticated"]
    print(q(args))
PY
while IFS= read -r command; do eval "run $command"; done < "${TMPDIR:-/tmp}/deploy-plan.$$"
rm -f "${TMPDIR:-/tmp}/deploy-plan.$$"
run "$FIREBASE" deploy --project "$PROJECT" --only hosting,firestore:rules,firestore:indexes
