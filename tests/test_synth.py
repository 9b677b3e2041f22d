"""`fas synth`: tiny trees in the real layouts, determinism, atomic writes, the cues."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fas.synth import DATASETS, generate as gen
from fas.synth.generate import generate

SEED = 3


class TinyTrees:
    """Tiny datasets under one folder, each generated on first use in the session."""

    def __init__(self, root: Path, layout_only: bool):
        self.root, self.layout_only = root, layout_only

    def __truediv__(self, rel: str) -> Path:
        dataset = Path(rel).parts[0]
        if not (self.root / dataset / "synth.json").exists():
            generate(dataset, self.root / dataset, "tiny", SEED, 0.3, self.layout_only, workers=2)
        return self.root / rel


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyTrees:
    """Rendered tiny trees (media with content)."""
    return TinyTrees(tmp_path_factory.mktemp("synth"), layout_only=False)


@pytest.fixture(scope="session")
def tiny_layout(tmp_path_factory) -> TinyTrees:
    """Tiny trees with placeholder media: names and lists only, fast."""
    return TinyTrees(tmp_path_factory.mktemp("layout"), layout_only=True)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_synth_json_records_the_run(tiny):
    summary = json.loads((tiny / "msu" / "synth.json").read_text())
    assert summary["scale"] == "tiny" and summary["seed"] == SEED and summary["difficulty"] == 0.3
    assert summary["generator_version"] and summary["videos"] == 16 and summary["live_videos"] == 4


def test_cefa_paths_and_label_polarity(tiny):
    root = tiny / "cefa"
    assert (root / "CASIA_CeFA/Ethnicity/AF/AF-000/1_000_1_1_1/depth/0001.jpg").is_file()
    assert (root / "CASIA_CeFA/Ethnicity/EA/EA-300/3_300_3_2_2/ir/0006.jpg").is_file()
    proto = root / "CASIA_CeFA/protocol"
    train = lines(proto / "CASIA_CeFA@p1.1_video_train.txt")
    assert "CASIA_CeFA/Ethnicity/AF/AF-000/1_000_1_1_1/color 0" in train  # live = 0
    assert "CASIA_CeFA/Ethnicity/AF/AF-000/1_000_3_1_4/color 1" in train  # screen = 1
    assert all(line.split("/")[2] == "AF" for line in train)
    test = lines(proto / "CASIA_CeFA@p1.1_video_test.txt")
    assert {line.split("/")[2] for line in test if "/Ethnicity/" in line} == {"CA", "EA"}
    assert any(line.startswith("CASIA_CeFA/Mask/3D-Mask/000/1_000_") and line.endswith("/color 1") for line in test)
    image = lines(proto / "CASIA_CeFA@p1.1_image_train.txt")
    assert image[0] == train[0].replace("/color ", "/color/0001.jpg ")
    assert len(image) == 6 * len(train)  # image lists name every frame (6 at tiny scale)
    p3 = lines(proto / "CASIA_CeFA@p3.1_video_test.txt")
    assert {line.split()[0].rsplit("/", 1)[1] for line in p3} == {"depth", "ir"}
    # P4: train real + screen only, test real + cloth only (+ masks).
    p4_train = {line.split()[0].split("/")[4].rsplit("_", 1)[1] for line in lines(proto / "CASIA_CeFA@p4.1_video_train.txt")}
    assert p4_train == {"1", "4"}
    for line in lines(proto / "CASIA_CeFA@p2.1_video_test.txt"):
        assert (root / line.split()[0] / "0001.jpg").is_file()


def test_every_cefa_list_has_both_classes(tiny):
    proto = tiny / "cefa/CASIA_CeFA/protocol"
    lists = sorted(proto.glob("*.txt"))
    assert len(lists) == 11 * 3 * 2  # 11 sub-protocols x 3 splits x video/image
    for path in lists:
        assert {line.rsplit(" ", 1)[1] for line in lines(path)} == {"0", "1"}, path.name


def test_cefa_challenge_release(tiny):
    root = tiny / "cefa" / "challenge"
    train = lines(root / "4@1_train.txt")
    assert train[0] == "train/1_000_1_1_1/profile/0001.jpg 1"  # label 1 = real
    assert "train/1_000_3_1_4/profile/0001.jpg 0" in train
    assert all(line.startswith("train/1_") for line in train)  # 4@1: AF only
    assert len(train) == 2 * 2 * 6  # 2 subjects x (real, screen) x 6 frames
    ref = lines(root / "4@1_dev_ref.txt")
    assert ref[0] == "dev/003000 1" and {line.split()[1] for line in ref} == {"0", "1"}
    assert lines(root / "4@1_dev_res.txt") == [line.split()[0] for line in ref]
    # Test ids as released: CA from test/000001, then EA, AF, then videos shared by the three folds.
    tests = [set(lines(root / f"4@{k}_test_res.txt")) for k in (1, 2, 3)]
    assert min(tests[0]) == "test/000001" and len(tests[0] & tests[1] & tests[2]) == 1
    for rel in lines(root / "4@2_test_res.txt") + [line.split()[0] for line in ref]:
        assert (root / rel / "profile/0001.jpg").is_file() and (root / rel / "ir/0001.jpg").is_file()


def test_surf_layout(tiny):
    root = tiny / "surf" / "Data"
    assert (root / "Training/real_part/CLKJ_BS0001/real.rssdk/color/0001.jpg").is_file()
    fakes = {p.name for p in root.glob("Training/fake_part/*/*.rssdk")}
    assert fakes == {"04_en_b.rssdk", "05_enm_s.rssdk", "06_enm_b.rssdk"}
    assert {p.name for p in root.glob("Testing/fake_part/*/*.rssdk")} == {"01_e_s.rssdk", "02_e_b.rssdk", "03_en_s.rssdk"}
    first = lines(root / "train_list.txt")[0].split()
    assert first[-1] == "1" and first[1].endswith("/depth/0001.jpg")
    assert all((root / path).is_file() for line in lines(root / "val_private_list.txt") for path in line.split()[:3])


def test_oulu_protocol_lines(tiny_layout):
    root = tiny_layout / "oulu"
    for split in ("Train", "Dev", "Test"):
        for path in root.glob(f"Protocols/Protocol_*/{split}*.txt"):
            entries = [line.split(",") for line in lines(path)]
            assert {label for label, _ in entries} == {"+1", "-1", "-2"}, path
            for label, vid in entries:
                file = int(vid.rsplit("_", 1)[1])
                assert label == {1: "+1", 2: "-1", 3: "-1", 4: "-2", 5: "-2"}[file]
                assert (root / f"{split}_files/{vid}.avi").is_file()
    assert len(list(root.glob("Protocols/Protocol_3/*.txt"))) == 18
    # Protocol 1 tests on session 3 only; Protocol 2 on files 1, 3, 5.
    assert {line.split(",")[1].split("_")[1] for line in lines(root / "Protocols/Protocol_1/Test.txt")} == {"3"}
    assert {line[-1] for line in lines(root / "Protocols/Protocol_2/Test.txt")} == {"1", "3", "5"}


def test_video_dataset_paths(tiny_layout):
    tiny = tiny_layout
    assert (tiny / "siw/Train/live/001/001-1-1-1-1.mov").is_file()
    assert (tiny / "siw/Test/spoof/091/091-1-3-4-1.mov").is_file()
    assert len(list((tiny / "siw").rglob("*.mov"))) == 2 * (4 + 2 + 4)
    assert (tiny / "replay/train/real/client001_session01_webcam_authenticate_controlled_1.mov").is_file()
    attack = "train/attack/hand/attack_highdef_client001_session01_highdef_video_controlled"
    assert (tiny / f"replay/{attack}.mov").is_file()
    assert lines(tiny / f"replay/face-locations/{attack}.face")[0].startswith("0 ")
    assert list((tiny / "replay/enroll").rglob("*.mov"))
    assert (tiny / "msu/real/real_client002_android_SD_scene01.mp4").is_file()
    assert (tiny / "msu/attack/attack_client001_laptop_SD_printed_photo_scene01.mov").is_file()
    assert lines(tiny / "msu/train_sub_list.txt") == ["02"] and lines(tiny / "msu/test_sub_list.txt") == ["01"]
    names = {p.name for p in (tiny / "casia_fasd/test_release/1").iterdir()}
    assert names == {f"{n}.avi" for n in (*range(1, 9), "HR_1", "HR_2", "HR_3", "HR_4")}


@pytest.mark.parametrize("path, frames, size", [
    ("msu/real/real_client002_android_SD_scene01.mp4", 8, (160, 120)),
    ("msu/real/real_client002_laptop_SD_scene01.mov", 8, (160, 120)),
    ("casia_fasd/train_release/1/HR_4.avi", 8, (224, 168)),
])
def test_videos_decode(tiny, path, frames, size):
    with av.open(str(tiny / path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == frames and decoded[0].shape == (size[1], size[0], 3)


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for dataset in ("msu", "surf", "casia_fasd"):  # .mp4/.mov (H.264), JPEG folders, .avi (MJPEG)
        a = generate(dataset, tmp_path / "a" / dataset, "tiny", 1, 0.5, workers=2)
        b = generate(dataset, tmp_path / "b" / dataset, "tiny", 1, 0.5, workers=1)
        c = generate(dataset, tmp_path / "c" / dataset, "tiny", 2, 0.5, workers=2)
        assert a["files"] == b["files"] == c["files"]
        da, db, dc = (tree_digest(tmp_path / x / dataset) for x in "abc")
        assert da == db
        media = [k for k in da if k.endswith((".mov", ".mp4", ".jpg", ".avi"))]
        assert media and all(da[k] != dc[k] for k in media)


def test_failed_run_leaves_previous_tree(tmp_path, monkeypatch):
    out = tmp_path / "msu"
    generate("msu", out, "tiny", 0, 0.5, layout_only=True)
    before = tree_digest(out)

    def broken(job, item):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "write_item", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        generate("msu", out, "tiny", 0, 0.5)
    assert tree_digest(out) == before


def test_difficulty_out_of_range_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="difficulty"):
        generate("msu", tmp_path / "x", "tiny", 0, 1.5)


def test_cli_all_layout_only(tmp_path):
    from fas.cli import main

    assert main(["synth", "all", "--out", str(tmp_path), "--scale", "tiny", "--seed", "4", "--layout-only"]) == 0
    for dataset in DATASETS:
        summary = json.loads((tmp_path / dataset / "synth.json").read_text())
        assert summary["seed"] == 4 and summary["layout_only"]


def _grey(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)


def test_depth_and_ir_cues_separate_live_from_spoof(tiny):
    """Live faces are curved and bright in IR; prints and screens are flat; screens are dark in IR."""
    root = tiny / "cefa/CASIA_CeFA/Ethnicity"
    stats = {}
    for folder in root.glob("*/*/*"):
        pai = folder.name.rsplit("_", 1)[1]
        depth = _grey(folder / "depth/0003.jpg")
        ir = _grey(folder / "ir/0003.jpg")
        face = depth > 20
        stats.setdefault(pai, []).append((depth[face].std(), ir[face].mean()))
    live = np.array(stats["1"])
    cloth, screen = np.array(stats["2"]), np.array(stats["4"])
    assert live[:, 0].min() > max(cloth[:, 0].max(), screen[:, 0].max())  # face-shaped depth
    assert screen[:, 1].max() < live[:, 1].min()  # screens emit no IR


def test_blinks_move_live_faces_but_not_masks(tiny):
    """Non-rigid motion: frame-to-frame change inside the eye band is larger for live faces."""
    def eye_motion(folder: Path) -> float:
        frames = [_grey(folder / f"color/{i:04d}.jpg") for i in range(1, 7)]
        return float(np.mean([np.abs(a - b)[10:28].mean() for a, b in zip(frames, frames[1:])]))

    root = tiny / "cefa/CASIA_CeFA"
    live = [eye_motion(f) for f in root.glob("Ethnicity/*/*/*_1")]
    masks = [eye_motion(f) for f in root.glob("Mask/*/*/*")]
    assert np.mean(live) > np.mean(masks)
