"""What a dataset module declares: the videos to write and the scales.

A dataset module (one per benchmark) holds only the facts of its layout:
names, subject ids, splits, PAI codes, devices and protocol rules. It exposes a
`LAYOUT` (`Layout`) whose `items(scale)` lists every video and whose
`protocol_files(items, capture)` returns the list files as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from fas.synth.render import Attack

SCALES = ("tiny", "demo", "full")


@dataclass(frozen=True)
class Item:
    """One video (or one frame-folder set) of a dataset, with its labels."""

    outputs: tuple[tuple[str, str], ...]  # (modality, path relative to the root)
    subject: str
    attack: Attack
    device: str
    session: str
    ethnicity: str
    # Session (room and light) where the photo or video an attack shows was taken; None: the
    # item's own session, as the video datasets' attacks were made (docs/synthetic.md).
    source: str | None = None
    annotation: str | None = None  # face-location file (Replay-Attack)
    frame_name: str = "{:04d}.jpg"  # frame file names inside a frame folder
    resolution: float = 1.0  # frame size relative to the dataset's (CASIA-FASD HR)
    attacker: str | None = None  # subject behind a cut photo

    @property
    def key(self) -> str:
        return self.outputs[0][1]

    @property
    def is_live(self) -> bool:
        return self.attack.pai == "live"

    def path(self, modality: str = "color") -> str:
        return dict(self.outputs)[modality]


@dataclass(frozen=True)
class Layout:
    """The layout facts of one dataset."""

    name: str
    media: str  # video | frames
    fps: float
    items: Callable[[str], list[Item]]
    protocol_files: Callable[[list[Item], int], dict[str, str]]  # (items, frames per video)
    style: dict = field(default_factory=dict)  # domain of the dataset: tint, blur, noise
    modalities: tuple[str, ...] = ("color",)


def per_scale(scale: str, tiny, demo, full):
    """The value of a count or list for `scale`."""
    return {"tiny": tiny, "demo": demo, "full": full}[scale]


# Demo videos hold exactly what the demo preset samples (extract.sampling.demo: two
# clips of 8 consecutive frames, i.e. 16 frames), so nothing is rendered for nothing.
DEMO_FRAMES = 16


def frames_for(layout: Layout, scale: str, layout_only: bool) -> int:
    """Frames per video: a placeholder frame, a few frames, the demo's 16, or 1 s at the dataset's fps."""
    if layout_only:
        return 1
    if layout.media == "frames":
        return per_scale(scale, 6, DEMO_FRAMES, 24)
    return per_scale(scale, 8, DEMO_FRAMES, int(round(layout.fps)))


def frame_size(layout: Layout, scale: str, layout_only: bool) -> tuple[int, int]:
    """(width, height): face crops for frame datasets (the demo's 64 px crop size), small 4:3 video otherwise."""
    if layout_only:
        return (16, 16)
    if layout.media == "frames":
        return per_scale(scale, (48, 48), (64, 64), (112, 112))
    return (160, 120)


def take(ids, scale: str, tiny: int, demo: int) -> list:
    """All ids at full scale, the first `tiny` / `demo` of them at reduced scales."""
    ids = list(ids)
    return ids if scale == "full" else ids[: per_scale(scale, tiny, demo, len(ids))]


def ethnicity_of(subject: str, mix: dict[str, float], seed_text: str) -> str:
    """A subject's ethnicity drawn from a dataset's population mix (stable per subject)."""
    import zlib

    u = zlib.crc32(f"{seed_text}:{subject}".encode()) / 2**32
    total = 0.0
    for name, weight in mix.items():
        total += weight
        if u < total:
            return name
    return name
