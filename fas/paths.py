"""Where every artifact lives, and the `Shard` of a preprocessing job: the one home for paths.

The DAG (`fas.dag`), the Snakemake rules (workflow/rules/*.smk) and the stage
commands' defaults all take their paths from here. Paths are relative to the
project folder, where both orchestrators run every command. Functions that
take a dataset, a shard or an experiment also accept Snakemake wildcard
patterns (`"{dataset}"`, `Shard.PATTERN`, `EXPERIMENT_PATTERN`), so a rule's
output pattern is the same function as the DAG's concrete path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, NamedTuple, Protocol

INDEX_ROOT = Path("data/index")
FRAMES_ROOT = Path("data/frames")
CACHE_ROOT = Path("data/cache")
RESULTS_ROOT = Path("results")
TRAIN_ROOT = RESULTS_ROOT / "train"
EVAL_ROOT = RESULTS_ROOT / "eval"
SCRATCH_ROOT = Path(".scratch")
LOG_ROOT = Path("logs")
BUILT_ROOT = Path(".snakemake") / "fas-built"  # Snakemake's stamps of what dvc.lock records (fas.lock)
BENCHMARK_ROOT = LOG_ROOT / "benchmarks"  # Snakemake `benchmark:` files: time and peak memory per job
SCHEDULER_USAGE = BENCHMARK_ROOT / "snakemake.json"  # the Snakemake process's own CPU and the run's wall time
MLFLOW_RECEIPT = RESULTS_ROOT / "mlflow" / "grid.json"
TABLES = RESULTS_ROOT / "tables"  # `fas report` writes tables, plots and index below its --out
PLOTS = RESULTS_ROOT / "plots"
RESULTS_INDEX = RESULTS_ROOT / "index.md"
REPORT_OUTPUTS = [TABLES, PLOTS, RESULTS_INDEX]
SUMMARY_METRICS = RESULTS_ROOT / "metrics.json"  # headline numbers per table (DVC metrics)
PLOT_DATA = PLOTS / "data"  # ROC and DET points per experiment (DVC plots)

INDEX_FILES = ("manifest.parquet", "protocols.parquet", "skipped.json")
TRAIN_FILES = ("scores.parquet", "frame_scores.parquet", "history.csv", "receipt.json")
CACHE_KINDS = ("static", "dynamic", "magnified")
CACHE_WRITER = {"static": "fas align", "dynamic": "fas dynamic", "magnified": "fas magnify"}
SHARD_FILE = re.compile(r"^(?P<kind>[a-z]+)-(?P<i>\d+)-of-(?P<n>\d+)\.parquet$")


class Shard(NamedTuple):
    """Shard `i` of `n` (i from 0): written `i/n` on the command line, `i-of-n` in file names."""

    i: int
    n: int
    PATTERN = "{shard}"  # the Snakemake wildcard standing for a shard's name

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """`"i/n"` (the command line) or `"i-of-n"` (a file name)."""
        match = re.fullmatch(r"(\d+)(?:/|-of-)(\d+)", text.strip())
        if not match or not 0 <= int(match[1]) < int(match[2]):
            raise ValueError(f"bad shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/2")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def all(cls, n: int) -> list["Shard"]:
        return [cls(i, n) for i in range(n)]

    @property
    def name(self) -> str:
        return f"{self.i}-of-{self.n}"

    @property
    def spec(self) -> str:
        return f"{self.i}/{self.n}"

    def __str__(self) -> str:
        return self.name

    def members(self, video_ids: Iterable[str]) -> list[str]:
        """The videos of this shard: every n-th of the sorted ids, from the i-th."""
        return sorted(set(video_ids))[self.i::self.n]


class HasPath(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def id(self) -> str: ...


class _ExperimentPattern:
    """Stands for any experiment in a Snakemake pattern (`fas.grid.Experiment` has the same names)."""

    path = "{dataset}/{protocol}/f{fold}/{method}/{variant}/s{seed}"
    id = "{dataset}.{protocol}.f{fold}.{method}.{variant}.s{seed}"


EXPERIMENT_PATTERN = _ExperimentPattern()


def index_dir(dataset: str) -> Path:
    return INDEX_ROOT / dataset


def index_outputs(dataset: str) -> list[Path]:
    """manifest.parquet, protocols.parquet, skipped.json of one dataset."""
    return [index_dir(dataset) / name for name in INDEX_FILES]


def frames_shard(dataset: str, shard: Shard | str) -> Path:
    """Sampled frames of one shard: `fas extract`'s default output (the pipeline aligns in memory)."""
    return FRAMES_ROOT / dataset / f"shard-{shard}.parquet"


def cache_dir(dataset: str) -> Path:
    return CACHE_ROOT / dataset


def cache_shard(dataset: str, kind: str, shard: Shard | str) -> Path:
    """Cache shard of aligned frames (`static`) or dynamic images (`dynamic`)."""
    return shard_file(cache_dir(dataset), kind, shard)


def shard_file(folder: str | Path, kind: str, shard: Shard | str) -> Path:
    """`<folder>/<kind>-<i>-of-<n>.parquet`."""
    return Path(folder) / f"{kind}-{shard}.parquet"


def shard_files(folder: str | Path, kind: str) -> list[Path]:
    """All shards of one kind in a folder, in shard order; shards of two counts are an error."""
    found = []
    for path in Path(folder).glob(f"{kind}-*-of-*.parquet"):
        match = SHARD_FILE.match(path.name)
        if match and match["kind"] == kind:
            found.append((Shard(int(match["i"]), int(match["n"])), path))
    counts = {shard.n for shard, _ in found}
    if len(counts) > 1:
        raise ValueError(f"{folder}: {kind} shards of different counts {sorted(counts)}; "
                         "remove the stale ones")
    return [path for _, path in sorted(found)]


def stale_shards(shard: str | Path) -> list[Path]:
    """Shards beside `shard` of the same kind but another shard count (left by an earlier
    `shards:` setting); empty when `shard` is not named `<kind>-<i>-of-<n>.parquet`."""
    shard = Path(shard)
    match = SHARD_FILE.match(shard.name)
    if not match:
        return []
    return sorted(path for path in shard.parent.glob(f"{match['kind']}-*-of-*.parquet")
                  if (other := SHARD_FILE.match(path.name)) and other["kind"] == match["kind"]
                  and other["n"] != match["n"])


def cache_outputs(dataset: str, n_shards: int, kinds=CACHE_KINDS) -> list[Path]:
    """The cache shards of one dataset: aligned frames, dynamic images, magnified frames."""
    return [cache_shard(dataset, kind, shard) for kind in kinds for shard in Shard.all(n_shards)]


def train_dir(experiment: HasPath) -> Path:
    return TRAIN_ROOT / experiment.path


def train_outputs(experiment: HasPath) -> list[Path]:
    """scores.parquet, frame_scores.parquet, history.csv, receipt.json of one experiment."""
    return [train_dir(experiment) / name for name in TRAIN_FILES]


def checkpoint_dir(experiment: HasPath, scratch: Path = SCRATCH_ROOT) -> Path:
    """Resume checkpoint and selected model: undeclared, so neither orchestrator wipes them."""
    return Path(scratch) / "checkpoints" / experiment.path


def metrics_output(experiment: HasPath) -> Path:
    return EVAL_ROOT / experiment.path / "metrics.json"


def plot_data(experiment: HasPath, kind: str) -> Path:
    """`roc.csv` or `det.csv` of one experiment's test scores, written by `fas report`."""
    return PLOT_DATA / experiment.path / f"{kind}.csv"


def job_log(stage: str, key: str = "") -> Path:
    """The log of one job: `logs/<stage>/<key>.log` (`logs/<stage>.log` for a single job)."""
    return LOG_ROOT / stage / f"{key}.log" if key else LOG_ROOT / f"{stage}.log"


def built_stamp(stage: str, key: str = "") -> Path:
    """Snakemake's stamp of a job that dvc.lock records as built (see `fas.lock`)."""
    return BUILT_ROOT / stage / key if key else BUILT_ROOT / stage


def job_benchmark(stage: str, key: str = "") -> Path:
    """Snakemake's benchmark file of one job: `logs/benchmarks/<stage>/<key>.tsv`."""
    return BENCHMARK_ROOT / stage / f"{key or stage}.tsv"
