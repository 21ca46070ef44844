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
from localmer import preprocess as localmer_preprocess  # noqa: E402
from localmer import regions as localmer_regions  # noqa: E402
from localmer import training as localmer_training  # noqa: E402

# Fill defaults and check every key (config/config.yaml against workflow/schemas/config.schema.yaml,
# then the semantic checks: paths exist, names unique, experiments valid).
_validated = localmer_config.validate(config, base_dir=os.getcwd())
config.clear()
config.update(_validated)

RESULTS = config["results"]
SYNTHETIC = config["synthetic"]
SYNTHETIC_OUT = SYNTHETIC["out"]
CORPUS_DONE = f"{SYNTHETIC_OUT}/corpus.json"
# Conda environments per rule family (paths relative to the rule files; used with --sdm conda).
ENV_DATA = "../../envs/data.yaml"
ENV_PREPROCESSING = "../../envs/preprocessing.yaml"
ENV_TRAINING = "../../envs/training.yaml"
ENV_REPORTING = "../../envs/reporting.yaml"
REGIONS = list(localmer_regions.REGION_NAMES)


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


# Preprocessed files live in folders named by a digest of the settings each stage depends on
# (localmer.preprocess.stage_keys), so experiments share them and a patch-count change re-runs only
# cropping. KEY_EXPERIMENT maps a key to one experiment that has it (all such experiments have the
# same samples and settings for that stage). Experiments being run come first, in config order: the
# key's jobs read that experiment's sample index, and one outside the run would leave changed frames
# undetected (its index is a checkpoint the run never settles). Changing `run` can thus move a key to
# another experiment's (identical) index, which re-runs preprocessing once.
STAGE_KEYS = {name: localmer_preprocess.stage_keys(experiment_config(name)) for name in config["experiments"]}
KEY_EXPERIMENT = {}
for _name in sorted(config["experiments"], key=lambda name: name not in config["run"]):
    for _key in STAGE_KEYS[_name].values():
        KEY_EXPERIMENT.setdefault(_key, _name)
PREPROCESS = f"{RESULTS}/preprocess"


wildcard_constraints:
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    key=r"[0-9a-f]{10}",
    subject=r"[a-z][a-z0-9_]*/[^/]+",
    fold=r"final|[a-z][a-z0-9_]*/[^/]+",  # final: the all-subjects models of a bundle
    region="|".join(localmer_regions.REGION_NAMES),
    part=r"[A-Za-z0-9_]+",


def spatial_settings(wildcards):
    return localmer_training.stage_settings(experiment_config(wildcards.experiment), "spatial")


def temporal_settings(wildcards):
    return localmer_training.stage_settings(experiment_config(wildcards.experiment), "temporal")


def key_experiment(wildcards):
    return KEY_EXPERIMENT[wildcards.key]


def key_samples(wildcards):
    return f"{RESULTS}/{KEY_EXPERIMENT[wildcards.key]}/samples.tsv"


def key_preprocessing(wildcards):
    return experiment_config(KEY_EXPERIMENT[wildcards.key])["preprocessing"]


def samples_of(experiment):
    """The experiment's sample table, once its index exists (checkpoint build_index)."""
    import pandas as pd

    path = checkpoints.build_index.get(experiment=experiment).output.samples
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def subjects_of(experiment):
    return sorted(samples_of(experiment).subject.unique())


def subject_frames(wildcards):
    """Every frame file (or video) of a subject: touching one re-runs only that subject's preprocessing."""
    samples = samples_of(KEY_EXPERIMENT[wildcards.key])
    files = []
    for sample in samples[samples.subject == wildcards.subject].itertuples():
        if sample.frames:
            files += [f"{sample.frame_dir}/{name}" for name in sample.frames.split("|")]
        else:
            files.append(sample.frame_dir)
    return files


def region_sizes_input(wildcards):
    """region_sizes.json only when a region size is auto (it depends on every subject of the key)."""
    table = localmer_preprocess.regions.load_region_table(key_preprocessing(wildcards)["regions"])
    if any(spec["size"] == "auto" for spec in table.values()):
        return [f"{PREPROCESS}/patches-{wildcards.key}/region_sizes.json"]
    return []


def experiment_patches(wildcards):
    keys = STAGE_KEYS[wildcards.experiment]
    subjects = subjects_of(wildcards.experiment)
    return {
        "landmarks": [f"{PREPROCESS}/landmarks-{keys['landmarks']}/{s}.h5" for s in subjects],
        "patches": [f"{PREPROCESS}/patches-{keys['patches']}/{s}.h5" for s in subjects],
        "qc": [f"{RESULTS}/{wildcards.experiment}/qc/{s}.png" for s in subjects],
    }


def final_outputs():
    tables = ("index_summary.tsv", "preprocessing_report.tsv", "metrics.json", "training_curves.png", "config.yaml")
    return [f"{RESULTS}/{name}/{table}" for name in config["run"] for table in tables] + [f"{RESULTS}/ablation.tsv"]


def print_results():
    """FULL UF1 / UAR of every experiment run, at the end of a successful run."""
    import json

    for name in config["run"]:
        path = Path(RESULTS) / name / "metrics.json"
        if path.exists():
            full = json.loads(path.read_text())["parts"]["FULL"]
            print(f"localmer {name}: FULL UF1 {full['uf1']:.4f}  UAR {full['uar']:.4f}  (n = {full['n']}; {path.parent}/metrics.md)")
