"""How a Snakemake run schedules the grid: in which order, and (locally) when a job ends.

Order: every rule's `priority` is the number of jobs downstream of the job
(`downstream_counts`), so among ready jobs the one most others wait for starts
first. Snakemake's own tie-break prefers jobs with the largest inputs, which
started training jobs (caches of hundreds of MB) before a dataset's generator
(no input): CASIA-FASD was generated 10 minutes into a 14-minute grid and its
generator, alignment and longest training job then ran alone at the end.

Timing:
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

from collections.abc import Iterable

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


def downstream_counts(jobs: Iterable) -> dict[str, int]:
    """Job name -> how many jobs read its outputs, directly or through other jobs.

    `jobs` are fas.dag jobs in DAG order (a job after every job it reads from).
    """
    jobs = list(jobs)
    producer = {out: job.name for job in jobs for out in job.outs}
    readers: dict[str, set[str]] = {job.name: set() for job in jobs}
    for job in jobs:
        for dep in job.deps:
            if dep in producer:
                readers[producer[dep]].add(job.name)
    downstream: dict[str, set[str]] = {}
    for job in reversed(jobs):
        downstream[job.name] = set().union(*({r} | downstream[r] for r in readers[job.name]))
    return {name: len(names) for name, names in downstream.items()}
