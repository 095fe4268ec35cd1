# One command to run the whole system locally, one to install everything and pass the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell scripts/find-python)

.PHONY: install run seed test test-fast lint typecheck check bench chaos build deploy deploy-snippets lock clean

install: $(VENV)/.installed emulators/node_modules/.installed .local/system-deps .local/tasks-emulator/.installed

.local/system-deps: scripts/install-system-deps
	scripts/install-system-deps
	mkdir -p .local && touch $@

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The Cloud Tasks emulator pins its own gRPC/protobuf versions: it gets a virtualenv of its own.
.local/tasks-emulator/.installed:
	mkdir -p .local
	test -x .local/tasks-emulator/bin/python || $(PYTHON) -m venv .local/tasks-emulator
	.local/tasks-emulator/bin/pip install -q gcloud-tasks-emulator==0.6.2
	touch $@

emulators/node_modules/.installed: emulators/package.json emulators/package-lock.json .local/system-deps
	# re2 (a firebase-tools dependency) would first try to download a prebuilt binary; build it.
	cd emulators && RE2_DOWNLOAD_SKIP_PATH=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

## run: start the Firestore + Auth emulators, the Cloudflare Stream emulator and the gateway
run: install
	$(PY) -m emulators.stack

## seed: a memorial with its family owner and funeral director in the running `make run` stack;
## prints exports (MEMORIAL_ID, OWNER_TOKEN, DIRECTOR_TOKEN) for eval "$(make -s seed)".
## Options go in SEED_ARGS, e.g. make -s seed SEED_ARGS='--private --name "Ada Lovelace"'.
## It installs and starts nothing; the @s keep make's echo of the commands off stdout.
seed:
	@test -x $(PY) || { echo 'make seed: $(PY) is missing: run `make run` first' >&2; exit 1; }
	@$(PY) -m emulators.seed $(SEED_ARGS)

## test: lint, type-check and run every test against the real local stack
test: install lint typecheck
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit tests/service tests/functions
	$(PY) -m pytest tests/integration/contract -m "not emulator"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

## bench: measurements with their baselines, side by side (not part of make test)
bench: install
	$(PY) -m benchmarks.run

## chaos: many short real broadcasts under seeded faults (Cloudflare 5xx/429/timeouts, webhooks
## dropped/duplicated/reordered, Firestore and Cloud Tasks frozen), then the tally per seed; exits
## non-zero when a goal is missed (not part of make test). Options: CHAOS_ARGS='--seed 4 --seed 5'
chaos: install
	$(PY) -m emulators.chaos $(CHAOS_ARGS)

## build: the deployable function source in build/functions (main.py, common/ and
## requirements.txt = infra/requirements.lock, pinned with hashes)
build: $(VENV)/.installed
	$(PY) scripts/build-functions build/functions

## deploy: APIs, service accounts and IAM, queue, functions, Firestore indexes and TTL policy.
## Needs PROJECT, REGION, FIRESTORE_LOCATION, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_CUSTOMER_CODE;
## DRY_RUN=1 prints the plan; DEPLOY_SITE_CONFIG=1 also deploys firebase.json Hosting and
## firestore.rules as they are (only where no other site runs). See README "Deploying".
deploy: $(VENV)/.installed build
	$(PY) -m infra.deploy

## deploy-snippets: the Hosting rewrites and Firestore rules to merge into the site (REGION=...)
deploy-snippets: $(VENV)/.installed
	@$(PY) -m infra.deploy snippets

## lock: infra/requirements.lock, the deployed requirements pinned with hashes (needs PyPI)
lock: $(VENV)/.installed
	$(PY) -m pip install -q pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links -o infra/requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .local emulators/node_modules .pytest_cache .mypy_cache .ruff_cache
