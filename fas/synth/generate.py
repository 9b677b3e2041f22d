"""The one generation mechanism: render every item of a layout, write it atomically."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fas.io import write_json
from fas.synth import GENERATOR_VERSION
from fas.synth.faces import make_identity, stable_seed
from fas.synth.media import VideoWriter, encode_jpeg, placeholder_video
from fas.synth.render import Capture, Presentation, conditions, render_video
from fas.synth.spec import Item, Layout, frame_size, frames_for

# Face size relative to the frame height: large enough for dlib's 80 px HOG
# window in a 120 px video; a precropped face fills the crop.
FACE_FRACTION = {"video": 0.77, "frames": 0.72}


def load_layout(dataset: str) -> Layout:
    """The `LAYOUT` of fas/synth/<dataset>.py."""
    return importlib.import_module(f"fas.synth.{dataset}").LAYOUT


@dataclass(frozen=True)
class Job:
    """Settings shared by every item of one generation run."""

    layout: Layout
    root: Path
    seed: int
    difficulty: float
    layout_only: bool
    n_frames: int
    size: tuple[int, int]


_JOB: Job | None = None  # set before forking workers: they inherit it


@lru_cache(maxsize=64)
def _identity(seed: int, dataset: str, subject: str, ethnicity: str, size: int):
    return make_identity(seed, dataset, subject, ethnicity, size)


@lru_cache(maxsize=8)
def _placeholder(suffix: str) -> bytes:
    return placeholder_video(suffix) if suffix != ".jpg" else encode_jpeg(np.full((16, 16, 3), 128, np.uint8))


def _even(x: float) -> int:
    return max(16, int(round(x / 2)) * 2)


def write_item(job: Job, item: Item) -> int:
    """Render and write one item; returns the number of files written."""
    layout = job.layout
    if job.layout_only:
        return _write_placeholder(job, item)
    w, h = job.size
    size = (_even(w * item.resolution), _even(h * item.resolution))
    face_px = FACE_FRACTION[layout.media] * size[1]
    modalities = tuple(m for m, _ in item.outputs)
    capture = Capture(size, job.n_frames, layout.fps, layout.media == "frames", modalities)
    ds, seed = layout.name, job.seed
    presentation = Presentation(
        identity=_identity(seed, ds, item.subject, item.ethnicity, max(32, int(face_px))),
        attack=item.attack, capture=capture,
        scene=conditions(seed, ds, item.device, item.session, job.difficulty, layout.style),
        source=conditions(seed, ds, "source-camera", item.source or item.session, job.difficulty,
                          layout.style),
        attacker=_identity(seed, ds, item.attacker, item.ethnicity, max(32, int(face_px))) if item.attacker else None)
    rng = np.random.default_rng(stable_seed(seed, ds, "item", item.key))
    frames = render_video(presentation, rng, job.difficulty, face_px, seed, ds)
    boxes = []
    if layout.media == "video":
        with VideoWriter(job.root / item.path("color"), size, layout.fps) as writer:
            for frame in frames:
                writer.write(frame["color"])
                boxes.append(frame["box"])
        written = 1
    else:
        folders = {m: job.root / p for m, p in item.outputs}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames, start=1):
            for modality, folder in folders.items():
                (folder / item.frame_name.format(i)).write_bytes(encode_jpeg(frame[modality]))
        written = len(folders) * job.n_frames
    if item.annotation:
        _write_face_locations(job.root / item.annotation, boxes)
        written += 1
    return written


# Where a face detector's box lies in the face texture's unit square (left, top), (right,
# bottom). Replay-Attack's face locations come from a face detector, whose box frames the
# inner face as the 5-point alignment of `fas align` does (fas.align.TEMPLATE_5). Measured
# with dlib's landmarks on 244 frames of the demo replica: the template's unit square
# relative to the texture square, medians (interquartile ranges 0.03-0.07). With the whole
# texture square as the box, the annotation backend cropped 1.5x wider than the detector
# backend of the other video datasets.
DETECTOR_BOX = ((0.10, 0.21), (0.76, 0.85))


def detector_box(corners: np.ndarray) -> np.ndarray:
    """The detector's box (4 x 2 corners) inside a face texture seen at `corners` (TL, TR, BR, BL)."""
    top_left, top_right, bottom_right, bottom_left = np.asarray(corners, np.float64)

    def at(u: float, v: float) -> np.ndarray:
        return (1 - v) * ((1 - u) * top_left + u * top_right) + v * ((1 - u) * bottom_left + u * bottom_right)

    (u0, v0), (u1, v1) = DETECTOR_BOX
    return np.array([at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)])


def _write_face_locations(path: Path, boxes: list[np.ndarray]) -> None:
    """Replay-Attack annotations: one `frame x y w h` line per frame (top-left corner), the
    box a face detector gives for the face texture at `boxes` (corners)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, texture in enumerate(boxes):
        corners = detector_box(texture)
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        lines.append(f"{i} {x0} {y0} {x1 - x0} {y1 - y0}")
    path.write_text("\n".join(lines) + "\n")


def _write_placeholder(job: Job, item: Item) -> int:
    """Layout-only: a one-frame video or a single tiny JPEG per folder."""
    written = 0
    for _, rel in item.outputs:
        target = job.root / rel
        if job.layout.media == "video":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_placeholder(target.suffix))
        else:
            target.mkdir(parents=True, exist_ok=True)
            (target / item.frame_name.format(1)).write_bytes(_placeholder(".jpg"))
        written += 1
    if item.annotation:
        square = np.array([[2, 2], [14, 2], [14, 14], [2, 14]], np.float32)
        _write_face_locations(job.root / item.annotation, [square])
        written += 1
    return written


def _work(index: int) -> int:
    return write_item(_JOB, _JOB_ITEMS[index])


_JOB_ITEMS: list[Item] = []


def generate(dataset: str, out: str | Path, scale: str, seed: int, difficulty: float,
             layout_only: bool = False, workers: int = 1) -> dict:
    """Write `dataset` under `out` atomically; returns the summary written to synth.json."""
    global _JOB, _JOB_ITEMS
    if not 0 <= difficulty <= 1:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    layout = load_layout(dataset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    started = time.perf_counter()
    items = layout.items(scale)
    job = Job(layout, partial, seed, difficulty, layout_only,
              frames_for(layout, scale, layout_only), frame_size(layout, scale, layout_only))
    _JOB, _JOB_ITEMS = job, items
    try:
        if workers > 1 and len(items) > 1:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                files = sum(pool.imap_unordered(_work, range(len(items)), chunksize=4))
        else:
            files = sum(write_item(job, item) for item in items)
    finally:
        _JOB, _JOB_ITEMS = None, []
    for rel, text in layout.protocol_files(items, job.n_frames).items():
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        files += 1
    summary = {"dataset": dataset, "scale": scale, "seed": seed, "difficulty": difficulty,
               "layout_only": layout_only, "generator_version": GENERATOR_VERSION,
               "videos": len(items), "live_videos": sum(i.is_live for i in items),
               "frames_per_video": job.n_frames, "frame_size": list(job.size), "fps": layout.fps,
               "files": files + 1}
    write_json(partial / "synth.json", summary)
    _swap_into_place(partial, out)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _swap_into_place(partial: Path, out: Path) -> None:
    """Rename the finished tree over `out`; an old tree is removed only afterwards."""
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    if old.exists():
        shutil.rmtree(old)
