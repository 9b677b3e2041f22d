"""Bad input: a clear message naming the file and the reason, the rest indexed, --strict fails."""

import json
import shutil

from fas.cli import main
from fas.datasets.cli import index_dataset
from fixtures import dataset_trees as trees


def run_index(dataset, root, out, *extra):
    return main(["index", dataset, "--root", str(root), "--out", str(out), *extra])


def skipped(out):
    return json.loads((out / "skipped.json").read_text())["entries"]


def reasons(report):
    return {(e["path"], e["reason"]) for e in report.entries}


def test_missing_root_is_a_clear_error(tmp_path, capsys):
    assert run_index("oulu", tmp_path / "nowhere", tmp_path / "out") == 2
    assert f"root {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert run_index("oulu", tmp_path / "file", tmp_path / "out") == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_nothing_usable_exits_non_zero_with_the_report(tmp_path, capsys):
    (tmp_path / "root" / "Train_files").mkdir(parents=True)
    (tmp_path / "root" / "Train_files" / "readme.pdf").write_text("x")
    assert run_index("oulu", tmp_path / "root", tmp_path / "out") == 1
    assert "nothing usable" in capsys.readouterr().err
    assert not (tmp_path / "out" / "manifest.parquet").exists()
    assert "Train_files/readme.pdf" in {e["path"] for e in skipped(tmp_path / "out")}


def test_missing_modality_folder_skips_the_video_and_its_list_entries(tmp_path):
    trees.cefa_tree(tmp_path, n_masks=0)
    video = "Ethnicity/CA/CA-300/2_300_1_1_1"
    shutil.rmtree(tmp_path / "CASIA_CeFA" / video / "ir")
    manifest, protocols, report = index_dataset("cefa", tmp_path)
    assert (f"CASIA_CeFA/{video}", "missing modality folder(s) ir (or no readable frames in them)") in reasons(report)
    assert video not in {m["video_id"] for m in manifest} and len(manifest) == 3 * 5 * 5 - 1
    absent = [e for e in report.entries if "absent" in e["reason"]]
    # p1.1, p1.5, p2.1, p2.2, p3.x and p4.1, p4.5 test lists name it.
    assert len(absent) == 9 and all(e["path"].startswith("CASIA_CeFA/protocol/") for e in absent)
    assert all(e["reason"] == f"protocol entry names a video absent from the index: {video}" for e in absent)


def test_unknown_names_and_wrong_paths_are_reported_the_rest_indexed(tmp_path):
    trees.siw_tree(tmp_path)
    (tmp_path / "Train" / "live" / "001" / "notes.txt").write_text("x")
    shutil.move(tmp_path / "Train" / "spoof" / "001" / "001-1-2-1-1.mov", tmp_path / "Train" / "live" / "001")
    shutil.move(tmp_path / "Test" / "live" / "091" / "091-1-1-1-1.mov", tmp_path / "Train" / "live" / "002")
    (tmp_path / "Test" / "spoof" / "091" / "091-1-7-1-1.mov").write_text("x")
    manifest, _, report = index_dataset("siw", tmp_path)
    assert reasons(report) == {
        ("Train/live/001/notes.txt", "unknown file name: matches no siw layout pattern"),
        ("Train/live/001/001-1-2-1-1.mov", "bad name: a print video is filed under live/"),
        ("Train/live/002/091-1-1-1-1.mov", "bad name: subject 091 is filed under 002/"),
        ("Test/spoof/091/091-1-7-1-1.mov", "bad name: unknown Type code '7' (known: 1, 2, 3)"),
    }
    assert len(manifest) == 3 * 8 - 2


def test_cefa_video_under_the_wrong_ethnicity_folder(tmp_path):
    trees.cefa_tree(tmp_path, n_masks=0, protocols=False)
    wrong = tmp_path / "CASIA_CeFA" / "Ethnicity" / "AF" / "AF-000" / "2_000_1_1_1" / "color" / "0001.jpg"
    trees.touch(wrong)
    manifest, protocols, report = index_dataset("cefa", tmp_path)
    assert reasons(report) == {
        ("CASIA_CeFA/Ethnicity/AF/AF-000/2_000_1_1_1/color/0001.jpg",
         "bad name: video 2_000_1_1_1 is filed under AF/AF-000"),
        ("CASIA_CeFA/protocol", "no protocol lists found "
                                "(CASIA_CeFA@p<N.M>_<video|image>_<split>.txt or 4@<k>_<split>.txt)")}
    assert len(manifest) == 3 * 5 * 5 and protocols == []


def test_malformed_protocol_lines_name_file_and_line(tmp_path):
    oulu = tmp_path / "oulu"
    trees.oulu_tree(oulu)
    listing = oulu / "Protocols" / "Protocol_1" / "Train.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join([lines[0], "+1;1_1_01_1", "+3,1_1_01_2", *lines[1:]]) + "\n")
    cefa = tmp_path / "cefa"
    trees.cefa_tree(cefa, n_masks=0)
    cefa_list = cefa / "CASIA_CeFA" / "protocol" / "CASIA_CeFA@p1.1_video_train.txt"
    cefa_list.write_text(cefa_list.read_text() + "CASIA_CeFA/Ethnicity/AF/AF-000/1_000_1_1_1/color live\n"
                         "Somewhere/else/1_000_1_1_1 0\n")
    _, protocols, report = index_dataset("oulu", oulu)
    assert {(e["path"], e["reason"][:25]) for e in report.entries} == {
        ("Protocols/Protocol_1/Train.txt:2", "malformed protocol line '"),
        ("Protocols/Protocol_1/Train.txt:3", "malformed protocol line '")}
    assert sum(r["protocol"] == "p1" and r["split"] == "train" for r in protocols) == 120
    _, _, report = index_dataset("cefa", cefa)
    n = len(cefa_list.read_text().splitlines())
    assert {e["path"] for e in report.entries} == {f"{cefa_list.relative_to(cefa)}:{n - 1}",
                                                   f"{cefa_list.relative_to(cefa)}:{n}"}


def test_protocol_label_disagreeing_with_the_path_is_a_reported_skip(tmp_path):
    oulu = tmp_path / "oulu"
    trees.oulu_tree(oulu)
    listing = oulu / "Protocols" / "Protocol_1" / "Train.txt"
    text = listing.read_text().replace("-1,1_1_01_3", "+1,1_1_01_3")  # a print video listed as live
    listing.write_text(text)
    number = text.splitlines().index("+1,1_1_01_3") + 1
    _, protocols, report = index_dataset("oulu", oulu)
    assert reasons(report) == {(f"Protocols/Protocol_1/Train.txt:{number}",
                                "label disagrees with the path: the list says live, Train_files/1_1_01_3 is print")}
    assert "Train_files/1_1_01_3" not in {r["video_id"] for r in protocols if r["protocol"] == "p1"}
    cefa = tmp_path / "cefa"
    trees.cefa_tree(cefa, n_masks=0)
    cefa_list = cefa / "CASIA_CeFA" / "protocol" / "CASIA_CeFA@p1.1_video_dev.txt"
    cefa_list.write_text(cefa_list.read_text().replace("1_200_1_1_1/color 0", "1_200_1_1_1/color 1"))
    _, protocols, report = index_dataset("cefa", cefa)
    assert [e["reason"] for e in report.entries] == [
        "label disagrees with the path: the list says attack, Ethnicity/AF/AF-200/1_200_1_1_1 is live"]


def test_absent_video_empty_and_unreadable_files(tmp_path):
    trees.oulu_tree(tmp_path)
    (tmp_path / "Train_files" / "1_1_01_1.avi").unlink()
    (tmp_path / "Train_files" / "1_1_01_2.avi").write_bytes(b"")
    (tmp_path / "Train_files" / "1_1_01_3.avi").unlink()
    (tmp_path / "Train_files" / "1_1_01_3.avi").symlink_to(tmp_path / "gone.avi")  # unreadable
    manifest, protocols, report = index_dataset("oulu", tmp_path)
    assert ("Train_files/1_1_01_2.avi", "empty file (0 bytes)") in reasons(report)
    assert ("Train_files/1_1_01_3.avi", "unreadable file") in reasons(report)
    absent = {e["reason"].rsplit(" ", 1)[1] for e in report.entries if "absent" in e["reason"]}
    assert absent == {"Train_files/1_1_01_1", "Train_files/1_1_01_2", "Train_files/1_1_01_3"}
    assert len(manifest) == 4 * 90 - 3


def test_msu_list_problems(tmp_path):
    trees.msu_tree(tmp_path, train=(2, 3), test=(1,))
    with open(tmp_path / "test_sub_list.txt", "a") as handle:
        handle.write("03\nclient7\n42\n")
    _, protocols, report = index_dataset("msu", tmp_path)
    assert reasons(report) == {
        ("train_sub_list.txt:2", "client 3 is already listed in test_sub_list.txt"),
        ("test_sub_list.txt:3", "malformed subject line 'client7': expected a client number"),
        ("test_sub_list.txt", "listed client 042 has no video on disk")}
    assert len(protocols) == 3 * 8


def test_strict_turns_any_skip_into_failure_without_a_traceback(tmp_path, capsys):
    trees.casia_fasd_tree(tmp_path / "root")
    (tmp_path / "root" / "train_release" / "1" / "9.avi").write_text("x")
    assert run_index("casia_fasd", tmp_path / "root", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "train_release/1/9.avi: unknown file name" in err and "Traceback" not in err
    assert (tmp_path / "out" / "manifest.parquet").exists()
    assert run_index("casia_fasd", tmp_path / "root", tmp_path / "out", "--strict") == 1
    assert "--strict and 1 item(s) skipped" in capsys.readouterr().err
    assert [e["path"] for e in skipped(tmp_path / "out")] == ["train_release/1/9.avi"]


def test_missing_annotation_is_recorded_but_not_a_skip(tmp_path):
    trees.replay_tree(tmp_path / "root", annotations=False)
    assert run_index("replay", tmp_path / "root", tmp_path / "out", "--strict") == 0
    entries = skipped(tmp_path / "out")
    assert len(entries) == 4 * 24 and {e["action"] for e in entries} == {"no annotation"}


def test_symlinked_folders_are_followed_and_loops_reported(tmp_path):
    trees.casia_fasd_tree(tmp_path / "root", train=2, test=3)
    shutil.move(tmp_path / "root" / "test_release" / "3", tmp_path / "elsewhere")
    (tmp_path / "root" / "test_release" / "3").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "root" / "train_release" / "1" / "loop").symlink_to(tmp_path / "root" / "train_release")
    manifest, _, report = index_dataset("casia_fasd", tmp_path / "root")
    assert len(manifest) == 5 * 12
    assert [e["path"] for e in report.entries] == ["train_release/1/loop"]
    assert "link loop" in report.entries[0]["reason"]


def test_empty_frames_leave_a_modality_without_frames(tmp_path):
    trees.cefa_tree(tmp_path, n_masks=0, protocols=False)
    frame = tmp_path / "CASIA_CeFA" / "Ethnicity" / "EA" / "EA-001" / "3_001_3_2_2" / "depth" / "0001.jpg"
    frame.write_bytes(b"")
    manifest, _, report = index_dataset("cefa", tmp_path)
    video = "CASIA_CeFA/Ethnicity/EA/EA-001/3_001_3_2_2"
    assert {(f"{video}/depth/0001.jpg", "empty file (0 bytes)"),
            (video, "missing modality folder(s) depth (or no readable frames in them)")} <= reasons(report)
    assert len(manifest) == 3 * 5 * 5 - 1


def test_challenge_train_label_is_checked_against_the_name(tmp_path):
    trees.cefa_challenge_tree(tmp_path)
    listing = tmp_path / "4@2_train.txt"
    listing.write_text(listing.read_text().replace("train/1_031_3_1_4/profile/0001.jpg 0",
                                                   "train/1_031_3_1_4/profile/0001.jpg 1"))
    _, protocols, report = index_dataset("cefa", tmp_path)
    # Its second frame keeps label 0: the list contradicts itself, and the first label the path.
    assert sorted((e["path"], e["reason"]) for e in report.entries if e["action"] == "skipped") == [
        ("4@2_train.txt:3", "label disagrees with the path: the list says live, train/1_031_3_1_4 is replay"),
        ("4@2_train.txt:4", "label disagrees with 4@2_train.txt:3 for the same video train/1_031_3_1_4")]
    assert sum(r["protocol"] == "challenge4" and r["fold"] == 2 and r["split"] == "train" for r in protocols) == 3
