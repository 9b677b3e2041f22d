"""The CeFA authors' unified format (`CASIA-FAS-Dataset`): any dataset that ships its lists.

Layout: REFERENCE.md section 3, "The CeFA authors' unified format". A dataset
folder `<Name>/` holds the media, per video a folder of frames (directly, in
`crop/`, or in `color/`, `depth/`, `ir/`) or the original video file, and list
files `<Name>/protocol/<Name>@<protocol>_{video,image}_{split}.txt` and
`<Name>/[video_]{split}.txt`, one `<Name>/<relative path> <label>` per line
(split `val` is read as dev). Names carry no label here: labels and membership
come from the lists, with the polarity declared per list family below.
"""

from __future__ import annotations

import re
from pathlib import Path

from fas.datasets.base import Adapter, Context, Expected, Layout, ListFamily, any_of

# The label meaning live, per list family (REFERENCE section 3): live = 0 in
# every list, except the SiW protocol (`@p`) lists, which mark live = 1.
LIVE_LABELS = {("SiW", "protocol"): "1"}
DEFAULT_LIVE_LABEL = "0"
SPLITS = {"train": "train", "dev": "dev", "val": "dev", "test": "test"}
DEFAULT_PROTOCOL = "default"  # the `[video_]<split>.txt` lists
RELEASE = "the authors' lists"

FRAME_FILE = r"[^/]+\.(?:jpg|jpeg|png|bmp)"
STREAM = r"color|depth|ir|profile|crop"


def unlabelled(groups: dict) -> dict:
    return {"subject": None, "is_live": None, "pai": None}


def list_folders(root: Path) -> list[str]:
    """Names of the dataset folders under `root` that hold unified-format lists."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and has_lists(p)) if root.is_dir() else []


def has_lists(folder: Path) -> bool:
    """Whether a folder holds unified-format lists."""
    return (folder / "protocol").is_dir() or any(folder.glob("video_*.txt"))


class CasiaFas(Adapter):
    """One dataset of the unified format; `dataset` is its folder name (`OULU_NPU`, `SiW`, ...)."""

    name = "casia_fas"
    media = "frames"
    release = RELEASE

    def __init__(self, dataset: str):
        self.dataset = dataset
        prefix = rf"(?:{re.escape(dataset)}/)?"
        body = r"(?P<video>(?!protocol/)[^/].*?)"
        self.layouts = (
            Layout(re.compile(rf"{prefix}{body}/(?:(?P<modality>{STREAM})/)?{FRAME_FILE}", re.IGNORECASE),
                   unlabelled),
            Layout(re.compile(rf"{prefix}{body}\.(?:avi|mov|mp4|mkv)", re.IGNORECASE), unlabelled, media="video"),
        )
        entry = re.compile(rf"{prefix}{body}(?:/(?:{STREAM}))?(?:/(?P<frame>{FRAME_FILE}))?", re.IGNORECASE)
        live = LIVE_LABELS.get((dataset, "protocol"), DEFAULT_LIVE_LABEL)
        form = f"{dataset}/<video>[/<stream>][/<frame>] <0|1>"
        self.families = (
            ListFamily(re.compile(rf"{prefix}protocol/{re.escape(dataset)}@(?P<protocol>[^_/]+)"
                                  r"_(?:video|image)_(?P<split>train|dev|val|test)\.txt"), entry, live, form),
            ListFamily(re.compile(rf"{prefix}(?:video_)?(?P<split>train|dev|val|test)\.txt"), entry,
                       LIVE_LABELS.get((dataset, "split"), DEFAULT_LIVE_LABEL), form),
        )
        self.side_files = any_of(*(f.files for f in self.families), re.compile(rf"{prefix}readme[^/]*", re.IGNORECASE))
        self._listed: dict[tuple, dict[str, bool]] = {}  # (protocol, fold, split) -> video -> is_live

    def run(self, root: Path, report):
        # The lists name paths from the folder above `<Name>/`; the root may be either.
        self.subfolder = self.dataset if (Path(root) / self.dataset).is_dir() else None
        return super().run(root, report)

    def _lists(self, ctx: Context):
        for family in self.families:
            for rel, match in ctx.side(family.files):
                yield rel, match, family, ctx.read_list(rel, family)

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Every label a list gives (the first one; a disagreeing list is reported later)."""
        labels = {}
        for _, _, _, listed in self._lists(ctx):
            for video_id, entry in listed.items():
                labels.setdefault(video_id, (entry.is_live, "live" if entry.is_live else "attack"))
        return labels

    def build_protocols(self, ctx: Context) -> None:
        found = False
        for rel, match, family, listed in self._lists(ctx):
            found = True
            protocol = match.groupdict().get("protocol") or DEFAULT_PROTOCOL
            split = SPLITS[match["split"]]
            for video_id, entry in listed.items():
                self._listed.setdefault((protocol, 1, split), {}).setdefault(video_id, entry.is_live)
                ctx.add_listed(entry.where, protocol, 1, split, video_id, entry.is_live, frames=entry.frames)
        if not found:
            ctx.report.add(self.dataset, f"no list files found ({self.dataset}/protocol/{self.dataset}@<protocol>"
                                         "_<video|image>_<split>.txt or video_<split>.txt)")

    def expected(self, ctx: Context) -> list[Expected]:
        """The lists are the reference: the videos they name, per split and class."""
        expected = []
        for (protocol, fold, split), videos in sorted(self._listed.items()):
            live = sum(videos.values())
            expected.append(Expected(RELEASE, protocol, fold, split, live, len(videos) - live,
                                     source=f"the {self.dataset} lists"))
        return expected
