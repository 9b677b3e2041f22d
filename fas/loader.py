"""PyTorch datasets over the Parquet cache of one dataset (docs/ARCHITECTURE.md, "Loader").

The unit of work is a row group of the driving shard (dynamic rows for
SD-Net, static colour rows for clips) with the videos whose rows start in it.
Its images are read where they lie in the memory-mapped shard
(`fas.cache.pixel_locations`; a shard stored otherwise, e.g. compressed, is
read a whole row group at a time through Arrow), and every sample gets CHW
tensors of its own. Units are split across DataLoader workers; with
`shuffle=True` the order of units is permuted and samples are drawn at random
from a buffer of `buffer_size` samples, deterministically for (seed, epoch,
number of workers). Call `set_epoch(n)` before each epoch
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

import mmap
import os
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from fas.cache import (consecutive_runs, decode_pixels, frame_rate, pixel_locations, read_meta,
                       row_group_starts)
from fas.paths import CACHE_WRITER, shard_files

DEFAULT_FPS = 30.0  # clips of a single repeated frame carry no frame rate
DRAW_CHUNK = 4096  # shuffle-buffer picks drawn at a time


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
    """The shards' rows without pixels (`read_meta`) with each row's first and centre source
    frame and first timestamp, read once per process for (path, mtime, size)."""
    table = read_meta([path for path, _, _ in files])
    frames = table.column("source_frames")
    lengths = pc.list_value_length(frames).to_numpy()
    starts = np.cumsum(lengths) - lengths
    flat = pc.list_flatten(frames).to_numpy()
    return table.to_pandas().assign(
        first_frame=flat[starts], centre_frame=flat[starts + lengths // 2],
        first_time=pc.list_element(table.column("timestamps"), 0).to_numpy())


def shard_meta(paths: list[Path]) -> pd.DataFrame:
    """Metadata of a cache's shards of one kind; a training job opens each split's dataset on it."""
    return _shard_meta(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths))


@lru_cache(maxsize=None)  # one per shard file: evicting them in turn would map files anew per unit
def _pixels_in_place(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, ...] | None:
    """A shard file memory-mapped with the offset and shape of each row's pixels
    (`pixel_locations`), or None when they are not stored in place. Once per process, and
    forked workers inherit it: a fresh mapping costs a page fault per 64 KB on first reading
    (~3 us per 112x112x3 crop)."""
    located = pixel_locations(path)
    if located is None:
        return None
    with open(path, "rb") as file:
        data = np.frombuffer(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
    return (data, *located)


@lru_cache(maxsize=None)
def _open_shard(path: str, mtime_ns: int, size: int, pid: int) -> pq.ParquetFile:
    """A shard opened memory-mapped for Arrow, shared by the datasets of one process (not
    across a fork)."""
    return pq.ParquetFile(path, memory_map=True)


class _RowReader:
    """Reads chosen rows of shards: in the memory-mapped file where the pixels lie in place
    (as `fas.cache.ShardWriter` writes them), else by loading the row groups that hold them."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self._versions = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths]
        self._starts = [row_group_starts(p) for p in paths]

    def row_groups(self, shard: int, rows: np.ndarray | int) -> np.ndarray:
        """The row group of each row of a shard."""
        return np.searchsorted(self._starts[shard], rows, side="right") - 1

    def images(self, shard: int, rows: np.ndarray) -> list[np.ndarray]:
        """The HxWxC images at `rows` of a shard, views of its file or of an Arrow table."""
        in_place = _pixels_in_place(*self._versions[shard])
        if in_place is None:
            return self._row_group_images(shard, rows)
        data, offsets, shapes = in_place
        offsets, shapes = offsets[rows], shapes[rows]
        lengths = data[offsets[:, None] + np.arange(-4, 0)].view("<u4")[:, 0]  # each value's prefix
        if not np.array_equal(lengths, shapes.prod(axis=1)):
            raise ValueError(f"{self.paths[shard]}: pixels are not where its page headers put them")
        return [data[offset:offset + height * width * channels].reshape(height, width, channels)
                for offset, (height, width, channels) in zip(offsets.tolist(), shapes.tolist())]

    def _row_group_images(self, shard: int, rows: np.ndarray) -> list[np.ndarray]:
        """The HxWxC images at `rows` of a shard, views of the row groups that hold them."""
        starts = self._starts[shard]
        groups = self.row_groups(shard, rows)
        loaded = np.unique(groups)
        table = _open_shard(*self._versions[shard], os.getpid()).read_row_groups(
            loaded.tolist(), columns=["pixels", "height", "width", "channels"])
        images = decode_pixels(table)
        sizes = starts[loaded + 1] - starts[loaded]
        positions = (np.cumsum(sizes) - sizes)[np.searchsorted(loaded, groups)] + rows - starts[groups]
        return [images[position] for position in positions.tolist()]


class _CacheSamples(IterableDataset):
    """Shared machinery: units of row groups, worker split, seeded buffer shuffle.

    A subclass plans every video (`_plan`: first (shard, row), labels, count of samples and
    where their images lie) and turns a unit's videos into samples (`_unit_samples`).
    """

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
                                        f"(run `{CACHE_WRITER[kind]}` first)")
        self.meta = {kind: shard_meta(reader.paths) for kind, reader in self.readers.items()}
        present = set(self.meta[self.driver_kind]["video_id"].unique())
        wanted = present if video_ids is None else set(video_ids)
        self.missing_video_ids = sorted(wanted - present)
        self.plans = self._plan(sorted(wanted & present))
        self.units = self._units()

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for this epoch (the order depends on seed and epoch only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(plan["count"] for plan in self.plans.values())

    def class_counts(self) -> dict[bool, int]:
        """Samples per label (True: live) that iterating yields."""
        counts = {True: 0, False: 0}
        for plan in self.plans.values():
            counts[plan["labels"][0]] += plan["count"]
        return counts

    def video_labels(self) -> dict[str, dict]:
        """`is_live` and `pai` of every video that yields samples."""
        return {video_id: {"is_live": plan["labels"][0], "pai": plan["labels"][1]}
                for video_id, plan in self.plans.items() if plan["count"]}

    def _units(self) -> list[list[str]]:
        """Videos grouped by the driving shard's row group where their first row lies."""
        units: dict[tuple[int, int], list[str]] = defaultdict(list)
        reader = self.readers[self.driver_kind]
        for video_id, plan in self.plans.items():
            if plan["count"]:
                shard, row = plan["first"]
                units[shard, int(reader.row_groups(shard, row))].append(video_id)
        return [units[key] for key in sorted(units)]

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        worker_id, n_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.arange(len(self.units))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.units))
        mine = [self.units[unit] for unit in order[worker_id::n_workers]]
        samples = (sample for videos in mine for sample in self._unit_samples(videos))
        if not self.shuffle:
            yield from samples
            return
        rng = np.random.default_rng([self.seed, self.epoch, worker_id, n_workers])
        # A sample that would fill the buffer (to max(buffer_size, 1)) takes a random place in
        # it, whose sample leaves (or leaves itself, for the place past the end); one draw each,
        # made in chunks: the same numbers as one by one.
        full = max(self.buffer_size, 1)
        total = sum(self.plans[video]["count"] for videos in mine for video in videos)
        picks = _draws(rng, full, max(total - full + 1, 0))
        buffer: list[dict] = []
        for sample in samples:
            if len(buffer) < full - 1:
                buffer.append(sample)
                continue
            pick = next(picks)
            if pick < len(buffer):
                buffer[pick], sample = sample, buffer[pick]
            yield sample
        rng.shuffle(buffer)
        yield from buffer

    def _read(self, kind: str, locations: np.ndarray) -> list[np.ndarray]:
        """The images at `locations` ([..., 2]: shard, row), in their order."""
        shards, rows = locations.reshape(-1, 2).T
        if (shards == shards[0]).all():
            return self.readers[kind].images(int(shards[0]), rows)
        images: list[np.ndarray] = [None] * len(rows)
        for shard in np.unique(shards):
            chosen = np.flatnonzero(shards == shard)
            for at, image in zip(chosen.tolist(), self.readers[kind].images(int(shard), rows[chosen])):
                images[at] = image
        return images


def _draws(rng: np.random.Generator, high: int, count: int) -> Iterator[int]:
    """`count` draws of `rng.integers(high)`, made DRAW_CHUNK at a time."""
    for start in range(0, count, DRAW_CHUNK):
        yield from rng.integers(high, size=min(DRAW_CHUNK, count - start)).tolist()


def _among(column: pd.Series, values: Iterable[str]) -> np.ndarray:
    """`column.isin(values)` for strings (pandas converts each value to Arrow, 2 ms per 250)."""
    wanted = set(values)
    return np.fromiter((value in wanted for value in column.to_numpy()), bool, len(column))


def _video_spans(video_ids: np.ndarray) -> Iterator[tuple[str, int, int]]:
    """(video_id, start, stop) of each run of one video id in a sorted column."""
    starts = np.flatnonzero(np.r_[True, video_ids[1:] != video_ids[:-1]]) if len(video_ids) else []
    stops = list(starts[1:]) + [len(video_ids)]
    for start, stop in zip(starts, stops):
        yield str(video_ids[start]), int(start), int(stop)


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
        dynamic = dynamic[_among(dynamic["video_id"], videos) & dynamic["modality"].isin(self.modalities)
                          & (dynamic["kind"] == self.dynamic_kind)]
        static = static[_among(static["video_id"], videos) & static["modality"].isin(self.modalities)]
        # A window's static frame is its centre source frame, at its first sampled position.
        windows = dynamic.assign(frame=dynamic["centre_frame"])
        frames = static.assign(frame=static["first_frame"]).sort_values(
            ["video_id", "modality", "index"]).drop_duplicates(["video_id", "modality", "frame"])
        pairs = windows.merge(frames[["video_id", "modality", "frame", "shard", "row"]],
                              on=["video_id", "modality", "frame"], suffixes=("", "_static"))
        width = len(self.modalities)
        complete = pairs.groupby(["video_id", "index"])["modality"].transform("size") == width
        # one sample per `width` rows, its modalities in the order asked for
        order = {modality: position for position, modality in enumerate(self.modalities)}
        pairs = pairs[complete].assign(order=pairs["modality"].map(order)).sort_values(
            ["video_id", "index", "order"])
        dynamic_locations = pairs[["shard", "row"]].to_numpy(np.int64).reshape(-1, width, 2)
        static_locations = pairs[["shard_static", "row_static"]].to_numpy(np.int64).reshape(-1, width, 2)
        indices = pairs["index"].to_numpy()[::width].tolist()
        spans = {video: (start, stop) for video, start, stop in
                 _video_spans(pairs["video_id"].to_numpy()[::width])}
        firsts = dynamic.sort_values(["video_id", "shard", "row"]).drop_duplicates("video_id")
        labels = dynamic.drop_duplicates("video_id").set_index("video_id")
        plans = {}
        for video_id, shard, row in zip(firsts["video_id"], firsts["shard"], firsts["row"]):
            start, stop = spans.get(video_id, (0, 0))
            plans[video_id] = {
                "first": (int(shard), int(row)), "count": stop - start,
                "labels": (bool(labels.at[video_id, "is_live"]), str(labels.at[video_id, "pai"])),
                "indices": indices[start:stop], "dynamic": dynamic_locations[start:stop],
                "static": static_locations[start:stop]}
        return plans

    def _unit_samples(self, videos: list[str]) -> Iterator[dict]:
        plans = [self.plans[video] for video in videos]
        dynamic = self._read("dynamic", np.concatenate([p["dynamic"] for p in plans]))
        static = self._read("static", np.concatenate([p["static"] for p in plans]))
        width, start = len(self.modalities), 0
        for video_id, plan in zip(videos, plans):
            is_live, pai = plan["labels"]
            for index in plan["indices"]:
                statics, dynamics = static[start:start + width], dynamic[start:start + width]
                yield {"video_id": video_id, "index": index, "is_live": is_live, "pai": pai,
                       "static": {m: to_chw(image) for m, image in zip(self.modalities, statics)},
                       "dynamic": {m: to_chw(image) for m, image in zip(self.modalities, dynamics)}}
                start += width


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
        meta = self.meta[self.driver_kind]
        rows = meta[_among(meta["video_id"], videos) & (meta["modality"] == "color")].sort_values(
            ["video_id", "index"], kind="stable")
        frames, times = rows["first_frame"].tolist(), rows["first_time"].tolist()
        locations = np.stack([rows["shard"].to_numpy(np.int64), rows["row"].to_numpy(np.int64)], axis=1)
        shards, row_numbers = locations.T.tolist()
        is_live, pai = rows["is_live"].to_numpy(), rows["pai"].to_numpy()
        length = self.clip_len
        spans = list(_video_spans(rows["video_id"].to_numpy()))
        clip_starts = [[start + first for run in consecutive_runs(frames[start:stop])
                        for first in range(run.start, run.stop - length + 1, length)]
                       for _, start, stop in spans]  # positions in `rows`
        clip_locations = locations[np.array([c for starts in clip_starts for c in starts], np.int64)[:, None]
                                   + np.arange(length)]
        plans, done = {}, 0
        for (video_id, start, stop), starts in zip(spans, clip_starts):
            video_fps = frame_rate(frames[start:stop], times[start:stop]) or DEFAULT_FPS
            fps = [frame_rate(frames[c:c + length], times[c:c + length]) or video_fps for c in starts] \
                if length > 1 else [video_fps] * len(starts)  # one frame spans no time
            plans[video_id] = {
                "first": min(zip(shards[start:stop], row_numbers[start:stop])), "count": len(starts),
                "labels": (bool(is_live[start]), str(pai[start])), "fps": [float(f) for f in fps],
                "locations": clip_locations[done:done + len(starts)]}
            done += len(starts)
        return plans

    def _unit_samples(self, videos: list[str]) -> Iterator[dict]:
        plans = [self.plans[video] for video in videos]
        images = self._read(self.driver_kind, np.concatenate([p["locations"] for p in plans]))
        length, start = self.clip_len, 0
        for video_id, plan in zip(videos, plans):
            is_live, pai = plan["labels"]
            for index, fps in enumerate(plan["fps"]):
                yield {"video_id": video_id, "index": index, "is_live": is_live, "pai": pai,
                       "frames": torch.from_numpy(_clip(images[start:start + length])), "fps": fps}
                start += length


def _clip(images: list[np.ndarray]) -> np.ndarray:
    """[T, 3, H, W] uint8 from HxWxC images, written in place."""
    out = np.empty((len(images), 3) + images[0].shape[:2], np.uint8)
    for position, image in enumerate(images):
        chw(image, out[position])
    return out
