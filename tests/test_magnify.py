"""`fas magnify`: Wu et al.'s presets, the full pyramid, whole face tracks magnified once."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from fas.cache import decode_pixels, image_row, write_shard
from fas.cli import main as fas_main
from fas.evm_settings import WU_PRESETS, pyramid_levels, resolve_evm
from fas.models.evm import magnify
from preprocess_media import write_params

pytestmark = pytest.mark.usefixtures("one_thread")
FPS = 30.0


def test_presets_resolve_with_overrides_and_wu_codes_cutoffs():
    baby = resolve_evm({"preset": "baby", "cutoff_convention": "nominal"})
    assert baby == {"levels": "full", **WU_PRESETS["baby"]}
    halved = resolve_evm({"preset": "baby", "cutoff_convention": "wu_code", "alpha": 20.0})
    assert (halved["low_hz"], halved["high_hz"], halved["alpha"]) == (0.2, 1.5, 20.0)
    face = resolve_evm({"preset": "face", "cutoff_convention": "wu_code"})  # ideal: Hz as given
    assert (face["low_hz"], face["high_hz"], face["levels"]) == (50 / 60, 1.0, 4)


def test_full_pyramid_is_every_level_the_crop_allows():
    # Wu et al.'s buildLpyr 'auto' = 1 + maxPyrHt with their 5-tap binomial filter
    assert [pyramid_levels("full", s, s) for s in (224, 112, 32, 4)] == [7, 6, 4, 1]
    assert pyramid_levels(3, 224, 224) == 3


def face_track(n: int, hz: float = 1.0) -> np.ndarray:
    """n frames of 32x32 RGB uint8: a blob moving sub-pixel at `hz`."""
    t = np.arange(n) / FPS
    y, x = np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="ij")
    centre = 16 + 0.5 * np.sin(2 * math.pi * hz * t)[:, None, None]
    blob = np.exp(-((x - centre) ** 2 + (y - 16) ** 2) / 20)
    return np.repeat((255 * (0.4 + 0.3 * blob))[..., None], 3, axis=3).round().astype(np.uint8)


def test_stage_magnifies_each_run_as_a_whole(tmp_path):
    track = face_track(90)
    labels = {"is_live": True, "pai": "live", "subject": "1"}
    # two runs: frames 0-59 and 100-129 (a gap in the sampled source frames)
    numbers = list(range(60)) + list(range(100, 130))
    rows = [image_row("v", "color", "static", i, track[i], source_frames=[f], timestamps=[f / FPS],
                      labels=labels) for i, f in enumerate(numbers)]
    rows += [image_row("v", "depth", "static", i, track[i][..., 0], source_frames=[f],
                       timestamps=[f / FPS], labels=labels) for i, f in enumerate(numbers)]
    static = tmp_path / "static-0-of-1.parquet"
    write_shard(static, rows, 16)
    params = write_params(tmp_path / "params.yaml", evm={"preset": "baby_butter"})
    out = tmp_path / "magnified-0-of-1.parquet"
    assert fas_main(["magnify", "test", "--static", str(static), "--out", str(out),
                     "--params", str(params)]) == 0
    table = pq.read_table(out)
    assert set(table.column("kind").to_pylist()) == {"magnified"}
    assert table.column("modality").to_pylist() == ["color"] * 90  # colour frames only
    got = np.stack(decode_pixels(table))
    evm = resolve_evm({"preset": "baby_butter", "cutoff_convention": "wu_code"})
    frames = torch.from_numpy(track).permute(0, 3, 1, 2).float() / 255
    for run in (slice(0, 60), slice(60, 90)):
        expected = magnify(frames[run], FPS, **evm).mul(255).round().clamp(0, 255)
        np.testing.assert_array_equal(got[run], expected.to(torch.uint8).permute(0, 2, 3, 1).numpy())
    # magnifying the run once is not magnifying each 8-frame clip alone (filters need to settle)
    clipwise = torch.cat([magnify(frames[s:s + 8], FPS, **evm) for s in range(0, 56, 8)])
    assert not torch.allclose(clipwise, magnify(frames[:60], FPS, **evm)[:56], atol=1e-2)
    assert got[:60].astype(float).var(axis=0).sum() > 2 * track[:60].astype(float).var(axis=0).sum()


def test_magnified_bytes_do_not_depend_on_the_thread_count(tmp_path):
    """Snakemake runs jobs with one thread, DVC with all: the stage pins torch's threads."""
    labels = {"is_live": True, "pai": "live", "subject": "1"}
    track = face_track(40)
    rows = [image_row("v", "color", "static", i, track[i], source_frames=[i], timestamps=[i / FPS],
                      labels=labels) for i in range(40)]
    static = tmp_path / "static-0-of-1.parquet"
    write_shard(static, rows, 16)
    params = write_params(tmp_path / "params.yaml", evm={"preset": "baby"})
    outs = []
    for threads in (2, 1):
        torch.set_num_threads(threads)
        out = tmp_path / f"magnified-{threads}.parquet"
        assert fas_main(["magnify", "test", "--static", str(static), "--out", str(out),
                         "--params", str(params)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and torch.get_num_threads() == 1
