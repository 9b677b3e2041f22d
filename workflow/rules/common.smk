# Helpers shared by the rules: every input, command and fingerprint comes from fas.dag.

import shutil
from pathlib import Path

from fas import dag, paths
from fas.grid import Experiment, expand
from fas.paths import EXPERIMENT_PATTERN, Shard

# fas.tracking tags each MLflow run with the orchestrator that ran it.
shell.prefix("export FAS_ORCHESTRATOR=snakemake; ")

EXPERIMENTS = expand(config)
JOBS = {out: job for job in dag.jobs(config) for out in job.outs}
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


# Params are functions of the wildcards only: Snakemake leaves params computed
# from outputs out of its rerun-on-params-change check.
def from_job(locate, field):
    """A named function of the wildcards giving one field of the rule's fas.dag job."""

    def get(wildcards):
        found = job(locate(wildcards))
        if field == "fingerprint":
            return dag.fingerprint(config, found.stage)
        return getattr(found, field)

    get.__name__ = f"{locate.__name__}_{field}"
    return get


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


def track_output(wildcards):
    return paths.MLFLOW_RECEIPT


def synth_output(wildcards):
    return config["datasets"][wildcards.dataset]["root"]


def index_output(wildcards):
    return paths.index_outputs(wildcards.dataset)[0]


def extract_output(wildcards):
    return paths.frames_shard(wildcards.dataset, wildcards.shard)


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
