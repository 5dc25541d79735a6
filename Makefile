# One command to learn (make lab), one to check everything (make test).
# Both create the virtual environment .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# jupyter refuses to start as root without this flag
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup lab test generate grade bench timing screenshots gpu-check

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# system packages for the browser and PostgreSQL tests (those tests skip, with the reason, without them)
	[ "$$(id -u)" != 0 ] || { test -x /usr/bin/chromium && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null; } || echo "could not install chromium/postgresql: their tests will be skipped"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/01_module_basics/01_module_basics.ipynb

test: $(STAMP)
	$(PY) -m pytest

# regenerate notebooks/ and solutions/ from autograder/source
generate: $(STAMP)
	$(PY) -m tools.generate

# grade every submission of a chapter: make grade CHAPTER=01_module_basics
grade: $(STAMP)
	$(PY) -m nncourse.grade $(CHAPTER)

bench: $(STAMP)
	$(PY) -m tools.bench

timing: $(STAMP)
	$(PY) -m tools.timing

# retake the README's pictures (docs/img/*.png) with the browser tests
screenshots: $(STAMP)
	$(PY) -m tools.screenshots

# on a CUDA machine: every notebook under nbval against the CPU-stored outputs, the checks on the
# GPU, and the grader tests (browser tests excluded)
gpu-check: $(STAMP)
	$(PY) -m pytest autograder/source tests/test_gpu.py tests/test_grader.py -m "not browser"
