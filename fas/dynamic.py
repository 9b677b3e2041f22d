"""Dynamic images by approximate rank pooling (`fas dynamic`).

A dynamic image summarises a window of T consecutive frames as
d = sum_t alpha_t I_t with alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})
(Bilen et al.; ../shared/docs/REFERENCE.md section 5; the coefficients sum
to 0). Windows of `dynamic.window` frames (every `frame_step`-th frame; or
`video`: the whole run) starting every `dynamic.stride` frames are cut within
consecutive runs of the sampled frames; each window sums its own frames in
float32, eight frames per pass, and its image is min-max scaled to uint8 for
storage. Every modality is pooled on its own. Rows of the primary window
have kind `dynamic`; `dynamic.extra_windows` (an ablation over K) are stored
beside them with kind `dynamic_k<K>` (`dynamic_video`).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fas import shard_stage
from fas.lazy import lazy_import
from fas.paths import cache_shard
from fas.shard_stage import MediaError, ShardJob

cv2 = lazy_import("cv2")
parquet_cache = lazy_import("fas.cache")
kernel = lazy_import("fas.dynamic_kernel")  # numba: imported by the stage alone


@functools.cache  # about 10 us a call: half of what pooling a frame takes
def rank_pool_coefficients(length: int) -> np.ndarray:
    """alpha_1..alpha_T of approximate rank pooling (REFERENCE.md section 5), float64, read-only."""
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, length + 1))])  # H_0..H_T
    t = np.arange(1, length + 1)
    alpha = 2.0 * (length - t + 1) - (length + 1) * (harmonic[length] - harmonic[t - 1])
    alpha.flags.writeable = False
    return alpha


def windows(source_frames: list[int], window: int | None, stride: int, frame_step: int = 1
            ) -> list[tuple[range, bool]]:
    """Windows of positions within consecutive runs, with a `short` mark.

    A window takes `window` positions `frame_step` apart (None: every
    `frame_step`-th position of the whole run). A run too short for a window
    (but with at least 2 frames) gives one window over what it has, marked
    short; leftover frames at a run's end are unused.
    """
    if (window is not None and window < 2) or stride < 1 or frame_step < 1:
        raise ValueError("dynamic.window must be >= 2 (or video), dynamic.stride and "
                         "dynamic.frame_step >= 1")
    found = []
    for run in parquet_cache.consecutive_runs(source_frames):
        if window is None:
            span = range(run.start, run.stop, frame_step)
            found += [(span, False)] if len(span) >= 2 else []
            continue
        extent = (window - 1) * frame_step + 1
        if len(run) >= extent:
            found += [(range(s, s + extent, frame_step), False)
                      for s in range(run.start, run.stop - extent + 1, stride)]
        elif len(range(run.start, run.stop, frame_step)) >= 2:
            found.append((range(run.start, run.stop, frame_step), True))
    return found


def window_kind(window: int | str, primary: int | str) -> str:
    """The cache kind of a window's dynamic images: `dynamic` for the primary window."""
    return "dynamic" if window == primary else f"dynamic_{'video' if window == 'video' else f'k{window}'}"


def scale_into(image: np.ndarray, out: np.ndarray) -> None:
    """Min-max scale a float image into uint8 `out` (its size): 0..255, rounded; constant: 0."""
    cv2.normalize(image, out, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)  # a min/max pass, a scaling pass


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Min-max scale each image (first axis) to 0..255, rounded; a constant image becomes 0."""
    out = np.empty(images.shape, np.uint8)
    for image, scaled in zip(images.reshape(len(images), -1), out.reshape(len(images), -1)):
        scale_into(image, scaled)
    return out


@functools.cache
def pass_weights(length: int) -> np.ndarray:
    """alpha_1..alpha_T as float32 rows of `FRAMES_PER_PASS`, the last padded with 0, read-only."""
    step = kernel.FRAMES_PER_PASS
    weights = np.zeros((-(-length // step), step), np.float32)
    weights.reshape(-1)[:length] = rank_pool_coefficients(length)
    weights.flags.writeable = False
    return weights


def pool_window(frames: Sequence[np.ndarray], span: range, pooled: np.ndarray) -> np.ndarray:
    """Write sum_t alpha_t frames[t] over the window `span` into `pooled` (float32, a frame's shape).

    Eight frames per pass of a compiled kernel (`fas.dynamic_kernel`): uint8
    frames in, their weighted float32 sum out, each frame read once and never
    copied to float on its own; a last short pass is padded with weight-0 frames.
    """
    step, flat = kernel.FRAMES_PER_PASS, pooled.reshape(-1)
    for number, weights in enumerate(pass_weights(len(span))):
        chunk = [np.ravel(frames[t]) for t in span[number * step:(number + 1) * step]]
        kernel.add_pairs(*chunk, *[chunk[-1]] * (step - len(chunk)), weights, flat, number > 0)
    return pooled


def dynamic_images(frames: Sequence[np.ndarray], spans: list[range]) -> np.ndarray:
    """Dynamic images (uint8, [n_windows, *frame shape]) of frames of one shape (uint8 [T, ...] or a list).

    Each window reads only its own frames (`pool_window`), and its image is
    scaled into the window's output row while still in cache.
    """
    shape = np.shape(frames[0])
    pooled = np.empty(shape, np.float32)
    images = np.empty((len(spans), *shape), np.uint8)
    for span, image in zip(spans, images):
        scale_into(pool_window(frames, span, pooled), image)
    return images


def video_dynamic_rows(video_id: str, rows: list[dict], window: int | str, stride: int,
                       frame_step: int = 1, extra_windows: tuple = ()) -> list[dict]:
    """Dynamic-image cache rows of one video's static rows (all modalities, every window size)."""
    by_modality: dict[str, list[dict]] = {}
    for row in rows:
        by_modality.setdefault(row["modality"], []).append(row)
    out = []
    for modality, modality_rows in by_modality.items():
        modality_rows.sort(key=lambda r: r["index"])
        frames = [r["source_frames"][0] for r in modality_rows]
        for size in (window, *extra_windows):
            found = windows(frames, None if size == "video" else int(size), stride, frame_step)
            if not found:
                continue
            images = dynamic_images([r["image"] for r in modality_rows], [span for span, _ in found])
            for number, ((span, short), image) in enumerate(zip(found, images)):
                members = [modality_rows[p] for p in span]
                flags = {f for r in members for f in r["flags"]} | ({"short_window"} if short else set())
                out.append(parquet_cache.image_row(
                    video_id, modality, window_kind(size, window), number, image,
                    source_frames=[r["source_frames"][0] for r in members],
                    timestamps=[r["timestamps"][0] for r in members], flags=flags,
                    labels=members[0]))
    return sorted(out, key=lambda r: (r["modality"], r["kind"], r["index"]))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shard_stage.add_arguments(parser, cache_shard("<dataset>", "dynamic", "<i>-of-<n>").as_posix())
    parser.add_argument("--static", type=Path, default=None,
                        help="aligned static shard "
                             f"({cache_shard('<dataset>', 'static', '<i>-of-<n>').as_posix()})")


def run(args: argparse.Namespace) -> int:
    job = ShardJob.from_args("dynamic", args)
    static = job.input(args.static, "--static", cache_shard(job.dataset, "static", job.shard),
                       "align")
    out = args.out or cache_shard(job.dataset, "dynamic", job.shard)
    settings = job.settings
    window, frame_step = settings["window"], int(settings["frame_step"])
    stride = int(settings["stride"][job.params["preset"]])
    n_videos = len(set(parquet_cache.read_meta([static]).column("video_id").to_pylist()))

    def pool(video_id: str, rows: list[dict]) -> list[dict]:
        dynamic_rows = video_dynamic_rows(video_id, rows, window, stride, frame_step,
                                          tuple(settings["extra_windows"]))
        if not dynamic_rows:
            raise MediaError(video_id, f"no run of at least 2 consecutive sampled frames "
                             f"(window {window}): no dynamic image")
        return dynamic_rows

    return job.run(out, parquet_cache.iter_video_rows(static), n_videos, pool)
