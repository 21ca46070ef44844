# Configuration validation and the helpers the other rule files share.
import os
import sys
from pathlib import Path

# The package lives in src/; put it on the path of this process and of every job (local, conda or
# SLURM jobs inherit the environment), so the workflow runs from a plain checkout without installing
# localmer into each conda env. This sets PYTHONPATH; it reads no user environment variable.
LOCALMER_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, LOCALMER_SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (LOCALMER_SRC, os.environ.get("PYTHONPATH")) if p))

from localmer import config as localmer_config  # noqa: E402

# Fill defaults and check every key (config/config.yaml against workflow/schemas/config.schema.yaml,
# then the semantic checks: paths exist, names unique, experiments valid).
_validated = localmer_config.validate(config, base_dir=os.getcwd())
config.clear()
config.update(_validated)

RESULTS = config["results"]
SYNTHETIC = config["synthetic"]
SYNTHETIC_OUT = SYNTHETIC["out"]
CORPUS_DONE = f"{SYNTHETIC_OUT}/corpus.json"
ENV_DATA = "../../envs/data.yaml"


def experiment_config(name):
    return localmer_config.experiment(config, name, base_dir=os.getcwd())


def _under_synthetic(path):
    out = Path(SYNTHETIC_OUT).resolve()
    path = Path(path).resolve()
    return path == out or out in path.parents


def dataset_inputs(wildcards):
    """The files an experiment's index reads; corpus paths resolve to the synthesize_corpus output."""
    experiment = experiment_config(wildcards.experiment)
    paths = [d[k] for d in experiment["datasets"] for k in ("root", "annotations") if d.get(k)]
    if experiment["task"].get("ground_truth"):
        paths.append(experiment["task"]["ground_truth"])
    inputs = []
    for path in paths:
        target = CORPUS_DONE if SYNTHETIC["enabled"] and _under_synthetic(path) else path
        if target not in inputs:
            inputs.append(target)
    return inputs


def final_outputs():
    return [f"{RESULTS}/{name}/index_summary.tsv" for name in config["run"]]
