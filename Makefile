# One command sets up and runs the main job; one sets up and runs the tests (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint format bench-zero-shot clean

setup: $(VENV)/.installed

# torch is pinned first on its own: 2.13.0 is the CPU build; an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: setup
	$(BIN)/lmbff demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lmbff templates lint

format: setup
	$(BIN)/ruff format .

bench-zero-shot: setup
	$(BIN)/python benchmarks/zero_shot.py --data-root ../shared/data --out benchmarks/results/zero_shot

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
