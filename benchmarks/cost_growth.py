"""How a run's cost grows with the corpus: the demo workflow at several sizes, a fitted cost model, a check.

For each size (subjects in all, split evenly over the three parts; the demo has 9), a fresh working
directory runs `snakemake --cores C --resources gpu=C` on config/config.yaml with only the synthetic
corpus's subject counts changed (demo settings otherwise). Per size it records the wall time, each stage's
job time (Snakemake's `benchmark:` files, as `workflow_stage_times.py` reads them) and each rule's peak
memory (the largest `max_rss` of its jobs).

The cost model, per stage, in the number of subjects n (LOSO: n folds):
  - preprocessing stages (per subject): a * n;
  - training stages (per fold: train_spatial with the feature export, train_temporal): n * (b + c * (n - 1)),
    a fixed cost per fold and a cost per training subject (the training set is n - 1 subjects' clips),
    i.e. about quadratic in n.
Fitted by least squares on every size but the last (`--check`), then compared with the measured last size.
Peak memory per job must not grow with n beyond the training set itself: the table shows it per rule.

A whole run's training grows as n^2, so at the sizes given to `--sample-at` only `--sample-folds` K of
the n folds train (evenly spaced over the sorted subjects), after the whole preprocessing: the fold
stages' job time is the K folds' times scaled by n / K (every fold trains on n - 1 subjects' clips; the
table shows the spread of the sampled folds' job times), and the wall time of such a size is not measured
(shown as "-").

    .venv/bin/python benchmarks/cost_growth.py --sizes 9 18 36 --check 45 --sample-at 36 45 [--cores 2] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from flow_benchmark import REPO, commit, machine
from workflow_stage_times import job_seconds, stage_times

from localmer.training import fold_names

PARTS = ("casme2", "samm", "smic")
FOLD_STAGES = ("train_spatial", "train_temporal")


def sampled(folds: list[str], k: int) -> list[str]:
    """``k`` of ``folds``, evenly spaced from the first to the last."""
    return [folds[i] for i in sorted({round(j * (len(folds) - 1) / (k - 1)) for j in range(k)})]


def run_size(subjects: int, folder: Path, cores: int, base_config: Path, sample_folds: int | None) -> dict:
    """The demo at ``subjects`` subjects in ``folder``: wall s (None where folds were sampled), job s per
    stage, peak RSS MB per rule, and the sampled folds' job s (an empty list where every fold ran)."""
    if subjects % len(PARTS):
        raise SystemExit(f"--sizes: {subjects} subjects do not split evenly over the {len(PARTS)} parts")
    cfg = yaml.safe_load(base_config.read_text())
    for part in PARTS:
        cfg["synthetic"]["parts"][part]["subjects"] = subjects // len(PARTS)
    folder.mkdir(parents=True)
    shutil.copytree(REPO / "config", folder / "config")
    config = folder / "cost.yaml"
    config.write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(folder)]
    command += ["--configfile", str(config), "--cores", str(cores)]

    def snakemake(*targets: str) -> None:
        # --resources takes several values: it goes after the targets.
        result = subprocess.run([*command, *targets, "--resources", f"gpu={cores}"], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{subjects} subjects: the run failed:\n{result.stderr[-3000:]}")

    scale, fold_seconds = 1.0, []
    start = time.monotonic()
    if sample_folds is None or subjects <= sample_folds:  # every fold
        snakemake()
        wall = time.monotonic() - start
    else:
        # The index first (a checkpoint: the folds are its subjects), then the sampled folds' predictions,
        # which pull every subject's preprocessing (the training sets), and the preprocessing report (the
        # QC sheets and their flow), as in a whole run.
        snakemake("results/full/samples.tsv", "results/full/config.yaml")
        samples = pd.read_csv(folder / "results" / "full" / "samples.tsv", sep="\t")
        folds = fold_names(samples.subject.unique(), "loso")
        chosen = sampled(folds, sample_folds)
        snakemake("results/full/preprocessing_report.tsv", *(f"results/full/folds/{f}/predictions.tsv" for f in chosen))
        wall, scale = None, len(folds) / len(chosen)
        fold_logs = folder / "logs" / "benchmarks" / "full" / "folds"
        fold_seconds = [sum(job_seconds(p) for p in (fold_logs / fold).glob("*.tsv")) for fold in chosen]
    stages = stage_times(folder)["full"]
    stages = {stage: seconds * (scale if stage in FOLD_STAGES else 1.0) for stage, seconds in stages.items()}
    # Spatial training samples: the frames each region's model fitted (its provenance) x its epochs.
    provenances = (folder / "results" / "full" / "folds").rglob("spatial/*.provenance.json")
    fitted_frames = sum(json.loads(p.read_text())["frames"] for p in provenances)
    spatial_samples = scale * fitted_frames * cfg["training"]["spatial"]["epochs"]
    peaks: dict[str, float] = {}
    logs = folder / "logs" / "benchmarks"
    for path in logs.rglob("*.tsv"):
        parts = path.relative_to(logs).parts
        # logs/benchmarks/preprocess/<stage>-<key>/<subject>.tsv; else the file is named by its rule
        rule = parts[1].rsplit("-", 1)[0] if parts[0] == "preprocess" else path.stem
        rss = float(pd.read_csv(path, sep="\t")["max_rss"].max())
        peaks[rule] = max(peaks.get(rule, 0.0), rss)
    return {
        "subjects": subjects,
        "wall_s": wall,
        "stages": stages,
        "peak_rss_mb": peaks,
        "fold_s": fold_seconds,
        "spatial_samples": spatial_samples,
    }


def fit(sizes: list[int], seconds: list[float], per_fold: bool) -> np.ndarray:
    """Least-squares coefficients of a*n (per subject) or n*(b + c*(n - 1)) (per fold)."""
    n = np.asarray(sizes, dtype=float)
    design = np.column_stack([n, n * (n - 1)]) if per_fold else n[:, None]
    return np.linalg.lstsq(design, np.asarray(seconds), rcond=None)[0]


def predict(coefficients: np.ndarray, n: int, per_fold: bool) -> float:
    return float(coefficients @ (np.array([n, n * (n - 1)]) if per_fold else np.array([n])))


def paper_projection(coefficients: np.ndarray, run: dict, cores: int) -> str:
    """The spatial stage of config/paper.yaml on the megc2019 composite, from the fitted spatial model:
    its fixed cost per fold (b) and its cost per training subject (c), turned into a cost per training
    sample with the samples per training subject of ``run`` (a fitted size)."""
    from gpu_benchmark import FOLDS, REGIONS, SPATIAL_EPOCHS, megc_fold_frames  # imports TensorFlow

    fixed, per_subject = coefficients
    n = run["subjects"]
    per_sample = per_subject / (run["spatial_samples"] / (n * (n - 1)))
    _, total_frames = megc_fold_frames()
    folds = FOLDS
    samples = REGIONS * SPATIAL_EPOCHS * (folds - 1) * total_frames  # every fold fits the others' frames
    job_s = folds * fixed + samples * per_sample
    return (
        f"Spatial cost per training sample (frame x epoch x region) from the fit: {per_sample * 1e3:.3f} ms of job "
        f"time ({1 / per_sample:.0f} samples/s per job; {n} subjects' run: {run['spatial_samples']:.3g} samples). "
        f"config/paper.yaml on the megc2019 composite: {samples:.3g} spatial samples + {folds} x {fixed:.0f} s "
        f"fixed = {job_s / 86400:.1f} days of job time, {job_s / cores / 86400:.1f} days of wall on {cores} cores "
        f"(jobs side by side, one a core)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 18], help="subjects at which the model is fitted")
    parser.add_argument("--check", type=int, default=36, help="a further size, measured and predicted")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--base-config", type=Path, default=REPO / "config" / "config.yaml", help="settings other than the sizes"
    )
    parser.add_argument("--sample-at", type=int, nargs="*", default=[], help="sizes at which folds are sampled")
    parser.add_argument("--sample-folds", type=int, default=6, help="folds trained at those sizes (>= 2)")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this folder")
    parser.add_argument("--record", action="store_true", help="append the tables to RESULTS.md")
    args = parser.parse_args()
    if args.sample_folds < 2:
        parser.error("--sample-folds: at least 2 folds, to show their spread")
    if set(args.sample_at) - {*args.sizes, args.check}:
        parser.error("--sample-at: sizes of --sizes or --check only")
    base = args.keep or Path(tempfile.mkdtemp(prefix="localmer-cost-"))
    runs = [
        run_size(
            n, base / f"subjects{n}", args.cores, args.base_config, args.sample_folds if n in args.sample_at else None
        )
        for n in [*args.sizes, args.check]
    ]
    fitted, check = runs[:-1], runs[-1]
    stages = sorted({stage for run in runs for stage in run["stages"]})
    lines = [
        "| subjects | wall s | job s | " + " | ".join(stages) + " | folds trained: job s per fold |",
        "| ---: " * (3 + len(stages)) + "| --- |",
    ]
    for run in runs:
        cells = [f"{run['stages'].get(stage, 0):.0f}" for stage in stages]
        wall = "-" if run["wall_s"] is None else f"{run['wall_s']:.0f}"
        folds = run["fold_s"]
        trained = f"{len(folds)}: {min(folds):.0f}-{max(folds):.0f}" if folds else "all"
        lines.append(
            f"| {run['subjects']} | {wall} | {sum(run['stages'].values()):.0f} | "
            + " | ".join(cells)
            + f" | {trained} |"
        )
    model_lines = [
        "| stage | model | coefficients (s) | predicted at check | measured |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for stage in stages:
        per_fold = stage in FOLD_STAGES
        coefficients = fit([r["subjects"] for r in fitted], [r["stages"].get(stage, 0.0) for r in fitted], per_fold)
        model = "n (b + c (n - 1))" if per_fold else "a n"
        model_lines.append(
            f"| {stage} | {model} | {', '.join(f'{c:.3g}' for c in coefficients)} | "
            f"{predict(coefficients, check['subjects'], per_fold):.0f} | {check['stages'].get(stage, 0.0):.0f} |"
        )
    rules = sorted({rule for run in runs for rule in run["peak_rss_mb"]})
    memory_lines = [
        "| rule | " + " | ".join(f"{r['subjects']} subjects" for r in runs) + " |",
        "| --- " + "| ---: " * len(runs) + "|",
    ]
    for rule in rules:
        memory_lines.append(f"| {rule} | " + " | ".join(f"{r['peak_rss_mb'].get(rule, 0):.0f}" for r in runs) + " |")
    spatial = fit([r["subjects"] for r in fitted], [r["stages"].get("train_spatial", 0.0) for r in fitted], True)
    text = "\n".join(
        [
            "Wall and job time per stage (s):",
            "",
            *lines,
            "",
            f"Cost model fitted at {', '.join(str(r['subjects']) for r in fitted)} subjects, "
            f"checked at {check['subjects']}:",
            "",
            *model_lines,
            "",
            "Peak memory per job (MB, the largest max_rss of each rule's jobs):",
            "",
            *memory_lines,
            "",
            paper_projection(spatial, fitted[-1], args.cores),
        ]
    )
    print(text)
    if args.record:
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        header = f"## Cost growth with the corpus ({date}, {machine()}, commit {commit()})"
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
            settings = "demo settings" if args.base_config == parser.get_default("base_config") else args.base_config
            results.write(f"\n{header}\n\n{settings}, {args.cores} cores.\n\n{text}\n")


if __name__ == "__main__":
    main()
