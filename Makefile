# One command to learn (make lab), one to check everything (make test).
# Both create the virtual environment .venv on first use and reuse it afterwards: make lab installs
# what learners need (requirements.txt); make test adds the contributor set (requirements-dev.txt).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
# jupyter refuses to start as root without this flag
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup dev lab test test-fast lint generate grade bench timing screenshots gpu-check mutation book

setup: $(STAMP)

dev: $(DEV)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

$(DEV): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# system packages for the browser and PostgreSQL tests (those tests skip, with the reason, without them)
	[ "$$(id -u)" != 0 ] || { test -x /usr/bin/chromium && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null; } || echo "could not install chromium/postgresql: their tests will be skipped"
	touch $(DEV)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/01_module_basics/01_module_basics.ipynb

# everything CI runs: lint and types first (seconds), then the whole suite
test: $(DEV) lint
	$(PY) -m pytest

# the unit tests of the checking library and the grading engine (under 2 minutes; no notebooks run)
test-fast: $(DEV)
	$(PY) -m pytest tests -m "not slow and not browser and not gpu"

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# regenerate notebooks/ and solutions/ from autograder/source
generate: $(DEV)
	$(PY) -m tools.generate

# grade every submission of a chapter: make grade CHAPTER=01_module_basics
grade: $(DEV)
	$(PY) -m nncourse.grade $(CHAPTER)

bench: $(DEV)
	$(PY) -m tools.bench

timing: $(DEV)
	$(PY) -m tools.timing

# retake the README's pictures (docs/img/*.png) with the browser tests
screenshots: $(DEV)
	$(PY) -m tools.screenshots

# on a CUDA machine: every notebook under nbval against the CPU-stored outputs, the checks on the
# GPU, and the grader tests (browser tests excluded)
gpu-check: $(DEV)
	$(PY) -m pytest autograder/source tests/test_gpu.py tests/test_grader.py -m "not browser"

# mutation testing of the checks: every one-change mutant of the reference answers must fail a check
# (python -m tools.mutation --sample 3 for a quick look; tests/mutation_equivalents.txt lists the reviewed equivalents)
mutation: $(DEV)
	$(PY) -m tools.mutation

# the browsable site: every chapter as a learner receives it, with the stored outputs, in _build/html/
book: $(DEV)
	$(PY) -m tools.book
