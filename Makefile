# The two commands of the README: `make demo` (synthetic demo workflow) and `make test` (test suite);
# `make compare` runs the methods' comparison on the demo corpus, `make tasks` the other tasks and protocols.
# Each creates .venv with what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo compare tasks test lint clean

# localmer needs OpenCV's contrib build (opencv-contrib-python-headless). A venv made before it did has
# opencv-python-headless, and both install cv2/: installing one beside the other breaks cv2. So before pip
# installs localmer, an older build goes, with any contrib build beside it (their files overlap), and pip
# installs the contrib build afresh. Nothing happens in a venv without an older build.
OTHER_OPENCV := opencv-python-headless opencv-python
REMOVE_OTHER_OPENCV = if $(BIN)/python -m pip show --quiet $(OTHER_OPENCV) 2>/dev/null; then \
	$(BIN)/python -m pip uninstall --quiet -y $(OTHER_OPENCV) opencv-contrib-python-headless; fi

$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(REMOVE_OTHER_OPENCV)
	$(BIN)/python -m pip install --quiet -e ".[cpu]"
	touch $@

$(VENV)/.test-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(REMOVE_OTHER_OPENCV)
	$(BIN)/python -m pip install --quiet -e ".[cpu,test]"
	touch $(VENV)/.demo-installed $@

# CPU TensorFlow: training jobs may run side by side, one per core (profiles/default caps gpu at 1).
demo: $(VENV)/.demo-installed
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$$(nproc)

# The methods on the demo corpus's folds, beside their published figures: results/comparison.{tsv,md,png}.
COMPARED := full,flow_input,ststnet,off_apexnet,lbptop_svm,bi_woof
compare: $(VENV)/.demo-installed
	$(BIN)/snakemake --cores $(CORES) --config "run=[$(COMPARED)]" --resources gpu=$$(nproc)

# The seed's method under every task and protocol (docs/tasks-and-protocols.md).
TASKS := full,casme2_5class,samm_5class,smic_3class,objective_classes,lodo,full_3seeds
tasks: $(VENV)/.demo-installed
	$(BIN)/snakemake --cores $(CORES) --config "run=[$(TASKS)]" --resources gpu=$$(nproc)

test: $(VENV)/.test-installed
	$(BIN)/pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results/synthetic results/full logs .snakemake
