# One command sets up and runs the main job; one sets up and runs the tests (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup browser demo test wheel-check results lint format bench-deps bench-zero-shot plots clean

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

# The studio's browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download needs the internet). Installed here when missing and we are root; otherwise they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is missing and could not be installed (needs root): browser tests will skip"

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The wheel, installed with only its declared dependencies into a fresh environment, trains and
# predicts (tests/test_wheel_install.py; a few minutes: CI runs it after the tests).
wheel-check: setup
	LMBFF_WHEEL_CHECK=1 $(BIN)/python -m pytest -q tests/test_wheel_install.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lmbff templates lint

format: setup
	$(BIN)/ruff format .

# The benchmarks' run folders, reports and tables from their JSON-lines files, then their plots.
results: setup
	$(BIN)/python benchmarks/results_store.py unpack
	$(BIN)/python benchmarks/plots.py --root benchmarks/results

# Benchmark plots are regenerated from their report.json, not committed.
plots: setup
	$(BIN)/python benchmarks/plots.py --root benchmarks/results

# SetFit for the peer baseline (benchmarks/setfit_baseline.py); not needed by the toolkit or its tests.
bench-deps: setup
	$(BIN)/pip install --quiet -r requirements-bench.lock

bench-zero-shot: setup
	$(BIN)/python benchmarks/zero_shot.py --data-root ../shared/data --out benchmarks/results/zero_shot

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
