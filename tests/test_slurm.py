"""The tiny grid through a real Slurm cluster with `snakemake --workflow-profile profiles/slurm`.

Needs running slurmctld and slurmd with an idle node (ci/slurm/up.sh, which
.ci/run calls first); skipped, with the reason, only where there is none.
One training job is killed with `scancel` while it runs: Snakemake reports
the cancelled Slurm job and submits it again (the profile's `retries`).
"""

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.tiny_project import (assert_every_output, assert_one_run_per_experiment, env,
                                   make_project, tiny_params)

pytestmark = pytest.mark.slow

# This cluster's settings on top of the profile (README, "On a Slurm cluster"):
# one CPU partition and no GPU; no accounting database, so job states come
# from squeue; status checks every few seconds instead of the default 40 s.
CLUSTER_ARGS = ["-j", "4", "--slurm-status-command", "squeue",
                "--slurm-init-seconds-before-status-checks", "2",
                "--default-resources", "slurm_partition=cpu", "runtime=30", "mem_mb=2000",
                "cpus_per_task=1",
                "--set-resources", "train:slurm_partition=cpu", "train:gpu=0"]


def require_cluster() -> None:
    if shutil.which("sbatch") is None:
        pytest.skip("Slurm is not installed: run ci/slurm/up.sh as root (as .ci/run does)")
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    if state.returncode != 0 or not {"idle", "mix", "alloc"} & set(state.stdout.split()):
        pytest.skip(f"no Slurm node is up ({(state.stdout + state.stderr).strip() or 'no answer'}): "
                    "run ci/slurm/up.sh as root (as .ci/run does)")


def running_training(folder: Path) -> str | None:
    """The Slurm id of a running training job of this project, if there is one."""
    listed = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k|%Z"],
                            capture_output=True, text=True, check=True).stdout
    for line in listed.splitlines():
        job_id, comment, workdir = line.split("|")
        if comment.startswith("rule_train") and Path(workdir) == folder:
            return job_id
    return None


def test_slurm_runs_the_tiny_grid_and_resubmits_a_cancelled_training(tmp_path):
    require_cluster()
    folder = make_project(tmp_path / "project", tiny_params())
    log_path = tmp_path / "snakemake.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        snakemake = subprocess.Popen(
            ["snakemake", "--workflow-profile", "profiles/slurm", *CLUSTER_ARGS], cwd=folder,
            env=env(folder), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        cancelled = None
        while cancelled is None and snakemake.poll() is None:
            cancelled = running_training(folder)
            time.sleep(0.3)
        assert cancelled, "no training job was seen running"
        subprocess.run(["scancel", cancelled], check=True)
        returncode = snakemake.wait(timeout=1200)
    finally:
        if snakemake.poll() is None:
            snakemake.terminate()  # cancels its Slurm jobs
            snakemake.wait(timeout=120)
    elapsed = time.perf_counter() - started
    log = log_path.read_text()
    assert returncode == 0, log[-6000:]
    print(f"tiny grid through Slurm: {elapsed:.0f} s")

    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    total = int(re.findall(r"(\d+) of \1 steps \(100%\) done", log)[-1])
    jobs = [job for job, _ in submitted]
    assert len(set(jobs)) == total - 1, "every job but the final target ran through sbatch"
    retried = [job for job, slurm_id in submitted if slurm_id == cancelled]
    assert jobs.count(retried[0]) == 2, "the cancelled training was submitted again"
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in log
    assert f"Trying to restart job {retried[0]}." in log

    assert_every_output(folder)
    assert_one_run_per_experiment(folder, f"sqlite:///{folder / 'mlflow.db'}",
                                  orchestrator="snakemake")
