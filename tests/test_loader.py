"""The cache datasets: sample contents, determinism, worker split, clips."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from fas.cache import image_row, pixel_locations, write_shard
from fas.paths import Shard, shard_file
from fas.dynamic import video_dynamic_rows
from fas.loader import ClipSamples, SDNetSamples


def _image(video, modality, frame, channels):
    """A deterministic image whose first pixel encodes (video number, frame)."""
    rng = np.random.default_rng([video, frame, channels])
    image = rng.integers(0, 256, (4, 5, channels), dtype=np.uint8)
    image[0, 0, 0], image[0, 1, 0] = video, frame
    return image


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Two shards; 5 videos of two clips of 8 frames, colour and grey depth."""
    root = tmp_path_factory.mktemp("cache")
    frames = list(range(8)) + list(range(20, 28))
    static = {0: [], 1: []}
    for video in range(5):
        rows = []
        for modality, channels in [("color", 3), ("depth", 1)]:
            for position, frame in enumerate(frames):
                rows.append(image_row(f"v{video}", modality, "static", position,
                                      _image(video, modality, frame, channels),
                                      source_frames=[frame], timestamps=[frame / 25],
                                      labels={"is_live": video % 2 == 0, "pai": "live" if video % 2 == 0 else "print",
                                              "subject": "s"}))
        static[video % 2] += rows
    for shard, rows in static.items():
        write_shard(shard_file(root, "static", Shard(shard, 2)), rows, 6)
        for row in rows:
            row["image"] = np.frombuffer(row["pixels"], np.uint8).reshape(
                row["height"], row["width"], row["channels"]).squeeze()
        dynamic = []
        for video in sorted({r["video_id"] for r in rows}):
            dynamic += video_dynamic_rows(video, [r for r in rows if r["video_id"] == video], 4, 4)
        write_shard(shard_file(root, "dynamic", Shard(shard, 2)), dynamic, 3)
    return root


def _keys(dataset):
    return [(s["video_id"], s["index"]) for s in dataset]


def test_sdnet_samples_hold_the_window_centre_and_its_dynamic_image(cache):
    samples = SDNetSamples(cache, None, ["color", "depth"], shuffle=False, seed=0)
    got = list(samples)
    assert len(got) == len(samples) == 5 * 4
    assert _keys(got) == [(f"v{v}", i) for v in (0, 2, 4, 1, 3) for i in range(4)]  # shard order
    first = got[1]  # v0, window 1: frames 4..7, centre 6
    assert first["static"]["color"].shape == (3, 4, 5) and first["static"]["color"].dtype == torch.uint8
    assert first["static"]["color"][0, 0, 1] == 6
    assert torch.equal(first["static"]["color"], torch.from_numpy(_image(0, "color", 6, 3)).permute(2, 0, 1))
    depth = first["static"]["depth"]
    assert torch.equal(depth[0], depth[2]) and depth[0, 0, 1] == 6
    assert first["dynamic"]["depth"].shape == (3, 4, 5)
    assert first["is_live"] is True and first["pai"] == "live"


def test_shuffle_is_deterministic_per_seed_and_epoch(cache):
    def order(seed, epoch):
        samples = SDNetSamples(cache, None, ["color"], shuffle=True, seed=seed, buffer_size=4)
        samples.set_epoch(epoch)
        return _keys(samples)

    base = order(0, 0)
    assert base == order(0, 0)
    assert base != order(0, 1) and base != order(1, 0)
    assert sorted(base) == sorted(order(0, 1)) and len(set(base)) == 20


def test_workers_split_row_groups_without_duplicates(cache):
    samples = SDNetSamples(cache, ["v1", "v2", "v3", "v9"], ["color", "depth"], shuffle=True, seed=3,
                           buffer_size=3)
    assert samples.missing_video_ids == ["v9"]
    loader = DataLoader(samples, batch_size=4, num_workers=2)
    seen = []
    for batch in loader:
        assert batch["static"]["depth"].shape[1:] == (3, 4, 5)
        assert batch["is_live"].dtype == torch.bool
        seen += list(zip(batch["video_id"], batch["index"].tolist()))
    assert sorted(seen) == [(f"v{v}", i) for v in (1, 2, 3) for i in range(4)]


def _stored(cache, kind):
    """Every stored image of one kind of shard by (video_id, modality, index), with its source
    frames, read with pyarrow alone."""
    stored = {}
    for path in sorted(cache.glob(f"{kind}-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            shape = row["height"], row["width"], row["channels"]
            image = np.frombuffer(row["pixels"], np.uint8).reshape(shape)
            stored[row["video_id"], row["modality"], row["index"]] = (row["source_frames"], image)
    return stored


def _as_chw(image):
    """HxWxC (C 1 or 3) as the loader gives it: [3, H, W], grey repeated."""
    return torch.from_numpy(np.repeat(image, 3 // image.shape[2], axis=2).transpose(2, 0, 1).copy())


def test_samples_hold_the_stored_pixels_in_a_fixed_order(cache):
    """Every pixel against the shards read independently, and the order of a seeded shuffle as
    recorded (training results depend on both): over two workers for SD-Net, in-process for clips."""
    static, dynamic = _stored(cache, "static"), _stored(cache, "dynamic")
    samples = SDNetSamples(cache, None, ["color", "depth"], shuffle=True, seed=3, buffer_size=3)
    samples.set_epoch(1)
    got = list(DataLoader(samples, batch_size=None, num_workers=2))
    assert [(s["video_id"], int(s["index"])) for s in got] == [
        ("v2", 2), ("v3", 0), ("v2", 1), ("v3", 1), ("v2", 0), ("v3", 3), ("v2", 3), ("v4", 1), ("v0", 1),
        ("v3", 2), ("v0", 0), ("v4", 2), ("v1", 0), ("v4", 0), ("v0", 3), ("v4", 3), ("v1", 2), ("v1", 1),
        ("v0", 2), ("v1", 3)]
    for sample in got:
        for modality in ("color", "depth"):
            frames, window = dynamic[sample["video_id"], modality, int(sample["index"])]
            assert torch.equal(sample["dynamic"][modality], _as_chw(window))
            video, centre = sample["video_id"], frames[len(frames) // 2]
            position = min(index for (v, m, index), (source, _) in static.items()
                           if (v, m) == (video, modality) and source[0] == centre)
            assert torch.equal(sample["static"][modality], _as_chw(static[video, modality, position][1]))
    clips = list(ClipSamples(cache, None, 3, shuffle=True, seed=1, buffer_size=2))
    assert [(c["video_id"], c["index"]) for c in clips] == [
        ("v3", 0), ("v3", 1), ("v3", 3), ("v3", 2), ("v0", 1), ("v0", 2), ("v0", 3), ("v2", 0), ("v2", 1),
        ("v0", 0), ("v2", 2), ("v4", 0), ("v2", 3), ("v4", 2), ("v4", 3), ("v1", 0), ("v4", 1), ("v1", 1),
        ("v1", 2), ("v1", 3)]
    for clip in clips:  # two runs of 8 frames: clips start at positions 0 and 3 of each run
        first = 8 * (clip["index"] // 2) + 3 * (clip["index"] % 2)
        assert clip["frames"].is_contiguous()
        stored = [static[clip["video_id"], "color", position][1] for position in range(first, first + 3)]
        assert torch.equal(clip["frames"], torch.stack([_as_chw(image) for image in stored]))


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_shards_stored_otherwise_give_the_same_samples(cache, tmp_path):
    """Compressed shards (pixels not in place: read through Arrow) give the same samples."""
    for path in cache.glob("*.parquet"):
        handle = pq.ParquetFile(path)
        pq.write_table(handle.read(), tmp_path / path.name, compression="zstd",
                       row_group_size=handle.metadata.row_group(0).num_rows)
    assert pixel_locations(tmp_path / "static-0-of-2.parquet") is None
    for open_samples in [
            lambda root: SDNetSamples(root, None, ["color", "depth"], shuffle=True, seed=2, buffer_size=3),
            lambda root: ClipSamples(root, None, 3, shuffle=True, seed=2, buffer_size=2)]:
        want, got = [list(DataLoader(open_samples(root), batch_size=None, num_workers=2))
                     for root in (cache, tmp_path)]
        assert len(got) == len(want) == 20 and all(_same(g, w) for g, w in zip(got, want))


def test_clips_are_consecutive_frames_of_the_colour_stream(cache):
    clips = ClipSamples(cache, ["v4"], 8, shuffle=False, seed=0)
    got = list(clips)
    assert [c["index"] for c in got] == [0, 1]
    assert got[1]["frames"].shape == (8, 3, 4, 5)
    assert got[1]["frames"][:, 0, 0, 1].tolist() == list(range(20, 28))
    assert got[0]["fps"] == pytest.approx(25.0)
    assert len(ClipSamples(cache, ["v4"], 3, shuffle=False, seed=0)) == 4  # 2 per run of 8
    with pytest.raises(FileNotFoundError, match="no static.*run `fas align`"):
        ClipSamples(cache / "missing", None, 8, shuffle=False, seed=0)
    with pytest.raises(FileNotFoundError, match="no magnified.*run `fas magnify`"):
        ClipSamples(cache, None, 8, shuffle=False, seed=0, frames_kind="magnified")


def test_extract_align_dynamic_then_load(tmp_path):
    """The three stages chained through their commands, read back by both datasets; aligning
    straight from the dataset writes the same static shard as aligning extracted frames."""
    from fas.cli import main as fas_main
    from preprocess_media import manifest_row, write_index, write_params, write_video

    root = tmp_path / "root"
    root.mkdir()
    for name in ("a", "b"):
        write_video(root / f"{name}.mp4", 40)
    index = write_index(tmp_path / "index", [manifest_row("a", color="a.mp4"),
                                             manifest_row("b", color="b.mp4", is_live=False, pai="replay")])
    params = write_params(tmp_path / "params.yaml",
                          extract={"sampling": {"demo": {"mode": "clips", "n_clips": 2, "clip_len": 8}}},
                          align={"crop_size": {"demo": {"default": 16}}, "backend": {"default": "precropped"}},
                          dynamic={"window": 4, "stride": {"demo": 4}})
    cache = tmp_path / "cache"
    for i in range(2):
        shard = ["--shard", f"{i}/2", "--params", str(params)]
        frames = tmp_path / f"frames-{i}.parquet"
        assert fas_main(["extract", "test", "--index", str(index), "--root", str(root),
                         "--out", str(frames), *shard]) == 0
        assert fas_main(["align", "test", "--frames", str(frames), "--index", str(index),
                         "--root", str(root), "--out", str(cache / f"static-{i}-of-2.parquet"), *shard]) == 0
        assert fas_main(["dynamic", "test", "--static", str(cache / f"static-{i}-of-2.parquet"),
                         "--out", str(cache / f"dynamic-{i}-of-2.parquet"), *shard]) == 0
        in_memory = tmp_path / f"in-memory-{i}.parquet"  # the pipeline's way: no frames file
        assert fas_main(["align", "test", "--index", str(index), "--root", str(root),
                         "--out", str(in_memory), *shard]) == 0
        assert in_memory.read_bytes() == (cache / f"static-{i}-of-2.parquet").read_bytes()
    samples = list(SDNetSamples(cache, None, ["color"], shuffle=True, seed=0))
    assert sorted((s["video_id"], s["index"]) for s in samples) == [
        (v, i) for v in ("a", "b") for i in range(4)]
    assert {s["video_id"]: s["pai"] for s in samples} == {"a": "live", "b": "replay"}
    clips = list(ClipSamples(cache, None, 8, shuffle=False, seed=0))
    assert len(clips) == 4 and clips[0]["frames"].shape == (8, 3, 16, 16)
    assert clips[0]["fps"] == pytest.approx(25.0)


def test_sdnet_samples_need_both_kinds_of_shard(cache, tmp_path):
    import shutil

    for path in cache.glob("dynamic-*.parquet"):
        shutil.copy(path, tmp_path / path.name)
    with pytest.raises(FileNotFoundError, match="no static-"):
        SDNetSamples(tmp_path, None, ["color"], shuffle=False, seed=0)
