# Quick start: `make reproduce` runs the whole grid on the synthetic default,
# `make test` runs the test suite. Both create and reuse .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
JOBS ?= 2

.PHONY: setup test test-fast reproduce bench clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

reproduce: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake -j $(JOBS)

bench: setup
	$(BIN)/python -m bench

clean-data:
	rm -rf data results/train results/eval results/tables results/plots .scratch
