# Two commands do everything on a fresh machine: `make serve` and `make test`.
# Both create .venv when it is missing and install only when pyproject.toml or the lock changed:
# the versions and hashes of requirements/dev.txt (`make lock` writes it from pyproject.toml).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# pip takes this CPU wheel from the machine's disk; a bare `torch` would pull a CUDA build.
# torch is the one package outside the lock (requirements/excludes.txt says why): installed
# first, alone, it is already there when the locked packages that need it are installed.
TORCH_SPEC ?= torch==2.13.0
LOCK := requirements/dev.txt

.PHONY: serve test lint typecheck unit bench install lock system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# the locked versions, each file checked against its hash, then the project itself without
# dependencies (they are all in the lock), editable
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# rewrite requirements/*.txt from pyproject.toml (needs PyPI); commit them with the change
lock: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python requirements/lock.py

# system packages for the browser and proxy tests (Chromium, nginx); skipped when not root
system-deps:
	@bash scripts/system-deps.sh

serve: $(STAMP)
	ATTENTION_HOST=$(HOST) ATTENTION_PORT=$(PORT) $(BIN)/python -m app

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml deploy/compose.cuda.yml

typecheck: $(STAMP)
	$(BIN)/mypy --strict attention app attention_client

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
