"""The adapters on trees built from samples of real, public list files (tests/fixtures/real_lists).

Every fixture names its repository, path and commit; the trees hold every path
the sampled lines name (placeholder media). Each test checks that every listed
video is indexed, in the split its list gives, with the class its list gives
under that list family's polarity, and nothing is skipped.
"""

from collections import Counter

from fas.cli import main
from fas.datasets.cli import index_dataset, index_root
from fixtures import real_trees as real
from fixtures.dataset_trees import cefa_tree, touch, write_lines


def skipped(report):
    return [(e["path"], e["reason"]) for e in report.entries if e["action"] == "skipped"]


def split_classes(manifest, protocols, protocol, fold=1):
    """split -> Counter(live/attack) of one protocol fold."""
    live = {m["video_id"]: m["is_live"] for m in manifest}
    out = {}
    for row in protocols:
        if (row["protocol"], row["fold"]) == (protocol, fold):
            out.setdefault(row["split"], Counter())["live" if live[row["video_id"]] else "attack"] += 1
    return out


def test_fixtures_cite_their_source():
    for path in real.LISTS.rglob("*.txt"):
        repo, rel, at, commit = real.source(path.relative_to(real.LISTS).as_posix()).split()[:4]
        assert "/" in repo and rel.endswith(".txt") and at == "@" and len(commit) == 40, path


# --- CASIA-SURF CeFA -----------------------------------------------------------

def test_cefa_authors_video_and_image_lists(tmp_path):
    listed = real.cefa_tree(tmp_path)
    manifest, protocols, report = index_dataset("cefa", tmp_path)
    assert skipped(report) == []
    stem = "CASIA_CeFA/protocol/CASIA_CeFA@"
    found = {("p1", s): split_classes(manifest, protocols, "p1")[s] for s in ("train", "dev", "test")}
    for split in ("train", "dev", "test"):  # live = 0 in the authors' lists
        assert found["p1", split] == real.classes(listed[f"{stem}p1.1_video_{split}.txt"], "0"), split
    assert found["p1", "test"] == {"live": 10, "attack": 31}  # 17 of the 41 sampled test lines are masks
    p4_train = {r["video_id"]: r["frames"] for r in protocols
                if (r["protocol"], r["fold"], r["split"]) == ("p4", 1, "train")}
    assert len(p4_train) == 20
    # The image list names every third frame of three of those videos: exactly those are recorded.
    image = Counter(line.split()[0].split("/color/")[0].removeprefix("CASIA_CeFA/")
                    for line in listed[f"{stem}p4.1_image_train.txt"])
    assert {v: len(f) for v, f in p4_train.items() if f is not None} == dict(image)
    assert p4_train["Ethnicity/AF/AF-120/1_120_1_1_1"][:3] == ["0001.jpg", "0004.jpg", "0007.jpg"]
    videos = {m["video_id"]: m for m in manifest}
    mask = videos["Mask/3D-Mask/073/1_073_1_0_2_1_2"]  # AcqDevice 2 of a mask folder is the D435i
    assert (mask["pai"], mask["device"]) == ("mask_3d", "D435i")
    assert mask["path_ir"] == "CASIA_CeFA/Mask/3D-Mask/073/1_073_1_0_2_1_2/ir"


def test_cefa_p3_image_lists_without_suffix_feed_the_three_folds(tmp_path):
    """The authors publish P3 only as `CASIA_CeFA@p3_image_<split>.txt` (no public copy: written in their form)."""
    facts = cefa_tree(tmp_path, protocols=False)
    proto = tmp_path / "CASIA_CeFA/protocol"
    real_video = "CASIA_CeFA/Ethnicity/{eth}/{eth}-{s:03d}/{race}_{s:03d}_1_1_1"
    screen = "CASIA_CeFA/Ethnicity/{eth}/{eth}-{s:03d}/{race}_{s:03d}_3_1_4"
    for split, modalities in (("train", ["color"]), ("dev", ["color"]), ("test", ["depth", "ir"])):
        lines = [f"{form.format(eth=eth, race=race, s=s)}/{m}/0001.jpg {label}"
                 for race, eth in ((1, "AF"), (2, "CA"), (3, "EA")) for s in facts["subjects"][split]
                 for form, label in ((real_video, 0), (screen, 1)) for m in modalities]
        write_lines(proto / f"CASIA_CeFA@p3_image_{split}.txt", lines)
    manifest, protocols, report = index_dataset("cefa", tmp_path)
    assert skipped(report) == []
    p3 = [r for r in protocols if r["protocol"] == "p3"]
    modalities = {(r["fold"], r["split"]): tuple(r["modalities"]) for r in p3}
    assert modalities == {(1, "train"): ("color",), (1, "dev"): ("color",), (1, "test"): ("depth", "ir"),
                          (2, "train"): ("depth",), (2, "dev"): ("depth",), (2, "test"): ("color", "ir"),
                          (3, "train"): ("ir",), (3, "dev"): ("ir",), (3, "test"): ("color", "depth")}
    assert Counter((r["fold"], r["split"]) for r in p3) == {(f, s): 3 * 2 * n for f in (1, 2, 3)
                                                           for s, n in (("train", 2), ("dev", 1), ("test", 2))}
    assert {tuple(r["frames"]) for r in p3} == {("0001.jpg",)}


def test_cefa_challenge_official_lists(tmp_path):
    listed = real.cefa_challenge_tree(tmp_path)
    indexed, report = index_root("cefa", tmp_path)
    assert skipped(report) == []
    ctx = indexed.context
    train = [r for r in indexed.protocols if r["protocol"] == "challenge4"]
    assert {(r["fold"], r["split"], r["video_id"]) for r in train} == {
        (1, "train", f"phase1/train/{v}") for v in ("1_186_3_1_4", "1_014_1_1_1", "1_093_3_1_4")}
    videos = {m["video_id"]: m for m in indexed.manifest}
    # label 1 = real in the challenge lists: it agrees with the PAI field of every name
    assert [videos[f"phase1/train/{v}"]["pai"] for v in ("1_014_1_1_1", "1_186_3_1_4")] == ["live", "replay"]
    # Dev labels are not in the public lists and test labels were never published:
    # listed, on disk, counted, never guessed.
    for fold in (1, 2, 3):
        for split, phase in (("dev", "phase1"), ("test", "phase2")):
            n = len(listed[f"{phase}/4@{fold}_{split}_res.txt"])
            assert ctx.listed_unlabelled["challenge4", fold, split] == n
    tests = [set(listed[f"phase2/4@{k}_test_res.txt"]) for k in (1, 2, 3)]
    shared = tests[0] & tests[1] & tests[2]
    assert len(shared) == 10 and all(len(t) == 22 for t in tests)  # 1,000 of 2,200 shared in the full lists
    unlabelled = {e["path"] for e in report.entries if e["action"] == "unlabelled"}
    assert unlabelled == {f"phase2/{t}" for t in set.union(*tests)} | {
        f"phase1/{d}" for k in (1, 2, 3) for d in listed[f"phase1/4@{k}_dev_res.txt"]}


# --- CASIA-SURF ------------------------------------------------------------------

def test_surf_authors_protocol_lists(tmp_path):
    listed = real.surf_tree(tmp_path)
    indexed, report = index_root("surf", tmp_path)
    assert skipped(report) == [] and indexed.context.releases == {"authors' lists"}
    found = split_classes(indexed.manifest, indexed.protocols, "main")
    stem = "CASIA_SURF/protocol/CASIA_SURF@p1_video_"
    for split in ("train", "dev", "test"):  # live = 0
        assert found[split] == real.classes(listed[f"{stem}{split}.txt"], "0"), split
    framed = {r["video_id"]: len(r["frames"]) for r in indexed.protocols if r["frames"] is not None}
    image_dev = listed["CASIA_SURF/protocol/CASIA_SURF@p1_image_dev.txt"]
    assert sorted(framed.values()) == sorted(Counter(line.split()[0].rsplit("/", 2)[0] for line in image_dev).values())
    assert all(v.startswith("Val/") for v in framed)


def test_surf_challenge_flattened_validation_frames(tmp_path):
    listed = real.surf_challenge_tree(tmp_path)
    manifest, protocols, report = index_dataset("surf", tmp_path)
    assert report.entries == []
    assert len(manifest) == len(listed) == 97
    first = next(m for m in manifest if m["video_id"] == "Val/0000/000000")
    assert (first["media"], first["path_depth"]) == ("image", "Val/0000/000000-depth.jpg")
    dev = split_classes(manifest, protocols, "main")["dev"]
    labels = Counter(line.split()[-1] for line in listed)
    assert dev == {"live": labels["1"], "attack": labels["0"]}  # label 1 = real


def test_surf_challenge_public_list_has_no_labels(tmp_path):
    real.surf_challenge_tree(tmp_path, public_only=True)
    indexed, report = index_root("surf", tmp_path)
    assert indexed.manifest == [] and indexed.context.listed_unlabelled == {("main", 1, "dev"): 97}
    assert {e["action"] for e in report.entries} == {"unlabelled"}


# --- the RGB datasets in their own layouts (names from the authors' unified lists) ---

def _membership(protocols, protocol):
    return {(r["split"], r["video_id"]) for r in protocols if r["protocol"] == protocol}


def _listed(listed: dict, prefix: str, splits: dict, live_label: str):
    """(split, video id) and label of each line of unified lists, the `<Name>/` prefix dropped."""
    out = {}
    for fixture, lines in listed.items():
        split = splits[fixture.rsplit("_", 1)[1].removesuffix(".txt")]
        for line in lines:
            path, label = line.split()
            out[split, path.removeprefix(prefix)] = label == live_label
    return out


def test_msu_as_released(tmp_path):
    release = tmp_path / "MSU-MFSD"
    for name in ("train_sub_list.txt", "test_sub_list.txt"):
        real.copy_list(f"msu/MSU_MFSD/{name}", release / name)
    fixtures = ["msu/MSU_MFSD/video_train.txt", "msu/MSU_MFSD/video_test.txt"]
    ext = {"android": "mp4", "laptop": "mov"}
    listed = real.own_layout_tree(release, fixtures, lambda p: "scene01/" + p.removeprefix("MSU_MFSD/")
                                  + "." + ext[p.split("_")[3]])
    touch(release / "scene01/real/real_client002_laptop_SD_scene01.face")
    manifest, protocols, report = index_dataset("msu", release)
    assert skipped(report) == []
    expected = _listed(listed, "MSU_MFSD/", {"train": "train", "test": "test"}, "0")
    assert _membership(protocols, "standard") >= set(expected)
    labels = {m["video_id"]: m["is_live"] for m in manifest}
    assert all(labels[video] == live for (_, video), live in expected.items())
    assert manifest[0]["path_color"].startswith("scene01/")


def test_oulu_names_and_labels(tmp_path):
    fixtures = [f"oulu/OULU_NPU/video_{s}.txt" for s in ("train", "dev", "test")]
    listed = real.own_layout_tree(tmp_path, fixtures, lambda p: p.removeprefix("OULU_NPU/") + ".avi")
    manifest, protocols, report = index_dataset("oulu", tmp_path)
    # The official Protocols/ files are not public: only their absence is reported.
    assert skipped(report) == [("Protocols", "no protocol lists found (Protocols/Protocol_N/*.txt)")]
    labels = {m["video_id"]: m["is_live"] for m in manifest}
    expected = _listed(listed, "OULU_NPU/", {"train": "train", "dev": "dev", "test": "test"}, "0")
    assert {video: live for (_, video), live in expected.items()} == labels


def test_siw_protocol_one_matches_the_authors_lists(tmp_path):
    fixtures = ["siw/SiW/protocol/SiW@p1_video_train.txt", "siw/SiW/protocol/SiW@p1_video_test.txt"]
    listed = real.own_layout_tree(tmp_path, fixtures, lambda p: p.removeprefix("SiW/") + ".mov")
    manifest, protocols, report = index_dataset("siw", tmp_path)
    assert skipped(report) == []
    expected = _listed(listed, "SiW/", {"train": "train", "test": "test"}, "1")  # SiW @p lists: live = 1
    assert _membership(protocols, "p1") == set(expected)
    labels = {m["video_id"]: m["is_live"] for m in manifest}
    assert all(labels[video] == live for (_, video), live in expected.items())


def test_replay_grandtest_matches_the_authors_lists(tmp_path):
    fixtures = [f"replay/ReplayAttack/video_{s}.txt" for s in ("train", "dev", "test")]
    listed = real.own_layout_tree(tmp_path, fixtures, lambda p: p.removeprefix("ReplayAttack/") + ".mov")
    manifest, protocols, report = index_dataset("replay", tmp_path)
    # Face-location files are not in the lists: only their absence is recorded.
    assert skipped(report) == [] and {e["action"] for e in report.entries} == {"no annotation"}
    expected = _listed(listed, "ReplayAttack/", {"train": "train", "dev": "dev", "test": "test"}, "0")
    assert {v.split("/")[0] for _, v in expected} == {"train", "devel", "test"}
    assert _membership(protocols, "grandtest") == set(expected)
    labels = {m["video_id"]: m["is_live"] for m in manifest}
    assert all(labels[video] == live for (_, video), live in expected.items())


def test_casia_fasd_matches_the_authors_lists(tmp_path):
    fixtures = ["casia_fasd/CASIA_FASD/video_train.txt", "casia_fasd/CASIA_FASD/video_test.txt"]
    listed = real.own_layout_tree(tmp_path, fixtures, lambda p: p.removeprefix("CASIA_FASD/") + ".avi")
    manifest, protocols, report = index_dataset("casia_fasd", tmp_path)
    assert skipped(report) == []
    expected = _listed(listed, "CASIA_FASD/", {"train": "train", "test": "test"}, "0")
    assert _membership(protocols, "standard") == set(expected)
    labels = {m["video_id"]: m["is_live"] for m in manifest}
    assert all(labels[video] == live for (_, video), live in expected.items())


# --- the unified format, one generic adapter -----------------------------------

UNIFIED = {
    "OULU_NPU": ["oulu/OULU_NPU/video_train.txt", "oulu/OULU_NPU/video_dev.txt", "oulu/OULU_NPU/video_test.txt"],
    "SiW": ["siw/SiW/protocol/SiW@p1_video_train.txt", "siw/SiW/protocol/SiW@p1_video_test.txt",
            "siw/SiW/protocol/SiW@p21_video_test.txt", "siw/SiW/video_train.txt"],
    "ReplayAttack": ["replay/ReplayAttack/video_train.txt", "replay/ReplayAttack/video_dev.txt",
                     "replay/ReplayAttack/video_test.txt"],
    "MSU_MFSD": ["msu/MSU_MFSD/video_train.txt", "msu/MSU_MFSD/video_test.txt"],
    "CASIA_FASD": ["casia_fasd/CASIA_FASD/video_train.txt", "casia_fasd/CASIA_FASD/video_test.txt"],
}


def _unified_expected(listed: dict, name: str) -> dict:
    """(protocol, split) -> Counter of classes, from the lists and their declared polarity."""
    out = {}
    for rel, lines in listed.items():
        stem = rel.rsplit("/", 1)[1].removesuffix(".txt")
        protocol = stem.split("@")[1].split("_")[0] if "@" in stem else "default"
        split = {"val": "dev"}.get(stem.rsplit("_", 1)[1], stem.rsplit("_", 1)[1])
        live = "1" if "@" in stem and name == "SiW" else "0"
        videos = out.setdefault((protocol, split), {})
        videos.update({line.split()[0]: line.split()[1] == live for line in lines})
    return {key: Counter("live" if v else "attack" for v in videos.values()) for key, videos in out.items()}


def test_unified_format_every_rgb_dataset(tmp_path):
    for name, fixtures in UNIFIED.items():
        listed = real.unified_tree(tmp_path, fixtures)
        manifest, protocols, report = index_dataset("casia_fas", tmp_path, name)
        assert skipped(report) == [], name
        found = {}
        live = {m["video_id"]: m["is_live"] for m in manifest}
        for row in protocols:
            cls = "live" if live[row["video_id"]] else "attack"
            found.setdefault((row["protocol"], row["split"]), Counter())[cls] += 1
        assert found == _unified_expected(listed, name), name
        assert all(m["path_color"].startswith(f"{name}/") and m["path_color"].endswith("/crop") for m in manifest)
    # SiW: the same videos marked live = 1 by the @p lists and live = 0 by video_train agree
    # once each family's polarity is applied; the repeated line of SiW@p21_video_test is read once.
    _, _, report = index_dataset("casia_fas", tmp_path, "SiW")
    assert [(e["path"], e["action"]) for e in report.entries] == [
        ("SiW/protocol/SiW@p21_video_test.txt", "ignored")]


def test_unified_format_frame_folders_and_video_files(tmp_path):
    """The unified CeFA and SURF lists (modality folders, image lists) and original video files."""
    cefa = real.cefa_tree(tmp_path / "data")
    manifest, protocols, report = index_dataset("casia_fas", tmp_path / "data" / "CASIA_CeFA")
    assert skipped(report) == []
    assert {m["path_depth"] is not None for m in manifest} == {True}
    p11 = Counter((r["protocol"], r["split"]) for r in protocols if r["protocol"] == "p1.1")
    assert p11 == {("p1.1", s): len(cefa[f"CASIA_CeFA/protocol/CASIA_CeFA@p1.1_video_{s}.txt"])
                   for s in ("train", "dev", "test")}
    real.unified_tree(tmp_path / "videos", UNIFIED["CASIA_FASD"], video_files=True)
    manifest, protocols, report = index_dataset("casia_fas", tmp_path / "videos", "CASIA_FASD")
    assert skipped(report) == [] and {m["media"] for m in manifest} == {"video"} and len(protocols) == 35 + 40


def test_unified_format_cli_and_check(tmp_path, capsys):
    real.unified_tree(tmp_path, UNIFIED["OULU_NPU"] + UNIFIED["ReplayAttack"])
    assert main(["check", "casia_fas", "--root", str(tmp_path)]) == 2  # two dataset folders: which one?
    assert "pass --name" in capsys.readouterr().err
    assert main(["check", "casia_fas", "--root", str(tmp_path / "OULU_NPU")]) == 0
    out = capsys.readouterr().out
    assert "default   1     train  12 / 12  48 / 48" in out and "SHORT" not in out
    assert main(["index", "casia_fas", "--root", str(tmp_path), "--name", "ReplayAttack",
                 "--out", str(tmp_path / "index"), "--strict"]) == 0
