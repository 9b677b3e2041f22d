# Helpers shared by the rules: every input and command comes from fas.dag; what is out
# of date comes from dvc.lock, the record DVC and Snakemake share (fas.lock).

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.enums import RerunTrigger

from fas import dag, lock, paths, scheduler, warm
from fas.config import DEFAULT_PARAMS, read_params_file
from fas.grid import Experiment, expand
from fas.paths import EXPERIMENT_PATTERN, Shard

# fas.tracking tags each MLflow run with the orchestrator that ran it; FAS_USAGE ends
# every job's log with its CPU time and peak memory (`python -m bench grid`).
shell.prefix("export FAS_ORCHESTRATOR=snakemake FAS_USAGE=1; ")

EXPERIMENTS = expand(config)
ALL_JOBS = dag.jobs(config)
JOBS = {out: job for job in ALL_JOBS for out in job.outs}
# Among the ready jobs, the one most others wait for starts first (fas.scheduler).
PRIORITY = scheduler.downstream_counts(ALL_JOBS)
# Every rule's `built` output: present exactly when dvc.lock records the job as built.
STAMPS = {job.name: paths.built_stamp(job.stage, job.key) for job in ALL_JOBS}
BENCHMARKS = {job.name: paths.job_benchmark(job.stage, job.key) for job in ALL_JOBS}
DATASETS = sorted({*dag.needed_datasets(config), *(e.dataset for e in EXPERIMENTS)})
METHODS = sorted({e.method for e in EXPERIMENTS})
# A training job holds the GPU where there is one (the profile offers `gpu: 1`);
# on a CPU-only machine training jobs run side by side like the others.
TRAIN_GPUS = 1 if shutil.which("nvidia-smi") else 0


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d+-of-\d+",
    protocol=r"[a-z0-9_]+",
    fold=r"\d+",
    method="|".join(METHODS),
    variant=r"[a-z0-9_]+",
    seed=r"\d+",


def job(path):
    """The fas.dag job writing this output path."""
    return JOBS[Path(path).as_posix()]


def experiment_of(wildcards):
    return Experiment(
        wildcards.dataset,
        wildcards.protocol,
        int(wildcards.fold),
        wildcards.method,
        wildcards.variant,
        int(wildcards.seed),
    )


def stamps_up_to(outputs):
    """The built stamps of the jobs writing `outputs` and of every job before them.

    Targets ask for them: a job whose stamp is missing (dvc.lock finds it out of
    date) then runs again, with everything after it, even where its outputs exist.
    """
    wanted, queue = set(), [Path(out).as_posix() for out in outputs]
    while queue:
        found = JOBS.get(queue.pop())
        if found is not None and found.name not in wanted:
            wanted.add(found.name)
            queue += found.deps
    return sorted(STAMPS[name].as_posix() for name in wanted)


def from_job(locate, field):
    """A named function of the wildcards giving one field of the rule's fas.dag job."""

    def get(wildcards):
        return getattr(job(locate(wildcards)), field)

    get.__name__ = f"{locate.__name__}_{field}"
    return get


def priority_of(locate):
    """A named function of the wildcards giving the rule's priority: its jobs downstream."""

    def get(wildcards):
        return PRIORITY[job(locate(wildcards)).name]

    get.__name__ = f"{locate.__name__}_priority"
    return get


def warn_if_mtime_triggers():
    """Modification times would undo the content-based decisions of dvc.lock."""
    if RerunTrigger.MTIME in workflow.rerun_triggers:
        print(
            "fas: warning: the mtime rerun trigger is on (no profile?): jobs DVC built may "
            "run again; use the default profile or --rerun-triggers params input code",
            file=sys.stderr,
        )


def record_in_dvc_lock():
    """Commit the jobs this run built to dvc.lock, so `dvc repro` has nothing to redo."""
    if workflow.is_main_process and not workflow.dryrun:
        lock.record_built(STAMPS, STAMPED)


def sync_with_dvc():
    """dvc.yaml as params.yaml has it; the jobs dvc.lock does not record as built unstamped."""
    if dag.refresh_dvc_yaml(config, read_params_file(DEFAULT_PARAMS)):
        print("fas: dvc.yaml rewritten from params.yaml (fas dag dvc)", file=sys.stderr)
    return lock.sync_stamps(STAMPS, benchmarks=BENCHMARKS)


# Before Snakemake plans (once, in the main process).
STAMPED = sync_with_dvc() if workflow.is_main_process else {}


def print_failure_summary(log_path):
    """List the experiments that did not finish (with --keep-going the others complete)."""
    missing = [e.id for e in EXPERIMENTS if not paths.metrics_output(e).exists()]
    print(
        f"\nfas: {len(missing)} of {len(EXPERIMENTS)} experiments have no metrics yet:"
    )
    for experiment_id in missing:
        print(
            f"  {experiment_id}  (log: {paths.job_log('train', experiment_id)}, "
            f"{paths.job_log('evaluate', experiment_id)})"
        )
    print(f"Snakemake log: {log_path}")


SCHEDULER = {}


def start_scheduler_clock():
    SCHEDULER["started"] = time.time()


def record_then_write_usage():
    """Record the run in dvc.lock (timed), then the scheduler's usage."""
    started = time.time()
    record_in_dvc_lock()
    SCHEDULER["dvc_lock_s"] = time.time() - started
    write_scheduler_usage()


def run_cores():
    """The run's --cores; None where an executor (a Slurm profile) sets no total."""
    try:
        return workflow.cores
    except WorkflowError:
        return None


def write_scheduler_usage():
    """The Snakemake process's own CPU (jobs are child processes, not counted), all jobs' CPU,
    the run's wall time and the part of it spent recording dvc.lock.

    `python -m bench grid` reads it beside the jobs' benchmark files: the scheduler's overhead.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    jobs = resource.getrusage(resource.RUSAGE_CHILDREN)  # every job, waited for
    record = {
        "wall_s": round(time.time() - SCHEDULER.get("started", time.time()), 2),
        "dvc_lock_s": round(SCHEDULER.get("dvc_lock_s", 0.0), 2),
        "scheduler_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "scheduler_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "jobs_cpu_s": round(jobs.ru_utime + jobs.ru_stime, 2),
        "cores": run_cores(),
    }
    paths.SCHEDULER_USAGE.parent.mkdir(parents=True, exist_ok=True)
    paths.SCHEDULER_USAGE.write_text(json.dumps(record, indent=2) + "\n")


WARM_SERVER = {}


def start_warm_server():
    """One warm interpreter for this run's training and evaluation jobs (fas.warm).

    Local runs only: on a cluster each job runs on its own node, in its own process.
    """
    if workflow.is_main_process and not workflow.dryrun and workflow.local_exec:
        process, socket = warm.start(paths.job_log("warm"), parent=os.getpid())
        WARM_SERVER.update(process=process, socket=socket)
        os.environ[warm.SOCKET_VARIABLE] = str(socket)  # the jobs inherit it


def stop_warm_server():
    if WARM_SERVER:
        warm.stop(WARM_SERVER.pop("process"), WARM_SERVER.pop("socket"))
        os.environ.pop(warm.SOCKET_VARIABLE, None)


def track_output(wildcards):
    return paths.MLFLOW_RECEIPT


def synth_output(wildcards):
    return config["datasets"][wildcards.dataset]["root"]


def index_output(wildcards):
    return paths.index_outputs(wildcards.dataset)[0]


def align_output(wildcards):
    return paths.cache_shard(wildcards.dataset, "static", wildcards.shard)


def dynamic_output(wildcards):
    return paths.cache_shard(wildcards.dataset, "dynamic", wildcards.shard)


def magnify_output(wildcards):
    return paths.cache_shard(wildcards.dataset, "magnified", wildcards.shard)


def train_output(wildcards):
    return paths.train_outputs(experiment_of(wildcards))[0]


def evaluate_output(wildcards):
    return paths.metrics_output(experiment_of(wildcards))


def report_output(wildcards):
    return paths.REPORT_OUTPUTS[0]
