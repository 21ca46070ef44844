"""One fold's two training jobs timed as the workflow runs them, a process each, from start to exit.

Reruns the library calls of rules ``train_spatial`` (a fold's six spatial models and its features) and
``train_temporal`` on the inputs of a finished run of the seed's method (its samples, landmark report,
region labels, patches, and the fold's features for the temporal job), writing to a scratch folder.
Each job is a fresh ``python`` process, timed from its start to its exit (what Snakemake's benchmark of
the job measures, less Snakemake), so the interpreter, the TensorFlow import and the exit count. With
several ``--src`` folders (``src/`` of other checkouts, e.g. a ``git worktree`` of an older commit) the
jobs of each run in turn, repeat after repeat, so that a change of the machine's speed during the
sitting falls on both alike; the median of each counts. The run's outputs are compared with the
finished run's (identical predictions and histories, or not).

    .venv/bin/python benchmarks/fold_jobs.py RUN_DIR [--fold casme2/sub02] [--src A/src --src B/src]
        [--repeats 3] [--record --note "conditions"]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flow_benchmark import REPO, append_results

# The job, as workflow/scripts/train_spatial.py and train_temporal.py run it, from a JSON description.
JOB = """
import json, sys
import yaml
from localmer import datasets, regions, runlog, stages, training

job = json.loads(sys.argv[1])
run, experiment_name = job["run_dir"], job["experiment"]
experiment = yaml.safe_load(open(f"{run}/results/{experiment_name}/config.yaml"))
stage = stages.SPATIAL if job["stage"] == "spatial" else stages.TEMPORAL
settings = stages.stage_settings(experiment, stage)
results = f"{run}/results/{experiment_name}"
with runlog.to_file(job["log"]):
    samples, fold = training.prepare_fold_job(
        f"{results}/samples.tsv", f"{results}/landmark_report.tsv", job["fold"], settings, 1
    )
    out = job["out"]
    if job["stage"] == "spatial":
        training.train_spatial_regions(
            samples,
            datasets.read_table(f"{results}/region_labels.tsv"),
            training.patch_files_of(job["patch_files"]),
            fold,
            settings,
            training.task_classes(settings),
            {
                region: {
                    "model": f"{out}/{region}.keras",
                    "history": f"{out}/{region}.history",
                    "provenance": f"{out}/{region}.provenance",
                    "checkpoints": f"{out}/checkpoints/{region}",
                }
                for region in regions.REGION_NAMES
            },
            features_path=f"{out}/features.h5",
        )
    else:
        training.train_temporal(
            samples,
            f"{results}/folds/{job['fold']}/features.h5",
            fold,
            settings,
            training.task_classes(settings),
            {key: f"{out}/temporal.{key}" for key in ("predictions", "history", "provenance", "checkpoints")}
            | {"model": f"{out}/temporal.keras"},
        )
"""


def patch_files(run_dir: Path, experiment: str) -> list[str]:
    """The patches files the experiment's spatial jobs read (the stage key of its config as run)."""
    import yaml

    from localmer import preprocess

    settings = yaml.safe_load((run_dir / "results" / experiment / "config.yaml").read_text())
    key = preprocess.stage_keys(settings, base_dir=run_dir)["patches"]
    return sorted(str(p) for p in (run_dir / "results" / "preprocess" / f"patches-{key}").glob("*/*.h5"))


def run_job(src: Path, job: dict) -> float:
    """Seconds from the job process's start to its exit; RuntimeError with its log's tail if it failed."""
    environment = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", JOB, json.dumps(job)], env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{job['stage']} job with {src} failed:\n{done.stderr[-3000:]}")
    return seconds


def same_outputs(out: Path, run_dir: Path, experiment: str, fold: str, stage: str) -> bool:
    """Whether the job wrote the finished run's histories (and, temporal, predictions) byte for byte."""
    from localmer.regions import REGION_NAMES

    folder = run_dir / "results" / experiment / "folds" / fold
    if stage == "spatial":
        pairs = [(out / f"{r}.history", folder / "spatial" / f"{r}.history.tsv") for r in REGION_NAMES]
    else:
        pairs = [(out / "temporal.history", folder / "temporal.history.tsv")]
        pairs.append((out / "temporal.predictions", folder / "predictions.tsv"))
    return all(a.read_bytes() == b.read_bytes() for a, b in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="working directory of a finished run of the seed's method")
    parser.add_argument("--experiment", default="full")
    parser.add_argument("--fold", default="casme2/sub02")
    parser.add_argument("--src", type=Path, action="append", help="a localmer src/ folder (default: this repo's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--note", default="", help="conditions of the sitting, for RESULTS.md")
    args = parser.parse_args()
    sources = [s.resolve() for s in (args.src or [REPO / "src"])]
    files = patch_files(args.run_dir, args.experiment)
    seconds = {(src, stage): [] for src in sources for stage in ("spatial", "temporal")}
    identical = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for index, src in enumerate(sources):
                for stage in ("spatial", "temporal"):
                    out = Path(scratch) / f"{repeat}-{index}-{stage}"
                    job = {
                        "run_dir": str(args.run_dir.resolve()),
                        "experiment": args.experiment,
                        "fold": args.fold,
                        "stage": stage,
                        "patch_files": files,
                        "out": str(out),
                        "log": str(out / "job.log"),
                    }
                    seconds[src, stage].append(run_job(src, job))
                    identical[src, stage] = identical.get((src, stage), True) and same_outputs(
                        out, args.run_dir, args.experiment, args.fold, stage
                    )
                    print(f"{src} {stage} {seconds[src, stage][-1]:.1f} s", flush=True)
    lines = [
        "| src | job | median s | runs (s) | outputs as the run's |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for (src, stage), times in seconds.items():
        runs = ", ".join(f"{t:.1f}" for t in times)
        same = "identical" if identical[src, stage] else "differ"
        lines.append(f"| {src} | {stage} | {statistics.median(times):.1f} | {runs} | {same} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        conditions = f"fold {args.fold} of {args.run_dir}; {args.repeats} repeats."
        append_results("One fold's training jobs (`fold_jobs.py`)", conditions, args.note, table)


if __name__ == "__main__":
    main()
