"""Snakemake's scheduler on a local run, with and without the workflow's onstart hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from conftest import REPO

from localmer.scheduling import lift_local_job_rate_limit

JOBS = 6
SNAKEFILE = f"""
import sys
sys.path.insert(0, {str(REPO / "src")!r})
from localmer.scheduling import lift_local_job_rate_limit

if config["lift"]:
    onstart:
        lift_local_job_rate_limit(workflow)

rule all:
    input: expand("out/{{i}}.txt", i=range({JOBS}))

rule one:
    output: "out/{{i}}.txt"
    shell: "sleep 1; touch {{output}}"
"""


def scheduling_rounds(folder: Path, lift: bool) -> int:
    """How often Snakemake's scheduler re-evaluated the ready jobs over a one-core run of JOBS 1 s jobs."""
    folder.mkdir()
    (folder / "Snakefile").write_text(SNAKEFILE)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--verbose", "--config", f"lift={int(lift)}"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(list((folder / "out").iterdir())) == JOBS
    # Snakemake logs this line at the end of every scheduling round while a job runs.
    return run.stderr.count("Waiting for running jobs to complete.")


def test_a_local_run_schedules_once_per_finished_job_without_the_rate_limiters_extra_rounds(tmp_path):
    lifted = scheduling_rounds(tmp_path / "lifted", lift=True)
    limited = scheduling_rounds(tmp_path / "limited", lift=False)
    # One round when the run starts and one per finished job; the control, Snakemake's default limiter,
    # adds a round a second for every job finished so far.
    assert lifted <= JOBS + 2
    assert limited > 2 * JOBS


def test_a_cluster_run_keeps_the_rate_limiter():
    limiter = object()
    cluster = SimpleNamespace(local_exec=False, scheduler=SimpleNamespace(job_rate_limiter=limiter))
    assert not lift_local_job_rate_limit(cluster)
    assert cluster.scheduler.job_rate_limiter is limiter
    local = SimpleNamespace(local_exec=True, scheduler=SimpleNamespace(job_rate_limiter=limiter))
    assert lift_local_job_rate_limit(local)
    assert local.scheduler.job_rate_limiter is None
