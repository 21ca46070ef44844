# The two commands of the README: `make demo` (synthetic demo workflow) and `make test` (test suite).
# Each creates .venv with what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test lint clean

$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu]"
	touch $@

$(VENV)/.test-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,test]"
	touch $(VENV)/.demo-installed $@

# CPU TensorFlow: training jobs may run side by side, one per core (profiles/default caps gpu at 1).
demo: $(VENV)/.demo-installed
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$$(nproc)

test: $(VENV)/.test-installed
	$(BIN)/pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results/synthetic results/full logs .snakemake
