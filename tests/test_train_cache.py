"""A tiny, separable cache in the documented schema (docs/ARCHITECTURE.md), for the training tests.

`write_tiny_cache` writes static and dynamic shards with pyarrow directly, so
the training tests need no video decoding or face alignment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from fas import loader

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
    """Shards `<root>/<dataset>/{static,dynamic,magnified}-0-of-1.parquet` for (video_id, is_live)
    pairs; the magnified frames are the colour frames themselves (the stage is tested on its own)."""
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
    magnified = [{**row, "kind": "magnified"} for row in static if row["modality"] == "color"]
    for kind, rows in (("static", static), ("dynamic", dynamic), ("magnified", magnified)):
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, folder / f"{kind}-0-of-1.parquet", row_group_size=64)
    return folder


def test_tiny_cache_reads_back_as_documented(tmp_path):
    folder = write_tiny_cache(tmp_path, "toy", [("a_1", True), ("b_1", False)])
    samples = list(loader.SDNetSamples(folder, ["a_1", "b_1"], ["color", "ir"],
                                             shuffle=False, seed=0))
    assert len(samples) == 2 * FRAMES // WINDOW
    first = samples[0]
    assert first["static"]["ir"].shape == (3, SIZE, SIZE) and first["static"]["ir"].dtype == torch.uint8
    assert {s["is_live"] for s in samples} == {True, False}
    clips = list(loader.ClipSamples(folder, ["a_1"], 8, shuffle=False, seed=0))
    assert len(clips) == FRAMES // 8 and clips[0]["frames"].shape == (8, 3, SIZE, SIZE)
