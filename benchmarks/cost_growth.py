"""How a run's cost grows with the corpus: the demo workflow at several sizes, a fitted cost model, a check.

For each size (subjects in all, split evenly over the three parts; the demo has 9), a fresh working
directory runs `snakemake --cores C --resources gpu=C` on config/config.yaml with only the synthetic
corpus's subject counts changed (demo settings otherwise). Per size it records the wall time, each stage's
job time (Snakemake's `benchmark:` files, as `workflow_stage_times.py` reads them) and each rule's peak
memory (the largest `max_rss` of its jobs).

The cost model, per stage, in the number of subjects n (LOSO: n folds):
  - preprocessing stages (per subject): a * n;
  - training stages (per fold: train_spatial, export_features, train_temporal): n * (b + c * (n - 1)),
    a fixed cost per fold and a cost per training subject (the training set is n - 1 subjects' clips),
    i.e. about quadratic in n.
Fitted by least squares on every size but the last (`--check`), then compared with the measured last size.
Peak memory per job must not grow with n beyond the training set itself: the table shows it per rule.

    .venv/bin/python benchmarks/cost_growth.py --sizes 9 18 --check 36 [--cores 2] [--record]
"""

from __future__ import annotations

import argparse
import datetime
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
from workflow_stage_times import stage_times

PARTS = ("casme2", "samm", "smic")
FOLD_STAGES = ("train_spatial", "export_features", "train_temporal")


def run_size(subjects: int, folder: Path, cores: int, base_config: Path) -> dict:
    """The demo at ``subjects`` subjects in ``folder``: wall s, job s per stage, peak RSS MB per rule."""
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
    command += ["--configfile", str(config), "--cores", str(cores), "--resources", f"gpu={cores}"]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{subjects} subjects: the run failed:\n{result.stderr[-3000:]}")
    peaks: dict[str, float] = {}
    logs = folder / "logs" / "benchmarks"
    for path in logs.rglob("*.tsv"):
        parts = path.relative_to(logs).parts
        # logs/benchmarks/preprocess/<stage>-<key>/<subject>.tsv; else the file is named by its rule
        rule = parts[1].rsplit("-", 1)[0] if parts[0] == "preprocess" else path.stem
        rss = float(pd.read_csv(path, sep="\t")["max_rss"].max())
        peaks[rule] = max(peaks.get(rule, 0.0), rss)
    return {"subjects": subjects, "wall_s": wall, "stages": stage_times(folder)["full"], "peak_rss_mb": peaks}


def fit(sizes: list[int], seconds: list[float], per_fold: bool) -> np.ndarray:
    """Least-squares coefficients of a*n (per subject) or n*(b + c*(n - 1)) (per fold)."""
    n = np.asarray(sizes, dtype=float)
    design = np.column_stack([n, n * (n - 1)]) if per_fold else n[:, None]
    return np.linalg.lstsq(design, np.asarray(seconds), rcond=None)[0]


def predict(coefficients: np.ndarray, n: int, per_fold: bool) -> float:
    return float(coefficients @ (np.array([n, n * (n - 1)]) if per_fold else np.array([n])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 18], help="subjects at which the model is fitted")
    parser.add_argument("--check", type=int, default=36, help="a further size, measured and predicted")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--base-config", type=Path, default=REPO / "config" / "config.yaml", help="settings other than the sizes"
    )
    parser.add_argument("--keep", type=Path, help="keep the run directories under this folder")
    parser.add_argument("--record", action="store_true", help="append the tables to RESULTS.md")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="localmer-cost-"))
    runs = [run_size(n, base / f"subjects{n}", args.cores, args.base_config) for n in [*args.sizes, args.check]]
    fitted, check = runs[:-1], runs[-1]
    stages = sorted({stage for run in runs for stage in run["stages"]})
    lines = ["| subjects | wall s | job s | " + " | ".join(stages) + " |", "| ---: " * (3 + len(stages)) + "|"]
    for run in runs:
        cells = [f"{run['stages'].get(stage, 0):.0f}" for stage in stages]
        lines.append(
            f"| {run['subjects']} | {run['wall_s']:.0f} | {sum(run['stages'].values()):.0f} | "
            + " | ".join(cells)
            + " |"
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
