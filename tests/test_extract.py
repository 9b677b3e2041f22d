"""Frame sampling and decoding: known-answer tests on videos that show their own frame number."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fas.cache import decode_pixels
from fas.cli import main as fas_main
from fas.config import load_params
from fas.extract import MediaError, decode_video, sample_frames, scaled_size, select_expression
from preprocess_media import (manifest_row, numbered_frame, read_number, write_frame_folder,
                              write_index, write_params, write_video)


def test_sampling_policies_known_answers():
    assert sample_frames(100, {"mode": "evenly", "n": 5}).frames == (0, 25, 50, 74, 99)
    assert sample_frames(10, {"mode": "every_k", "k": 4}).frames == (0, 4, 8)
    assert sample_frames(100, {"mode": "first_n", "n": 3}).frames == (0, 1, 2)
    clips = sample_frames(100, {"mode": "clips", "n_clips": 3, "clip_len": 4})
    assert clips.frames == (0, 1, 2, 3, 48, 49, 50, 51, 96, 97, 98, 99)
    assert not any(clips.padded)


def test_short_video_repeats_its_last_frame_flagged_padded():
    sample = sample_frames(3, {"mode": "evenly", "n": 5})
    assert sample.frames == (0, 1, 2, 2, 2)
    assert sample.padded == (False, False, False, True, True)
    clips = sample_frames(2, {"mode": "clips", "n_clips": 2, "clip_len": 3})
    assert clips.frames == (0, 1, 1, 0, 1, 1)
    assert sum(clips.padded) == 2


def test_scaled_size_keeps_aspect_and_never_upscales():
    assert scaled_size(720, 1280, 640) == (360, 640)
    assert scaled_size(48, 80, 640) == (48, 80)


DECODERS = ["pyav", "ffmpeg"]


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("gop, open_gop", [(1, False), (10, False), (50, False), (10, True)])
def test_decoded_frames_are_exactly_the_requested_ones(tmp_path, gop, open_gop, decoder):
    path = write_video(tmp_path / "numbered.mp4", 60, gop=gop, open_gop=open_gop)
    wanted = [0, 1, 9, 10, 11, 33, 34, 59, 25]
    images, times, n_frames = decode_video(path, wanted, max_side=640, decoder=decoder)
    assert n_frames == 60
    assert sorted(images) == sorted(wanted)
    for number, image in images.items():
        assert read_number(image) == number
        assert np.abs(image.astype(int) - numbered_frame(number)).max() <= 3
        assert times[number] == pytest.approx(number / 25)


@pytest.mark.parametrize("decoder", DECODERS)
def test_downscaled_grey_decoding(tmp_path, decoder):
    path = write_video(tmp_path / "big.mp4", 12, height=96, width=160)
    images, _, _ = decode_video(path, [7], max_side=80, grey=True, decoder=decoder)
    assert images[7].shape == (48, 80)
    assert read_number(images[7]) == 7


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("content, reason", [(b"", "zero-byte"), (b"not a video" * 100, "cannot open")])
def test_bad_files_raise_a_named_reason(tmp_path, content, reason, decoder):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=reason) as error:
        decode_video(path, [0], 640, decoder=decoder)
    assert error.value.path == str(path)


@pytest.mark.parametrize("decoder", DECODERS)
def test_unsupported_codec_is_named(tmp_path, decoder):
    path = write_video(tmp_path / "v.mkv", 5, codec="ffv1")
    path.write_bytes(path.read_bytes().replace(b"V_FFV1", b"V_QQQ1"))
    with pytest.raises(MediaError, match="unsupported codec"):
        decode_video(path, [0], 640, decoder=decoder)


def _dataset(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name, n in [("a", 30), ("b", 20), ("c", 3)]:
        write_video(root / f"{name}.mp4", n)
    cut = write_video(root / "cut.mp4", 40, faststart=True)  # header first, then data
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 6 // 10])
    odd = write_video(root / "odd.mkv", 5, codec="ffv1")
    odd.write_bytes(odd.read_bytes().replace(b"V_FFV1", b"V_QQQ1"))  # a codec nobody knows
    (root / "zero.mp4").write_bytes(b"")
    good = (root / "a.mp4").read_bytes()
    (root / "trunc.mp4").write_bytes(good[: len(good) // 2])
    write_frame_folder(root / "f1" / "color", [1, 2, 3, 5, 6, 7, 8, 9, 10])  # 4 missing
    write_frame_folder(root / "f1" / "depth", range(1, 11), grey=True)
    rows = [manifest_row(n, color=f"{n}.mp4") for n in ["a", "b", "c", "zero", "trunc", "cut"]]
    rows.append(manifest_row("odd", color="odd.mkv"))
    rows.append(manifest_row("pair", color="a.mp4", ir="b.mp4"))  # 30 and 20 frames
    rows.append(manifest_row("f1", "frames", color="f1/color", depth="f1/depth",
                             is_live=False, pai="print"))
    index = write_index(tmp_path / "index", rows)
    params = write_params(tmp_path / "params.yaml",
                          extract={"sampling": {"demo": {"mode": "clips", "n_clips": 2, "clip_len": 4}},
                                   "max_side": 64, "row_group_rows": 4})
    return root, index, params


def _extract(root, index, params, out, shard="0/1"):
    return fas_main(["extract", "test", "--index", str(index), "--root", str(root),
                     "--out", str(out), "--shard", shard, "--params", str(params)])


def test_extract_stage_end_to_end_with_bad_inputs(tmp_path):
    root, index, params = _dataset(tmp_path)
    out = tmp_path / "frames.parquet"
    assert _extract(root, index, params, out) == 0
    table = pq.read_table(out)
    assert pq.ParquetFile(out).metadata.row_group(0).num_rows == 4
    keys = list(zip(*(table.column(k).to_pylist() for k in ("video_id", "modality", "kind", "index"))))
    assert keys == sorted(keys)
    assert set(table.column("video_id").to_pylist()) == {"a", "b", "c", "cut", "f1", "pair"}
    images = decode_pixels(table)
    for row, image in zip(table.to_pylist(), images):
        assert max(image.shape[:2]) <= 64
        number = row["source_frames"][0]
        assert read_number(image[:, :, 0] if row["modality"] == "depth" else image) == number
    a = [r["source_frames"][0] for r in table.to_pylist() if r["video_id"] == "a"]
    assert a == [0, 1, 2, 3, 26, 27, 28, 29]
    c = [r for r in table.to_pylist() if r["video_id"] == "c"]
    assert [r["source_frames"][0] for r in c] == [0, 1, 2, 2, 0, 1, 2, 2]
    assert [r["flags"] for r in c][2:4] == [[], ["padded"]]
    f1 = [r for r in table.to_pylist() if r["video_id"] == "f1"]
    assert {r["modality"]: r["channels"] for r in f1} == {"color": 3, "depth": 1}
    assert [r["source_frames"][0] for r in f1 if r["modality"] == "color"] == [1, 2, 3, 5, 7, 8, 9, 10]
    failures = json.loads(Path(f"{out}.failures.json").read_text())["entries"]
    reasons = {Path(e["path"]).name: e["reason"] for e in failures}
    assert "zero-byte" in reasons["zero.mp4"]
    assert "trunc.mp4" in reasons
    assert "missing frame(s) [4]" in reasons["color"]
    assert "different" in reasons["depth"] or "common" in reasons["depth"]
    assert "c.mp4" in reasons
    assert "unsupported codec" in reasons["odd.mkv"]
    assert "different frame counts {'color': 30, 'ir': 20}" in reasons["a.mp4"]
    pair = [r["source_frames"][0] for r in table.to_pylist() if r["video_id"] == "pair"]
    assert pair == [0, 1, 2, 3, 16, 17, 18, 19] * 2  # colour then ir, within the common 20
    assert "truncated" in reasons["cut.mp4"] and "of 40 frames readable" in reasons["cut.mp4"]
    cut_frames = [r["source_frames"][0] for r in table.to_pylist() if r["video_id"] == "cut"]
    assert all(read_number(img) == r["source_frames"][0] for r, img in zip(table.to_pylist(), images)
               if r["video_id"] == "cut") and max(cut_frames) < 40


def test_shards_partition_the_videos_and_rebuild_byte_identically(tmp_path):
    root, index, params = _dataset(tmp_path)
    parts = []
    for i in range(2):
        out = tmp_path / f"shard-{i}-of-2.parquet"
        _extract(root, index, params, out, f"{i}/2")
        parts.append(set(pq.read_table(out).column("video_id").to_pylist()))
        first = out.read_bytes()
        _extract(root, index, params, out, f"{i}/2")
        assert out.read_bytes() == first
    assert not parts[0] & parts[1]
    assert parts[0] | parts[1] == {"a", "b", "c", "cut", "f1", "pair"}


def test_max_frames_from_the_protocols_table(tmp_path):
    root, index, params = _dataset(tmp_path)
    write_index(index, [manifest_row("a", color="a.mp4")],
                [{"dataset": "test", "protocol": "p1", "fold": 1, "split": "train",
                  "video_id": "a", "modalities": None, "max_frames": 10}])
    out = tmp_path / "frames.parquet"
    _extract(root, index, params, out)
    frames = [r["source_frames"][0] for r in pq.read_table(out).to_pylist()]
    assert frames == [0, 1, 2, 3, 6, 7, 8, 9]


def test_image_lists_keep_their_frames_and_single_images_are_one_frame_videos(tmp_path):
    """protocols.parquet `frames` (the frames image lists name) limits a frame folder; an `image`
    row (one still per modality) is a one-frame video; a row naming the whole video lifts the limit."""
    root, index, params = _dataset(tmp_path)
    write_frame_folder(root / "f2" / "color", range(1, 11))
    write_frame_folder(root / "flat", [7])
    (root / "flat" / "0007.jpg").rename(root / "flat" / "000007-color.jpg")
    rows = [manifest_row("f1", "frames", color="f1/color"), manifest_row("f2", "frames", color="f2/color"),
            manifest_row("flat", "image", color="flat/000007-color.jpg")]
    protocol = {"dataset": "test", "protocol": "p1", "fold": 1, "video_id": "f1", "modalities": None,
                "max_frames": None}
    write_index(index, rows, [{**protocol, "split": "train", "frames": ["0002.jpg", "0009.jpg"]},
                              {**protocol, "split": "dev", "frames": ["0003.jpg"]},
                              {**protocol, "split": "train", "video_id": "f2", "frames": ["0002.jpg"]},
                              {**protocol, "split": "test", "video_id": "f2", "frames": None}])
    out = tmp_path / "frames.parquet"
    assert _extract(root, index, params, out) == 0
    table = pq.read_table(out).to_pylist()
    frames = {v: sorted({r["source_frames"][0] for r in table if r["video_id"] == v}) for v in ("f1", "f2", "flat")}
    assert frames == {"f1": [2, 3, 9], "f2": [1, 2, 3, 4, 7, 8, 9, 10], "flat": [0]}  # f2: the policy's clips
    flat = next(img for r, img in zip(table, decode_pixels(pq.read_table(out))) if r["video_id"] == "flat")
    assert read_number(flat) == 7


def test_benchmark_runner_discovers_the_bench_modules():
    import importlib

    from bench.__main__ import discover

    names = discover()
    assert {"bench_extract", "bench_dynamic", "bench_cache", "bench_align"} <= set(names)
    assert all(callable(importlib.import_module(f"bench.{n}").main) for n in names)


@pytest.mark.parametrize("decoder", DECODERS)
def test_videos_without_packet_timestamps_decode_sequentially(tmp_path, monkeypatch, decoder):
    import fas.extract as extract

    real = extract.index_video

    def untimed(path):
        container, stream, index = real(path)
        index.pts = None
        return container, stream, index

    monkeypatch.setattr(extract, "index_video", untimed)
    path = write_video(tmp_path / "v.mp4", 30, gop=7)
    images, times, n_frames = extract.decode_video(path, [3, 29, 12, 40], 640, decoder=decoder)
    assert n_frames == 30 and sorted(images) == [3, 12, 29]
    assert all(read_number(image) == number for number, image in images.items())
    assert times[12] == pytest.approx(12 / 25)


@pytest.mark.parametrize("decoder", DECODERS)
def test_avi_with_b_frames_is_numbered_in_display_order(tmp_path, decoder):
    path = write_video(tmp_path / "v.avi", 30, gop=7)  # AVI packets: pts guessed in decode order
    wanted = [0, 1, 2, 3, 4, 13, 29]
    images, times, n_frames = decode_video(path, wanted, 640, decoder=decoder)
    assert n_frames == 30
    assert [read_number(images[f]) for f in wanted] == wanted
    assert [times[f] for f in wanted] == pytest.approx([f / 25 for f in wanted])


@pytest.mark.parametrize("decoder", DECODERS)
def test_variable_frame_rate_numbers_and_timestamps(tmp_path, decoder):
    times = np.cumsum([0] + [90 if i % 3 == 0 else 40 for i in range(1, 30)])  # milliseconds
    path = write_video(tmp_path / "vfr.mp4", 30, frame_times_ms=list(times))
    wanted = [0, 5, 6, 7, 20, 29]
    images, seconds, n_frames = decode_video(path, wanted, 640, decoder=decoder)
    assert n_frames == 30
    assert [read_number(images[f]) for f in wanted] == wanted
    assert [seconds[f] for f in wanted] == pytest.approx([times[f] / 1000 for f in wanted])


def test_both_decoders_write_identical_shards_and_failure_reports(tmp_path, monkeypatch):
    import fas.extract as extract

    root, index, params = _dataset(tmp_path)  # B-frames, a cut file, bad files, a pair
    processes = []
    real = extract.decode_ffmpeg
    monkeypatch.setattr(extract, "decode_ffmpeg", lambda *a: processes.append(a[0]) or real(*a))
    shards, reports = {}, {}
    for decoder in DECODERS:
        params_d = write_params(tmp_path / f"params-{decoder}.yaml",
                                extract={**load_params(params)["extract"], "decoder": decoder})
        out = tmp_path / f"{decoder}.parquet"
        assert _extract(root, index, params_d, out) == 0
        shards[decoder] = out.read_bytes()
        entries = json.loads(Path(f"{out}.failures.json").read_text())["entries"]
        reports[decoder] = sorted((e["path"], e["reason"], e["action"]) for e in entries)
    assert shards["pyav"] == shards["ffmpeg"]  # same frames, pixels, timestamps, flags
    assert reports["pyav"] == reports["ffmpeg"]
    assert len(processes) == 6  # a, b, c, cut and pair's two: one ffmpeg per video and modality
    assert len(pq.read_table(tmp_path / "ffmpeg.parquet")) == 6 * 8 + 16  # and f1: 2 x 8


@pytest.mark.parametrize("grey", [False, True])
def test_decoders_give_identical_pixels_of_a_downscaled_420_video(tmp_path, grey):
    path = write_video(tmp_path / "v.mp4", 40, gop=12, height=96, width=160, codec="mpeg4")
    wanted = [0, 5, 13, 14, 15, 39]
    ours = decode_video(path, wanted, 100, grey, "pyav")
    theirs = decode_video(path, wanted, 100, grey, "ffmpeg")
    assert ours[1] == theirs[1] and ours[2] == theirs[2] == 40
    for number in wanted:
        assert ours[0][number].shape == (60, 100) + (() if grey else (3,))
        assert np.array_equal(ours[0][number], theirs[0][number])
        assert theirs[0][number].flags.writeable


def test_decoders_agree_on_a_truncated_file(tmp_path):
    path = write_video(tmp_path / "cut.mp4", 40, gop=10, faststart=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    ours = decode_video(path, list(range(40)), 640, decoder="pyav")
    theirs = decode_video(path, list(range(40)), 640, decoder="ffmpeg")
    assert 10 < ours[2] == theirs[2] < 40 and sorted(ours[0]) == list(range(ours[2]))
    assert ours[1] == theirs[1]
    for number, image in ours[0].items():
        assert read_number(image) == number and np.array_equal(image, theirs[0][number])


def test_ffmpeg_stderr_goes_into_the_reason_of_an_undecodable_video(tmp_path):
    path = write_video(tmp_path / "v.mp4", 30, gop=30, faststart=True)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = bytes(len(data) - start)  # packets intact, bitstream zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="undecodable") as error:
        decode_video(path, [0, 29], 640, decoder="ffmpeg")
    assert "ffmpeg failed: [h264] Invalid NAL unit size" in error.value.reason
    assert " @ 0x" not in error.value.reason  # no memory addresses: reports are reproducible


def test_select_expression_and_unknown_decoder(tmp_path):
    assert select_expression([0, 1, 2, 7, 9, 10]) == "between(n,0,2)+eq(n,7)+between(n,9,10)"
    with pytest.raises(ValueError, match="pyav | ffmpeg"):
        decode_video(write_video(tmp_path / "v.mp4", 3), [0], 640, decoder="opencv")
