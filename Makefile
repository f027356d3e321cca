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

.PHONY: venv test test-fast lint book clean clean-cache benchmarks browser-deps

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "replicate (.venv)"
	$(PY) -c "import json,sys; k=json.load(open('$(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json')); assert k['argv'][0].startswith('/'), k; print('kernel', k['argv'][0])"
	touch $(STAMP)

# Debian's chromium + chromedriver for the headless-browser check of the built book.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

test: $(STAMP) browser-deps
	$(PY) -m pytest -n $(JOBS) --dist loadgroup $(PYTEST_ARGS)

# Execute every chapter (cached on its inputs; an interrupted build resumes), then build the HTML book.
# Features come from the verified release data/release/features.tar.xz when present; FROM=images
# re-extracts them all. SCHEDULER=tcp://HOST:8786 sends extraction and CV / random splits to a Dask cluster.
FROM ?= release
SCHEDULER ?=
book: $(STAMP) browser-deps
	$(VENV)/bin/replicate book build --from $(FROM) $(if $(SCHEDULER),--scheduler $(SCHEDULER))
	$(VENV)/bin/replicate book check

clean:
	rm -rf book/_build book/chapters book/_generated

clean-cache:
	rm -rf data/cache

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

# Lint: ruff (lint + format check) on the library, tests and benchmarks; the chapter notebooks parsed,
# their cells sized and their code linted (replicate.lint_notebooks). Offline; also the pre-commit hooks.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m replicate.lint_notebooks

# Everything but chapter executions and large extractions (tests marked slow).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "not slow" $(PYTEST_ARGS)
