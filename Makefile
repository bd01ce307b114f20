# genbus — two commands do all set-up: `make run` and `make test`.
# Needs only Python 3.11+ and make; uv is installed into .tools/ when it is not on PATH.

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

.PHONY: help sync run test test-unit test-e2e faults bench bench-smoke lint format typecheck schemas openapi docs clean

help:
	@echo "make run     start NATS, Postgres, the sim provider and every service (Ctrl-C stops all)"
	@echo "make test    lint-free code, unit, integration and end-to-end tests on real NATS/Postgres"
	@echo "make faults  the fault-injection suite at full size"
	@echo "make bench   benchmarks against targets (bench/results/, summary table); long"
	@echo "make bench-smoke  the benchmarks at tiny sizes (~1 min, results in .local/bench-smoke/)"
	@echo "make lint    ruff + mypy"
	@echo "make docs    docs/configuration.md from every service's Settings"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"

sync: $(UV_BOOTSTRAP)
	$(UV) sync --frozen --all-packages

run: sync
	$(UV) run --frozen genbus-dev run

# Temp dirs under .local/: another pytest run on the machine cannot prune them mid-run.
test: sync
	mkdir -p $(CURDIR)/.local
	$(UV) run --frozen pytest --basetemp=$(CURDIR)/.local/pytest $(PYTEST_ARGS)

# docs/configuration.md from every service's Settings (a unit test keeps it current).
docs: sync
	$(UV) run --frozen python -m genbus.devstack.config_doc --write

test-unit: sync
	$(UV) run --frozen pytest tests/unit $(PYTEST_ARGS)

test-e2e: sync
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

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
