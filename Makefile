# Every set-up step lives here so a fresh clone (and CI) needs nothing else.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install lint format test test-fast docs demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@# OpenVINO's tools send usage telemetry unless opted out; a dev or CI machine sends none.
	-$(VENV)/bin/opt_in_out --opt_out >/dev/null 2>&1
	@# Fashion-MNIST from Debian's package where apt is available; elsewhere resnetkit downloads it.
	@if [ ! -d $(FMNIST_DIR) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1) || \
		echo "note: could not install dataset-fashion-mnist; resnetkit will download Fashion-MNIST when needed"; \
	fi
	@# Debian's fortunes corpus for the text classification data (`--data fortunes`); nothing downloads it.
	@if [ ! -d /usr/share/games/fortunes ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q fortunes >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fortunes >/dev/null 2>&1) || \
		echo "note: could not install fortunes; the fortunes dataset and its tests need it"; \
	fi
	@# Chromium for the web page's browser test (Playwright drives the system browser; it downloads none).
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) || \
		echo "note: could not install chromium; the web page's browser test will fail"; \
	fi
	touch $@

# The habits that keep the code as it is: lint and format (ruff), types (mypy), and the package
# stack (import-linter: every import points down, analysis never trains, no import cycles).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two pytest workers (pytest-xdist), one per core, each running torch on one thread. Work
# stealing: a worker that runs out takes the other's queued tests, so the minute-long tests
# (the shipped models re-measured, the deepest exports) do not leave one core idle at the end.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist worksteal)

test: lint
	$(PY) -m pytest -q $(XDIST)

test-fast: install
	$(PY) -m pytest -q $(XDIST) -m "not slow"

# The documentation site into site/ (git-ignored), warnings as errors: a broken link, a missing
# reference or a docstring that does not parse fails the build. The model table and the HTTP schema
# are generated from the code at every build (docs/conf.py). The test suite builds it too.
docs: install
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs site

# The main job, short: ResNet-20 on Fashion-MNIST with the fashion-mnist recipe, then its evaluation.
DEMO_EPOCHS ?= 8
demo: install
	rm -rf runs/demo
	$(VENV)/bin/resnetkit train --recipe fashion-mnist --model resnet20 --epochs $(DEMO_EPOCHS) --name demo
	$(VENV)/bin/resnetkit eval runs/demo --out runs/demo/eval

bench: install
	$(VENV)/bin/resnetkit bench --model resnet50 --batch-size 32 --seconds 6
	$(PY) benchmarks/train_throughput.py --compile
	$(PY) benchmarks/precision_accuracy.py
	$(PY) benchmarks/loader_cost.py

clean:
	rm -rf $(VENV) site docs/_generated docs/reference/generated build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
