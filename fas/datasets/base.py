"""The one indexing mechanism shared by every adapter.

An adapter states only the facts of its layout: path patterns whose named
groups decode into manifest fields, the names of its side files (protocol
lists, annotations) and its protocol rules. This module walks the tree,
matches and decodes every file, groups frames into videos, checks protocol
entries against what is on disk, and writes both tables deterministically.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from fas.io import FailureReport, atomic_path

MODALITIES = ("color", "depth", "ir")
SPLITS = ("train", "dev", "test")
# Folder names of the modality streams in frame datasets (the CeFA challenge
# release calls its RGB folder `profile`: REFERENCE section 3, CeFA).
MODALITY_FOLDERS = {"color": "color", "profile": "color", "depth": "depth", "ir": "ir"}
DESCRIPTIVE_FIELDS = ("session", "device", "ethnicity", "quality", "medium", "lighting")

MANIFEST_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("video_id", pa.string()), ("subject", pa.string()),
    ("is_live", pa.bool_()), ("pai", pa.string()), ("media", pa.string()),
    ("path_color", pa.string()), ("path_depth", pa.string()), ("path_ir", pa.string()),
    ("path_annotation", pa.string()),
    *[(name, pa.string()) for name in DESCRIPTIVE_FIELDS],
])
PROTOCOL_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("protocol", pa.string()), ("fold", pa.int32()),
    ("split", pa.string()), ("video_id", pa.string()),
    ("modalities", pa.list_(pa.string())), ("max_frames", pa.int32()),
])

# Report actions. Only SKIPPED counts as a problem for --strict; the others
# record deliberate omissions (a list the paper does not use, a video whose
# label the dataset does not publish, a missing optional annotation).
# The synthetic generator's record of how it made a tree (`fas synth`), at the root.
GENERATOR_RECORD = "synth.json"
# Files tools leave at a root that are no part of the data: the generator's record, and the
# timestamp Snakemake writes into a directory() output (the synthetic roots).
NOT_DATA = {GENERATOR_RECORD, ".snakemake_timestamp"}

SKIPPED, IGNORED, UNLABELLED, NO_ANNOTATION = "skipped", "ignored", "unlabelled", "no annotation"


class BadName(ValueError):
    """A path that fits a layout pattern but carries an impossible field."""


@dataclass(frozen=True)
class Layout:
    """One family of media paths: a regex over the root-relative POSIX path.

    Groups: `video` (the video id), `modality` (frame datasets: the stream
    folder), and whatever `decode` reads to produce the manifest fields
    (subject, is_live, pai and the descriptive fields).
    """

    pattern: re.Pattern
    decode: Callable[[dict], dict]


def table(mapping: dict, code: str, what: str):
    """Look `code` up in a code table; an unknown code is a BadName."""
    try:
        return mapping[code]
    except KeyError:
        raise BadName(f"unknown {what} code {code!r} (known: {', '.join(sorted(map(str, mapping)))})") from None


def walk_files(root: Path, report: FailureReport) -> Iterator[tuple[str, int | None]]:
    """(relative POSIX path, size or None when unreadable) of every file, sorted."""

    def on_error(error: OSError) -> None:
        report.add(_relative(root, error.filename), f"unreadable folder: {error.strerror}")

    seen_folders = set()  # (device, inode): symlinked folders are followed, never twice
    for folder, subfolders, files in os.walk(root, onerror=on_error, followlinks=True):
        base = Path(folder)
        info = base.stat()
        identity = (info.st_dev, info.st_ino)
        if identity in seen_folders:
            report.add(_relative(root, base), "folder link loop or second link to a folder: not walked again")
            subfolders.clear()
            continue
        seen_folders.add(identity)
        subfolders.sort()
        if not files and not subfolders and base != root:
            report.add(_relative(root, base), "empty folder")
        for name in sorted(files):
            path = base / name
            try:
                size = path.stat().st_size if os.access(path, os.R_OK) else None
            except OSError:
                size = None
            yield _relative(root, path), size


def _relative(root: Path, path) -> str:
    return Path(path).relative_to(root).as_posix()


class Context:
    """What protocol rules see: the indexed videos, the side files, the report."""

    def __init__(self, adapter: "Adapter", root: Path, videos: dict[str, dict],
                 side_files: list[str], report: FailureReport):
        self.adapter, self.root, self.videos = adapter, root, videos
        self.side_files, self.report = side_files, report
        self.rows: set[tuple] = set()

    def add(self, protocol: str, fold: int, split: str, video_id: str,
            modalities: Iterable[str] | None = None, max_frames: int | None = None) -> None:
        """One protocol row for a video known to be in the manifest."""
        assert split in SPLITS and video_id in self.videos, (split, video_id)
        self.rows.add((protocol, fold, split, video_id,
                       tuple(modalities) if modalities is not None else None, max_frames))

    def add_listed(self, where: str, protocol: str, fold: int, split: str, video_id: str,
                   listed_live: bool, **extra) -> None:
        """A row read from a protocol file: the video must exist and its label agree."""
        video = self.videos.get(video_id)
        if video is None:
            self.report.add(where, f"protocol entry names a video absent from the index: {video_id}")
        elif video["is_live"] != listed_live:
            self.report.add(where, f"label disagrees with the path: the list says "
                                   f"{'live' if listed_live else 'attack'}, {video_id} is {video['pai']}")
        else:
            self.add(protocol, fold, split, video_id, **extra)

    def side(self, pattern: re.Pattern) -> list[tuple[str, re.Match]]:
        """The side files whose path fully matches `pattern`, with their matches."""
        return [(rel, m) for rel in self.side_files if (m := pattern.fullmatch(rel))]

    def lines(self, rel: str, report: bool = True) -> Iterator[tuple[str, str]]:
        """(`file:line`, stripped text) of the non-blank lines of a side file."""
        try:
            text = (self.root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            if report:
                self.report.add(rel, f"unreadable protocol file: {error}")
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"{rel}:{number}", line.strip()


class Adapter:
    """The facts of one dataset layout; subclasses set the class attributes."""

    name: str
    media: str  # "video": one file per modality; "frames": a folder of JPEG frames per modality
    layouts: tuple[Layout, ...]
    side_files: re.Pattern | None = None  # known non-media files: lists, annotations
    modalities: tuple[str, ...] = ("color",)  # streams every video must have
    has_annotations = False  # videos come with face-location files (Replay-Attack)

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Labels of videos whose names carry none: video_id -> (is_live, pai)."""
        return {}

    def annotation(self, video_id: str, side_files: set[str]) -> str | None:
        """The face-location file of a video, if the layout has them."""
        return None

    def build_protocols(self, ctx: Context) -> None:
        """Add the protocol rows (ctx.add / ctx.add_listed)."""
        raise NotImplementedError

    # -- the shared mechanism -------------------------------------------------

    def index(self, root: Path, report: FailureReport) -> tuple[list[dict], list[dict]]:
        """Walk `root`; return sorted manifest rows and protocol rows."""
        videos, side_files = self._scan(root, report)
        ctx = Context(self, root, videos, side_files, report)
        self._complete_labels(ctx)
        self.build_protocols(ctx)
        manifest = [videos[key] for key in sorted(videos)]
        protocols = [dict(zip(("protocol", "fold", "split", "video_id", "modalities", "max_frames"), row),
                          dataset=self.name) for row in sorted(ctx.rows, key=_row_key)]
        for row in protocols:
            row["modalities"] = list(row["modalities"]) if row["modalities"] is not None else None
        return manifest, protocols

    def _scan(self, root: Path, report: FailureReport) -> tuple[dict[str, dict], list[str]]:
        found: dict[str, dict] = {}
        streams: dict[str, dict[str, str]] = {}
        side_files: list[str] = []
        for rel, size in walk_files(root, report):
            if rel in NOT_DATA:
                continue
            if self.side_files is not None and self.side_files.fullmatch(rel):
                side_files.append(rel)
                continue
            layout, match = next(((layout, m) for layout in self.layouts
                                  if (m := layout.pattern.fullmatch(rel))), (None, None))
            if match is None:
                report.add(rel, f"unknown file name: matches no {self.name} layout pattern")
                continue
            if size is None:
                report.add(rel, "unreadable file")
                continue
            if size == 0:
                report.add(rel, "empty file (0 bytes)")
                continue
            groups = match.groupdict()
            try:
                fields = layout.decode(groups)
            except BadName as error:
                report.add(rel, f"bad name: {error}")
                continue
            video_id = groups["video"]
            if self.media == "frames":
                modality_dir = rel.rsplit("/", 1)[0]
                streams.setdefault(video_id, {})[MODALITY_FOLDERS[groups["modality"]]] = modality_dir
                found.setdefault(video_id, fields)
            elif video_id in found:
                report.add(rel, f"duplicate video {video_id}: already indexed as {streams[video_id]['color']}")
            else:
                streams[video_id] = {"color": rel}
                found[video_id] = fields
        side_set = set(side_files)
        videos = {}
        for video_id, fields in found.items():
            paths = streams[video_id]
            missing = [m for m in self.modalities if m not in paths]
            if missing:
                video_dir = next(iter(paths.values())).rsplit("/", 1)[0]
                report.add(video_dir, f"missing modality folder(s) {', '.join(missing)} "
                                      f"(or no readable frames in them)")
                continue
            videos[video_id] = {
                "dataset": self.name, "video_id": video_id, "media": self.media,
                **{f"path_{m}": paths.get(m) for m in MODALITIES},
                "path_annotation": self.annotation(video_id, side_set),
                **{name: None for name in DESCRIPTIVE_FIELDS},
                **fields,
            }
            if self.has_annotations and videos[video_id]["path_annotation"] is None:
                report.add(paths["color"], "no face-location file", action=NO_ANNOTATION)
        return videos, side_files

    def _complete_labels(self, ctx: Context) -> None:
        unlabelled = [v for v in ctx.videos if ctx.videos[v]["is_live"] is None]
        if not unlabelled:
            return
        labels = self.external_labels(ctx)
        for video_id in unlabelled:
            if video_id in labels:
                ctx.videos[video_id]["is_live"], ctx.videos[video_id]["pai"] = labels[video_id]
            else:
                ctx.report.add(video_id, "no label: the name carries none and no label list names it",
                               action=UNLABELLED)
                del ctx.videos[video_id]


def _row_key(row: tuple) -> tuple:
    protocol, fold, split, video_id = row[:4]
    return protocol, fold, SPLITS.index(split), video_id


def write_parquet(rows: list[dict], schema: pa.Schema, target: Path) -> None:
    """Write rows (already sorted) with fixed options, so reruns are byte-identical."""
    arrow = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(target) as tmp:
        pq.write_table(arrow, tmp, compression="zstd", row_group_size=1 << 20,
                       write_statistics=True, store_schema=True)


def read_table(path: Path) -> list[dict]:
    """Rows of a Parquet table as dicts."""
    return pq.read_table(path).to_pylist()
