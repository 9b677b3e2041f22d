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
from fas.errors import UsageError
from fas.io import FailureReport
from fas.paths import Shard

Item = TypeVar("Item")


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
    report: FailureReport = field(init=False)

    def __post_init__(self):
        self.report = FailureReport(self.stage)

    @classmethod
    def from_args(cls, stage: str, args: argparse.Namespace) -> "ShardJob":
        params = load_params(args.params)
        try:
            shard = Shard.parse(args.shard)
        except ValueError as error:
            raise UsageError(str(error)) from None
        return cls(stage, args.dataset, shard, params, args.strict)

    @property
    def settings(self) -> dict:
        """This stage's params section."""
        return self.params[self.stage]

    def root(self, given: Path | None) -> Path:
        """--root, else the dataset's root in params."""
        if given:
            return Path(given)
        if self.dataset not in self.params["datasets"]:
            raise UsageError(f"unknown dataset {self.dataset!r}: params.yaml datasets has "
                             f"{', '.join(sorted(self.params['datasets']))} (or pass --root)")
        return Path(self.params["datasets"][self.dataset]["root"])

    def index_dir(self, given: Path | None) -> Path:
        return Path(given or paths.index_dir(self.dataset))

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
        """Write the failure report beside `out`, print a summary, choose the exit code."""
        self.report.write(f"{out}.failures.json")
        if len(self.report):
            print(self.report.summary(), file=sys.stderr)
        print(f"{self.stage}: {usable}/{total} videos -> {out}", file=sys.stderr)
        if self.strict and len(self.report):
            return 1
        return 1 if total and not usable else 0
