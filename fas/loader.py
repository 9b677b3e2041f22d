"""PyTorch datasets over the Parquet cache of one dataset (docs/ARCHITECTURE.md, "Loader").

Both datasets read whole row groups, never single rows: the unit of work is
a row group of the driving shard (dynamic rows for SD-Net, static colour rows
for clips) with the videos whose rows start in it. Units are split across
DataLoader workers; with `shuffle=True` the order of units is permuted and
samples are drawn at random from a buffer of `buffer_size`, deterministically
for (seed, epoch, number of workers). Call `set_epoch(n)` before each epoch
(with `persistent_workers=True` the workers would keep the old epoch).
`video_ids=None` takes every video of the cache; requested ids that the cache
lacks (skipped by an earlier stage) are listed in `missing_video_ids`.

Example (runnable on any cache folder, e.g. one built by `fas align` and
`fas dynamic`)::

    from torch.utils.data import DataLoader
    from fas.loader import SDNetSamples, ClipSamples

    samples = SDNetSamples("data/cache/cefa", None, ["color", "depth", "ir"],
                           shuffle=True, seed=0)
    loader = DataLoader(samples, batch_size=32, num_workers=2)
    for epoch in range(3):
        samples.set_epoch(epoch)
        for batch in loader:
            batch["static"]["color"]   # uint8 [B, 3, H, W]
            batch["dynamic"]["depth"]  # uint8 [B, 3, H, W]
            batch["is_live"]           # bool [B]

    clips = ClipSamples("data/cache/replay", None, 8, shuffle=False, seed=0)
    next(iter(clips))["frames"].shape  # [8, 3, H, W]; also "fps"
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from fas.cache import consecutive_runs, decode_pixels, frame_rate, read_meta, row_group_starts
from fas.paths import shard_files

DEFAULT_FPS = 30.0  # clips of a single repeated frame carry no frame rate


def to_chw(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC (C 1 or 3) as a [3, H, W] tensor; grey replicated to 3 channels."""
    return torch.from_numpy(chw(image))


def chw(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 HxWxC (C 1 or 3) as a CxHxW array with 3 channels (into `out` if given)."""
    height, width = image.shape[:2]
    out = np.empty((3, height, width), np.uint8) if out is None else out
    if image.shape[2] == 1:
        out[:] = image[None, :, :, 0]
    else:
        cv2.split(image, [out[0], out[1], out[2]])  # ~1.7x faster than a numpy transpose copy
    return out


@lru_cache(maxsize=8)
def _shard_meta(files: tuple[tuple[str, int, int], ...]) -> pd.DataFrame:
    """The shards' rows without pixels (`read_meta`), read once per process for (path, mtime, size)."""
    return read_meta([path for path, _, _ in files]).to_pandas()


def shard_meta(paths: list[Path]) -> pd.DataFrame:
    """Metadata of a cache's shards of one kind; a training job opens each split's dataset on it."""
    return _shard_meta(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths))


class _RowReader:
    """Reads chosen rows of shards by loading the row groups that hold them."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self._files: dict[int, pq.ParquetFile] = {}
        self._starts = [row_group_starts(p) for p in paths]

    def images(self, shard: int, rows: Iterable[int]) -> dict[int, np.ndarray]:
        rows = sorted(set(rows))
        starts = self._starts[shard]
        groups = sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows})
        if shard not in self._files:
            self._files[shard] = pq.ParquetFile(self.paths[shard], memory_map=True)
        table = self._files[shard].read_row_groups(
            groups, columns=["pixels", "height", "width", "channels"])
        images = decode_pixels(table)
        first = {g: sum(int(starts[h + 1] - starts[h]) for h in groups if h < g) for g in groups}
        located = {}
        for row in rows:
            group = int(np.searchsorted(starts, row, side="right") - 1)
            located[row] = images[first[group] + row - int(starts[group])]
        return located

    def __getstate__(self):
        return {"paths": self.paths, "_starts": self._starts, "_files": {}}


class _CacheSamples(IterableDataset):
    """Shared machinery: units of row groups, worker split, seeded buffer shuffle."""

    driver_kind = "static"
    kinds: tuple[str, ...] = ("static",)  # shards a dataset needs

    def __init__(self, cache_dir: str | Path, video_ids: Iterable[str] | None, *, shuffle: bool,
                 seed: int, buffer_size: int = 1024):
        super().__init__()
        self.cache_dir = Path(cache_dir)
        self.shuffle, self.seed, self.buffer_size = shuffle, int(seed), int(buffer_size)
        self.epoch = 0
        self.readers = {kind: _RowReader(shard_files(self.cache_dir, kind)) for kind in self.kinds}
        for kind in self.kinds:
            if not self.readers[kind].paths:
                raise FileNotFoundError(f"{self.cache_dir}: no {kind}-*-of-*.parquet shards "
                                        "(run `fas align` and `fas dynamic`)")
        self.meta = {kind: shard_meta(reader.paths) for kind, reader in self.readers.items()}
        present = set(self.meta[self.driver_kind]["video_id"])
        wanted = present if video_ids is None else set(video_ids)
        self.missing_video_ids = sorted(wanted - present)
        self.plans = self._plan(sorted(wanted & present))
        self.units = self._units()

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for this epoch (the order depends on seed and epoch only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(len(plan["samples"]) for plan in self.plans.values())

    def class_counts(self) -> dict[bool, int]:
        """Samples per label (True: live) that iterating yields."""
        counts = {True: 0, False: 0}
        for plan in self.plans.values():
            counts[plan["labels"][0]] += len(plan["samples"])
        return counts

    def video_labels(self) -> dict[str, dict]:
        """`is_live` and `pai` of every video that yields samples."""
        return {video_id: {"is_live": plan["labels"][0], "pai": plan["labels"][1]}
                for video_id, plan in self.plans.items() if plan["samples"]}

    def _units(self) -> list[list[str]]:
        """Videos grouped by the driving shard's row group where their first row lies."""
        units: dict[tuple[int, int], list[str]] = defaultdict(list)
        reader = self.readers[self.driver_kind]
        for video_id, plan in self.plans.items():
            if plan["samples"]:
                shard, row = plan["first"]
                group = int(np.searchsorted(reader._starts[shard], row, side="right") - 1)
                units[shard, group].append(video_id)
        return [units[key] for key in sorted(units)]

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        worker_id, n_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.arange(len(self.units))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.units))
        mine = order[worker_id::n_workers]
        rng = np.random.default_rng([self.seed, self.epoch, worker_id, n_workers])
        buffer: list[dict] = []
        for unit in mine:
            for sample in self._unit_samples(self.units[unit]):
                if not self.shuffle:
                    yield sample
                    continue
                buffer.append(sample)
                if len(buffer) >= self.buffer_size:
                    pick = int(rng.integers(len(buffer)))
                    buffer[pick], buffer[-1] = buffer[-1], buffer[pick]
                    yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def _read(self, kind: str, videos: list[str], key: str) -> dict[tuple, np.ndarray]:
        """Images of the rows named by plans[video][key] (lists of (shard, row))."""
        by_shard: dict[int, list[int]] = defaultdict(list)
        for video in videos:
            for shard, row in self.plans[video][key]:
                by_shard[shard].append(row)
        images = {}
        for shard, rows in by_shard.items():
            for row, image in self.readers[kind].images(shard, rows).items():
                images[shard, row] = image
        return images


class SDNetSamples(_CacheSamples):
    """One sample per (video, dynamic window) with static and dynamic images per modality.

    `dynamic_kind` picks the window size (`fas dynamic` stores extra sizes beside the primary).
    Sample: video_id, index (window), is_live, pai, static {modality: uint8 [3, H, W]}
    (the window's centre frame), dynamic {modality: uint8 [3, H, W]}; grey
    modalities are replicated to 3 channels. Windows missing a modality are left out.
    """

    driver_kind = "dynamic"
    kinds = ("static", "dynamic")

    def __init__(self, cache_dir: str | Path, video_ids: Iterable[str] | None,
                 modalities: Iterable[str], *, shuffle: bool, seed: int, buffer_size: int = 1024,
                 dynamic_kind: str = "dynamic"):
        self.modalities = list(modalities)
        self.dynamic_kind = dynamic_kind  # `dynamic`, or `dynamic_k<K>` of dynamic.extra_windows
        super().__init__(cache_dir, video_ids, shuffle=shuffle, seed=seed, buffer_size=buffer_size)

    def _plan(self, videos: list[str]) -> dict[str, dict]:
        dynamic, static = self.meta["dynamic"], self.meta["static"]
        dynamic = dynamic[dynamic["video_id"].isin(videos) & dynamic["modality"].isin(self.modalities)
                          & (dynamic["kind"] == self.dynamic_kind)]
        static = static[static["video_id"].isin(videos) & static["modality"].isin(self.modalities)]
        # A window's static frame is its centre source frame, at its first sampled position.
        windows = dynamic.assign(frame=[int(f[len(f) // 2]) for f in dynamic["source_frames"]])
        frames = static.assign(frame=[int(f[0]) for f in static["source_frames"]]).sort_values(
            ["video_id", "modality", "index"]).drop_duplicates(["video_id", "modality", "frame"])
        pairs = windows.merge(frames[["video_id", "modality", "frame", "shard", "row"]],
                              on=["video_id", "modality", "frame"], suffixes=("", "_static"))
        complete = pairs.groupby(["video_id", "index"])["modality"].transform("size") == len(self.modalities)
        pairs = pairs[complete].sort_values(["video_id", "index", "modality"])
        located = {video: group for video, group in pairs.groupby("video_id", sort=False)}
        plans = {}
        for video_id, rows in dynamic.groupby("video_id", sort=True):
            samples: dict[int, dict] = {}
            found = located.get(video_id)
            if found is not None:
                for index, modality, shard, row, shard_s, row_s in zip(
                        found["index"], found["modality"], found["shard"], found["row"],
                        found["shard_static"], found["row_static"]):
                    samples.setdefault(int(index), {})[modality] = ((int(shard), int(row)),
                                                                    (int(shard_s), int(row_s)))
            first = rows.iloc[0]
            ordered = sorted(samples.items())
            plans[video_id] = {
                "first": min(zip(rows["shard"].astype(int), rows["row"].astype(int))),
                "samples": ordered, "labels": (bool(first["is_live"]), str(first["pai"])),
                "dynamic_rows": [pair[0] for _, m in ordered for pair in m.values()],
                "static_rows": [pair[1] for _, m in ordered for pair in m.values()]}
        return plans

    def _unit_samples(self, videos: list[str]) -> Iterator[dict]:
        dynamic = self._read("dynamic", videos, "dynamic_rows")
        static = self._read("static", videos, "static_rows")
        for video_id in videos:
            plan = self.plans[video_id]
            is_live, pai = plan["labels"]
            for index, by_modality in plan["samples"]:
                yield {"video_id": video_id, "index": index, "is_live": is_live, "pai": pai,
                       "static": {m: to_chw(static[by_modality[m][1]]) for m in self.modalities},
                       "dynamic": {m: to_chw(dynamic[by_modality[m][0]]) for m in self.modalities}}


class ClipSamples(_CacheSamples):
    """One sample per clip of `clip_len` consecutive sampled colour frames.

    Clips are cut without overlap inside runs of consecutive source frames.
    Sample: video_id, index (clip), is_live, pai, frames uint8 [T, 3, H, W],
    fps (from the clip's source frame numbers and timestamps).
    """

    driver_kind = "static"

    def __init__(self, cache_dir: str | Path, video_ids: Iterable[str] | None, clip_len: int, *,
                 shuffle: bool, seed: int, buffer_size: int = 256, frames_kind: str = "static"):
        if clip_len < 1:
            raise ValueError("clip_len must be >= 1")
        self.clip_len = int(clip_len)
        self.driver_kind, self.kinds = frames_kind, (frames_kind,)  # static | magnified
        super().__init__(cache_dir, video_ids, shuffle=shuffle, seed=seed, buffer_size=buffer_size)

    def _plan(self, videos: list[str]) -> dict[str, dict]:
        static = self.meta[self.driver_kind]
        static = static[static["video_id"].isin(videos) & (static["modality"] == "color")]
        plans = {}
        for video_id, rows in static.groupby("video_id", sort=True):
            rows = rows.sort_values("index")
            frames = [int(f[0]) for f in rows["source_frames"]]
            times = [float(t[0]) for t in rows["timestamps"]]
            locations = list(zip(rows["shard"].astype(int), rows["row"].astype(int)))
            clips = []
            for run in consecutive_runs(frames):
                for start in range(run.start, run.stop - self.clip_len + 1, self.clip_len):
                    clips.append(list(range(start, start + self.clip_len)))
            video_fps = frame_rate(frames, times)
            plans[video_id] = {
                "first": min(locations),
                "samples": [([locations[p] for p in clip],
                             frame_rate([frames[p] for p in clip], [times[p] for p in clip]) or video_fps
                             or DEFAULT_FPS) for clip in clips],
                "labels": (bool(rows["is_live"].iloc[0]), str(rows["pai"].iloc[0])),
                "static_rows": [loc for clip in clips for loc in (locations[p] for p in clip)]}
        return plans

    def _unit_samples(self, videos: list[str]) -> Iterator[dict]:
        static = self._read(self.driver_kind, videos, "static_rows")
        for video_id in videos:
            plan = self.plans[video_id]
            is_live, pai = plan["labels"]
            for index, (locations, fps) in enumerate(plan["samples"]):
                yield {"video_id": video_id, "index": index, "is_live": is_live, "pai": pai,
                       "frames": torch.from_numpy(_clip([static[loc] for loc in locations])),
                       "fps": float(fps)}


def _clip(images: list[np.ndarray]) -> np.ndarray:
    """[T, 3, H, W] uint8 from HxWxC images, written in place."""
    out = np.empty((len(images), 3) + images[0].shape[:2], np.uint8)
    for position, image in enumerate(images):
        chw(image, out[position])
    return out



