"""How a local Snakemake run schedules the grid: when a job ends, never on a timer.

Snakemake's default `--max-jobs-per-timespan` (100/1s) arms a one-second timer
after every scheduling round that leaves jobs waiting, and every job's end
starts one more such chain of rounds (snakemake/snakemake#3744). Each round
re-reads the size of every waiting job's inputs; late in the grid, with ~100
training jobs waiting and ~100 chains running, the scheduler took 200 s of CPU
of a 14-minute run. The limit guards a cluster's queue; a local run has none,
so `lift_default_rate_limit` removes it there (the workflow's `onstart`).
A limit other than the default, or on a cluster executor, is kept.
"""

from __future__ import annotations

DEFAULT_RATE_LIMIT = (100, 1)  # jobs per seconds: Snakemake's --max-jobs-per-timespan 100/1s


def lift_default_rate_limit(workflow) -> bool:
    """Drop the default job-rate limit of a local run's scheduler; True when dropped."""
    scheduler = getattr(workflow, "scheduler", None)
    limiter = getattr(scheduler, "job_rate_limiter", None)
    if (not workflow.local_exec or limiter is None
            or (limiter.max_jobs, limiter.timespan) != DEFAULT_RATE_LIMIT):
        return False
    scheduler.job_rate_limiter = None
    return True
