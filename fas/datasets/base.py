"""The one indexing mechanism shared by every adapter.

An adapter states only the facts of its layout: path patterns whose named
groups decode into manifest fields, the names of its side files (protocol
lists, annotations) and its protocol rules. This module walks the tree,
matches and decodes every file, groups frames into videos, reads list files
(video lists and image lists, whose frames it records), checks protocol
entries against what is on disk, and writes both tables deterministically.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from fas.io import FailureReport, atomic_path

MODALITIES = ("color", "depth", "ir")
SPLITS = ("train", "dev", "test")
# Folder names of the modality streams in frame datasets (the CeFA challenge
# release calls its RGB folder `profile`: REFERENCE section 3, CeFA; the CeFA
# authors' unified format keeps RGB face crops in `crop/`).
MODALITY_FOLDERS = {"color": "color", "profile": "color", "crop": "color", "depth": "depth", "ir": "ir"}
DESCRIPTIVE_FIELDS = ("session", "device", "ethnicity", "quality", "medium", "lighting")

MANIFEST_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("video_id", pa.string()), ("subject", pa.string()),
    ("is_live", pa.bool_()), ("pai", pa.string()), ("media", pa.string()),
    ("path_color", pa.string()), ("path_depth", pa.string()), ("path_ir", pa.string()),
    ("path_annotation", pa.string()),
    *[(name, pa.string()) for name in DESCRIPTIVE_FIELDS],
    ("media_stamp", pa.string()),  # changes whenever the video's files on disk may have (media_stamp)
])
PROTOCOL_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("protocol", pa.string()), ("fold", pa.int32()),
    ("split", pa.string()), ("video_id", pa.string()),
    ("modalities", pa.list_(pa.string())), ("max_frames", pa.int32()),
    ("frames", pa.list_(pa.string())),
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
RELEASE = "authors' release"  # the release layout of an adapter that knows one


class BadName(ValueError):
    """A path that fits a layout pattern but carries an impossible field."""


@dataclass(frozen=True)
class Layout:
    """One family of media paths: a regex over the root-relative POSIX path.

    Groups: `video` (the video id), `modality` (frame and image media: the
    stream folder or suffix), and whatever `decode` reads to produce the
    manifest fields (subject, is_live, pai and the descriptive fields). A
    decode may leave is_live None: the label then comes from a list
    (`Adapter.external_labels`). `media` overrides the adapter's media.
    """

    pattern: re.Pattern
    decode: Callable[[dict], dict]
    media: str | None = None


@dataclass(frozen=True)
class ListFamily:
    """A family of list files: which files, the form of a line, the label polarity.

    `files` matches a list's root-relative path (its named groups feed the
    adapter's protocol rule). A line holds `paths` paths, then a label when
    `live_label` is set: the label value that means live, a fact of each list
    family (REFERENCE section 3: "0" in the CeFA authors' lists, "1" in the
    challenge lists). `entry` matches the line's first path: group `video` the
    video id and, in an image list, group `frame` the frame it names.
    `in_folder`: video ids carry the list's folder (a release unpacked into a
    subfolder of the root).
    """

    files: re.Pattern
    entry: re.Pattern
    live_label: str | None
    form: str
    paths: int = 1
    in_folder: bool = False


@dataclass
class Listed:
    """A video named by one list: its first line, its label, the frames named."""

    where: str
    is_live: bool | None
    frames: set[str] | None  # None: the list names the whole video


@dataclass(frozen=True)
class Expected:
    """A published size of one protocol split, per class (None: not published).

    `release` names the release layout the count belongs to (`Context.releases`);
    `unlabelled` counts videos listed without a published label; `total` is a
    published size whose split by class is not published; `attack_at_least`
    makes the attack count a lower bound (part of the split is unverified).
    """

    release: str
    protocol: str
    fold: int
    split: str
    live: int | None
    attack: int | None
    unlabelled: int | None = None
    total: int | None = None
    attack_at_least: bool = False
    source: str = "REFERENCE.md section 3"


def table(mapping: dict, code: str, what: str):
    """Look `code` up in a code table; an unknown code is a BadName."""
    try:
        return mapping[code]
    except KeyError:
        raise BadName(f"unknown {what} code {code!r} (known: {', '.join(sorted(map(str, mapping)))})") from None


def any_of(*patterns: re.Pattern) -> re.Pattern:
    """One pattern matching what any of `patterns` matches (their named groups dropped)."""
    return re.compile("|".join(re.sub(r"\(\?P<\w+>", "(?:", p.pattern) for p in patterns))


def walk_files(root: Path, report: FailureReport, start: Path | None = None) -> Iterator[tuple[str, int | None]]:
    """(path relative to root, size or None when unreadable) of every file under `start`, sorted."""

    def on_error(error: OSError) -> None:
        report.add(_relative(root, error.filename), f"unreadable folder: {error.strerror}")

    seen_folders = set()  # (device, inode): symlinked folders are followed, never twice
    for folder, subfolders, files in os.walk(start or root, onerror=on_error, followlinks=True):
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
    """What protocol rules see: the indexed videos, the side files, the report.

    Rules add protocol rows, name the release layouts they recognise
    (`releases`, matched against the adapter's published sizes by `fas check`)
    and count listed videos that are on disk but carry no published label
    (`listed_unlabelled`).
    """

    def __init__(self, adapter: "Adapter", root: Path, videos: dict[str, dict],
                 side_files: list[str], report: FailureReport):
        self.adapter, self.root, self.videos = adapter, root, videos
        self.side_files, self.report = side_files, report
        self.rows: dict[tuple, dict] = {}
        self.unlabelled: set[str] = set()  # on disk, left out for want of a label
        self.listed_unlabelled: Counter = Counter()  # (protocol, fold, split) -> videos
        self.releases: set[str] = set()
        self._lists: dict[tuple[str, int], dict[str, Listed]] = {}

    def add(self, protocol: str, fold: int, split: str, video_id: str,
            modalities: Iterable[str] | None = None, max_frames: int | None = None,
            frames: Iterable[str] | None = None) -> None:
        """One protocol row for a video known to be in the manifest.

        A video named twice in one split (a video list and an image list) gets
        one row: the frames named by image lists, the smallest max_frames.
        """
        assert split in SPLITS and video_id in self.videos, (split, video_id)
        key = (protocol, fold, split, video_id)
        row = self.rows.setdefault(key, {"modalities": tuple(modalities) if modalities is not None else None,
                                         "max_frames": max_frames, "frames": None})
        if max_frames is not None:
            row["max_frames"] = min(max_frames, row["max_frames"] or max_frames)
        if frames is not None:
            row["frames"] = (row["frames"] or set()) | set(frames)

    def check_listed(self, where: str, video_id: str, listed_live: bool | None) -> bool:
        """Whether a list entry names a video in the index whose label agrees (else reported)."""
        video = self.videos.get(video_id)
        if video is None:
            self.report.add(where, f"protocol entry names a video absent from the index: {video_id}")
            return False
        if listed_live is not None and video["is_live"] != listed_live:
            self.report.add(where, f"label disagrees with the path: the list says "
                                   f"{'live' if listed_live else 'attack'}, {video_id} is {video['pai']}")
            return False
        return True

    def add_listed(self, where: str, protocol: str, fold: int, split: str, video_id: str,
                   listed_live: bool | None, **extra) -> None:
        """A row read from a protocol file: the video must exist and its label agree."""
        if self.check_listed(where, video_id, listed_live):
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

    def read_list(self, rel: str, family: ListFamily) -> dict[str, Listed]:
        """The videos a list file names, in order; problems are reported once per file.

        Malformed lines, lines repeating an entry and frames of one video with
        different labels are reported; the rest is read.
        """
        key = (rel, id(family))
        if key in self._lists:
            return self._lists[key]
        prefix = rel.rsplit("/", 1)[0] + "/" if family.in_folder and "/" in rel else ""
        width = family.paths + (family.live_label is not None)
        listed: dict[str, Listed] = {}
        repeated = 0
        for where, line in self.lines(rel):
            fields = line.split()
            entry = family.entry.fullmatch(fields[0]) if len(fields) == width else None
            label = fields[-1] if family.live_label is not None else None
            if entry is None or label not in (None, "0", "1"):
                self.report.add(where, f"malformed list line {line!r}: expected '{family.form}'")
                continue
            video_id = prefix + entry["video"]
            is_live = None if label is None else label == family.live_label
            frame = entry.groupdict().get("frame")
            frame = sys.intern(frame) if frame else None
            seen = listed.get(video_id)
            if seen is None:
                listed[video_id] = Listed(where, is_live, {frame} if frame else None)
            elif seen.is_live != is_live:
                self.report.add(where, f"label disagrees with {seen.where} for the same video {video_id}")
            elif frame is None:  # the whole video: it covers any frame named before
                repeated += seen.frames is None
                seen.frames = None
            elif seen.frames is not None:
                repeated += frame in seen.frames
                seen.frames.add(frame)
        if repeated:
            self.report.add(rel, f"{repeated} line(s) repeat an earlier entry: read once", action=IGNORED)
        self._lists[key] = listed
        return listed


class Adapter:
    """The facts of one dataset layout; subclasses set the class attributes."""

    name: str
    # The media of its layouts, unless a Layout says otherwise: "video" (one file
    # per modality), "frames" (a folder of image frames per modality) or "image"
    # (one still per modality: a release of single frames, e.g. the CASIA-SURF
    # challenge's Val and Testing sets).
    media: str
    layouts: tuple[Layout, ...]
    side_files: re.Pattern | None = None  # known non-media files: lists, annotations
    modalities: tuple[str, ...] = ("color",)  # streams every video must have
    has_annotations = False  # videos come with face-location files (Replay-Attack)
    published: tuple[Expected, ...] = ()  # published split sizes (`fas check`)
    release = RELEASE  # the release layout named when a rule names none
    subfolder: str | None = None  # walk only this folder of the root (paths stay root-relative)

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Labels of videos whose names carry none: video_id -> (is_live, pai)."""
        return {}

    def annotation(self, video_id: str, side_files: set[str]) -> str | None:
        """The face-location file of a video, if the layout has them."""
        return None

    def build_protocols(self, ctx: Context) -> None:
        """Add the protocol rows (ctx.add / ctx.add_listed)."""
        raise NotImplementedError

    def expected(self, ctx: Context) -> list[Expected]:
        """The published sizes that apply to the release layouts the rules recognised."""
        releases = ctx.releases or {self.release}
        return [e for e in self.published if e.release in releases]

    # -- the shared mechanism -------------------------------------------------

    def index(self, root: Path, report: FailureReport) -> tuple[list[dict], list[dict]]:
        """Walk `root`; return sorted manifest rows and protocol rows."""
        indexed = self.run(root, report)
        return indexed.manifest, indexed.protocols

    def run(self, root: Path, report: FailureReport) -> "Indexed":
        """Walk `root`; the sorted tables and the context the rules filled."""
        videos, side_files = self._scan(root, report)
        ctx = Context(self, root, videos, side_files, report)
        self._complete_labels(ctx)
        self.build_protocols(ctx)
        manifest = [videos[key] for key in sorted(videos)]
        protocols = []
        for key in sorted(ctx.rows, key=_row_key):
            row = ctx.rows[key]
            protocols.append({
                "dataset": self.name, **dict(zip(("protocol", "fold", "split", "video_id"), key)),
                "modalities": list(row["modalities"]) if row["modalities"] is not None else None,
                "max_frames": row["max_frames"],
                "frames": sorted(row["frames"]) if row["frames"] is not None else None})
        return Indexed(manifest, protocols, ctx)

    def _scan(self, root: Path, report: FailureReport) -> tuple[dict[str, dict], list[str]]:
        found: dict[str, dict] = {}
        streams: dict[str, dict[str, str]] = {}
        side_files: list[str] = []
        start = root / self.subfolder if self.subfolder else None
        for rel, size in walk_files(root, report, start):
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
            video_id, media = groups["video"], layout.media or self.media
            if media == "video":
                if video_id in found:
                    report.add(rel, f"duplicate video {video_id}: already indexed as {streams[video_id]['color']}")
                    continue
                streams[video_id] = {"color": rel}
            else:  # a frame folder, or the image itself
                stream = MODALITY_FOLDERS[groups.get("modality") or "color"]
                streams.setdefault(video_id, {})[stream] = rel.rsplit("/", 1)[0] if media == "frames" else rel
            found.setdefault(video_id, {**fields, "media": media})
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
                "dataset": self.name, "video_id": video_id,
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
                ctx.unlabelled.add(video_id)
                del ctx.videos[video_id]


@dataclass
class Indexed:
    """What indexing one root produced: the two tables and the rules' context."""

    manifest: list[dict]
    protocols: list[dict]
    context: Context | None = field(repr=False)  # None for the cross-dataset index


def _row_key(key: tuple) -> tuple:
    protocol, fold, split, video_id = key
    return protocol, fold, SPLITS.index(split), video_id


MEDIA_KEYS = ("path_color", "path_depth", "path_ir", "path_annotation")


def media_stamp(row: dict, root: Path) -> str:
    """A hash of the name and size of every file of one video (its video file or
    frame folders, its face locations).

    It puts the pixels in the manifest, which is all alignment depends on: a
    changed or corrected video (compressed, so its size changes) makes DVC and
    Snakemake align it again, while a tree written again byte for byte (the
    generator rerun, a copy) does not. Modification times would rerun the whole
    grid after every copy; reading every file would take hours on a real release.
    """
    digest = hashlib.sha1()
    for key in MEDIA_KEYS:
        if not row.get(key):
            continue
        path = root / row[key]
        entries = sorted((e for e in os.scandir(path) if e.is_file()), key=lambda e: e.name) \
            if path.is_dir() else [path]
        for entry in entries:
            stat = entry.stat()
            digest.update(f"{key}/{Path(entry).name}:{stat.st_size}\n".encode())
    return digest.hexdigest()


def write_parquet(rows: list[dict], schema: pa.Schema, target: Path) -> None:
    """Write rows (already sorted) with fixed options, so reruns are byte-identical."""
    arrow = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(target) as tmp:
        pq.write_table(arrow, tmp, compression="zstd", row_group_size=1 << 20,
                       write_statistics=True, store_schema=True)


def read_table(path: Path) -> list[dict]:
    """Rows of a Parquet table as dicts."""
    return pq.read_table(path).to_pylist()
