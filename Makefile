# Set-up and everyday commands. The virtual environment lives at .venv/ in the repo root.
# torch is pinned to 2.13.0 in the same pip call: on the project's CPU machines that is a local
# CPU wheel, and an unpinned torch would pull a multi-GB CUDA build.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install install-dev quickstart test test-slow lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH) -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev]"

quickstart: install
	$(BIN)/toolgym quickstart

test: install-dev
	$(BIN)/python -m pytest -q -m "not slow and not gpu"

test-slow: install-dev
	$(BIN)/python -m pytest -q -m "slow and not gpu"

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
