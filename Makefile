# lossbench: `make train` sets everything up and trains; `make test` sets up and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: install train sweep test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install lossbench with its dev tools

train: install  ## one run with the defaults (digits, MLP, cross-entropy); extra overrides via ARGS="loss=focal"
	$(PY) train.py $(ARGS)

sweep: install  ## a small loss x seed sweep on digits
	$(PY) train.py -m loss=ce,focal,mse,huber seed=0,1,2 $(ARGS)

test: install  ## the test suite
	$(PY) -m pytest -q $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests scripts train.py
	$(VENV)/bin/ruff format --check src tests scripts train.py

format: install
	$(VENV)/bin/ruff format src tests scripts train.py
	$(VENV)/bin/ruff check --fix src tests scripts train.py

clean:  ## remove run outputs (not the venv)
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache
