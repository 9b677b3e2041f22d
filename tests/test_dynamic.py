"""Approximate rank pooling against REFERENCE.md section 5 and a per-frame reference loop."""

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from fas.cache import decode_pixels, image_row, write_shard
from fas.cli import main as fas_main
from fas.dynamic import dynamic_images, pool_window, rank_pool_coefficients, to_uint8, windows
from preprocess_media import write_params


def test_coefficients_match_the_reference_values():
    alpha = rank_pool_coefficients(7)
    assert np.allclose(alpha, [-6.743, -0.743, 1.257, 1.924, 1.924, 1.524, 0.857], atol=5e-4)
    for length in (2, 7, 8, 16):
        alpha = rank_pool_coefficients(length)
        assert abs(alpha.sum()) < 1e-9
        direct = [sum((2 * i - length - 1) / i for i in range(t, length + 1))
                  for t in range(1, length + 1)]
        assert np.allclose(alpha, direct)


def test_windows_stay_within_consecutive_runs():
    frames = list(range(10)) + list(range(50, 53)) + [90]
    found = windows(frames, 4, 3)
    assert found == [(range(0, 4), False), (range(3, 7), False), (range(6, 10), False),
                     (range(10, 13), True)]
    with pytest.raises(ValueError):
        windows(frames, 1, 1)


def test_windows_spread_over_a_run_or_take_all_of_it():
    frames = list(range(12)) + [40, 41]
    assert windows(frames, 3, 5, frame_step=3) == [(range(0, 7, 3), False), (range(5, 12, 3), False)]
    assert windows(frames, None, 1) == [(range(0, 12), False), (range(12, 14), False)]
    assert windows(frames, None, 1, frame_step=4) == [(range(0, 12, 4), False)]  # [40] alone: < 2


def test_extra_window_sizes_are_stored_beside_the_primary_one():
    from fas.dynamic import video_dynamic_rows

    image = np.zeros((4, 4, 3), np.uint8)
    rows = [{**image_row("v", "color", "static", i, image + i, source_frames=[i], timestamps=[i / 30],
                         labels={"is_live": True, "pai": "live", "subject": "s"}), "image": image + i}
            for i in range(16)]
    out = video_dynamic_rows("v", rows, 8, 8, extra_windows=(16, "video"))
    kinds = [r["kind"] for r in out]
    assert kinds == ["dynamic"] * 2 + ["dynamic_k16"] + ["dynamic_video"]
    assert [len(r["source_frames"]) for r in out] == [8, 8, 16, 16]


def test_vectorised_pooling_equals_a_per_frame_loop():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (20, 9, 11, 3), dtype=np.uint8)
    spans = [range(0, 8), range(4, 12), range(12, 20), range(17, 20), range(0, 20, 3), range(0, 20)]
    fast = dynamic_images(frames, spans)  # overlapping, short, odd, strided and whole-video windows
    assert (dynamic_images(list(frames), spans) == fast).all()  # a list of frames as the stage passes
    for image, span in zip(fast, spans):
        alpha = rank_pool_coefficients(len(span))
        slow = sum(a * frames[t].astype(np.float64) for a, t in zip(alpha, span))
        expected = np.rint((slow - slow.min()) / (slow.max() - slow.min()) * 255)
        assert np.abs(image.astype(int) - expected).max() <= 1


def opencv_pairs(frames: np.ndarray, span: range) -> np.ndarray:
    """The float image as OpenCV's passes sum it: weighted pairs (`addWeighted`), added in turn."""
    alpha = rank_pool_coefficients(len(span)).tolist()
    pooled = pair = None
    for k in range(0, len(span), 2):
        second = span[k + 1] if k + 1 < len(span) else span[k]  # an odd window's last frame, weight 0
        pair = cv2.addWeighted(frames[span[k]], alpha[k], frames[second],
                               alpha[k + 1] if k + 1 < len(span) else 0.0, 0.0, dtype=cv2.CV_32F)
        pooled = pair if pooled is None else cv2.add(pooled, pair)
    return pooled


def test_the_compiled_pass_sums_as_the_opencv_passes_bit_for_bit():
    """Shards pooled by the OpenCV passes stay what the kernel writes: the same float32 sums."""
    rng = np.random.default_rng(1)
    for size in (48, 4099, 224 * 224 * 3):  # whole SIMD blocks and leftover elements
        frames = rng.integers(0, 256, (20, size), dtype=np.uint8)
        for span in (range(0, 8), range(0, 7), range(2, 4), range(0, 20), range(0, 20, 3)):
            pooled = pool_window(frames, span, np.empty(size, np.float32))
            assert (pooled.view(np.int32) == opencv_pairs(frames, span).view(np.int32)).all(), (size, span)


def test_a_window_of_constant_frames_pools_to_zeros():
    for size in (48, 100, 4099):  # whole SIMD blocks and leftover elements must round alike
        frames = np.full((8, size), 7, np.uint8)
        assert not dynamic_images(frames, [range(8), range(3)]).any()


def test_a_brightening_sequence_pools_to_its_pattern():
    pattern = np.arange(12).reshape(3, 4) * 8
    frames = np.stack([pattern * t // 4 + 3 * t for t in range(8)]).astype(np.uint8)  # exact
    image = dynamic_images(frames, [range(8)])[0]
    assert image[0, 0] == 0 and image[-1, -1] == 255
    assert (np.diff(image.ravel().astype(int)) > 0).all()  # increasing like the pattern


def test_min_max_scaling():
    images = np.array([[[1.0, 3.0], [2.0, 5.0]], [[7.0, 7.0], [7.0, 7.0]]], np.float32)
    assert to_uint8(images).tolist() == [[[0, 128], [64, 255]], [[0, 0], [0, 0]]]


def test_dynamic_stage_end_to_end(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    labels = {"is_live": False, "pai": "print", "subject": "s"}
    for video, frames in [("v", list(range(8)) + list(range(40, 48))), ("single", [3])]:
        for modality, channels in [("color", 3), ("ir", 1)]:
            for position, frame in enumerate(frames):
                image = rng.integers(0, 256, (6, 5, channels), dtype=np.uint8)
                rows.append(image_row(video, modality, "static", position, image,
                                      source_frames=[frame], timestamps=[frame / 10],
                                      flags=["padded"] if frame == 46 else [], labels=labels))
    static = tmp_path / "static-0-of-1.parquet"
    write_shard(static, rows, 5)
    params = write_params(tmp_path / "params.yaml", dynamic={"window": 8, "stride": {"demo": 8}})
    out = tmp_path / "dynamic-0-of-1.parquet"
    args = ["dynamic", "test", "--static", str(static), "--out", str(out), "--params", str(params)]
    assert fas_main(args) == 0
    table = pq.read_table(out)
    got = table.drop_columns(["pixels"]).to_pylist()
    assert [(r["modality"], r["index"]) for r in got] == [("color", 0), ("color", 1), ("ir", 0), ("ir", 1)]
    assert got[1]["source_frames"] == list(range(40, 48)) and got[1]["flags"] == ["padded"]
    assert got[0]["timestamps"] == pytest.approx([t / 10 for t in range(8)])
    assert [img.shape for img in decode_pixels(table)] == [(6, 5, 3)] * 2 + [(6, 5, 1)] * 2
    assert all(r["kind"] == "dynamic" and r["pai"] == "print" for r in got)
    failures = json.loads(Path(f"{out}.failures.json").read_text())["entries"]
    assert [e["path"] for e in failures] == ["single"]
    first = out.read_bytes()
    fas_main(args)
    assert out.read_bytes() == first


def test_shards_of_an_earlier_shard_count_are_removed(tmp_path, capsys):
    """After `shards:` changed from 2 to 1, the rerun's shard replaces the two old ones."""
    labels = {"is_live": True, "pai": "live", "subject": "s"}
    rows = [image_row("v", "color", "static", i, np.full((4, 4, 3), i, np.uint8),
                      source_frames=[i], timestamps=[i / 10], labels=labels) for i in range(8)]
    cache = tmp_path / "cache"
    write_shard(cache / "static-0-of-1.parquet", rows, 8)
    for i in range(2):
        write_shard(cache / f"dynamic-{i}-of-2.parquet", rows[:1], 8)
        (cache / f"dynamic-{i}-of-2.parquet.failures.json").write_text("{}")
    params = write_params(tmp_path / "params.yaml", dynamic={"window": 8, "stride": {"demo": 8}})
    assert fas_main(["dynamic", "test", "--static", str(cache / "static-0-of-1.parquet"),
                     "--out", str(cache / "dynamic-0-of-1.parquet"), "--params", str(params)]) == 0
    assert sorted(p.name for p in cache.iterdir()) == [
        "dynamic-0-of-1.parquet", "dynamic-0-of-1.parquet.failures.json", "static-0-of-1.parquet"]
    assert f"removed {cache / 'dynamic-1-of-2.parquet'}" in capsys.readouterr().err
