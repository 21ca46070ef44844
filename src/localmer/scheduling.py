"""Adjustments to Snakemake's job scheduler, applied from the workflow's `onstart` hook."""

from __future__ import annotations


def lift_local_job_rate_limit(workflow) -> bool:
    """Schedule a local run's jobs without Snakemake's job rate limiter; True if it was lifted.

    The limiter only protects a cluster's scheduler from submission floods. With it, every scheduling
    round arms a timer for another round a timespan later, and every finished job starts one more such
    chain (snakemake/snakemake#3744): late in a local run the rounds, each re-reading every ready job's
    input sizes, took most of a core of the 2-core demo machine (benchmarks/RESULTS.md). Snakemake's
    command line cannot switch the limiter off; its scheduler exists when `onstart` runs and reads the
    limiter only while scheduling. A cluster run keeps it.
    """
    scheduler = getattr(workflow, "scheduler", None)
    if not workflow.local_exec or getattr(scheduler, "job_rate_limiter", None) is None:
        return False
    scheduler.job_rate_limiter = None
    return True
