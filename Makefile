# Everything a newcomer needs: `make run` serves the API, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
SYNCED := $(VENV)/.synced
RUNTIME := $(VENV)/.runtime
# Python's default, kept where the environment turns it off (PYTHONDONTWRITEBYTECODE): modules
# are compiled once into __pycache__ (git-ignored) and read back. Without it every process of a
# test run (the workers, and each server, CLI and pool process the tests start) compiled every
# module it imported again: importing the service, scipy and matplotlib took 6 s instead of 2.4 s.
unexport PYTHONDONTWRITEBYTECODE
# Redocly's linter for the contract test (npm; skipped with a message where npm is missing).
LINT_TOOLS := openapi/node_modules/.package-lock.json

.DEFAULT_GOAL := help
.PHONY: help install run test oracle contract bench bench-quick bench-analyses bench-stalls bench-floor bench-flames bench-reliability openapi lint typecheck check seed migrate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(SYNCED): pyproject.toml uv.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(PY) -m uv sync --frozen --inexact
	@touch $@

# `make run` needs only what the service runs with; `make test` adds the dev group to the same .venv.
$(RUNTIME): pyproject.toml uv.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(PY) -m uv sync --frozen --no-dev --inexact
	@touch $@

install: $(SYNCED) ## Create .venv with the locked dependencies (runtime and dev)

run: $(RUNTIME) ## Migrate the database (SQLite ./var/registry.db by default), seed it if empty, serve on :8000
	$(VENV)/bin/registry serve

$(LINT_TOOLS): openapi/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix openapi --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Redocly lint test will be skipped"; fi

test: $(SYNCED) $(LINT_TOOLS) ## Run every test (also on Postgres when TEST_POSTGRES_URL is set), on 2 workers
	$(PY) -m pytest -n 2 --dist worksteal

oracle: $(SYNCED) ## The generative oracle, long: ORACLE_EXAMPLES (default 2500) random messy studies per database, statistics printed
	ORACLE_EXAMPLES=$${ORACLE_EXAMPLES:-2500} ORACLE_SEED= $(PY) -m pytest tests/oracle -p no:cacheprovider -q --hypothesis-show-statistics

contract: $(SYNCED) ## The contract tests, long: every case on every database, CONTRACT_EXAMPLES (default 100) generated examples per operation, STATEFUL_EXAMPLES (default 100) linked scenarios
	CONTRACT_FULL=1 CONTRACT_EXAMPLES=$${CONTRACT_EXAMPLES:-100} STATEFUL_EXAMPLES=$${STATEFUL_EXAMPLES:-100} $(PY) -m pytest tests/contract -p no:cacheprovider -q

bench: $(SYNCED) ## Service vs raw-limit app and a FastAPI peer, 1k/10k/100k patients, wrk (Postgres too with TEST_POSTGRES_URL): bench/RESULTS.md, bench/flames/
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/run.py
	$(PY) bench/bulk_paths.py
	$(PY) bench/analyses.py
	$(PY) bench/flames.py

bench-stalls: $(SYNCED) ## Where the event loop stalls under the mixed load (survival + imports beside reads): bench/stalls.py
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/stalls.py

bench-floor: $(SYNCED) ## A patient read on the raw app, on Litestar alone doing the raw app's work, and on the service, served: bench/framework_floor.py
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/framework_floor.py --served

bench-flames: $(SYNCED) ## Flame graphs of the service under load (py-spy): bench/flames/<database>-<scenario>.svg
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/flames.py

bench-analyses: $(SYNCED) ## The analyses at 100k patients: each one's time, and a patient read's p99 while it loops
	$(PY) bench/analyses.py

bench-quick: $(SYNCED) ## Smoke test of the benchmark harness (1k patients, short runs, no timing asserted)
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) bench/run.py --quick

bench-reliability: $(SYNCED) ## Adversarial-body and 100k-survival timings of the reliability work
	$(PY) bench/reliability_timings.py

migrate: $(SYNCED) ## Apply migrations to DATABASE_URL
	$(PY) -m service migrate

seed: $(SYNCED) ## Load the curated seed dataset into DATABASE_URL
	$(PY) -m service seed

openapi: $(SYNCED) ## Regenerate the committed contract openapi/openapi.json
	$(PY) -m service openapi --output openapi/openapi.json

lint: $(SYNCED) ## Ruff lint and format check
	$(PY) -m ruff check service tests migrations bench
	$(PY) -m ruff format --check service tests migrations bench

typecheck: $(SYNCED) ## mypy --strict on service/ (CI runs it)
	$(PY) -m mypy service

check: lint test ## Lint, then every test (the OpenAPI drift test included)

clean: ## Remove the environment and the local database
	rm -rf $(VENV) var .pytest_cache .hypothesis
