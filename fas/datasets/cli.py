"""`fas index DATASET --root DIR --out DIR`: manifest.parquet, protocols.parquet, skipped.json.

For a root that is not the synthetic default, it also prints the tables of
`fas check` (the copy against the published sizes) before preprocessing starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fas.config import is_synthetic_root, section_defaults
from fas.datasets import ADAPTERS, check, make_adapter
from fas.datasets.base import MANIFEST_SCHEMA, PROTOCOL_SCHEMA, SKIPPED, Indexed, media_stamp, write_parquet
from fas.datasets.cross import build_cross
from fas.io import FailureReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=[*sorted(ADAPTERS), "cross"],
                        help="dataset layout to parse; `cross` reads the other datasets' index folders")
    parser.add_argument("--root", type=Path, required=True,
                        help="dataset root (for `cross`: the folder holding the datasets' index folders)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--name", default=None,
                        help="casia_fas only: the dataset folder of the unified format (e.g. OULU_NPU)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction,
                        help="exit non-zero when anything was skipped (default: params index.strict)")


def index_dataset(dataset: str, root: Path, name: str | None = None
                  ) -> tuple[list[dict], list[dict], FailureReport]:
    """Manifest rows, protocol rows and the report of one dataset (or `cross`)."""
    indexed, report = index_root(dataset, root, name)
    return indexed.manifest, indexed.protocols, report


def index_root(dataset: str, root: Path, name: str | None = None) -> tuple[Indexed, FailureReport]:
    """The index of one root with its rules' context (`cross`: none), and the report."""
    report = FailureReport("index")
    if dataset == "cross":
        manifest, protocols = build_cross(root, report)
        return Indexed(manifest, protocols, None), report
    indexed = make_adapter(dataset, root, name).run(root, report)
    for row in indexed.manifest:
        row["media_stamp"] = media_stamp(row, root)
    return indexed, report


def run(args: argparse.Namespace) -> int:
    root, out = Path(args.root), Path(args.out)
    if not root.is_dir():
        reason = "is not a folder" if root.exists() else "does not exist"
        print(f"fas index {args.dataset}: root {root} {reason}", file=sys.stderr)
        return 2
    try:
        indexed, report = index_root(args.dataset, root, args.name)
    except ValueError as error:
        print(f"fas index {args.dataset}: {error}", file=sys.stderr)
        return 2
    manifest, protocols = indexed.manifest, indexed.protocols
    report.write(out / "skipped.json")
    if report.entries:
        print(report.summary(), file=sys.stderr)
    if indexed.context is not None and not is_synthetic_root(root):
        print(check.render(args.dataset, check.compare(indexed, report), colour=sys.stdout.isatty()))
    if not manifest:
        for stale in ("manifest.parquet", "protocols.parquet"):
            (out / stale).unlink(missing_ok=True)
        print(f"fas index {args.dataset}: nothing usable under {root} (see {out / 'skipped.json'})",
              file=sys.stderr)
        return 1
    write_parquet(manifest, MANIFEST_SCHEMA, out / "manifest.parquet")
    write_parquet(protocols, PROTOCOL_SCHEMA, out / "protocols.parquet")
    print(f"fas index {args.dataset}: {len(manifest)} videos, {len(protocols)} protocol rows -> {out}")
    skipped = sum(entry["action"] == SKIPPED for entry in report.entries)
    strict = args.strict if args.strict is not None else \
        bool(section_defaults("index").get("strict", False))  # not read for --help: it takes time
    if strict and skipped:
        print(f"fas index {args.dataset}: --strict and {skipped} item(s) skipped", file=sys.stderr)
        return 1
    return 0
