"""Cluster jobs ungrouped and grouped: the reduced demo through a real single-node SLURM, in one sitting.

Brings up the cluster of tests/test_slurm.py (Debian's munge and SLURM packages; needs root, installs them
with apt when missing), then runs the reduced demo of that test (two subjects, two folds, every rule of the
seed's method) twice, each in a fresh folder: through profiles/slurm with its `groups` and
`group-components` removed (every rule a job of its own but the Snakefile's local rules), and through
profiles/slurm as it is. Per run it prints the wall time of `snakemake`, the number of SLURM jobs, the
sum of their run times (SLURM's RunTime: from the job's start to its end, the job's own start-up
included) and wall / that sum. `--record` appends the table to RESULTS.md with machine, date and commit.

    sudo .venv/bin/python benchmarks/slurm_grouping.py [--record] [--note "conditions"]
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml
from flow_benchmark import REPO, commit, machine

sys.path.insert(0, str(REPO / "tests"))
import test_slurm  # noqa: E402 (the test's cluster and reduced demo)


def seconds(runtime: str) -> int:
    """SLURM's [D-]HH:MM:SS in seconds."""
    days, _, clock = runtime.rpartition("-")
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return ((int(days) if days else 0) * 24 + hours) * 3600 + minutes * 60 + secs


def ungrouped_profile(folder: Path) -> Path:
    """profiles/slurm without its groups, in ``folder``."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.pop("groups"), profile.pop("group-components")
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def job_records(env: dict) -> dict[int, str]:
    out = test_slurm.run("scontrol", "show", "job", "-o", env=env).stdout
    return {int(re.search(r"JobId=(\d+)", line).group(1)): line for line in out.splitlines() if "JobId=" in line}


def measure(name: str, profile: Path, env: dict, folder: Path) -> dict:
    before = set(job_records(env))
    folder.mkdir()
    config = test_slurm.reduced_demo(folder)
    start = time.monotonic()
    result = test_slurm.slurm_run(folder, config, env, profile)
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{name}: the run failed:\n{(result.stdout + result.stderr)[-3000:]}")
    records = [line for job, line in job_records(env).items() if job not in before]
    run_times = [seconds(re.search(r"RunTime=(\S+)", line).group(1)) for line in records]
    return {"run": name, "wall_s": wall, "jobs": len(records), "job_s": sum(run_times)}


def table(rows: list[dict]) -> str:
    lines = ["| run | SLURM jobs | wall s | job run time sum s | wall / job sum |", "| --- |" + " ---: |" * 4]
    for row in rows:
        ratio = row["wall_s"] / row["job_s"]
        lines.append(f"| {row['run']} | {row['jobs']} | {row['wall_s']:.0f} | {row['job_s']:.0f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--note", default="", help="conditions of the run, for RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="localmer-slurm-bench-") as tmp, test_slurm.single_node_cluster() as env:
        folder = Path(tmp)
        rows = [
            measure("ungrouped", ungrouped_profile(folder / "profile"), env, folder / "ungrouped"),
            measure("grouped (profiles/slurm)", REPO / "profiles" / "slurm", env, folder / "grouped"),
        ]
    text = table(rows)
    print(text)
    if args.record:
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        header = f"## SLURM jobs ungrouped and grouped ({date}, {machine()}, commit {commit()})"
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
            note = f"The reduced demo of tests/test_slurm.py, one sitting. {args.note}"
            results.write(f"\n{header}\n\n{note}\n\n{text}\n")


if __name__ == "__main__":
    main()
