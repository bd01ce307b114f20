# genbus — two commands do all set-up: `make run` and `make test`.
# Needs Python 3.11+ and make (and Node.js with npm for `make test`'s TypeScript check);
# uv is installed into .tools/ when it is not on PATH.

PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never

ifeq ($(shell command -v uv 2>/dev/null),)
UV := $(CURDIR)/.tools/bin/uv
UV_BOOTSTRAP := $(UV)
else
UV := uv
UV_BOOTSTRAP :=
endif

# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k pipeline -x"`.
PYTEST_ARGS ?=

.PHONY: help sync browser run test test-unit test-service-layers test-e2e faults bench bench-smoke lint format typecheck schemas openapi clients docs clean

help:
	@echo "make run          start NATS, Postgres, the sim provider and every service (Ctrl-C stops all);"
	@echo "                  then: uv run genbus status | accounts list | deadletters list | audit"
	@echo "make test         unit, integration, end-to-end and browser tests on real NATS/Postgres"
	@echo "make test-unit    the unit tests only"
	@echo "make test-service-layers  every service's service layer on in-memory fakes (a few seconds)"
	@echo "make test-e2e     the end-to-end tests only (whole system as processes, browser included)"
	@echo "make browser      install Debian's chromium for the browser tests (root; else prints how)"
	@echo "make faults       the fault-injection suite at full size"
	@echo "make bench        benchmarks against targets (bench/results/, summary table); long"
	@echo "make bench-smoke  the benchmarks at tiny sizes (~1 min, results in .local/bench-smoke/)"
	@echo "make lint         ruff + mypy"
	@echo "make format       ruff fixes and formatting"
	@echo "make schemas      refresh the committed event schemas"
	@echo "make openapi      refresh the committed OpenAPI spec"
	@echo "make docs         docs/configuration.md from every service's Settings"
	@echo "make clients      regenerate the Python and TypeScript client types from the committed OpenAPI"
	@echo "make sync         install the workspace into .venv (every target does it first)"
	@echo "make clean        remove .local/ and the tool caches"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"

sync: $(UV_BOOTSTRAP)
	$(UV) sync --frozen --all-packages

# The browser tests drive Debian's chromium through Playwright (which cannot download its own
# browsers here). Installed when missing and we are root; otherwise the one command to run.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "installing chromium (Debian package) for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; \
	else \
		echo "chromium is missing; run: sudo apt-get install -y chromium"; exit 1; \
	fi

# `make run RUN_ARGS=--api-consumers`: the api's event consumers as a process of their own.
RUN_ARGS ?=

run: sync
	$(UV) run --frozen genbus-dev run $(RUN_ARGS)

# Temp dirs under .local/: another pytest run on the machine cannot prune them mid-run.
test: sync browser
	mkdir -p $(CURDIR)/.local
	$(UV) run --frozen pytest --basetemp=$(CURDIR)/.local/pytest $(PYTEST_ARGS)

# docs/configuration.md from every service's Settings (a unit test keeps it current).
docs: sync
	$(UV) run --frozen python -m genbus.devstack.config_doc --write

test-unit: sync
	$(UV) run --frozen pytest tests/unit $(PYTEST_ARGS)

# The fake-backed unit tests of every service's service layer (`pytestmark = service_layer`).
test-service-layers: sync
	$(UV) run --frozen pytest -m service_layer $(wildcard tests/unit/*/service_layer) $(PYTEST_ARGS)

test-e2e: sync browser
	$(UV) run --frozen pytest tests/e2e $(PYTEST_ARGS)

faults: sync
	GENBUS_FAULTS_GENERATIONS=1500 $(UV) run --frozen pytest tests/faults $(PYTEST_ARGS)

# The whole stack on this machine. `make bench BENCH_SCALE=smoke`, BENCH_ARGS="--only latency";
# BENCH_MEMORY_CHECKPOINTS=50000,100000 and BENCH_STORED_GENERATIONS=1000000 size the long ones.
BENCH_ARGS ?=

bench: sync
	BENCH_SCALE=$${BENCH_SCALE:-full} $(UV) run --frozen python -m bench $(BENCH_ARGS)

bench-smoke: sync
	BENCH_SCALE=smoke $(UV) run --frozen python -m bench $(BENCH_ARGS)

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

format: sync
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

schemas: sync
	$(UV) run --frozen python -m genbus.contracts.schema --write

openapi: sync
	$(UV) run --frozen python -m genbus.api.openapi --write
	$(UV) run --frozen python -m genbus.webhooks.openapi --write

# The clients' types from the committed OpenAPI (services/api/openapi.json): run after `make openapi`.
# Needs Node.js and npm (the TypeScript packages are pinned by clients/typescript/package-lock.json).
clients: sync
	$(UV) run --frozen python libs/client/codegen/generate_models.py
	@command -v npm >/dev/null || { echo "make clients needs Node.js and npm"; exit 1; }
	cd clients/typescript && npm ci --no-audit --no-fund --ignore-scripts && npm run --silent generate

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
