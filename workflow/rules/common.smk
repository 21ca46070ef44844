# Configuration validation and the helpers the other rule files share.
import os
import sys
import time
from pathlib import Path

# When this run started: the end-of-run summary tells metrics this run computed from older ones.
RUN_STARTED = time.time()

# The package lives in src/; put it on the path of this process and of every job (local, conda or
# SLURM jobs inherit the environment), so the workflow runs from a plain checkout without installing
# localmer into each conda env. This sets PYTHONPATH; it reads no user environment variable.
LOCALMER_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, LOCALMER_SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (LOCALMER_SRC, os.environ.get("PYTHONPATH")) if p))

from localmer import config as localmer_config  # noqa: E402
from localmer import evaluation as localmer_evaluation  # noqa: E402
from localmer import inputs as localmer_inputs  # noqa: E402
from localmer import preprocess as localmer_preprocess  # noqa: E402
from localmer import regions as localmer_regions  # noqa: E402
from localmer import scheduling as localmer_scheduling  # noqa: E402
from localmer import stages as localmer_stages  # noqa: E402
from localmer import tasks as localmer_tasks  # noqa: E402
from localmer import training as localmer_training  # noqa: E402
from localmer.methods import fold as localmer_method_fold  # noqa: E402
from localmer.methods import inputs as localmer_method_inputs  # noqa: E402
from localmer.methods import registry as localmer_methods  # noqa: E402

# Fill defaults and check every key (config/config.yaml against workflow/schemas/config.schema.yaml,
# then the semantic checks: paths exist, names unique, experiments valid).
_validated = localmer_config.validate(config, base_dir=os.getcwd())
config.clear()
config.update(_validated)

RESULTS = config["results"]
SYNTHETIC = config["synthetic"]
SYNTHETIC_OUT = SYNTHETIC["out"]
CORPUS_DONE = f"{SYNTHETIC_OUT}/corpus.json"
PREPROCESS = f"{RESULTS}/preprocess"
# Conda environments per rule family (paths relative to the rule files; used with --sdm conda).
ENV_DATA = "../../envs/data.yaml"
ENV_PREPROCESSING = "../../envs/preprocessing.yaml"
ENV_TRAINING = "../../envs/training.yaml"
ENV_REPORTING = "../../envs/reporting.yaml"
REGIONS = list(localmer_regions.REGION_NAMES)
# Every experiment's configuration (base config with its overrides merged, validated), built once; an
# experiment with training.repeats N > 1 adds its N repeats, experiments of their own named
# <experiment>.seed<S> (localmer.config.repeats), and keeps only their pooled metrics.
EXPERIMENTS = {name: localmer_config.experiment(config, name, base_dir=os.getcwd()) for name in config["experiments"]}
REPEATS = {}
for _name, _experiment in list(EXPERIMENTS.items()):
    _repeats = localmer_config.repeats(_experiment, _name)
    REPEATS[_name] = list(_repeats)
    for _repeat in _repeats:
        if _repeat in EXPERIMENTS:
            raise localmer_config.ConfigError(
                f"experiment {_repeat!r} is also a repeat of experiment {_name!r}: rename one of them"
            )
    EXPERIMENTS.update(_repeats)
    REPEATS.update(dict.fromkeys(_repeats, []))  # a repeat has none of its own
# The task of each experiment (a registered one, or a task table file).
TASK_CLASSES = {name: list(localmer_tasks.resolve_task(e["task"]).classes) for name, e in EXPERIMENTS.items()}


def experiment_config(name):
    if name not in EXPERIMENTS:
        raise localmer_config.ConfigError(f"unknown experiment {name!r}; defined: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


# Preprocessed files live in folders named by a stage key, a digest of the settings that stage depends on
# (localmer.preprocess.stage_keys), so experiments share them and a patch-count change re-runs only
# cropping. Preprocessing covers every annotated clip of the datasets, whatever the task (the clip table
# clips.tsv that build_index writes beside each experiment's samples.tsv), so experiments of different
# tasks share every preprocessed file. A stage key's jobs read the clip table of one experiment that has
# that key, the first in config order (EXPERIMENT_OF_STAGE_KEY; all such experiments have the same clips
# and settings for that stage), whatever `run` holds, so that running other experiments reruns nothing.
# Rule all asks for those clip tables (stage_clip_tables): each is a checkpoint, and one the run did not
# settle would leave a changed frame undetected.
STAGE_KEYS = {name: localmer_preprocess.stage_keys(experiment) for name, experiment in EXPERIMENTS.items()}
# A QC sheet shows a subject's aligned faces, patch boxes and flow: it is keyed by those stages (as the flow
# patches are), so experiments sharing them share their sheets. A peer method's cached per-clip inputs are a
# stage of their own, named by the method.
for _name, _experiment in EXPERIMENTS.items():
    STAGE_KEYS[_name]["qc"] = STAGE_KEYS[_name]["flowpatches"]
    _method = localmer_methods.get_method(_experiment["method"])
    if _method.clip_input is not None:
        STAGE_KEYS[_name][_method.name] = localmer_method_inputs.input_key(
            _method.name, _experiment["methods"][_method.name], STAGE_KEYS[_name][_method.source]
        )
EXPERIMENT_OF_STAGE_KEY = {}
for _name in EXPERIMENTS:
    for _stage_key in STAGE_KEYS[_name].values():
        EXPERIMENT_OF_STAGE_KEY.setdefault(_stage_key, _name)


PEERS = localmer_methods.PEERS
DEEP_PEERS = [name for name in PEERS if localmer_methods.get_method(name).deep]
SHALLOW_PEERS = [name for name in PEERS if not localmer_methods.get_method(name).deep]


wildcard_constraints:
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    method="|".join(PEERS),
    stage_key=r"[0-9a-f]{10}",
    subject=r"[a-z][a-z0-9_]*/[^/]+",
    # A LOSO fold is its test subject, a LODO fold its dataset part; final: the all-subjects models of a
    # bundle. A peer's folder under a LODO fold (casme2/ststnet) is not a LOSO fold.
    fold=r"final|[a-z][a-z0-9_]*(?:/(?!(?:" + "|".join(PEERS) + r")(?:/|$))[^/]+)?",
    region="|".join(localmer_regions.REGION_NAMES),
    part=r"[A-Za-z0-9_]+",


def _under_synthetic(path):
    out = Path(SYNTHETIC_OUT).resolve()
    path = Path(path).resolve()
    return path == out or out in path.parents


def samples_of(experiment):
    """The experiment's sample table, once its index exists (checkpoint build_index)."""
    import pandas as pd

    path = checkpoints.build_index.get(experiment=experiment).output.samples
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def subjects_of(experiment):
    return sorted(samples_of(experiment).subject.unique())


def folds_of(experiment):
    """The experiment's folds by name: its test subjects (loso) or dataset parts (lodo)."""
    return localmer_training.fold_names(subjects_of(experiment), experiment_config(experiment)["training"]["protocol"])


def stage_clips(wildcards):
    """The clip table (every annotated clip) a preprocessing job's stage key covers, once it exists
    (checkpoint build_index of the stage's experiment)."""
    import pandas as pd

    path = checkpoints.build_index.get(experiment=get_stage_experiment(wildcards)).output.clips
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def preprocessed_file(experiment, stage, subject):
    """A subject's file of a preprocessing stage (landmarks, aligned, patches, flow, flowpatches), as the
    experiment has it."""
    return f"{PREPROCESS}/{stage}-{STAGE_KEYS[experiment][stage]}/{subject}.h5"


# ------------------------------------------------------------------ input functions and params


def get_experiment_config(wildcards):
    return experiment_config(wildcards.experiment)


def experiment_setting(*keys):
    """An input or params function: the value at ``keys`` of the job's experiment config, e.g.
    experiment_setting("model", "region_labels")."""

    def setting(wildcards):
        value = get_experiment_config(wildcards)
        for key in keys:
            value = value[key]
        return value

    return setting


def get_dataset_inputs(wildcards):
    """The files an experiment's index reads (its datasets, ground truth and task table); corpus paths
    resolve to the synthesize_corpus output."""
    experiment = experiment_config(wildcards.experiment)
    paths = [d[k] for d in experiment["datasets"] for k in ("root", "annotations") if d.get(k)]
    if experiment["task"].get("ground_truth"):
        paths.append(experiment["task"]["ground_truth"])
    if localmer_tasks.is_task_table(experiment["task"]["name"]):
        paths.append(experiment["task"]["name"])
    inputs = []
    for path in paths:
        target = CORPUS_DONE if SYNTHETIC["enabled"] and _under_synthetic(path) else path
        if target not in inputs:
            inputs.append(target)
    return inputs


def get_stage_experiment(wildcards):
    """The experiment whose sample index serves a preprocessing job's stage key."""
    return EXPERIMENT_OF_STAGE_KEY[wildcards.stage_key]


def get_stage_samples(wildcards):
    """The clip table a preprocessing job reads: every annotated clip, whatever the task."""
    return f"{RESULTS}/{get_stage_experiment(wildcards)}/clips.tsv"


def get_stage_preprocessing(wildcards):
    return experiment_config(get_stage_experiment(wildcards))["preprocessing"]


def stage_preprocessing(stage):
    """A params function: the preprocessing settings a stage reads (localmer.preprocess.STAGE_SETTINGS),
    only those, so that the params rerun trigger reruns a stage for its own settings alone."""

    def settings(wildcards):
        return localmer_preprocess.stage_settings(get_stage_preprocessing(wildcards), stage)

    return settings


def get_subject_frames(wildcards):
    """Every frame file (or video) of a subject: touching one re-runs only that subject's preprocessing."""
    samples = stage_clips(wildcards)
    files = []
    for sample in samples[samples.subject == wildcards.subject].itertuples():
        if sample.frames:
            files += [f"{sample.frame_dir}/{name}" for name in sample.frames.split("|")]
        else:
            files.append(sample.frame_dir)
    return files


def get_subject_landmarks(wildcards):
    return preprocessed_file(get_stage_experiment(wildcards), "landmarks", wildcards.subject)


def get_subject_aligned(wildcards):
    return preprocessed_file(get_stage_experiment(wildcards), "aligned", wildcards.subject)


def get_subject_patches(wildcards):
    return preprocessed_file(get_stage_experiment(wildcards), "patches", wildcards.subject)


def get_subject_flow(wildcards):
    return preprocessed_file(get_stage_experiment(wildcards), "flow", wildcards.subject)


def get_stage_aligned(wildcards):
    """Every subject's aligned faces (region sizes are measured over all of them)."""
    experiment = get_stage_experiment(wildcards)
    return [preprocessed_file(experiment, "aligned", subject) for subject in sorted(set(stage_clips(wildcards).subject))]


def get_region_sizes(wildcards):
    """region_sizes.json only when a region size is auto (it depends on every subject of the stage key)."""
    table = localmer_regions.load_region_table(get_stage_preprocessing(wildcards)["regions"])
    if any(spec["size"] == "auto" for spec in table.values()):
        return [f"{PREPROCESS}/patches-{wildcards.stage_key}/region_sizes.json"]
    return []


def get_qc_inputs(wildcards):
    """A QC sheet's inputs: the subject's aligned faces, patches (boxes) and flow (the onset->apex flow
    every sheet shows, so the default run computes the flow stage)."""
    experiment = get_stage_experiment(wildcards)
    return {stage: preprocessed_file(experiment, stage, wildcards.subject) for stage in ("aligned", "patches", "flow")}


def get_experiment_patches(wildcards):
    return [preprocessed_file(wildcards.experiment, "patches", s) for s in subjects_of(wildcards.experiment)]


def get_experiment_flow_patches(wildcards):
    """Every subject's flow patches: what training reads for experiments whose model.input is flow."""
    return [preprocessed_file(wildcards.experiment, "flowpatches", s) for s in subjects_of(wildcards.experiment)]


def get_experiment_landmarks(wildcards):
    return [preprocessed_file(wildcards.experiment, "landmarks", s) for s in subjects_of(wildcards.experiment)]


def get_experiment_spatial_inputs(wildcards):
    """The files the experiment's spatial models read: the source of its model.input (localmer.inputs),
    the patches or the flow patches."""
    source = localmer_inputs.representation(experiment_config(wildcards.experiment)["model"]["input"]).source
    files_of = {
        localmer_inputs.PATCHES: get_experiment_patches,
        localmer_inputs.FLOW_PATCHES: get_experiment_flow_patches,
    }
    return files_of[source](wildcards)


def get_preprocessing_outputs(wildcards):
    """Every subject's landmarks, flow (apex per clip), patches and QC sheet of an experiment."""
    subjects = subjects_of(wildcards.experiment)
    return {
        "landmarks": get_experiment_landmarks(wildcards),
        "flow": [preprocessed_file(wildcards.experiment, "flow", s) for s in subjects],
        "patches": get_experiment_patches(wildcards),
        "qc": [f"{PREPROCESS}/qc-{STAGE_KEYS[wildcards.experiment]['qc']}/{s}.png" for s in subjects],
    }


def get_spatial_settings(wildcards):
    return localmer_stages.stage_settings(experiment_config(wildcards.experiment), localmer_stages.SPATIAL)


def get_temporal_settings(wildcards):
    return localmer_stages.stage_settings(experiment_config(wildcards.experiment), localmer_stages.TEMPORAL)


def method_of(experiment):
    """The experiment's method (localmer.methods.registry)."""
    return localmer_methods.get_method(experiment_config(experiment)["method"])


def fold_folder(experiment, fold):
    """Where a fold's predictions are: the seed's method writes them beside its models, a peer method in
    a folder named by it."""
    method = method_of(experiment).name
    folder = f"{RESULTS}/{experiment}/folds/{fold}"
    return folder if method == localmer_methods.LOCALMER else f"{folder}/{method}"


def get_bundle_settings(wildcards):
    """A bundle's settings (the temporal stage's); `localmer predict` runs the seed's method only."""
    method = method_of(wildcards.experiment).name
    if method != localmer_methods.LOCALMER:
        raise localmer_config.ConfigError(
            f"experiment {wildcards.experiment!r} runs method {method!r}: a model bundle (localmer predict) "
            f"holds the seed's method ({localmer_methods.LOCALMER!r}) only"
        )
    return get_temporal_settings(wildcards)


def get_fold_predictions(wildcards):
    """The test predictions of every fold (one per subject, or per dataset part), or of an experiment
    with repeats, each repeat's pooled predictions."""
    if REPEATS[wildcards.experiment]:
        return [f"{RESULTS}/{repeat}/predictions.tsv" for repeat in REPEATS[wildcards.experiment]]
    return [f"{fold_folder(wildcards.experiment, f)}/predictions.tsv" for f in folds_of(wildcards.experiment)]


def get_training_histories(wildcards):
    """Every fold's training histories by model kind: spatial and temporal for the seed's method, one per
    fold for a deep peer; with repeats, the first repeat's."""
    experiment = (REPEATS[wildcards.experiment] or [wildcards.experiment])[0]
    folds = folds_of(experiment)
    method = method_of(experiment).name
    if method != localmer_methods.LOCALMER:
        return {method: [f"{fold_folder(experiment, f)}/history.tsv" for f in folds]}
    folder = f"{RESULTS}/{experiment}/folds"
    return {
        "spatial": [f"{folder}/{f}/spatial/{region}.history.tsv" for f in folds for region in REGIONS],
        "temporal": [f"{folder}/{f}/temporal.history.tsv" for f in folds],
    }


def get_repeat_seeds(wildcards):
    """The training seeds of an experiment's repeats, in order ([] without repeats)."""
    return [experiment_config(repeat)["training"]["seed"] for repeat in REPEATS[wildcards.experiment]]


def get_task_classes(wildcards):
    return TASK_CLASSES[wildcards.experiment]


def get_method_input_source(wildcards):
    """The per-subject file a peer method's clip inputs are computed from (its source stage's)."""
    experiment = get_stage_experiment(wildcards)
    return preprocessed_file(experiment, localmer_methods.get_method(wildcards.method).source, wildcards.subject)


def get_method_input_settings(wildcards):
    experiment = experiment_config(get_stage_experiment(wildcards))
    return localmer_method_inputs.input_settings(wildcards.method, experiment["methods"][wildcards.method])


def get_experiment_method_inputs(wildcards):
    """Every subject's cached inputs of the experiment's peer method."""
    method = method_of(wildcards.experiment).name
    return [preprocessed_file(wildcards.experiment, method, s) for s in subjects_of(wildcards.experiment)]


def get_peer_fold_settings(wildcards):
    """A peer fold job's settings (localmer.methods.fold.fold_settings); the job's method must be its
    experiment's."""
    experiment = experiment_config(wildcards.experiment)
    if experiment["method"] != wildcards.method:
        raise localmer_config.ConfigError(
            f"experiment {wildcards.experiment!r} runs method {experiment['method']!r}, not {wildcards.method!r}"
        )
    return localmer_method_fold.fold_settings(experiment)


# ------------------------------------------------------------------ targets and messages


def final_outputs():
    """Per experiment run its index, preprocessing report, metrics, training curves (methods trained by
    epochs) and config; the ablation and comparison tables over them."""
    tables = ("index_summary.tsv", "preprocessing_report.tsv", "metrics.json", "config.yaml")
    outputs = []
    for name in config["run"]:
        outputs += [f"{RESULTS}/{name}/{table}" for table in tables]
        if method_of(name).deep:
            outputs.append(f"{RESULTS}/{name}/training_curves.png")
    return outputs + stage_clip_tables() + [f"{RESULTS}/ablation.tsv", f"{RESULTS}/comparison.tsv"]


def stage_clip_tables():
    """The clip tables the run's preprocessing reads (EXPERIMENT_OF_STAGE_KEY)."""
    keys = {key for name in config["run"] for repeat in REPEATS[name] or [name] for key in STAGE_KEYS[repeat].values()}
    return sorted({f"{RESULTS}/{EXPERIMENT_OF_STAGE_KEY[key]}/clips.tsv" for key in keys})


def run_protocol(experiment):
    """How an experiment is evaluated, for the comparison table (localmer.comparison.run_protocol)."""
    from localmer.comparison import run_protocol as describe

    settings = experiment_config(experiment)
    task = localmer_tasks.resolve_task(settings["task"]).name
    return describe(task, settings["training"]["protocol"], settings["training"]["repeats"])


def corpus_description():
    """What data this run scored, for the comparison table: the synthetic corpus, or the datasets."""
    if SYNTHETIC["enabled"] and all(_under_synthetic(d["root"]) for d in config["datasets"]):
        return f"synthetic corpus, seed {SYNTHETIC['seed']}" + (" (null: no facial action)" if SYNTHETIC["null"] else "")
    return "datasets " + ", ".join(d["name"] for d in config["datasets"])


def print_results():
    """FULL UF1 / UAR of every experiment run, at the end of a successful run, each marked as computed by
    this run or unchanged since an earlier one (a run may have had nothing to recompute)."""
    metrics = {name: Path(RESULTS) / name / "metrics.json" for name in config["run"]}
    for line in localmer_evaluation.run_summary(metrics, RUN_STARTED):
        print(line)
