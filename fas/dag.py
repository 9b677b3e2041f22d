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
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fas import paths
from fas.config import REPO_ROOT, is_synthetic_root, load_params, per_dataset
from fas.experiment import CROSS_LETTERS, resolve, source_datasets
from fas.grid import expand
from fas.io import atomic_path
from fas.paths import Shard

# Code each stage runs: a change to it reruns the stage (DVC deps, Snakemake fingerprint).
STAGE_CODE = {
    "track": ["fas/tracking.py"],
    "synth": ["fas/synth"],
    "index": ["fas/datasets"],
    "extract": ["fas/extract.py", "fas/shard_stage.py", "fas/cache.py"],
    "align": ["fas/align.py", "fas/shard_stage.py", "fas/cache.py"],
    "dynamic": ["fas/dynamic.py", "fas/shard_stage.py", "fas/cache.py"],
    "magnify": ["fas/magnify.py", "fas/models/evm.py", "fas/evm_settings.py", "fas/shard_stage.py",
                "fas/cache.py"],
    "train": ["fas/train.py", "fas/training", "fas/experiment.py", "fas/models", "fas/loader.py",
              "fas/cache.py"],
    "evaluate": ["fas/evaluate.py", "fas/metrics.py"],
    "report": ["fas/report.py", "fas/plots.py", "fas/metrics.py", "fas/data"],
}

# params.yaml keys each stage reads (DVC `params:`, Snakemake rerun fingerprint).
STAGE_PARAMS = {
    "track": ["mlflow", "preset", "seeds", "grid"],
    "synth": ["synth"],
    "index": ["index"],
    "extract": ["extract", "shards", "preset"],
    "align": ["align", "shards"],
    "dynamic": ["dynamic", "shards", "preset"],
    "magnify": ["evm", "shards"],
    "train": ["preset", "presets", "methods", "augment", "evm", "pretrained", "seeds"],
    "evaluate": ["evaluate"],
    "report": ["evaluate", "grid", "seeds"],
}

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


def shards(params: dict, dataset: str) -> list[Shard]:
    return Shard.all(per_dataset(params["shards"], dataset))


def cache_needs(params: dict) -> dict[str, set[str]]:
    """Per dataset, the cache kinds some experiment of the grid reads."""
    needs: dict[str, set[str]] = {}
    for experiment in expand(params):
        kinds = resolve(params, experiment).cache_kinds
        for dataset in source_datasets(experiment, params["datasets"]):
            needs.setdefault(dataset, set()).update(kinds)
    return needs


def needed_datasets(params: dict) -> list[str]:
    """Real datasets the grid reads, the sources of its cross-dataset protocols included."""
    return sorted({d for experiment in expand(params)
                   for d in source_datasets(experiment, params["datasets"])})


def _fas(*parts: str | Path | Shard) -> str:
    """A `fas` command line, each argument quoted for the shell both orchestrators run it in."""
    return shlex.join(["fas", *map(str, parts)])


def _posix(items) -> list[str]:
    return [Path(item).as_posix() for item in items]


def jobs(params: dict) -> list[Job]:
    """Every job of the grid, in DAG order."""
    experiments = expand(params)
    datasets = needed_datasets(params)
    needs = cache_needs(params)
    receipt = paths.MLFLOW_RECEIPT.as_posix()
    result = [Job("track", "", _fas("track", "init", "--receipt", receipt),
                  [], [receipt], STAGE_PARAMS["track"], cache=False)]
    for dataset in datasets:
        root = params["datasets"][dataset]["root"]
        index, tables = paths.index_dir(dataset), _posix(paths.index_outputs(dataset)[:2])
        index_deps = []
        if is_synthetic_root(root):
            # scale, seed and difficulty come from params.yaml, which DVC and the
            # fingerprint watch: the command itself never changes with them
            result.append(Job("synth", dataset, _fas("synth", dataset, "--out", root),
                              [], [root], STAGE_PARAMS["synth"], cache=False))
            index_deps = [root]
        result.append(Job("index", dataset, _fas("index", dataset, "--root", root, "--out", index),
                          index_deps, _posix(paths.index_outputs(dataset)), STAGE_PARAMS["index"]))
        for shard in shards(params, dataset):
            frames = paths.frames_shard(dataset, shard).as_posix()
            static = paths.cache_shard(dataset, "static", shard).as_posix()
            dynamic = paths.cache_shard(dataset, "dynamic", shard).as_posix()
            key = f"{dataset}.{shard}"
            result.append(Job("extract", key, _fas(
                "extract", dataset, "--index", index, "--root", root, "--shard", shard.spec,
                "--out", frames), tables, [frames], STAGE_PARAMS["extract"], cache=False))
            # the Parquet caches are DVC-cached outputs: `dvc push` shares them (README)
            result.append(Job("align", key, _fas(
                "align", dataset, "--frames", frames, "--index", index, "--root", root,
                "--out", static), [frames, *tables], [static], STAGE_PARAMS["align"]))
            if "dynamic" in needs[dataset]:
                result.append(Job("dynamic", key, _fas(
                    "dynamic", dataset, "--static", static, "--out", dynamic),
                    [static], [dynamic], STAGE_PARAMS["dynamic"]))
            if "magnified" in needs[dataset]:
                magnified = paths.cache_shard(dataset, "magnified", shard).as_posix()
                result.append(Job("magnify", key, _fas(
                    "magnify", dataset, "--static", static, "--out", magnified),
                    [static], [magnified], STAGE_PARAMS["magnify"]))
    if any(e.dataset == "cross" for e in experiments):
        # `fas index cross` reads every cross-dataset source indexed by the grid.
        sources = sorted(set(CROSS_LETTERS.values()) & set(datasets))
        result.append(Job("index", "cross", _fas("index", "cross", "--root", paths.INDEX_ROOT,
                                                 "--out", paths.index_dir("cross")),
                          [p for d in sources for p in _posix(paths.index_outputs(d)[:2])],
                          _posix(paths.index_outputs("cross")), STAGE_PARAMS["index"]))
    for experiment in experiments:
        deps = [receipt, *_posix(paths.index_outputs(experiment.dataset)[:2])]
        kinds = resolve(params, experiment).cache_kinds
        for dataset in source_datasets(experiment, params["datasets"]):
            deps += _posix(paths.cache_outputs(dataset, len(shards(params, dataset)), kinds))
            if experiment.dataset == "cross":
                deps += _posix(paths.index_outputs(dataset)[:2])
        train_outputs = _posix(paths.train_outputs(experiment))
        metrics = paths.metrics_output(experiment).as_posix()
        result.append(Job("train", experiment.id,
                          _fas("train", "--experiment", experiment.id),
                          deps, train_outputs, STAGE_PARAMS["train"]))
        result.append(Job("evaluate", experiment.id,
                          _fas("evaluate", "--experiment", experiment.id),
                          train_outputs, [metrics], STAGE_PARAMS["evaluate"], metrics=[metrics]))
    result.append(Job("report", "", _fas("report"),
                      [paths.metrics_output(e).as_posix() for e in experiments]
                      + [paths.train_outputs(e)[2].as_posix() for e in experiments],
                      _posix(paths.REPORT_OUTPUTS), STAGE_PARAMS["report"]))
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
