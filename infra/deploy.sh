#!/usr/bin/env bash
# Thin wrapper: the deploy plan is infra/deploy.py (python -m infra.deploy; see its docstring).
# DRY_RUN=1 prints the plan; `infra/deploy.sh snippets` prints what to merge into the site.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
cd "$ROOT" && exec "$PY" -m infra.deploy "$@"
