"""How Snakemake schedules the grid: the job most others wait for first, and (locally)
when a job ends, not on a one-second timer (fas.scheduler)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

JOBS = 10
SNAKEFILE = f"""
import fas.scheduler

onstart:
    if config.get("lift"):
        fas.scheduler.lift_default_rate_limit(workflow)

rule all:
    input: expand("out/{{i}}", i=range({JOBS}))

rule one:
    output: "out/{{i}}"
    shell: "sleep 0.5; touch {{output}}"
"""


def scheduling_rounds(folder: Path, lift: bool) -> int:
    """Snakemake's job selections in a run of JOBS sequential jobs (its --verbose log)."""
    folder.mkdir()
    (folder / "Snakefile").write_text(SNAKEFILE)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-j1", "--verbose", "--scheduler",
         "greedy", "--config", f"lift={int(lift)}"],
        cwd=folder, capture_output=True, text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((folder / "out").iterdir())) == JOBS
    return done.stderr.count("Resources before job selection")


@pytest.mark.slow  # two real Snakemake runs
def test_lifted_rate_limit_schedules_once_per_job(tmp_path):
    lifted = scheduling_rounds(tmp_path / "lifted", lift=True)
    default = scheduling_rounds(tmp_path / "default", lift=False)
    print(f"scheduling rounds for {JOBS} jobs: {lifted} lifted, {default} with the default limit")
    assert lifted <= JOBS + 2  # a round at the start and one as each job ends
    assert default > 2 * lifted  # the timer chains the default limit starts


def test_lift_keeps_a_limit_the_user_chose_and_cluster_runs():
    from types import SimpleNamespace

    from fas.scheduler import lift_default_rate_limit

    def workflow(local, max_jobs, timespan):
        limiter = SimpleNamespace(max_jobs=max_jobs, timespan=timespan)
        return SimpleNamespace(local_exec=local, scheduler=SimpleNamespace(job_rate_limiter=limiter))

    default = workflow(True, 100, 1.0)
    assert lift_default_rate_limit(default) and default.scheduler.job_rate_limiter is None
    for kept in (workflow(True, 5, 1.0), workflow(False, 100, 1.0)):
        assert not lift_default_rate_limit(kept) and kept.scheduler.job_rate_limiter is not None


def test_downstream_counts_each_job_once_however_many_paths_lead_to_it():
    from types import SimpleNamespace as Job

    from fas.scheduler import downstream_counts

    jobs = [Job(name="a", deps=[], outs=["a"]), Job(name="b", deps=["a"], outs=["b"]),
            Job(name="c", deps=["a", "source"], outs=["c"]),
            Job(name="d", deps=["b", "c"], outs=["d"])]
    assert downstream_counts(jobs) == {"a": 3, "b": 1, "c": 1, "d": 0}


def test_the_grid_prepares_every_dataset_before_it_trains_and_trains_before_it_evaluates():
    """Snakemake starts the ready job with the highest priority (fas.scheduler)."""
    from fas import dag
    from fas.config import load_params
    from fas.scheduler import downstream_counts

    jobs = dag.jobs(load_params())
    priority = downstream_counts(jobs)
    by_stage: dict[str, list[int]] = {}
    for job in jobs:
        by_stage.setdefault(job.stage, []).append(priority[job.name])
    preparing = [p for stage in ("track", "synth", "index", "align", "dynamic", "magnify")
                 for p in by_stage[stage]]
    assert min(preparing) > max(by_stage["train"]) > max(by_stage["evaluate"]) > 0
    assert by_stage["report"] == [0]
