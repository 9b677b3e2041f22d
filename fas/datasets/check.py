"""`fas check DATASET --root DIR`: a copy of a dataset against its published sizes.

Indexes the copy in memory (the walk of `fas index`) and prints expected vs
found: videos per protocol split and class (the published counts of the release
layouts found, REFERENCE.md section 3 and the authors' lists), the modalities,
and the problems that lose data (unreadable or empty files, list entries naming
absent videos, labels or lines a list gets wrong). Exit 1 on a shortfall or
problem. `fas index` prints the same tables for every root that is not the
synthetic default, before any preprocessing starts.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fas.datasets import ADAPTERS, make_adapter
from fas.datasets.base import SPLITS, UNLABELLED, Indexed
from fas.io import FailureReport

OK, SHORT, MORE, NO_COUNT, PROBLEM, NOTE = "ok", "SHORT", "more", "-", "PROBLEM", "note"
FAILING = (SHORT, PROBLEM)
COLOURS = {OK: "32", SHORT: "31", PROBLEM: "31", MORE: "33"}
CLASSES = ("live", "attack", "unlabelled", "total")
# Report reasons (fas.datasets.base and the adapters) -> the problem they count.
PROBLEMS = {
    "unreadable or empty files": re.compile(r"unreadable|empty file"),
    "list entries naming absent videos": re.compile(r"protocol entry names a video absent"),
    "list labels disagreeing": re.compile(r"label disagrees"),
    "malformed list lines": re.compile(r"malformed"),
}
NOTES = {
    "unknown file names": re.compile(r"unknown file name"),
    "bad names": re.compile(r"bad name"),
}
MISSING_MODALITY = re.compile(r"missing modality folder\(s\) ([a-z, ]+) ")


@dataclass
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple]  # the last cell is the status


def status(expected: int | None, found: int, at_least: bool = False) -> str:
    """ok, SHORT, more, or `-` without a published count."""
    if expected is None:
        return NO_COUNT
    if found < expected:
        return SHORT
    return MORE if found > expected and not at_least else OK


def split_table(indexed: Indexed) -> Table:
    """Videos per protocol split and class (found / expected), against the published counts."""
    ctx = indexed.context
    live = {m["video_id"]: m["is_live"] for m in indexed.manifest}
    found: dict[tuple, Counter] = {}
    for row in indexed.protocols:
        key = (row["protocol"], row["fold"], row["split"])
        found.setdefault(key, Counter())["live" if live[row["video_id"]] else "attack"] += 1
    for key, count in ctx.listed_unlabelled.items():
        found.setdefault(key, Counter())["unlabelled"] += count
    for counts in found.values():
        counts["total"] = sum(counts.values())
    expected = {(e.protocol, e.fold, e.split): e for e in ctx.adapter.expected(ctx)}
    rows = []
    for key in sorted(set(found) | set(expected), key=lambda k: (k[0], k[1], SPLITS.index(k[2]))):
        counts, published = found.get(key, Counter()), expected.get(key)
        cells, statuses = [], []
        for cls in CLASSES:
            want = getattr(published, cls) if published else None
            bound = cls == "attack" and published is not None and published.attack_at_least
            if want is not None:
                cells.append(f"{counts[cls]} / {'>=' if bound else ''}{want}")
            else:
                cells.append(str(counts[cls]) if cls == "total" else f"{counts[cls]} / -" if counts[cls] else "")
            if want is not None or (counts[cls] and cls != "total"):
                statuses.append(status(want, counts[cls], bound))
        worst = next((s for s in (SHORT, MORE, OK) if s in statuses), NO_COUNT)
        rows.append((*key, *cells, published.source if published else "", worst))
    releases = ", ".join(sorted(ctx.releases or {ctx.adapter.release}))
    return Table(f"Videos per protocol split, found / expected (release layout: {releases})",
                 ("protocol", "fold", "split", *CLASSES, "expected from", "status"), rows)


def modality_table(indexed: Indexed, report: FailureReport) -> Table:
    """Videos with each modality; a required modality missing is a shortfall."""
    adapter = indexed.context.adapter
    lacking = Counter()
    for entry in report.entries:
        if match := MISSING_MODALITY.match(entry["reason"]):
            lacking.update(m.strip() for m in match[1].split(","))
    rows = []
    for modality in ("color", "depth", "ir"):
        have = sum(m[f"path_{modality}"] is not None for m in indexed.manifest)
        required = modality in adapter.modalities
        if not have and not required:
            continue
        rows.append((modality, "yes" if required else "no", have, lacking[modality],
                     PROBLEM if required and lacking[modality] else OK))
    return Table(f"Modalities (every video needs {', '.join(adapter.modalities)})",
                 ("modality", "required", "videos", "videos lacking it", "status"), rows)


def problem_table(indexed: Indexed, report: FailureReport) -> Table:
    """Data-losing problems (expected 0) and counts worth a look."""
    rows = [(what, 0, n, PROBLEM if n else OK) for what, n in
            ((what, _count(report, pattern)) for what, pattern in PROBLEMS.items())]
    rows += [(what, "", _count(report, pattern), NOTE) for what, pattern in NOTES.items()]
    listed = {row["video_id"] for row in indexed.protocols}
    rows.append(("videos in no protocol split", "", sum(m["video_id"] not in listed for m in indexed.manifest),
                 NOTE))
    rows.append(("videos without a published label", "",
                 sum(e["action"] == UNLABELLED for e in report.entries), NOTE))
    return Table("Files and lists (details: the index report)", ("what", "expected", "found", "status"), rows)


def _count(report: FailureReport, pattern: re.Pattern) -> int:
    return sum(bool(pattern.search(e["reason"])) for e in report.entries if e["action"] != UNLABELLED)


def compare(indexed: Indexed, report: FailureReport) -> list[Table]:
    return [split_table(indexed), modality_table(indexed, report), problem_table(indexed, report)]


def failures(tables: list[Table]) -> int:
    return sum(row[-1] in FAILING for table in tables for row in table.rows)


def render(dataset: str, tables: list[Table], colour: bool = False) -> str:
    """The tables as aligned text, without their empty columns; statuses in colour when `colour`."""
    out = []
    for table in tables:
        body = [[str(c) for c in row] for row in table.rows]
        keep = [i for i in range(len(table.header)) if any(row[i] for row in body) or not body]
        cells = [[table.header[i] for i in keep]] + [[row[i] for i in keep] for row in body]
        widths = [max(len(row[i]) for row in cells) for i in range(len(keep))]
        out += ["", table.title]
        for n, row in enumerate(cells):
            text = "  ".join(c.ljust(w) if i < len(row) - 1 else c for i, (c, w) in enumerate(zip(row, widths)))
            if colour and n and row[-1] in COLOURS:
                text = text[: -len(row[-1])] + f"\033[{COLOURS[row[-1]]}m{row[-1]}\033[0m"
            out.append(text.rstrip())
    statuses = Counter(row[-1] for table in tables for row in table.rows)
    out += ["", f"{dataset}: {statuses[OK]} ok, {statuses[SHORT]} short, {statuses[PROBLEM]} problem(s), "
                f"{statuses[MORE]} more than published, {statuses[NO_COUNT]} split(s) without a published count"]
    return "\n".join(out).lstrip("\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(ADAPTERS), help="dataset layout to check")
    parser.add_argument("--root", type=Path, required=True, help="dataset root")
    parser.add_argument("--name", default=None,
                        help="casia_fas only: the dataset folder of the unified format (e.g. OULU_NPU)")


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        reason = "is not a folder" if root.exists() else "does not exist"
        print(f"fas check {args.dataset}: root {root} {reason}", file=sys.stderr)
        return 2
    try:
        adapter = make_adapter(args.dataset, root, args.name)
    except ValueError as error:
        print(f"fas check {args.dataset}: {error}", file=sys.stderr)
        return 2
    report = FailureReport("check")
    indexed = adapter.run(root, report)
    tables = compare(indexed, report)
    print(render(args.dataset, tables, colour=sys.stdout.isatty()))
    return 1 if failures(tables) else 0
