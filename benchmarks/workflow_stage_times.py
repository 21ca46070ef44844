"""Job time per stage of a finished workflow run, per experiment, from its Snakemake benchmark files.

Reads ``logs/benchmarks/`` of a run directory (every rule with a ``benchmark:`` directive writes one TSV a
job) and ``results/<experiment>/config.yaml`` (the configuration as run) to tell which preprocessing
folders (stage keys) each experiment used. Prints, per experiment, the job seconds of each stage and the
share of each stage in the experiment's total; ``--record`` appends that to RESULTS.md with machine, date
and commit. The share is of job time: on a run whose jobs keep every core busy, wall time is job time
divided by the cores, so a stage's share of job time is its share of wall time. Rules without a
``benchmark:`` directive (index, QC sheets, reports, evaluation: seconds each) are not counted.

    .venv/bin/python benchmarks/workflow_stage_times.py RUN_DIR [--record --note "conditions"]
"""

from __future__ import annotations

import argparse
import datetime
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import yaml
from flow_benchmark import REPO, commit, machine

from localmer import preprocess
from localmer.methods.inputs import input_key
from localmer.methods.method import LOCALMER
from localmer.methods.registry import get_method

STAGE_FOLDER = re.compile(r"^(?P<stage>[a-z_]+)-(?P<key>[0-9a-f]{10})$")


def job_seconds(path: Path) -> float:
    return float(pd.read_csv(path, sep="\t")["s"].sum())


def stage_times(run_dir: Path) -> dict[str, dict[str, float]]:
    """experiment -> stage -> job seconds (preprocessing stages counted for every experiment whose stage key
    they carry; the synthetic corpus for every experiment)."""
    logs = run_dir / "logs" / "benchmarks"
    experiments = sorted(p.parent.name for p in (run_dir / "results").glob("*/config.yaml"))
    keys = {}
    for name in experiments:
        experiment = yaml.safe_load((run_dir / "results" / name / "config.yaml").read_text())
        keys[name] = preprocess.stage_keys(experiment, base_dir=run_dir)
        method = get_method(experiment.get("method", LOCALMER))
        if method.clip_input is not None:  # a peer's cached inputs are a stage named by the method
            keys[name][method.name] = input_key(
                method.name, experiment["methods"][method.name], keys[name][method.source]
            )
    times: dict[str, dict[str, float]] = {name: defaultdict(float) for name in experiments}
    for path in sorted(logs.rglob("*.tsv")):
        parts = path.relative_to(logs).parts
        if parts[0] == "synthesize_corpus.tsv":
            for name in experiments:
                times[name]["synthesize_corpus"] += job_seconds(path)
        elif parts[0] == "preprocess":
            match = STAGE_FOLDER.match(parts[1])
            for name in experiments:
                if match and keys[name].get(match["stage"]) == match["key"]:
                    times[name][match["stage"]] += job_seconds(path)
        elif parts[0] in times:
            times[parts[0]][path.stem] += job_seconds(path)
    return {name: dict(stages) for name, stages in times.items()}


def table(times: dict[str, dict[str, float]]) -> str:
    lines = ["| experiment | stage | job s | share |", "| --- | --- | ---: | ---: |"]
    for name, stages in times.items():
        total = sum(stages.values())
        for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {stage} | {seconds:.0f} | {100 * seconds / total:.1f} % |")
        lines.append(f"| {name} | **total** | {total:.0f} | 100 % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the workflow's working directory of a finished run")
    parser.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--note", default="", help="conditions of the run, for RESULTS.md")
    args = parser.parse_args()
    text = table(stage_times(args.run_dir))
    print(text)
    if args.record:
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        header = f"## Workflow job time per stage ({date}, {machine()}, commit {commit()})"
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
            results.write(f"\n{header}\n\nRun directory `{args.run_dir}`. {args.note}\n\n{text}\n")


if __name__ == "__main__":
    main()
