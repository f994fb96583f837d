# Everything a fresh clone needs: `make demo` and `make test` create .venv and install on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
DEMO_DIR ?= demo-output

.PHONY: demo test lint typecheck bench clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned: the CPU build (any other spec may pull several GB of CUDA wheels)
TORCH := torch==2.13.0

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)  ## run the main job on the bundled synthetic market
	$(BIN)/reinforcetrade demo --out $(DEMO_DIR)

lint: $(STAMP_DEV)  ## ruff (lint + format check), codespell
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/codespell src tests docs README.md

typecheck: $(STAMP_DEV)  ## mypy (strict on core, features, risk, backtesting)
	$(BIN)/mypy

test: lint typecheck  ## lint, types and the whole test suite
	PYTHONHASHSEED=0 $(BIN)/python -m pytest

bench: $(STAMP_DEV)  ## run every benchmark (with the peers they race); each prints one JSON line
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:  ## remove the virtualenv, caches and demo output
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(DEMO_DIR)
