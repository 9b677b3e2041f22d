"""The loader dataset of one split: its source caches, interleaved for cross-dataset protocols."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset

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
            raise FileNotFoundError(f"{cache_dir}: cache folder not found (run `fas align` and "
                                    "`fas dynamic` first)")
        parts.append(open_source(cache_dir, video_ids, modalities, shuffle, seed))
        missing = list(getattr(parts[-1], "missing_video_ids", []))
        if missing:
            note = (f"{split.name}: {len(missing)} of {len(video_ids)} video(s) not in the cache "
                    f"{cache_dir}, left out (e.g. {', '.join(missing[:3])})")
            if note not in notes:
                notes.append(note)
                print(f"fas train: {note}", file=sys.stderr)
    return parts[0] if len(parts) == 1 else RoundRobin(parts, input_size)
