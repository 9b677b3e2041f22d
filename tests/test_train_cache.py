"""A tiny, separable cache in the documented schema (docs/ARCHITECTURE.md), for the training tests.

`write_tiny_cache` writes static and dynamic shards with pyarrow directly;
`loader()` is `fas.loader` when it exists, else `StandInLoader`, a minimal
reader with the documented interface (remove once fas/loader.py is merged).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import IterableDataset

MODALITIES = ("color", "depth", "ir")
SIZE = 16
FRAMES = 16  # sampled frames per video
WINDOW = 8  # frames per dynamic image
FPS = 25.0


def _image(rng: np.random.Generator, live: bool, grey: bool) -> np.ndarray:
    """Live faces bright, attacks dark: trivially separable, with noise."""
    level = 180 if live else 70
    pixels = rng.normal(level, 25, size=(SIZE, SIZE, 1 if grey else 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_tiny_cache(root: Path, dataset: str, videos: list[tuple[str, bool]], seed: int = 0) -> Path:
    """Shards `<root>/<dataset>/{static,dynamic}-0-of-1.parquet` for (video_id, is_live) pairs."""
    rng = np.random.default_rng(seed)
    static, dynamic = [], []
    for video_id, live in sorted(videos):
        pai = "live" if live else "print"
        labels = {"is_live": live, "pai": pai, "subject": video_id.split("_")[0]}
        for modality in MODALITIES:
            grey = modality != "color"
            frames = [_image(rng, live, grey) for _ in range(FRAMES)]
            for i, frame in enumerate(frames):
                static.append({"video_id": video_id, "modality": modality, "kind": "static",
                               "index": i, "source_frames": [i], "timestamps": [i / FPS],
                               "height": SIZE, "width": SIZE, "channels": frame.shape[2],
                               "pixels": frame.tobytes(), "flags": [], **labels})
            for w in range(FRAMES // WINDOW):
                window = list(range(w * WINDOW, (w + 1) * WINDOW))
                image = np.mean([frames[i] for i in window], axis=0).astype(np.uint8)
                dynamic.append({"video_id": video_id, "modality": modality, "kind": "dynamic",
                                "index": w, "source_frames": window,
                                "timestamps": [i / FPS for i in window],
                                "height": SIZE, "width": SIZE, "channels": image.shape[2],
                                "pixels": image.tobytes(), "flags": [], **labels})
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("video_id", pa.string()), ("modality", pa.string()), ("kind", pa.string()),
                        ("index", pa.int32()), ("source_frames", pa.list_(pa.int32())),
                        ("timestamps", pa.list_(pa.float64())), ("height", pa.int32()),
                        ("width", pa.int32()), ("channels", pa.int32()), ("pixels", pa.binary()),
                        ("flags", pa.list_(pa.string())), ("is_live", pa.bool_()),
                        ("pai", pa.string()), ("subject", pa.string())])
    for kind, rows in (("static", static), ("dynamic", dynamic)):
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, folder / f"{kind}-0-of-1.parquet", row_group_size=64)
    return folder


class _StandInSamples(IterableDataset):
    """Reads a whole cache folder into memory; shuffles per (seed, epoch)."""

    def __init__(self, cache_dir, video_ids, *, shuffle, seed):
        self.cache_dir, self.video_ids = Path(cache_dir), set(video_ids)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> pd.DataFrame:
        table = pd.concat([pd.read_parquet(p) for p in sorted(self.cache_dir.glob("*.parquet"))])
        return table[table["video_id"].isin(self.video_ids)]

    @staticmethod
    def _tensor(row) -> torch.Tensor:
        image = np.frombuffer(row.pixels, np.uint8).reshape(row.height, row.width, row.channels)
        return torch.from_numpy(np.repeat(image, 3 // row.channels, axis=2).transpose(2, 0, 1).copy())

    def __iter__(self):
        samples = self._samples()
        order = np.arange(len(samples))
        if self.shuffle:
            np.random.default_rng((self.seed, self.epoch)).shuffle(order)
        return (samples[i] for i in order)


class StandInSDNetSamples(_StandInSamples):
    def __init__(self, cache_dir, video_ids, modalities, *, shuffle, seed):
        super().__init__(cache_dir, video_ids, shuffle=shuffle, seed=seed)
        self.modalities = list(modalities)

    def _samples(self):
        rows = {(r.video_id, r.modality, r.kind, r.index): r for r in self._rows().itertuples()}
        samples = []
        for (video_id, modality, kind, index), row in sorted(rows.items()):
            if kind != "dynamic" or modality != self.modalities[0]:
                continue
            centre = int(row.source_frames[len(row.source_frames) // 2])
            samples.append({
                "video_id": video_id, "index": int(index), "is_live": bool(row.is_live),
                "pai": row.pai,
                "static": {m: self._tensor(rows[video_id, m, "static", centre]) for m in self.modalities},
                "dynamic": {m: self._tensor(rows[video_id, m, "dynamic", index]) for m in self.modalities}})
        return samples


class StandInClipSamples(_StandInSamples):
    def __init__(self, cache_dir, video_ids, clip_len, *, shuffle, seed):
        super().__init__(cache_dir, video_ids, shuffle=shuffle, seed=seed)
        self.clip_len = clip_len

    def _samples(self):
        rows = self._rows()
        rows = rows[(rows["kind"] == "static") & (rows["modality"] == "color")]
        samples = []
        for video_id, group in rows.sort_values(["video_id", "index"]).groupby("video_id"):
            frames = list(group.itertuples())
            for c in range(len(frames) // self.clip_len):
                clip = frames[c * self.clip_len:(c + 1) * self.clip_len]
                samples.append({"video_id": video_id, "index": c, "is_live": bool(clip[0].is_live),
                                "pai": clip[0].pai, "fps": FPS,
                                "frames": torch.stack([self._tensor(r) for r in clip])})
        return samples


class StandInLoader:
    SDNetSamples = StandInSDNetSamples
    ClipSamples = StandInClipSamples


def loader():
    """fas.loader when merged, else the stand-in."""
    try:
        return importlib.import_module("fas.loader")
    except ModuleNotFoundError:
        return StandInLoader


@pytest.fixture
def cache_loader(monkeypatch):
    """Make `from fas import loader` inside fas.train give `loader()`."""
    import sys

    module = loader()
    if module is StandInLoader:
        monkeypatch.setitem(sys.modules, "fas.loader", module)
        import fas
        monkeypatch.setattr(fas, "loader", module, raising=False)
    return module


def test_tiny_cache_reads_back_as_documented(tmp_path, cache_loader):
    folder = write_tiny_cache(tmp_path, "toy", [("a_1", True), ("b_1", False)])
    samples = list(cache_loader.SDNetSamples(folder, ["a_1", "b_1"], ["color", "ir"],
                                             shuffle=False, seed=0))
    assert len(samples) == 2 * FRAMES // WINDOW
    first = samples[0]
    assert first["static"]["ir"].shape == (3, SIZE, SIZE) and first["static"]["ir"].dtype == torch.uint8
    assert {s["is_live"] for s in samples} == {True, False}
    clips = list(cache_loader.ClipSamples(folder, ["a_1"], 8, shuffle=False, seed=0))
    assert len(clips) == FRAMES // 8 and clips[0]["frames"].shape == (8, 3, SIZE, SIZE)
