"""The skeleton the three shard stages (extract, align, dynamic) share.

Each reads its params section, processes the videos of one shard into one
cache-schema shard, reports every unusable file with its reason, and exits
0 unless `--strict` was asked for or nothing usable remained.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from fas import paths
from fas.config import load_params
from fas.errors import MissingInput, UsageError
from fas.io import FailureReport
from fas.paths import Shard

Item = TypeVar("Item")


def require_input(path: Path, made_by: str) -> None:
    """A missing input is the user's to fix: one line naming it and the command that makes it."""
    if not Path(path).is_file():
        raise MissingInput(f"{path}: input not found (`{made_by}` writes it)")


class MediaError(Exception):
    """A file that cannot be used, with the reason (goes to the failure report)."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def add_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    """The arguments every shard stage takes; `output` describes its default output path."""
    parser.add_argument("dataset", help="dataset name, e.g. replay")
    parser.add_argument("--shard", default="0/1", help="i/n: process shard i of n (i from 0)")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--out", type=Path, default=None, help=f"output file ({output})")
    parser.add_argument("--strict", action="store_true",
                        help="exit non-zero when any input was reported")


def add_source_arguments(parser: argparse.ArgumentParser, root_use: str) -> None:
    """--index and --root, for the stages that read the dataset itself (`root_use`: what for)."""
    parser.add_argument("--index", type=Path, default=None,
                        help=f"index folder with manifest.parquet ({paths.index_dir('<dataset>')})")
    parser.add_argument("--root", type=Path, default=None,
                        help=f"dataset root{root_use} (params datasets.<dataset>.root)")


@dataclass
class ShardJob:
    """One shard stage run: its dataset, shard, params section and failure report."""

    stage: str
    dataset: str
    shard: Shard
    params: dict
    strict: bool
    section: str  # the params section of its settings
    report: FailureReport = field(init=False)

    def __post_init__(self):
        self.report = FailureReport(self.stage)

    @classmethod
    def from_args(cls, stage: str, args: argparse.Namespace, section: str | None = None
                  ) -> "ShardJob":
        params = load_params(args.params)
        try:
            shard = Shard.parse(args.shard)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return cls(stage, args.dataset, shard, params, args.strict, section or stage)

    @property
    def settings(self) -> dict:
        """This stage's params section."""
        return self.params[self.section]

    def root(self, given: Path | None) -> Path:
        """--root, else the dataset's root in params."""
        if given:
            return Path(given)
        self.require_declared("--root")
        return Path(self.params["datasets"][self.dataset]["root"])

    def index_dir(self, given: Path | None) -> Path:
        """--index, else the dataset's index folder; its manifest must exist."""
        if not given:
            self.require_declared("--index")
        folder = Path(given or paths.index_dir(self.dataset))
        require_input(folder / "manifest.parquet", f"fas index {self.dataset}")
        return folder

    def input(self, given: Path | None, option: str, default: Path, made_by: str) -> Path:
        """An input file: the one given with `option`, else `default`; it must exist."""
        if not given:
            self.require_declared(option)
        path = Path(given or default)
        require_input(path, f"fas {made_by} {self.dataset} --shard {self.shard.spec}")
        return path

    def require_declared(self, option: str) -> None:
        """Defaults come from params.yaml, so the dataset must be one of its `datasets:`."""
        if self.dataset not in self.params["datasets"]:
            raise UsageError(f"unknown dataset {self.dataset!r}: params.yaml datasets has "
                             f"{', '.join(sorted(self.params['datasets']))} (or pass {option})")

    def run(self, out: Path, videos: Iterable[tuple[str, Item]], total: int,
            process: Callable[[str, Item], list[dict]]) -> int:
        """Write `process(video_id, item)`'s rows for every video; a MediaError skips the video."""
        from tqdm import tqdm

        from fas.cache import ShardWriter

        usable = 0
        progress = f"{self.stage} {self.dataset} shard {self.shard.i + 1}/{self.shard.n}"
        with ShardWriter(out, int(self.settings["row_group_rows"])) as writer:
            for video_id, item in tqdm(videos, total=total, desc=progress, file=sys.stderr,
                                       unit="video"):
                try:
                    rows = process(video_id, item)
                except MediaError as error:
                    self.report.add(error.path, error.reason, "video skipped")
                    continue
                writer.write(rows)
                usable += 1
        return self.finish(out, usable, total)

    def finish(self, out: Path, usable: int, total: int) -> int:
        """Write the failure report beside `out`, remove shards of an earlier shard count,
        print a summary, choose the exit code."""
        self.report.write(f"{out}.failures.json")
        for stale in paths.stale_shards(out):
            stale.unlink(missing_ok=True)
            Path(f"{stale}.failures.json").unlink(missing_ok=True)
            print(f"{self.stage}: removed {stale} (another shard count than {out.name})",
                  file=sys.stderr)
        if len(self.report):
            print(self.report.summary(), file=sys.stderr)
        print(f"{self.stage}: {usable}/{total} videos -> {out}", file=sys.stderr)
        if self.strict and len(self.report):
            return 1
        return 1 if total and not usable else 0
