"""The pipeline's jobs, derived from params.yaml: the one description both orchestrators run.

Each job has the exact `fas ...` command, its input and output paths and the
params.yaml keys it reads. The Snakemake rules (workflow/rules/*.smk) take
their inputs, commands and rerun fingerprints from here, and `fas dag dvc`
writes dvc.yaml from the same list, so the two never drift.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fas.config import REPO_ROOT, cache_shard, frames_shard, is_synthetic_root, load_params
from fas.grid import Experiment, expand
from fas.io import atomic_path

# Code each stage runs: a change to it reruns the stage (DVC deps, Snakemake fingerprint).
STAGE_CODE = {
    "track": ["fas/tracking.py"],
    "synth": ["fas/synth"],
    "index": ["fas/datasets"],
    "extract": ["fas/extract.py", "fas/cache.py"],
    "align": ["fas/align.py", "fas/cache.py"],
    "dynamic": ["fas/dynamic.py", "fas/cache.py"],
    "train": ["fas/train.py", "fas/models", "fas/loader.py", "fas/cache.py"],
    "evaluate": ["fas/evaluate.py", "fas/metrics.py"],
    "report": ["fas/report.py", "fas/plots.py", "fas/metrics.py", "fas/data"],
}

# params.yaml keys each stage reads (DVC `params:`, Snakemake rerun fingerprint).
STAGE_PARAMS = {
    "track": ["mlflow", "preset", "seeds", "grid"],
    "synth": ["synth"],
    "index": ["index"],
    "extract": ["extract", "shards"],
    "align": ["align", "shards"],
    "dynamic": ["dynamic", "shards"],
    "train": ["preset", "presets", "methods", "augment", "evm", "pretrained", "seeds"],
    "evaluate": ["evaluate"],
    "report": ["evaluate", "grid", "seeds"],
}

MLFLOW_RECEIPT = "results/mlflow/grid.json"


@dataclass
class Job:
    stage: str
    key: str
    cmd: str
    deps: list[str]
    outs: list[str]
    params: list[str]
    metrics: list[str] = field(default_factory=list)
    cache: bool = True

    @property
    def name(self) -> str:
        return f"{self.stage}-{self.key}" if self.key else self.stage


def shard_names(params: dict, dataset: str) -> list[str]:
    count = int(params["shards"][dataset])
    return [f"{i}-of-{count}" for i in range(count)]


def index_dir(dataset: str) -> str:
    return f"data/index/{dataset}"


def index_outputs(dataset: str) -> list[str]:
    return [f"{index_dir(dataset)}/{name}"
            for name in ("manifest.parquet", "protocols.parquet", "skipped.json")]


def cache_outputs(params: dict, dataset: str) -> list[str]:
    return [cache_shard(dataset, kind, shard).as_posix()
            for kind in ("static", "dynamic") for shard in shard_names(params, dataset)]


def train_dir(experiment: Experiment) -> str:
    return f"results/train/{experiment.path}"


def train_outputs(experiment: Experiment) -> list[str]:
    folder = train_dir(experiment)
    return [f"{folder}/{name}" for name in
            ("scores.parquet", "frame_scores.parquet", "history.csv", "receipt.json")]


def metrics_output(experiment: Experiment) -> str:
    return f"results/eval/{experiment.path}/metrics.json"


REPORT_OUTPUTS = ["results/tables", "results/plots", "results/index.md"]


# Letters of the leave-one-out protocols (O/C/I/M), as the cross-dataset literature names them.
CROSS_LETTERS = {"o": "oulu", "c": "casia_fasd", "i": "replay", "m": "msu"}


def cross_sources(protocol: str) -> list[str]:
    """Datasets a cross-dataset protocol reads, from its name (docs/ARCHITECTURE.md, Names).

    `replay_to_casia_fasd` names both datasets; `ocm_to_i` uses the O/C/I/M letters.
    """
    train, _, test = protocol.partition("_to_")
    if not test:
        raise ValueError(f"cross-dataset protocol {protocol!r} is not <sources>_to_<target>")
    if train in CROSS_LETTERS.values() or test in CROSS_LETTERS.values():
        return sorted({train, test})
    return sorted({CROSS_LETTERS[letter] for letter in train + test})


def experiment_datasets(experiment: Experiment) -> list[str]:
    if experiment.dataset == "cross":
        return cross_sources(experiment.protocol)
    return [experiment.dataset]


def needed_datasets(params: dict) -> list[str]:
    """Real datasets the grid reads, the sources of its cross-dataset protocols included."""
    needed: set[str] = set()
    for experiment in expand(params):
        needed.update(experiment_datasets(experiment))
    return sorted(needed)


def _fas(*parts: str) -> str:
    return " ".join(["fas", *parts])


def jobs(params: dict) -> list[Job]:
    """Every job of the grid, in DAG order."""
    experiments = expand(params)
    datasets = needed_datasets(params)
    result = [Job("track", "", _fas("track", "init", "--receipt", MLFLOW_RECEIPT),
                  [], [MLFLOW_RECEIPT], STAGE_PARAMS["track"], cache=False)]
    for dataset in datasets:
        root = params["datasets"][dataset]["root"]
        index_deps = []
        if is_synthetic_root(root):
            # scale, seed and difficulty come from params.yaml, which DVC and the
            # fingerprint watch: the command itself never changes with them
            result.append(Job("synth", dataset, _fas("synth", dataset, "--out", root),
                              [], [root], STAGE_PARAMS["synth"], cache=False))
            index_deps = [root]
        result.append(Job("index", dataset,
                          _fas("index", dataset, "--root", root, "--out", index_dir(dataset)),
                          index_deps, index_outputs(dataset), STAGE_PARAMS["index"]))
        for shard in shard_names(params, dataset):
            frames = frames_shard(dataset, shard).as_posix()
            static = cache_shard(dataset, "static", shard).as_posix()
            dynamic = cache_shard(dataset, "dynamic", shard).as_posix()
            spec = shard.replace("-of-", "/")
            result.append(Job("extract", f"{dataset}.{shard}", _fas(
                "extract", dataset, "--index", index_dir(dataset), "--root", root,
                "--shard", spec, "--out", frames), index_outputs(dataset)[:2], [frames],
                STAGE_PARAMS["extract"], cache=False))
            # the Parquet caches are DVC-cached outputs: `dvc push` shares them (README)
            result.append(Job("align", f"{dataset}.{shard}", _fas(
                "align", dataset, "--frames", frames, "--index", index_dir(dataset),
                "--root", root, "--out", static), [frames, *index_outputs(dataset)[:2]],
                [static], STAGE_PARAMS["align"]))
            result.append(Job("dynamic", f"{dataset}.{shard}", _fas(
                "dynamic", dataset, "--static", static, "--out", dynamic), [static],
                [dynamic], STAGE_PARAMS["dynamic"]))
    if any(e.dataset == "cross" for e in experiments):
        # `fas index cross` reads every cross-dataset source indexed by the grid.
        sources = sorted(set(CROSS_LETTERS.values()) & set(datasets))
        result.append(Job("index", "cross", _fas("index", "cross", "--root", "data/index",
                                                 "--out", index_dir("cross")),
                          [p for d in sources for p in index_outputs(d)[:2]],
                          index_outputs("cross"), STAGE_PARAMS["index"]))
    for experiment in experiments:
        deps = [MLFLOW_RECEIPT, *index_outputs(experiment.dataset)[:2]]
        for dataset in experiment_datasets(experiment):
            deps += cache_outputs(params, dataset)
            if experiment.dataset == "cross":
                deps += index_outputs(dataset)[:2]
        result.append(Job("train", experiment.id,
                          _fas("train", "--experiment", experiment.id),
                          deps, train_outputs(experiment), STAGE_PARAMS["train"]))
        result.append(Job("evaluate", experiment.id,
                          _fas("evaluate", "--experiment", experiment.id),
                          train_outputs(experiment), [metrics_output(experiment)],
                          STAGE_PARAMS["evaluate"], metrics=[metrics_output(experiment)]))
    result.append(Job("report", "", _fas("report"),
                      [metrics_output(e) for e in experiments]
                      + [train_outputs(e)[2] for e in experiments],
                      REPORT_OUTPUTS, STAGE_PARAMS["report"]))
    return result


def fingerprint(params: dict, stage: str) -> str:
    """Hash of the params and code a stage reads: Snakemake reruns a job when it changes."""
    digest = hashlib.sha256()
    digest.update(json.dumps({k: params.get(k) for k in STAGE_PARAMS[stage]},
                             sort_keys=True, default=str).encode())
    for entry in STAGE_CODE[stage]:
        path = REPO_ROOT / entry
        for file in sorted(path.rglob("*") if path.is_dir() else [path]):
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def dvc_stages(params: dict) -> dict:
    """dvc.yaml's content for the grid."""
    stages = {}
    for job in jobs(params):
        stage: dict = {"cmd": job.cmd}
        deps = [*job.deps, *STAGE_CODE[job.stage]]
        stage["deps"] = deps
        stage["params"] = job.params
        outs = [o for o in job.outs if o not in job.metrics]
        if outs:
            stage["outs"] = outs if job.cache else [{o: {"cache": False}} for o in outs]
        if job.metrics:
            stage["metrics"] = [{m: {"cache": False}} for m in job.metrics]
        stages[job.name] = stage
    return {"stages": stages}


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases, so dvc.yaml reads plainly."""

    def ignore_aliases(self, data) -> bool:
        return True


def render_dvc_yaml(params: dict) -> str:
    header = ("# Generated by `fas dag dvc` from params.yaml (fas/dag.py): do not edit.\n"
              "# tests/test_dag.py fails when this file is stale.\n")
    return header + yaml.dump(dvc_stages(params), Dumper=_PlainDumper, sort_keys=False, width=200)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    dvc = sub.add_parser("dvc", help="write dvc.yaml from the grid")
    dvc.add_argument("--params", type=Path, default=None)
    dvc.add_argument("--out", type=Path, default=REPO_ROOT / "dvc.yaml")
    dvc.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    show = sub.add_parser("jobs", help="print every job's name and command")
    show.add_argument("--params", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.action == "jobs":
        for job in jobs(params):
            print(f"{job.name}\t{job.cmd}")
        return 0
    text = render_dvc_yaml(params)
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `fas dag dvc`")
            return 1
        return 0
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    print(f"wrote {args.out} ({len(dvc_stages(params)['stages'])} stages)")
    return 0
