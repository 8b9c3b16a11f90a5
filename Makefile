# Every target does its own set-up: a fresh clone needs nothing installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
# The CPU build of torch (on this machine's disk). A bare "torch" may resolve to a multi-GB CUDA build,
# so it is installed first and the project's "torch>=2.6" is then already satisfied.
TORCH_SPEC ?= torch==2.13.0

export SUNORECSYS_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME := $(SUNORECSYS_DATA_DIR)/dagster
# Model weights are never downloaded implicitly (see README "Model weights").
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: help setup chromaprint demo ui test test-setup bench lint clean

help:
	@echo "make demo   - set up, generate the sample catalogue, run the whole pipeline, print where results are"
	@echo "make ui     - set up and start the Dagster UI on http://127.0.0.1:3000 (nightly schedule on)"
	@echo "make test   - set up (incl. headless chromium for the UI test) and run the test suite"
	@echo "make bench  - run the benchmarks under bench/"

$(STAMP): pyproject.toml Makefile
	@echo "==> creating $(VENV) and installing sunorecsys (CPU torch first)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev]"
	@# audiobox_aesthetics declares torchaudio (broken beside CPU torch 2.13, and imported by
	@# transformers whenever present) and submitit; its model module needs neither: install it alone.
	$(PIP) install -q --no-deps "audiobox_aesthetics==0.0.4"
	touch $(STAMP)

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml chromaprint

# Chromaprint (the AcoustID fingerprint) for the spam filter: Debian's libchromaprint1, used from
# Python through pyacoustid's ctypes binding.
chromaprint:
	@ldconfig -p 2>/dev/null | grep -q libchromaprint.so.1 || { \
	  echo "==> installing Debian libchromaprint1 for the spam filter"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libchromaprint1 >/dev/null) \
	      || { echo "libchromaprint1 could not be installed"; exit 1; }; \
	  else echo "not root: install libchromaprint1 (apt-get install libchromaprint1)"; exit 1; fi; }

# Dagster's recommendation: the instance config in DAGSTER_HOME (the source copy is deploy/dagster.yaml).
$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: setup
	$(PY) -m sunorecsys_pipeline.demo

# `dg dev` (Dagster's recommended CLI; the project is [tool.dg] in pyproject.toml) serves the UI
# and runs the daemon (schedule, sensor, run queue). VIRTUAL_ENV names the project's venv so dg
# does not warn that the active venv differs.
ui: setup
	@echo "==> Dagster UI on http://127.0.0.1:3000 (Ctrl-C to stop)"
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/dg dev -h 127.0.0.1 -p 3000

# Debian chromium for the one browser test of the UI (skipped with a reason if it cannot be installed).
test-setup: setup
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "==> installing Debian chromium for the UI test"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; the browser test will be skipped"; \
	  else echo "not root: install chromium yourself for the browser test"; fi; }

test: test-setup
	$(PY) -m pytest -q

bench: setup
	for b in bench/*.py; do echo "==> $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check sunorecsys sunorecsys_pipeline tests bench

clean:
	rm -rf $(VENV) data
