"""The loader dataset of one split: its source caches, interleaved for cross-dataset protocols,
and class-balanced training batches for methods whose loss needs positives in every batch."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset

from fas.errors import DataError, MissingInput, UserError
from fas.training.splits import Split

# (cache folder, video ids, data modalities, shuffle, seed) -> one source's samples
OpenSource = Callable[[Path, list[str], list[str], bool, int], IterableDataset]


class RoundRobin(IterableDataset):
    """Samples of several source datasets interleaved one by one (cross-dataset training).

    Sources may be cropped at different sizes (params `align.crop_size`), so every
    image is resized to `size` here, before samples of different sources share a batch.
    """

    def __init__(self, parts: list[IterableDataset], size: int):
        self.parts, self.size = parts, size

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def video_labels(self) -> dict[str, dict]:
        return {video: labels for part in self.parts for video, labels in part.video_labels().items()}

    def __iter__(self) -> Iterator[dict]:
        iterators = [iter(part) for part in self.parts]
        while iterators:
            for it in list(iterators):
                try:
                    yield resized_sample(next(it), self.size)
                except StopIteration:
                    iterators.remove(it)


def resized_sample(sample: dict, size: int) -> dict:
    """A sample whose uint8 images ([..., C, H, W], alone or in a per-modality dict) are size x size."""

    def fit(value):
        if isinstance(value, dict):
            return {key: fit(item) for key, item in value.items()}
        if (not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() < 3
                or tuple(value.shape[-2:]) == (size, size)):
            return value
        flat = value.reshape(-1, *value.shape[-3:]).float()
        out = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)
        return out.round().clamp(0, 255).to(torch.uint8).reshape(*value.shape[:-2], size, size)

    return {key: fit(value) for key, value in sample.items()}


def open_split(open_source: OpenSource, cache_root: Path, split: Split, modalities: list[str],
               input_size: int, shuffle: bool, seed: int, notes: list[str]) -> IterableDataset:
    """The loader dataset of one split (all its source datasets).

    Videos of the split that the cache lacks (failed alignment) are left out
    and named in `notes`. (`protocols.parquet` max_frames is applied by
    `fas extract`.)
    """
    parts = []
    for dataset, video_ids in split.videos.items():
        cache_dir = Path(cache_root) / dataset
        if not cache_dir.is_dir():
            raise MissingInput(f"{cache_dir}: cache folder not found (`fas align` and "
                               "`fas dynamic` write it)")
        parts.append(open_source(cache_dir, video_ids, modalities, shuffle, seed))
        missing = list(getattr(parts[-1], "missing_video_ids", []))
        if missing:
            note = (f"{split.name}: {len(missing)} of {len(video_ids)} video(s) not in the cache "
                    f"{cache_dir}, left out (e.g. {', '.join(missing[:3])})")
            if note not in notes:
                notes.append(note)
                print(f"fas train: {note}", file=sys.stderr)
    return parts[0] if len(parts) == 1 else RoundRobin(parts, input_size)


def require_both_classes(dataset: IterableDataset, split: str, experiment_id: str) -> None:
    """A split must yield live and attack samples: training, model selection and every
    metric need both (a class can vanish when an earlier stage skipped its videos)."""
    parts = dataset.parts if isinstance(dataset, RoundRobin) else [dataset]
    counts: Counter = Counter()
    for part in parts:
        counts.update(part.class_counts())
    absent = [name for name, live in (("live", True), ("attack", False)) if not counts[live]]
    if absent:
        missing = sum(len(getattr(part, "missing_video_ids", [])) for part in parts)
        raise DataError(f"{experiment_id}: the {split} split yields no {' and no '.join(absent)} "
                        f"samples ({counts[True]} live, {counts[False]} attack; {missing} of its "
                        "videos are not in the cache, see the preprocessing failure reports)")


class CannotBalance(UserError, ValueError):
    """A training split or batch size that class-balanced batches cannot be made of."""


class BalancedBatches(IterableDataset):
    """Training samples ordered so that every batch of `batch_size` holds each class equally.

    `parts` holds one stream per class (its own shuffled loader dataset);
    `per_class` is the fewest samples of each class a batch must hold. Each
    batch takes batch_size // n samples of every class, the remainder going to
    the classes in turn; a class that runs out starts a new pass in a new
    order (the minority classes are oversampled), and the epoch ends with the
    batch in which the last class finishes its first pass. The order depends
    on the seed and the epoch only, so a resumed run sees the same batches.
    The DataLoader must batch by `batch_size` (each worker composes its own
    batches from its share of every class).
    """

    def __init__(self, parts: dict[str, IterableDataset], batch_size: int, per_class: int = 2):
        if batch_size < per_class * len(parts):
            raise CannotBalance(f"batch_size {batch_size} cannot hold {per_class} sample(s) of each "
                             f"of the {len(parts)} classes {sorted(parts)}: raise the preset's "
                             "batch_size or use fewer classes")
        self.parts, self.batch_size, self.epoch = parts, int(batch_size), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _pass(self, name: str, number: int) -> Iterator[dict]:
        """Pass `number` over one class; its order is fixed by (epoch, pass) (Cantor pairing)."""
        part = self.parts[name]
        total = self.epoch + number
        part.set_epoch(total * (total + 1) // 2 + number)
        return iter(part)

    def __iter__(self) -> Iterator[dict]:
        names = sorted(self.parts)
        passes = dict.fromkeys(names, 0)
        streams = {name: self._pass(name, 0) for name in names}
        ahead = {name: next(streams[name], None) for name in names}
        empty = [name for name in names if ahead[name] is None]
        if empty:
            raise CannotBalance(f"no training samples of class {', '.join(empty)} (in this DataLoader "
                             "worker: lower the preset's workers if a class has few videos)")
        finished: set[str] = set()
        batch = 0
        base, extra = divmod(self.batch_size, len(names))
        while len(finished) < len(names):
            for position, name in enumerate(names):
                for _ in range(base + ((position - batch) % len(names) < extra)):
                    yield ahead[name]
                    ahead[name] = next(streams[name], None)
                    if ahead[name] is None:  # the class's pass ended: start the next one
                        finished.add(name)
                        passes[name] += 1
                        streams[name] = self._pass(name, passes[name])
                        ahead[name] = next(streams[name])
            batch += 1


def balanced_split(opened: IterableDataset, split: Split, field: str, batch_size: int,
                   open_part: Callable[[Split], IterableDataset], per_class: int = 2) -> BalancedBatches:
    """The split `opened` as class-balanced batches, the classes being the values of the
    samples' `field` (`is_live` or `pai`); `open_part` opens a sub-split of one class."""
    labels = opened.video_labels()
    classes = sorted({str(value[field]) for value in labels.values()})
    parts = {}
    for name in classes:
        videos = {dataset: [v for v in ids if v in labels and str(labels[v][field]) == name]
                  for dataset, ids in split.videos.items()}
        part = Split(split.name, {d: ids for d, ids in videos.items() if ids}, split.modalities)
        parts[f"{field}={name}"] = open_part(part)
    return BalancedBatches(parts, batch_size, per_class)
