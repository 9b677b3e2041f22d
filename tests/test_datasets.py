"""`fas index` on hand-written trees: counts per protocol/split/class, labels, schemas, determinism."""

from collections import Counter

import pyarrow.parquet as pq
import pytest

from fas.cli import main
from fas.datasets.base import MANIFEST_SCHEMA, PROTOCOL_SCHEMA
from fas.datasets.cli import index_dataset
from fixtures import dataset_trees as trees


def counts(protocols, protocol):
    """(fold, split) -> number of rows of one protocol."""
    return dict(Counter((r["fold"], r["split"]) for r in protocols if r["protocol"] == protocol))


def classes(manifest, protocols, protocol, fold, split):
    """(live, attack) counts of one protocol split."""
    live = {m["video_id"]: m["is_live"] for m in manifest}
    rows = [r for r in protocols if (r["protocol"], r["fold"], r["split"]) == (protocol, fold, split)]
    return sum(live[r["video_id"]] for r in rows), sum(not live[r["video_id"]] for r in rows)


def index(name, root):
    manifest, protocols, report = index_dataset(name, root)
    return manifest, protocols, report


def test_cefa_lists_decide_membership_and_manifest_covers_the_disk(tmp_path):
    facts = trees.cefa_tree(tmp_path)
    manifest, protocols, report = index("cefa", tmp_path)
    assert report.entries == []
    # 3 ethnicities x 5 subjects x (4 listed + 1 unlisted) videos + 3 masks.
    assert len(manifest) == 3 * 5 * 5 + 3
    listed = {r["video_id"] for r in protocols}
    unlisted = [m["video_id"] for m in manifest if m["device"] == "mp4" and m["ethnicity"]]  # device-2 videos: on disk, in no list
    assert len(unlisted) == 15 and not listed & set(unlisted)
    n_train, n_dev, n_test = (len(facts["subjects"][s]) for s in ("train", "dev", "test"))
    for protocol, per_subject_train, per_subject_test, races_train in (("p1", 4, 4, 1), ("p4", 2, 3, 1)):
        expected = {(f, "train"): races_train * n_train * per_subject_train for f in (1, 2, 3)}
        expected |= {(f, "dev"): races_train * n_dev * per_subject_train for f in (1, 2, 3)}
        expected |= {(f, "test"): 2 * n_test * per_subject_test + 3 for f in (1, 2, 3)}
        assert counts(protocols, protocol) == expected
    # P4 trains on real + screen, tests on real + cloth prints (+ masks).
    assert classes(manifest, protocols, "p4", 1, "train") == (n_train, n_train)
    assert classes(manifest, protocols, "p4", 1, "test") == (2 * n_test, 2 * n_test * 2 + 3)
    pais = Counter(m["pai"] for m in manifest)
    assert pais["mask_3d"] + pais["mask_silicone"] == 3 and pais["cloth"] == 2 * 15 and pais["replay"] == 15
    assert counts(protocols, "p2") == {(1, "train"): 18, (1, "dev"): 9, (1, "test"): 15,
                                       (2, "train"): 12, (2, "dev"): 6, (2, "test"): 21}


def test_cefa_p3_carries_modalities_per_split(tmp_path):
    trees.cefa_tree(tmp_path)
    _, protocols, _ = index("cefa", tmp_path)
    seen = {(r["fold"], r["split"]): tuple(r["modalities"]) for r in protocols if r["protocol"] == "p3"}
    assert seen == {(1, "train"): ("color",), (1, "dev"): ("color",), (1, "test"): ("depth", "ir"),
                    (2, "train"): ("depth",), (2, "dev"): ("depth",), (2, "test"): ("color", "ir"),
                    (3, "train"): ("ir",), (3, "dev"): ("ir",), (3, "test"): ("color", "depth")}
    assert all(r["modalities"] is None for r in protocols if r["protocol"] != "p3")


def test_cefa_challenge_labels_one_is_real(tmp_path):
    trees.cefa_tree(tmp_path, n_masks=0)
    facts = trees.cefa_challenge_tree(tmp_path / "challenge")
    manifest, protocols, report = index("cefa", tmp_path)
    videos = {m["video_id"]: m for m in manifest}
    assert videos["challenge/dev/003000"]["is_live"] and not videos["challenge/dev/003001"]["is_live"]
    assert videos["challenge/train/1_031_3_1_4"]["pai"] == "replay"
    assert videos["challenge/train/1_031_1_1_1"]["path_color"] == "challenge/train/1_031_1_1_1/profile"
    assert counts(protocols, "challenge4") == {(f, s): n for f in (1, 2, 3)
                                               for s, n in (("train", len(facts["train"])), ("dev", 3))}
    # The test videos have no published labels: reported, not silently guessed.
    assert [(e["path"], e["action"]) for e in report.entries] == [("challenge/test/004000", "unlabelled")]


def test_surf_train_uses_attacks_4_to_6(tmp_path):
    trees.surf_tree(tmp_path, all_attacks=True)
    manifest, protocols, report = index("surf", tmp_path)
    assert report.entries == [] and len(manifest) == 5 * 7
    assert counts(protocols, "main") == {(1, "train"): 2 * 4, (1, "dev"): 1 * 4, (1, "test"): 2 * 4}
    train_pais = {m["pai"] for m in manifest
                  if m["video_id"] in {r["video_id"] for r in protocols if r["split"] == "train"}}
    assert train_pais == {"live", "cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat", "cut_eyes_nose_mouth_curved"}
    assert all(m["path_depth"].endswith(".rssdk/depth") for m in manifest)


def test_surf_challenge_release_training_folders_and_flattened_frames(tmp_path):
    """CVPR 2019 challenge: Training video folders listed frame by frame, Val/Testing single
    frames `Val/0000/000000-color.jpg`; lines `<color> <depth> <ir> <label>`, 1 = real."""
    trees.surf_tree(tmp_path, subjects={"Training": 1})
    release = tmp_path / "Data"  # holds Training/, as the challenge release does
    train = [f"Training/{p}/CLKJ_AS0001/{c}.rssdk" for p, c in (("real_part", "real"), ("fake_part", "04_en_b"))]
    trees.write_lines(release / "train_list.txt",
                      [" ".join(f"{v}/{m}/0001.jpg" for m in ("color", "depth", "ir"))
                       + f" {int(v.endswith('real.rssdk'))}"
                       for v in train])
    for folder, lists in (("Val", ("val_private_list.txt", "val_public_list.txt")),
                          ("Testing", ("test_private_list.txt",))):
        frames = [f"{folder}/0000/{n:06d}" for n in range(3)]
        for frame in frames:
            for m in ("color", "depth", "ir"):
                trees.touch(release / f"{frame}-{m}.jpg")
        for name in lists:
            label = "" if "public" in name else " {}"
            trees.write_lines(release / name, [" ".join(f"{f}-{m}.jpg" for m in ("color", "depth", "ir"))
                                               + label.format(int(f.endswith("1"))) for f in frames])
    manifest, protocols, report = index("surf", release)
    assert report.entries == []
    assert counts(protocols, "main") == {(1, "train"): 2, (1, "dev"): 3, (1, "test"): 3}
    assert classes(manifest, protocols, "main", 1, "test") == (1, 2)
    assert classes(manifest, protocols, "main", 1, "train") == (1, 1)
    assert {r["video_id"]: r["frames"] for r in protocols if r["split"] == "train"} == {v: ["0001.jpg"] for v in train}
    flat = next(m for m in manifest if m["video_id"] == "Val/0000/000001")
    assert (flat["media"], flat["path_ir"], flat["is_live"], flat["subject"]) == (
        "image", "Val/0000/000001-ir.jpg", True, None)


def test_oulu_protocols_follow_the_lists_and_pai_comes_from_the_file_field(tmp_path):
    trees.oulu_tree(tmp_path)  # users: 2 train, 1 dev, 1 test; 6 phones x 3 sessions x 5 files
    manifest, protocols, report = index("oulu", tmp_path)
    assert report.entries == [] and len(manifest) == 4 * 90
    per_user = 6 * 3 * 5
    assert counts(protocols, "p1") == {(1, "train"): 2 * per_user * 2 // 3, (1, "dev"): per_user * 2 // 3,
                                       (1, "test"): per_user // 3}
    assert counts(protocols, "p3")[(4, "test")] == per_user // 6
    assert counts(protocols, "p4")[(6, "train")] == 2 * 5 * 2 * 3
    assert classes(manifest, protocols, "p2", 1, "test") == (18, 36)
    assert Counter(m["pai"] for m in manifest) == {"live": 72, "print": 144, "replay": 144}


def test_siw_derived_protocols(tmp_path):
    trees.siw_tree(tmp_path)  # 2 train subjects, 1 test; 2 live, 2 print, 4 replay each
    manifest, protocols, report = index("siw", tmp_path)
    assert report.entries == [] and len(manifest) == 3 * 8
    assert counts(protocols, "p1") == {(1, "train"): 16, (1, "test"): 8}
    assert {r["max_frames"] for r in protocols if r["protocol"] == "p1" and r["split"] == "train"} == {60}
    assert {r["max_frames"] for r in protocols if not (r["protocol"] == "p1" and r["split"] == "train")} == {None}
    assert counts(protocols, "p2") == {(f, s): n for f in (1, 2, 3, 4) for s, n in (("train", 10), ("test", 3))}
    test_media = {m["medium"] for m in manifest if not m["is_live"] and m["video_id"] in
                  {r["video_id"] for r in protocols if (r["protocol"], r["fold"], r["split"]) == ("p2", 2, "test")}}
    assert test_media == {"iphone_7_plus"}
    assert classes(manifest, protocols, "p3", 1, "train") == (4, 4)  # live + print
    assert classes(manifest, protocols, "p3", 1, "test") == (2, 4)   # live + replay
    assert any(m["path_color"].endswith(".m.mov") for m in manifest)


def test_replay_grandtest_and_face_locations(tmp_path):
    trees.replay_tree(tmp_path)  # clients: 1 train, 1 devel, 2 test
    manifest, protocols, report = index("replay", tmp_path)
    assert report.entries == [] and len(manifest) == 4 * 24  # enrolment videos are not indexed
    assert counts(protocols, "grandtest") == {(1, "train"): 24, (1, "dev"): 24, (1, "test"): 48}
    assert classes(manifest, protocols, "grandtest", 1, "test") == (8, 40)
    assert all(m["path_annotation"] == f"face-locations/{m['video_id']}.face" for m in manifest)
    assert Counter(m["pai"] for m in manifest) == {"live": 16, "print": 16, "replay_mobile": 32,
                                                  "replay_highdef": 32}


def test_msu_subject_lists_no_dev(tmp_path):
    trees.msu_tree(tmp_path)  # train 2 clients, test 1, one client in no list
    manifest, protocols, report = index("msu", tmp_path)
    assert report.entries == [] and len(manifest) == 4 * 8
    assert counts(protocols, "standard") == {(1, "train"): 16, (1, "test"): 8}
    assert classes(manifest, protocols, "standard", 1, "train") == (4, 12)


def test_msu_as_released_lists_beside_scene01(tmp_path):
    """`MSU-MFSD/{train,test}_sub_list.txt` with the videos in `MSU-MFSD/scene01/{real,attack}/`."""
    trees.msu_tree(tmp_path / "scene01", unlisted=())
    for name in ("train_sub_list.txt", "test_sub_list.txt"):
        (tmp_path / "scene01" / name).rename(tmp_path / name)
    manifest, protocols, report = index("msu", tmp_path)
    assert report.entries == []
    assert counts(protocols, "standard") == {(1, "train"): 16, (1, "test"): 8}
    assert manifest[0]["video_id"].startswith("attack/") and manifest[0]["path_color"].startswith("scene01/attack/")


def test_casia_fasd_folders_no_dev(tmp_path):
    trees.casia_fasd_tree(tmp_path, train=2, test=3)
    manifest, protocols, report = index("casia_fasd", tmp_path)
    assert report.entries == [] and len(manifest) == 5 * 12
    assert counts(protocols, "standard") == {(1, "train"): 24, (1, "test"): 36}
    assert Counter(m["pai"] for m in manifest) == {"live": 15, "warped_photo": 15, "cut_photo": 15, "replay": 15}
    assert len({m["subject"] for m in manifest}) == 5  # train and test subject numbers are different people


@pytest.mark.parametrize("dataset, builder", [("cefa", trees.cefa_tree), ("oulu", trees.oulu_tree),
                                              ("replay", trees.replay_tree)])
def test_outputs_follow_the_schemas_and_are_byte_identical_on_rerun(tmp_path, dataset, builder):
    root = tmp_path / "root"
    builder(root)
    outputs = []
    for run in ("a", "b"):
        assert main(["index", dataset, "--root", str(root), "--out", str(tmp_path / run)]) == 0
        outputs.append({name: (tmp_path / run / name).read_bytes()
                        for name in ("manifest.parquet", "protocols.parquet", "skipped.json")})
    assert outputs[0] == outputs[1]
    manifest = pq.read_table(tmp_path / "a" / "manifest.parquet")
    protocols = pq.read_table(tmp_path / "a" / "protocols.parquet")
    assert manifest.schema.remove_metadata() == MANIFEST_SCHEMA
    assert protocols.schema.remove_metadata() == PROTOCOL_SCHEMA
    ids = manifest.column("video_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert set(protocols.column("video_id").to_pylist()) <= set(ids)
    assert set(manifest.column("dataset").to_pylist()) == {dataset}
    assert not any(f.name.endswith(".tmp") for f in (tmp_path / "a").iterdir())


def test_media_stamp_follows_the_files_on_disk(tmp_path):
    """A changed frame changes its video's stamp and no other: alignment, which reads
    only the manifest, then runs again for the data that changed (and only for it)."""
    root = tmp_path / "root"
    trees.cefa_tree(root)

    def stamps(run):
        assert main(["index", "cefa", "--root", str(root), "--out", str(tmp_path / run)]) == 0
        rows = pq.read_table(tmp_path / run / "manifest.parquet").to_pylist()
        return {row["video_id"]: row["media_stamp"] for row in rows}

    before = stamps("a")
    assert all(before.values())
    changed = min(before)
    row = next(r for r in pq.read_table(tmp_path / "a" / "manifest.parquet").to_pylist()
               if r["video_id"] == changed)
    frame = sorted((root / row["path_depth"]).iterdir())[0]
    frame.write_bytes(frame.read_bytes())  # written again, byte for byte: nothing to redo
    assert stamps("b") == before
    frame.write_bytes(frame.read_bytes() + b"\0")
    after = stamps("c")
    assert {v for v in before if before[v] != after[v]} == {changed}
