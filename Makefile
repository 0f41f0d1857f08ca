# lossbench: `make train` sets everything up and trains; `make test` sets up and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=
JOBS ?= 2  # pytest-xdist processes for make test / test-fast (the suite is mostly CPU-bound subprocesses)

.PHONY: install train sweep test test-fast lint format clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install lossbench with its dev tools

train: install  ## one run with the defaults (digits, MLP, cross-entropy); extra overrides via ARGS="loss=focal"
	$(PY) train.py $(ARGS)

sweep: install  ## losses x seeds on digits (src/lossbench/conf/sweep/losses_x_seeds.yaml), then the comparison report
	$(PY) train.py +sweep=losses_x_seeds trainer.max_epochs=10 $(ARGS); status=$$?; \
	$(VENV)/bin/lossbench compare $$(ls -d multirun/losses_x_seeds/*/* | sort | tail -n 1); exit $$status

test: install  ## every test: tests/unit and tests/integration (JOBS=1 for one process)
	$(PY) -m pytest -q -n $(JOBS) $(ARGS)

test-fast: install  ## the inner loop: tests/unit but its slow tests, and the one smoke run (fewer Hypothesis examples)
	HYPOTHESIS_PROFILE=fast $(PY) -m pytest -q -n $(JOBS) -m "(not integration or smoke) and not slow" $(ARGS)

bench: install  ## performance benchmark (scripts/bench.py): table + JSON in benchmarks/results/; ARGS="--quick"
	$(PY) scripts/bench.py $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests scripts train.py eval.py
	$(VENV)/bin/ruff format --check src tests scripts train.py eval.py

format: install
	$(VENV)/bin/ruff format src tests scripts train.py eval.py
	$(VENV)/bin/ruff check --fix src tests scripts train.py eval.py

clean:  ## remove run outputs (not the venv)
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache
