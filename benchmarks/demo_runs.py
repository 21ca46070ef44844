"""The default demo end to end, commit against commit, in one sitting: wall, job time per stage,
Snakemake's own CPU time, the FULL UF1, and whether the predictions are the same.

For each repeat and each ``--rev`` (a git revision; the runs alternate, so that a change of the machine's
speed during the sitting falls on all alike), the revision's tree goes to a fresh folder (`git archive`)
and `snakemake --cores C --resources gpu=C` runs the default config there from nothing, with that
tree's `src/` first on PYTHONPATH (its localmer, its workflow profile). Wall: the Snakemake process's
start to its exit. Snakemake CPU: its main process's user + system time (not its jobs'), read every
second while it runs. Job time per stage: its `benchmark:` files (`workflow_stage_times.py`).
Predictions: a digest of every fold's predictions.tsv, to tell runs that predicted alike.

    .venv/bin/python benchmarks/demo_runs.py --rev 19f1fe3 --rev HEAD [--repeats 1] [--cores 2]
        [--record --note "conditions"]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psutil
from flow_benchmark import REPO, append_results
from workflow_stage_times import stage_times

PREPROCESSING = "preprocessing"
FULL_UF1 = re.compile(r"^\| FULL \| \d+ \| [\d.]+ \| (?P<uf1>[\d.]+) \|", re.MULTILINE)


def checkout(rev: str, folder: Path) -> str:
    """The tree of ``rev`` in ``folder``; returns its short hash."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return short.stdout.strip()


def run_demo(folder: Path, cores: int) -> dict:
    """One demo run in ``folder``: wall s, Snakemake CPU s, job s per stage group, FULL UF1, predictions."""
    environment = {**os.environ, "PYTHONPATH": str(folder / "src")}
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--resources", f"gpu={cores}"]
    start = time.monotonic()
    with open(folder / "snakemake.out", "w") as out:
        process = subprocess.Popen(command, cwd=folder, env=environment, stdout=out, stderr=subprocess.STDOUT)
        watched, cpu = psutil.Process(process.pid), 0.0
        while process.poll() is None:
            try:
                times = watched.cpu_times()
                cpu = times.user + times.system
            except psutil.NoSuchProcess:
                break
            time.sleep(1.0)
        process.wait()
    wall = time.monotonic() - start
    if process.returncode != 0:
        raise SystemExit(f"the demo in {folder} failed: see {folder / 'snakemake.out'}")
    stages = stage_times(folder)["full"]
    groups = {PREPROCESSING: 0.0, "train_spatial": 0.0, "train_temporal": 0.0}
    for stage, seconds in stages.items():
        groups[stage if stage in groups else PREPROCESSING] += seconds
    digest = hashlib.sha1()
    for path in sorted((folder / "results" / "full" / "folds").rglob("predictions.tsv")):
        digest.update(path.read_bytes())
    metrics = (folder / "results" / "full" / "metrics.md").read_text()
    return {
        "wall": wall,
        "snakemake_cpu": cpu,
        "jobs": groups,
        "uf1": FULL_UF1.search(metrics)["uf1"],
        "predictions": digest.hexdigest()[:10],
    }


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", action="append", help="a git revision (repeat the option; default HEAD)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--note", default="", help="conditions of the sitting, for RESULTS.md")
    args = parser.parse_args()
    lines = [
        "| run | commit | wall | job s: preprocessing / spatial / temporal | Snakemake CPU s | FULL UF1 | predicted |",
        "| ---: | --- | ---: | --- | ---: | ---: | --- |",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for index, rev in enumerate(args.rev or ["HEAD"]):
                folder = Path(scratch) / f"{repeat}-{index}"
                folder.mkdir()
                short = checkout(rev, folder)
                run = run_demo(folder, args.cores)
                jobs = " / ".join(f"{seconds:.0f}" for seconds in run["jobs"].values())
                lines.append(
                    f"| {len(lines) - 1} | {short} | {minutes(run['wall'])} | {jobs} | {run['snakemake_cpu']:.0f} "
                    f"| {run['uf1']} | {run['predictions']} |"
                )
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.record:
        title = "The default demo, commit against commit (`demo_runs.py`)"
        append_results(title, f"`--cores {args.cores}`.", args.note, table)


if __name__ == "__main__":
    main()
