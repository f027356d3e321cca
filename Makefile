# replicate — one-command set-up. `make test` and `make book` create .venv/,
# install the pinned environment and register the papermill kernel.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := replicate

# Take the public data from the shared mirror when it exists (CI and dev machines).
ifneq ($(wildcard ../shared/data),)
export REPLICATE_DATA_MIRROR ?= $(abspath ../shared/data)
endif
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
PYTEST_ARGS ?=
JOBS ?= 2

.PHONY: venv test book book-html chapters clean clean-cache benchmarks browser-test

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24" wheel
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "replicate (.venv)"
	$(PY) -c "import json,sys; k=json.load(open('$(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json')); assert k['argv'][0].startswith('/'), k; print('kernel', k['argv'][0])"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

# Execute every chapter (cached on its inputs), then build the HTML book.
book: $(STAMP)
	$(VENV)/bin/replicate book build

clean:
	rm -rf book/_build book/chapters book/_generated

clean-cache:
	rm -rf data/cache

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

# Headless-Chromium check of the built book (installs Debian's chromium).
browser-test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)
	$(PY) -m pytest tests/test_book_browser.py
