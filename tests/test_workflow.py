"""The Snakemake workflow: dry-run, lint, and (slow) a real run on a small synthetic corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from localmer.tasks import TASKS

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir``, with the config folder deployed there as a user would. The
    workflow's default profile caps gpu at 1; the CPU-only tests lift it so training jobs run side by side."""
    shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
    return subprocess.run(
        # --resources takes several values: it goes last, after any target.
        [*SNAKEMAKE, "--directory", str(workdir), *args, "--resources", "gpu=2"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def planned_jobs(workdir: Path, config: Path, *args: str) -> dict[str, int]:
    """rule -> number of jobs a dry run (with ``args``: targets, --forceall) would execute now, from the
    plan's job stats table."""
    return job_stats(dry_run(workdir, config, *args))


def dry_run(workdir: Path, config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """What a dry run (with ``args``) prints."""
    result = snakemake(workdir, "--configfile", str(config), "-n", "--cores", "1", *args, env=env, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def job_stats(plan: str) -> dict[str, int]:
    """rule -> number of jobs, from a dry run's job stats table."""
    jobs, in_table = {}, False
    for line in plan.splitlines():
        fields = line.split()
        if fields[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(fields) == 2 and fields[1].isdigit():
            if fields[0] == "total":
                break
            jobs[fields[0]] = int(fields[1])
    return jobs


def small_config(tmp_path: Path, **synthetic) -> Path:
    """The demo configuration scaled down: 3 parts x 2 subjects x 1 clip per class (and 1 clip the task
    excludes), 6 frames per clip, 1-2 epochs; ``synthetic`` overrides the corpus."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for part in cfg["synthetic"]["parts"].values():
        part.update(subjects=2, clips_per_class=1, extra_clips_per_subject=1, fps=50)
    cfg["synthetic"]["image_size"] = [160, 180]
    cfg["preprocessing"].update(frames="resample", n_frames=6, flow={"method": "dis"})  # DIS: the fast method
    cfg["training"]["spatial"].update(epochs=1)
    cfg["training"]["temporal"].update(epochs=2, steps=6)
    cfg["evaluation"]["bootstrap"] = 100
    cfg["synthetic"].update(synthetic)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_on_the_default_config(tmp_path):
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "config.yaml"), "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    for rule in ("synthesize_corpus", "build_index", "all"):
        assert rule in out


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "config.yaml"), "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_invalid_config_stops_the_workflow_naming_the_key(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["datasets"][0]["kind"] = "casme3"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = snakemake(tmp_path, "--configfile", str(path), "-n")
    assert result.returncode != 0
    assert "config key 'datasets[0].kind': 'casme3' is not allowed" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> dict:
    """The whole workflow, once, on the small corpus; the tests below read its outputs, ask its plan and
    build more targets in its working directory (each leaves the directory's inputs as it found them)."""
    workdir = tmp_path_factory.mktemp("small_run")
    config = small_config(workdir)
    result = snakemake(workdir, "--configfile", str(config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = workdir / "results"
    return {
        "workdir": workdir,
        "config": config,
        "log": result.stdout + result.stderr,
        "results": results,
        "samples": pd.read_csv(results / "full" / "samples.tsv", sep="\t"),
    }


@pytest.mark.slow
def test_the_index_reads_back_what_the_generator_wrote(small_run):
    results, samples = small_run["results"], small_run["samples"]
    corpus = json.loads((results / "synthetic" / "corpus.json").read_text())
    truth = pd.read_csv(results / "synthetic" / "synth_clips.tsv", sep="\t")
    excluded = pd.read_csv(results / "full" / "excluded.tsv", sep="\t")
    assert corpus["null"] is False
    # 3 parts x 2 subjects x 3 classes in the task; the extra clip per subject is excluded, with a reason.
    assert len(samples) == 18 and samples.subject.nunique() == 6
    assert len(excluded) == 6 and excluded.reason.str.len().gt(0).all()
    assert samples.groupby("label").size().to_dict() == {"negative": 6, "positive": 6, "surprise": 6}
    # The adapters read back what the generator wrote: labels and timing agree clip by clip.
    micro = truth[truth["class"].isin(["negative", "positive", "surprise"])].rename(columns={"class": "label"})
    assert len(micro) == 18
    by_folder = samples.set_index(samples.frame_dir.map(lambda d: Path(d).name))
    for clip in micro.itertuples():
        sample = by_folder.loc[clip.clip]
        assert (sample.label, sample.onset, sample.offset) == (clip.label, clip.onset, clip.offset)
        # SMIC-HS has no AU or apex annotation: the adapter takes the middle frame, as documented.
        if clip.part == "smic":
            assert pd.isna(sample.aus) and "middle frame" in sample.notes
        else:
            assert (sample.aus, sample.apex) == (clip.aus, clip.apex)


@pytest.mark.slow
def test_every_clip_is_preprocessed_with_a_qc_sheet_per_subject(small_run):
    results, samples = small_run["results"], small_run["samples"]
    report = pd.read_csv(results / "full" / "preprocessing_report.tsv", sep="\t")
    assert sorted(report.sample_id) == sorted(samples.sample_id) and (report.status == "ok").all()
    assert len(sorted((results / "preprocess").glob("patches-*/*/*.h5"))) == 6
    # The onset->apex flow of every subject (the QC sheets show it); flow patches only for a model on flow.
    assert len(sorted((results / "preprocess").glob("flow-*/*/*.h5"))) == 6
    assert not list((results / "preprocess").glob("flowpatches-*"))
    assert report.apex_source.isin(["annotated", "middle", "spotted"]).all() and report.apex.notna().all()
    assert len(list((results / "preprocess").glob("qc-*/*/*.png"))) == 6


@pytest.mark.slow
def test_every_clip_is_predicted_by_the_fold_that_held_its_subject_out(small_run):
    workdir, results, samples = small_run["workdir"], small_run["results"], small_run["samples"]
    predictions = pd.read_csv(results / "full" / "predictions.tsv", sep="\t")
    assert sorted(predictions.sample_id) == sorted(samples.sample_id)
    metrics = json.loads((results / "full" / "metrics.json").read_text())
    assert set(metrics["parts"]) == {"FULL", "casme2", "samm", "smic"}
    assert (results / "full" / "confusion" / "FULL.png").exists()
    assert (results / "ablation.tsv").exists()
    assert "localmer full (computed by this run): FULL UF1" in small_run["log"]
    folds = results / "full" / "folds"
    # Per LOSO fold, six spatial models and the temporal one (the bundle's fold `final` is not one).
    provenance = [path for path in folds.rglob("*.provenance.json") if path.relative_to(folds).parts[0] != "final"]
    assert len(provenance) == 6 * 7
    for path in provenance:
        record = json.loads(path.read_text())
        test_ids = set(samples.sample_id[samples.subject.isin(record["test_subjects"])])
        assert not test_ids & set(record["fit_sample_ids"]) and not test_ids & set(record["class_weight_sample_ids"])
    for log in ("logs/synthesize_corpus.log", "logs/full/build_index.log", "logs/full/preprocessing_report.log"):
        assert (workdir / log).exists()


@pytest.mark.slow
def test_the_report_holds_results_curves_qc_and_the_configuration_as_run(small_run):
    workdir, results = small_run["workdir"], small_run["results"]
    assert (results / "full" / "training_curves.png").exists()
    assert yaml.safe_load((results / "full" / "config.yaml").read_text())["synthetic"]["null"] is False
    report = snakemake(workdir, "--configfile", str(small_run["config"]), "--report", str(workdir / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    for entry in ("metrics.tsv", "training_curves.png", "config.yaml", "preprocessing_report.tsv", "ablation.tsv"):
        assert entry in html, entry


@pytest.mark.slow
def test_partial_reruns_follow_what_changed(small_run):
    """Asserted on the plan (rule -> jobs), not on timings. Changed settings go to configs of their own
    and the changed frame is put back, so the run's directory plans nothing afterwards."""
    workdir, config, results = small_run["workdir"], small_run["config"], small_run["results"]
    # Nothing changed: nothing reruns.
    assert planned_jobs(workdir, config) == {}
    folds = small_run["samples"].subject.nunique()

    # A temporal hyperparameter: temporal training and what follows it only.
    cfg = yaml.safe_load(config.read_text())
    cfg["training"]["temporal"]["learning_rate"] *= 2
    changed = workdir / "temporal_changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    assert planned_jobs(workdir, changed) == {
        "train_temporal": folds,
        "evaluate": 1,
        "training_curves": 1,
        "record_config": 1,  # the configuration as run changed
        "ablation_table": 1,
        "comparison_table": 1,
        "all": 1,
    }

    # A flow setting: the flow stage and what shows it (QC sheets, the report's apex columns), not
    # landmarks, alignment, cropping or training (each rule's params hold its own stage's settings only).
    # Control: the parameters of a method not in use change the configuration as run, nothing else.
    cfg = yaml.safe_load(config.read_text())
    cfg["preprocessing"]["flow"]["method"] = "farneback"
    changed = workdir / "flow_changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    assert planned_jobs(workdir, changed) == {
        "compute_flow": folds,
        "qc_subject": folds,
        "preprocessing_report": 1,
        "record_config": 1,
        "all": 1,
    }
    cfg = yaml.safe_load(config.read_text())
    cfg["preprocessing"]["flow"]["farneback"] = {"levels": 4}
    changed.write_text(yaml.safe_dump(cfg))
    assert planned_jobs(workdir, changed) == {"record_config": 1, "all": 1}

    # One subject's frame changed: that subject's preprocessing reruns, no other subject's landmarks or
    # alignment (region sizes, and so every fold's training, follow: they use every subject). A bare
    # touch is not enough in Snakemake 9: a newer input with the recorded checksum does not rerun.
    changed_frame = sorted((results / "synthetic" / "casme2").glob("sub01/*/*.jpg"))[0]
    original, before = changed_frame.read_bytes(), changed_frame.stat()
    try:
        image = cv2.imread(str(changed_frame))
        image[0, 0] = 255 - image[0, 0]
        cv2.imwrite(str(changed_frame), image)
        jobs = planned_jobs(workdir, config)
        assert jobs["detect_landmarks"] == 1 and jobs["align_faces"] == 1 and jobs["compute_flow"] == 1, jobs
        assert jobs["qc_subject"] >= 1, jobs
        assert "synthesize_corpus" not in jobs and "build_index" not in jobs
    finally:
        changed_frame.write_bytes(original)  # as it was: nothing to do again
        os.utime(changed_frame, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert planned_jobs(workdir, config) == {}

    # Another patch count (an ablation experiment) re-runs cropping and what follows, not landmarks or
    # alignment: those folders are shared by their settings' keys.
    cfg = yaml.safe_load(config.read_text())
    cfg["experiments"]["m4"] = {"preprocessing": {"patches": 4}}
    cfg["run"] = ["full", "m4"]
    ablation = workdir / "m4.yaml"
    ablation.write_text(yaml.safe_dump(cfg))
    # The new experiment's index is a checkpoint: build it, then the plan lists every job.
    assert snakemake(workdir, "--configfile", str(ablation), "--cores", "1", "results/m4/samples.tsv").returncode == 0
    jobs = planned_jobs(workdir, ablation)
    assert jobs["crop_regions"] == folds and jobs["train_spatial"] == folds and jobs["train_temporal"] == folds
    assert not {"detect_landmarks", "align_faces", "synthesize_corpus"} & set(jobs)


@pytest.mark.slow
def test_the_slurm_profiles_groups_keep_every_job_and_join_them(small_run):
    """profiles/slurm changes how jobs go to a cluster, not which: a forced dry run through it plans the
    same jobs per rule as one without it, and joins them into group jobs: one per fold (its three training
    jobs), one per subject for its landmarks, alignment and flow, and fewer than the subjects for their
    crops and QC sheets. Snakemake's group scheduling depends on Python's hash seed (joined `subject`
    components went through under some seeds, and looped or stopped under others): three seeds, each
    within a time limit."""
    from test_envs import rules

    workdir, config = small_run["workdir"], small_run["config"]
    subjects = small_run["samples"].subject.nunique()
    forced = ["--forcerun", *sorted(set(rules()) - {"synthesize_corpus", "build_index"})]
    plain = dry_run(workdir, config, *forced)
    jobs = job_stats(plain)
    assert jobs["train_spatial"] == jobs["train_temporal"] == subjects > 1 and "Group job" not in plain
    for seed in ("1", "2", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        grouped = dry_run(workdir, config, "--profile", str(REPO / "profiles" / "slurm"), *forced, env=env)
        assert job_stats(grouped) == jobs, seed
        group_jobs = {group: grouped.count(f"Group job {group} ") for group in ("fold", "subject", "crops")}
        # group-components joins connected components: three a job for the crops, which are not one per
        # subject (a subject's stage keys), so fewer jobs than subjects is what holds.
        assert group_jobs["fold"] == group_jobs["subject"] == subjects, (seed, group_jobs)
        assert 1 <= group_jobs["crops"] < subjects, (seed, group_jobs)


@pytest.mark.slow
def test_the_bundle_target_of_the_flow_input_experiment_trains_on_flow_and_the_bundle_predicts(small_run):
    """`snakemake results/flow_input/bundle/bundle.json` after the run: experiment `flow_input` (model.input
    flow, DIS flow from the onset to every kept frame) gets its flow stages and its final models (fold
    `final`, every subject) on the run's landmarks, alignment and patches, which it shares with `full`; the
    spatial models read the flow patches, and `localmer predict` computes a clip's flow as the workflow did.
    One bundle target for both checks (the final models, flow input), for the suite's time: the bundle
    rule is the same for every input, and tests/test_predict.py predicts with a bundle of onset differences."""
    workdir, config, results = small_run["workdir"], small_run["config"], small_run["results"]
    subjects = small_run["samples"].subject.nunique()
    # The experiment's index is a checkpoint: built first, then the plan lists every job.
    index = snakemake(workdir, "--configfile", str(config), "--cores", "1", "results/flow_input/samples.tsv")
    assert index.returncode == 0, index.stderr[-3000:]
    target = "results/flow_input/bundle/bundle.json"
    plan = planned_jobs(workdir, config, target)
    expected = {"compute_flow": subjects, "crop_flow": subjects}  # the flow stages of its flow settings
    expected.update(train_spatial=1, train_temporal=1, bundle=1)  # the final models
    assert {rule: plan.get(rule) for rule in expected} == expected, plan
    assert not {"detect_landmarks", "align_faces", "measure_regions", "crop_regions"} & set(plan), plan
    result = snakemake(workdir, target, "--configfile", str(config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    final = results / "flow_input" / "folds" / "final"
    assert json.loads((final / "spatial" / "mouth.provenance.json").read_text())["input"] == "flow"
    assert len(list((results / "preprocess").glob("flowpatches-*/*/*.h5"))) == subjects
    manifest = json.loads((results / "flow_input" / "bundle" / "bundle.json").read_text())
    assert sorted(manifest["trained_on_subjects"]) == sorted(small_run["samples"].subject.unique())
    assert manifest["model"]["input"] == "flow" and manifest["preprocessing"]["flow"]["method"] == "dis"
    clip = sorted((results / "synthetic" / "casme2").glob("sub*/*/"))[0]
    predicted = subprocess.run(
        [sys.executable, "-m", "localmer", "predict", "results/flow_input/bundle", str(clip), "--out", "pred.csv"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    table = pd.read_csv(workdir / "pred.csv")
    assert len(table) == 1 and table.status[0] == "ok" and table.predicted[0] in manifest["classes"]


# The peers the null run builds through the workflow: one per fold rule and per source stage (ststnet:
# deep, flow; lbptop_svm: closed form, aligned faces). The others are fitted in the test process on the
# run's preprocessed files (the same library calls; a job per fold would cost more than all their fits).
WORKFLOW_PEERS = ["ststnet", "lbptop_svm"]
IN_PROCESS_PEERS = ["off_apexnet", "bi_woof"]
NULL_EPOCHS = {"epochs": 30, "batch_size": 16}  # the deep peers' budget on the null corpus
# Every task and protocol through the workflow on the null corpus, with a closed-form peer (its fits cost
# seconds; every preprocessed file is shared with the run's other experiments, whatever their task).
# LBP-TOP: on this corpus its LOSO score sits mid-way in its label-permutation distribution, where
# Bi-WOOF's sits at the 90th percentile (chance too, but averaged over two seeds its interval, which
# resamples subjects and not labels, would just miss 1/3).
TASK_PEER = "lbptop_svm"
TASK_EXPERIMENTS = {
    "casme2_5class": {"task": {"name": "casme2_5class", "ground_truth": None}},
    "samm_5class": {"task": {"name": "samm_5class", "ground_truth": None}},
    "smic_3class": {"task": {"name": "smic_3class", "ground_truth": None}},
    "objective_classes": {"task": {"name": "objective_classes", "ground_truth": None}},
    "lodo": {"training": {"protocol": "lodo"}},
    "repeats": {"training": {"repeats": 2, "validation_subjects": 1}},  # seeds draw other validation subjects
}
# Their folds on the null corpus (two subjects per part): LOSO over one part, one per part, two seeds x six.
TASK_FOLDS = {"casme2_5class": 2, "samm_5class": 2, "smic_3class": 2, "objective_classes": 2, "lodo": 3, "repeats": 12}


@pytest.fixture(scope="module")
def null_run(tmp_path_factory) -> dict:
    """The seed's method and two peers on the null corpus (no facial action), and every task and protocol
    with a third peer, one run."""
    workdir = tmp_path_factory.mktemp("null_run")
    config = small_config(workdir, null=True)
    cfg = yaml.safe_load(config.read_text())
    cfg["training"]["spatial"].update(epochs=3)
    cfg["training"]["temporal"].update(epochs=10)
    cfg["methods"] = {name: dict(NULL_EPOCHS) for name in ("ststnet", "off_apexnet")}
    cfg["experiments"].update({name: {"method": TASK_PEER, **block} for name, block in TASK_EXPERIMENTS.items()})
    cfg["run"] = ["full", *WORKFLOW_PEERS, *TASK_EXPERIMENTS]
    config.write_text(yaml.safe_dump(cfg))
    result = snakemake(workdir, "--configfile", str(config), "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return {"workdir": workdir, "config": config, "log": result.stdout + result.stderr, "results": workdir / "results"}


def null_metrics_in_process(null_run, method: str, folder: Path) -> dict:
    """A peer's LOSO run on a run's (the null run's) preprocessed files, in this process, at the null run's
    budget (a deep peer: NULL_EPOCHS): inputs cached per subject (methods.inputs), every fold fitted
    (methods.fold), predictions pooled and scored (evaluation)."""
    from localmer import config as localmer_config
    from localmer import evaluation, tfsetup, training
    from localmer.methods import fold, inputs, registry

    results = null_run["results"]
    experiment = localmer_config.experiment(yaml.safe_load(null_run["config"].read_text()), "full", check_paths=False)
    experiment = {**experiment, "method": method}
    if registry.get_method(method).deep:
        experiment["methods"] = {**experiment["methods"], method: {**experiment["methods"][method], **NULL_EPOCHS}}
    settings = fold.fold_settings(experiment)
    source = registry.get_method(method).source
    files = {}
    for path in sorted((results / "preprocess").glob(f"{source}-*/*/*.h5")):
        out = folder / "inputs" / path.relative_to(results / "preprocess")
        inputs.compute_subject_inputs(method, settings["methods"][method], path, out)
        files.update(inputs.input_files_of([out]))
    if registry.get_method(method).deep:
        tfsetup.configure_tensorflow(1, settings["training"]["seed"])
    samples = training.usable_samples(
        pd.read_csv(results / "full" / "samples.tsv", sep="\t", keep_default_na=False),
        pd.read_csv(results / "full" / "landmark_report.tsv", sep="\t", keep_default_na=False),
    )
    pooled = []
    for chosen in training.make_folds(samples.subject.unique(), 0, settings["training"]["seed"]):
        kinds = ("model", "predictions", "provenance") + (("history",) if registry.get_method(method).deep else ())
        out = {name: str(folder / chosen.name / name) for name in kinds}
        out["model"] += registry.get_method(method).model_suffix
        out["checkpoints"] = str(folder / "checkpoints")
        predictions, _ = fold.train_fold(samples, files, chosen, settings, training.task_classes(settings), out)
        pooled.append(predictions)
    return evaluation.write_report(pd.concat(pooled, ignore_index=True), folder / "metrics", n_boot=100)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["localmer", *WORKFLOW_PEERS, *IN_PROCESS_PEERS])
def test_the_null_corpus_scores_at_chance(null_run, method, tmp_path):
    """The leakage control, for every method: without any facial action there is nothing to learn, so a
    method that scores above chance here learns from something it must not (the test subject, or an
    artefact of labels)."""
    results = null_run["results"]
    assert json.loads((results / "synthetic" / "corpus.json").read_text())["null"] is True
    if method in IN_PROCESS_PEERS:
        metrics = null_metrics_in_process(null_run, method, tmp_path)
    else:
        metrics = json.loads((results / ("full" if method == "localmer" else method) / "metrics.json").read_text())
    full = metrics["parts"]["FULL"]
    assert full["n"] == 18  # every clip predicted
    chance = 1 / 3  # three balanced classes
    for metric in ("uar", "uf1"):
        low, high = full["ci"][metric]
        assert low <= chance <= high, (method, metric, full[metric], full["ci"][metric])
    if method in ("ststnet", "off_apexnet"):
        # Yet each deep peer fits its folds' training clips: a test clip leaked into them would be predicted.
        folder = tmp_path if method in IN_PROCESS_PEERS else results / method / "folds"
        histories = sorted(folder.rglob("history*"))
        assert len(histories) == 6, histories
        final = [pd.read_csv(path, sep="\t").accuracy.iloc[-1] for path in histories]
        assert sum(final) / len(final) > 0.5, final


@pytest.mark.slow
def test_the_null_controls_budget_learns_the_corpus_with_its_facial_action(small_run, tmp_path):
    """The null control's positive control, for a method that learns at this size: Bi-WOOF + SVM, fitted as
    in the null run (the same calls and settings) on the small run's corpus, which is the null corpus with
    its facial action (the same subjects, clips, labels and nuisance), scores above chance: its interval
    lies above 1/3 where the null corpus's holds it. (OFF-ApexNet at the null run's budget, and the seed's
    method, score chance on this corpus too: docs/workflow.md, tests of the workflow.)"""
    metrics = null_metrics_in_process(small_run, "bi_woof", tmp_path)
    full = metrics["parts"]["FULL"]
    assert full["n"] == 18
    for metric in ("uar", "uf1"):
        assert full["ci"][metric][0] > 1 / 3, (metric, full[metric], full["ci"][metric])


@pytest.mark.slow
def test_peers_run_on_the_same_folds_with_inputs_cached_once_per_clip(null_run):
    results, log = null_run["results"], null_run["log"]
    samples = pd.read_csv(results / "full" / "samples.tsv", sep="\t")
    subjects = sorted(samples.subject.unique())
    for name in WORKFLOW_PEERS:
        # One inputs file per subject, computed by one job each: shared by every fold.
        assert len(list((results / "preprocess").glob(f"{name}-*/*/*.h5"))) == len(subjects), name
        for subject in subjects:
            record = json.loads((results / name / "folds" / subject / name / "provenance.json").read_text())
            assert record["test_subjects"] == [subject] and record["method"] == name
            test_ids = set(samples.sample_id[samples.subject == subject])
            assert not test_ids & set(record["fit_sample_ids"]) and test_ids == set(record["predicted_sample_ids"])
        predictions = pd.read_csv(results / name / "predictions.tsv", sep="\t")
        assert sorted(predictions.sample_id) == sorted(samples.sample_id)
    assert log.count("rule method_inputs:") == len({*WORKFLOW_PEERS, TASK_PEER}) * len(subjects)
    assert (results / "ststnet" / "training_curves.png").exists()
    assert not (results / "lbptop_svm" / "training_curves.png").exists()  # a closed-form fit has no epochs
    comparison = pd.read_csv(results / "comparison.tsv", sep="\t")
    mine = comparison[comparison.origin == "this run"]
    assert mine.entry.unique().tolist() == ["full", *WORKFLOW_PEERS, *TASK_EXPERIMENTS]
    assert set(comparison[comparison.origin == "published"].method) == {"localmer", *WORKFLOW_PEERS}
    assert mine.protocol[mine.entry == "lodo"].iloc[0].startswith("megc2019, leave one dataset out;")
    assert mine.protocol[mine.entry == "repeats"].iloc[0].startswith("megc2019, LOSO, mean of 2 seeds;")
    assert "null: no facial action" in mine.data.iloc[0]
    assert (results / "comparison.png").exists() and "*published*" in (results / "comparison.md").read_text()


@pytest.mark.slow
def test_a_peers_settings_rerun_its_own_jobs_only(null_run):
    """A peer's fit setting refits its folds (in every experiment that runs it: the tasks' and protocols'
    too), not its cached inputs; an input setting recomputes them too, once per subject for all; the seed's
    training settings refit no peer (asserted on the plan)."""
    workdir, config = null_run["workdir"], null_run["config"]
    assert planned_jobs(workdir, config) == {}
    folds = 6
    peer_folds = folds + sum(TASK_FOLDS.values())
    cfg = yaml.safe_load(config.read_text())
    cfg["methods"]["lbptop_svm"] = {"C": 0.5}
    changed = workdir / "svm_c.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    assert planned_jobs(workdir, changed) == {
        "train_shallow_peer": peer_folds,
        "evaluate": 1 + len(TASK_EXPERIMENTS) + 2,  # and the two repeats' own
        "record_config": len(cfg["run"]),  # every experiment's configuration as run holds the methods block
        "ablation_table": 1,
        "comparison_table": 1,
        "all": 1,
    }
    cfg["methods"]["lbptop_svm"] = {"grid": [4, 4]}
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(workdir, changed)
    assert jobs["method_inputs"] == folds and jobs["train_shallow_peer"] == peer_folds, jobs
    cfg = yaml.safe_load(config.read_text())
    cfg["training"]["temporal"]["learning_rate"] *= 2
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(workdir, changed)
    assert jobs["train_temporal"] == folds and jobs["evaluate"] == 1, jobs  # the seed's method only
    assert not {"train_deep_peer", "train_shallow_peer", "method_inputs"} & set(jobs)


ONE_PART_TASKS = ["casme2_5class", "samm_5class", "smic_3class", "objective_classes"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["lodo", "repeats"])
def test_every_protocol_scores_at_chance_on_the_null_corpus(null_run, experiment):
    """Leave-one-dataset-out and repeats end to end (their own folds and metrics on the shared
    preprocessing): without facial action the interval of every figure holds chance."""
    results = null_run["results"]
    metrics = json.loads((results / experiment / "metrics.json").read_text())
    samples = pd.read_csv(results / experiment / "samples.tsv", sep="\t", keep_default_na=False)
    full = metrics["parts"]["FULL"]
    assert full["n"] == len(samples) == 18
    chance = 1 / len(full["classes_present"])
    for metric in ("uar", "uf1"):
        low, high = full["ci"][metric]
        assert low <= chance <= high, (experiment, metric, full[metric], full["ci"][metric])


@pytest.mark.slow
def test_every_one_part_task_runs_end_to_end_and_scores_at_chance(null_run):
    """Each one-part task through the workflow: its index (its own classes and clips), its LOSO folds, its
    metrics, at chance. On the null corpus each task has two subjects, too few for the workflow's
    interval over subjects, so each task is checked on an interval that resamples its clips, at a level
    that keeps the chance that any of the eight (four tasks x UAR, UF1) misses a true chance score at 5 %
    (Bonferroni); control: a predictor that is always right lies above chance on every such interval. And
    pooled over the four tasks (eight subject x task units) the accuracy in excess of each task's chance
    (1 / its classes present) has a bootstrap interval that must hold 0: a method that learned from the
    test subject would be above it in every task."""
    from localmer import evaluation

    results = null_run["results"]
    excess = []
    level = 1 - 0.05 / (2 * len(ONE_PART_TASKS))
    for experiment in ONE_PART_TASKS:
        metrics = json.loads((results / experiment / "metrics.json").read_text())
        samples = pd.read_csv(results / experiment / "samples.tsv", sep="\t", keep_default_na=False)
        predictions = pd.read_csv(results / experiment / "predictions.tsv", sep="\t", keep_default_na=False)
        classes = metrics["classes"]
        assert classes == list(TASKS[experiment].classes) and set(samples.label) <= set(classes)
        assert sorted(predictions.sample_id) == sorted(samples.sample_id) and samples.dataset.nunique() == 1
        chance = 1 / len(metrics["parts"]["FULL"]["classes_present"])
        table = evaluation.read_predictions(results / experiment / "predictions.tsv", classes)
        ci = evaluation.bootstrap(table, classes, n_boot=2000, unit="sample", level=level)
        always_right = evaluation.bootstrap(table.assign(predicted=table.true), classes, unit="sample", level=level)
        for metric in ("uar", "uf1"):
            assert ci[metric][0] <= chance <= ci[metric][1], (experiment, metric, ci[metric])
            assert always_right[metric][0] > chance, (experiment, metric, always_right[metric])
        for _, rows in predictions.groupby("subject"):
            excess.append((rows.true == rows.predicted).mean() - chance)
    assert len(excess) == 8
    rng = np.random.default_rng(0)
    means = [np.mean(rng.choice(excess, size=len(excess))) for _ in range(1000)]
    low, high = np.percentile(means, [2.5, 97.5])
    assert low <= 0 <= high, (np.mean(excess), low, high)


@pytest.mark.slow
def test_a_task_indexes_its_own_clips_and_shares_every_preprocessed_file(null_run):
    results = null_run["results"]
    full = pd.read_csv(results / "full" / "samples.tsv", sep="\t", keep_default_na=False)
    casme = pd.read_csv(results / "casme2_5class" / "samples.tsv", sep="\t", keep_default_na=False)
    assert set(casme.dataset) == {"casme2"} and "others" in set(casme.label)  # the clips megc2019 excludes
    objective = pd.read_csv(results / "objective_classes" / "samples.tsv", sep="\t", keep_default_na=False)
    assert set(objective.dataset) == {"samm"} and set(objective.label) <= {"I", "II", "III", "IV", "V"}
    # One landmarks file per subject for every experiment: preprocessing covers the clips of all tasks.
    (landmarks,) = (results / "preprocess").glob("landmarks-*")
    for subject in set(full.subject) | set(casme.subject):
        with h5py.File(landmarks / f"{subject}.h5") as h5:
            clips = {group.attrs["sample_id"] for group in h5["clips"].values()}
        assert set(full.sample_id[full.subject == subject]) | set(casme.sample_id[casme.subject == subject]) <= clips
    report = pd.read_csv(results / "casme2_5class" / "landmark_report.tsv", sep="\t")
    assert sorted(report.sample_id) == sorted(casme.sample_id)  # the task's clips only


@pytest.mark.slow
def test_leave_one_dataset_out_tests_each_part_on_models_that_never_saw_it(null_run):
    results = null_run["results"]
    samples = pd.read_csv(results / "lodo" / "samples.tsv", sep="\t")
    for dataset in ("casme2", "samm", "smic"):
        record = json.loads((results / "lodo" / "folds" / dataset / TASK_PEER / "provenance.json").read_text())
        held_out = samples[samples.dataset == dataset]
        assert record["test_subjects"] == sorted(held_out.subject.unique())
        assert set(record["predicted_sample_ids"]) == set(held_out.sample_id)
        assert not {sid.split("/")[0] for sid in record["fit_sample_ids"]} & {dataset}
    metrics = json.loads((results / "lodo" / "metrics.json").read_text())
    assert set(metrics["parts"]) == {"FULL", "casme2", "samm", "smic"}  # each part's transfer score


@pytest.mark.slow
def test_repeats_run_the_protocol_once_per_seed_and_report_the_spread(null_run):
    results = null_run["results"]
    validation = {}
    for seed in (2019, 2020):
        folder = results / f"repeats.seed{seed}"
        assert json.loads((folder / "metrics.json").read_text())["parts"]["FULL"]["n"] == 18
        for record_path in sorted((folder / "folds").rglob("provenance.json")):
            record = json.loads(record_path.read_text())
            test = set(record["test_subjects"])
            assert (
                not {sid.rsplit("/", 1)[0] for sid in record["validation_sample_ids"] + record["fit_sample_ids"]} & test
            )
            validation[seed, record["fold"]] = record["validation_sample_ids"]
    assert any(validation[2019, fold] != validation[2020, fold] for _, fold in validation)  # seeds draw anew
    metrics = json.loads((results / "repeats" / "metrics.json").read_text())
    full = metrics["parts"]["FULL"]
    assert sorted(full["per_seed"]) == ["2019", "2020"] and full["repeats"] == 2 and full["n"] == 18
    pooled = pd.read_csv(results / "repeats" / "predictions.tsv", sep="\t")
    assert sorted(pooled.seed.unique()) == [2019, 2020] and len(pooled) == 36
    assert "±" in (results / "ablation.md").read_text()


@pytest.mark.slow
def test_the_seeds_method_under_another_task_and_protocol_reuses_the_preprocessing(null_run):
    """Planned, not run: the seed's method under leave-one-dataset-out and under casme2_5class trains its
    own folds (three datasets; two CASME II subjects) on the preprocessed files the run already has."""
    workdir, config = null_run["workdir"], null_run["config"]
    cfg = yaml.safe_load(config.read_text())
    cfg["experiments"].update(
        lodo_seed={"training": {"protocol": "lodo"}},
        casme_seed={"task": {"name": "casme2_5class", "ground_truth": None}},
    )
    cfg["run"] = ["lodo_seed", "casme_seed"]
    changed = workdir / "seed_tasks.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    for experiment in cfg["run"]:  # the indexes (checkpoints) first, so that the plan knows the folds
        built = snakemake(workdir, "--configfile", str(changed), "--cores", "1", f"results/{experiment}/samples.tsv")
        assert built.returncode == 0, built.stderr[-3000:]
    jobs = planned_jobs(workdir, changed)
    assert jobs["train_spatial"] == 3 + 2 and jobs["train_temporal"] == 5 and "export_features" not in jobs
    assert not {"detect_landmarks", "align_faces", "crop_regions", "compute_flow"} & set(jobs), jobs
