"""The pipeline's jobs, derived from params.yaml: the one description both orchestrators run.

Each job has the exact `fas ...` command, its input and output paths and the
params.yaml keys it reads (an experiment's jobs only its own keys). The
Snakemake rules (workflow/rules/*.smk) take their inputs and commands from
here, and `fas dag dvc` writes dvc.yaml from the same list, so the two never
drift; both orchestrators then decide what is out of date from dvc.lock
(`fas.lock`).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fas import paths
from fas.config import is_synthetic_root, load_params, per_dataset, read_params_file
from fas.experiment import CROSS_LETTERS, param_keys, resolve, source_datasets
from fas.grid import expand
from fas.io import atomic_path
from fas.paths import Shard

# Code each stage runs: a change to it reruns the stage (a DVC dependency). fas/numerics.py
# chooses the kernels of every stage that computes with NumPy or torch.
NUMERICS = "fas/numerics.py"
STAGE_CODE = {
    "track": ["fas/tracking.py"],
    "synth": ["fas/synth", NUMERICS],
    "index": ["fas/datasets"],
    "align": ["fas/extract.py", "fas/align.py", "fas/shard_stage.py", "fas/cache.py",
              NUMERICS],
    "dynamic": ["fas/dynamic.py", "fas/dynamic_kernel.py", "fas/shard_stage.py", "fas/cache.py",
                NUMERICS],
    "magnify": ["fas/magnify.py", "fas/models/evm.py", "fas/evm_settings.py", "fas/shard_stage.py",
                "fas/cache.py", NUMERICS],
    "train": ["fas/train.py", "fas/training", "fas/experiment.py", "fas/models", "fas/loader.py",
              "fas/cache.py", NUMERICS],
    "evaluate": ["fas/evaluate.py", "fas/metrics.py", NUMERICS],
    "report": ["fas/report.py", "fas/plots.py", "fas/metrics.py", "fas/verdict.py", "fas/data",
               NUMERICS],
}

# params.yaml keys (dotted) the stages read that are the same for every job of the stage;
# shard stages add their dataset's per-dataset keys, experiments their own (`param_keys`).
STAGE_PARAMS = {
    "track": ["mlflow", "preset", "seeds", "grid"],
    "synth": ["synth"],
    "index": ["index"],
    # the shard count is in every shard's file name, so it needs no params entry
    "align": ["extract", "preset"],  # frame sampling and the crop size are per preset
    "dynamic": ["dynamic", "preset"],
    "magnify": ["evm"],
    # tables and the results page: APCER convention, grid, preset and whether data is synthetic;
    # the verdict's thresholds
    "report": ["evaluate.table_apcer", "grid", "seeds", "preset", "datasets", "verdict"],
}

# `fas report` runs alone at the end of the grid: its plots are drawn in this many processes.
REPORT_WORKERS = 2


@dataclass
class Job:
    """One command of the grid: what it reads, writes and which params.yaml keys (dotted) it reads."""

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


def dataset_keys(params: dict, section: str, dataset: str) -> list[str]:
    """The keys of a section one dataset's job reads: per-dataset settings at its own entry
    (under the active preset's entry where the setting is per preset, as `align.crop_size`)."""
    keys = []
    for key, value in params[section].items():
        key = f"{section}.{key}"
        if isinstance(value, dict) and params["preset"] in value:
            key, value = f"{key}.{params['preset']}", value[params["preset"]]
        keys.append(f"{key}.{dataset if dataset in value else 'default'}"
                    if isinstance(value, dict) else key)
    return keys


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
            # scale, seed and difficulty come from params.yaml, which both orchestrators
            # watch (dvc.lock): the command itself never changes with them
            result.append(Job("synth", dataset, _fas("synth", dataset, "--out", root),
                              [], [root], STAGE_PARAMS["synth"], cache=False))
            index_deps = [root]
        result.append(Job("index", dataset, _fas("index", dataset, "--root", root, "--out", index),
                          index_deps, _posix(paths.index_outputs(dataset)), STAGE_PARAMS["index"]))
        for shard in shards(params, dataset):
            static = paths.cache_shard(dataset, "static", shard).as_posix()
            dynamic = paths.cache_shard(dataset, "dynamic", shard).as_posix()
            key = f"{dataset}.{shard}"
            # alignment samples and decodes the frames itself: no frames file between two jobs;
            # the Parquet caches are DVC-cached outputs, so `dvc push` shares them (README)
            result.append(Job("align", key, _fas(
                "align", dataset, "--index", index, "--root", root, "--shard", shard.spec,
                "--out", static), tables, [static],
                STAGE_PARAMS["align"] + dataset_keys(params, "align", dataset)))
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
        keys = param_keys(params, experiment)
        result.append(Job("train", experiment.id,
                          _fas("train", "--experiment", experiment.id),
                          deps, train_outputs, keys["train"]))
        result.append(Job("evaluate", experiment.id,
                          _fas("evaluate", "--experiment", experiment.id),
                          train_outputs, [paths.metrics_output(experiment).as_posix()],
                          keys["evaluate"]))
    summary = paths.SUMMARY_METRICS.as_posix()
    # the verdict counts every test and dev split of the grid in its datasets' indexes
    indexed = sorted({e.dataset for e in experiments})
    result.append(Job("report", "", _fas("report", "--workers", REPORT_WORKERS),
                      [receipt] + [paths.metrics_output(e).as_posix() for e in experiments]
                      # scores for the intervals of averaged rows, histories for the plots
                      + [p.as_posix() for e in experiments for p in paths.train_outputs(e)[0:3:2]]
                      + [p for d in indexed for p in _posix(paths.index_outputs(d)[:2])],
                      [*_posix(paths.REPORT_OUTPUTS), summary], STAGE_PARAMS["report"],
                      metrics=[summary]))
    return result


def dvc_params(keys: list[str], raw: dict) -> list[str]:
    """`keys` as DVC can watch them: each the deepest prefix that params.yaml spells out.

    DVC reads params.yaml as written, so a key the schema's default fills in
    (say `align.backend.default`) is watched through its parent (`align.backend`).
    """
    watched: list[str] = []
    for key in keys:
        parts, node, depth = key.split("."), raw, 0
        while depth < len(parts) and isinstance(node, dict) and parts[depth] in node:
            node, depth = node[parts[depth]], depth + 1
        if depth and (found := ".".join(parts[:depth])) not in watched:
            watched.append(found)
    return [k for k in watched if not any(k.startswith(f"{other}.") for other in watched)]


def plot_groups(params: dict) -> dict[str, list]:
    """Experiments by (dataset, protocol, method, variant): one ROC, DET and training plot each."""
    groups: dict[str, list] = {}
    for experiment in expand(params):
        name = ".".join([experiment.dataset, experiment.protocol, experiment.method,
                         experiment.variant])
        groups.setdefault(name, []).append(experiment)
    return groups


def dvc_plots(params: dict) -> list[dict]:
    """dvc.yaml's `plots:`: ROC and DET data written by `fas report`, training histories."""
    plots = []
    for name, members in plot_groups(params).items():
        def files(kind: str, field: str | list[str]) -> dict:
            return {paths.plot_data(e, kind).as_posix() if kind != "history"
                    else paths.train_outputs(e)[2].as_posix(): field for e in members}

        plots += [
            {f"roc {name}": {"template": "simple", "x": "fpr", "y": files("roc", "tpr"),
                             "title": f"ROC, test split: {name}", "x_label": "attacks accepted (FPR)",
                             "y_label": "live accepted (TPR)"}},
            {f"det {name}": {"template": "simple", "x": "apcer_probit", "y": files("det", "bpcer_probit"),
                             "title": f"DET, test split (normal deviates): {name}",
                             "x_label": "APCER, pooled (probit)", "y_label": "BPCER (probit)"}},
            {f"training {name}": {"template": "linear", "x": "epoch",
                                  "y": files("history", "train/loss"),
                                  "title": f"training loss: {name}", "y_label": "train/loss"}},
        ]
    return plots


def dvc_stages(params: dict, raw: dict) -> dict:
    """dvc.yaml's content for the grid (`raw`: params.yaml as written, without defaults)."""
    stages = {}
    for job in jobs(params):
        stage: dict = {"cmd": job.cmd}
        stage["deps"] = [*job.deps, *STAGE_CODE[job.stage]]
        stage["params"] = dvc_params(job.params, raw)
        outs = [o for o in job.outs if o not in job.metrics]
        if outs:
            stage["outs"] = outs if job.cache else [{o: {"cache": False}} for o in outs]
        if job.metrics:
            stage["metrics"] = job.metrics  # cached: `dvc exp show` reads them from any commit
        stages[job.name] = stage
    return {"stages": stages, "plots": dvc_plots(params)}


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases, so dvc.yaml reads plainly."""

    def ignore_aliases(self, data) -> bool:
        return True


def render_dvc_yaml(params: dict, raw: dict) -> str:
    header = ("# Generated by `fas dag dvc` from params.yaml (fas/dag.py): do not edit.\n"
              "# tests/test_dag.py fails when this file is stale.\n")
    return header + yaml.dump(dvc_stages(params, raw), Dumper=_PlainDumper, sort_keys=False,
                              width=200)


def refresh_dvc_yaml(params: dict, raw: dict, path: Path = Path("dvc.yaml")) -> bool:
    """Rewrite dvc.yaml when it no longer matches params.yaml; True when it did."""
    text = render_dvc_yaml(params, raw)
    if path.exists() and path.read_text() == text:
        return False
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    dvc = sub.add_parser("dvc", help="write dvc.yaml from the grid")
    dvc.add_argument("--params", type=Path, default=None)
    dvc.add_argument("--out", type=Path, default=Path("dvc.yaml"))
    dvc.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    show = sub.add_parser("jobs", help="print every job's name and command")
    show.add_argument("--params", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.action == "jobs":
        for job in jobs(params):
            print(f"{job.name}\t{job.cmd}")
        return 0
    raw = read_params_file(args.params)
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != render_dvc_yaml(params, raw):
            print(f"{args.out} is stale: run `fas dag dvc`")
            return 1
        return 0
    refresh_dvc_yaml(params, raw, args.out)
    print(f"wrote {args.out} ({len(jobs(params))} stages)")
    return 0
