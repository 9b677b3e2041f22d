"""`fas check`: a copy against the published split sizes; `fas index` prints the same for real roots."""

from fas.cli import main
from fas.datasets import check
from fas.datasets.cli import index_root
from fixtures import dataset_trees as trees


def statuses(dataset, root):
    indexed, report = index_root(dataset, root)
    return [row[-1] for table in check.compare(indexed, report) for row in table.rows]


def rendered_rows(text):
    """(protocol, fold, split) -> the words of that row of a rendered split table."""
    return {tuple(line.split()[:3]): line.split() for line in text.splitlines() if line[:1].islower()}


def full_size(dataset, root):
    """Trees of the published sizes (REFERENCE.md section 3)."""
    if dataset == "oulu":
        trees.oulu_tree(root, users={folder: list(ids) for folder, ids in trees.OULU_USERS.items()})
    elif dataset == "replay":
        trees.replay_tree(root, clients={"train": range(1, 16), "devel": range(16, 31), "test": range(31, 51)})
    elif dataset == "msu":
        trees.msu_tree(root, train=trees.MSU_TRAIN, test=trees.MSU_TEST, unlisted=())
    else:
        trees.casia_fasd_tree(root, train=20, test=30)


def test_full_size_copies_are_all_green(tmp_path, capsys):
    for dataset in ("oulu", "replay", "msu", "casia_fasd"):
        full_size(dataset, tmp_path / dataset)
        assert set(statuses(dataset, tmp_path / dataset)) <= {"ok", "note"}, dataset
        assert main(["check", dataset, "--root", str(tmp_path / dataset)]) == 0
        out = capsys.readouterr().out
        assert "SHORT" not in out and "PROBLEM" not in out and "0 short, 0 problem(s)" in out
    rows = rendered_rows(check.render("oulu", check.compare(*index_root("oulu", tmp_path / "oulu"))))
    assert ["p3", "6", "test", "60", "/", "60", "240", "/", "240", "300"] == rows[("p3", "6", "test")][:10]


def test_a_shortfall_exits_1_and_names_the_split(tmp_path, capsys):
    full_size("msu", tmp_path)
    for path in sorted((tmp_path / "attack").glob("attack_client001_*"))[:2]:
        path.unlink()
    assert main(["check", "msu", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert rendered_rows(out)[("standard", "1", "test")][3:9] == ["40", "/", "40", "118", "/", "120"]
    assert rendered_rows(out)[("standard", "1", "test")][-1] == "SHORT" and "1 short" in out


def test_unreadable_files_absent_videos_and_missing_modalities_are_problems(tmp_path, capsys):
    trees.cefa_tree(tmp_path)
    video = tmp_path / "CASIA_CeFA/Ethnicity/AF/AF-000/1_000_3_1_4"
    (video / "depth/0001.jpg").write_bytes(b"")  # empty: the video lacks its depth stream
    indexed, report = index_root("cefa", tmp_path)
    tables = {t.title.split(" ")[0]: {row[0]: row for row in t.rows} for t in check.compare(indexed, report)}
    assert tables["Modalities"]["depth"][-2:] == (1, "PROBLEM")
    files = tables["Files"]
    assert files["unreadable or empty files"][2:] == (1, "PROBLEM")
    assert files["list entries naming absent videos"][2] > 0  # its list entries name a video left out
    assert main(["check", "cefa", "--root", str(tmp_path)]) == 1
    assert main(["check", "cefa", "--root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_index_prints_the_check_for_real_roots_only(tmp_path, capsys, monkeypatch):
    full_size("msu", tmp_path / "real")
    assert main(["index", "msu", "--root", str(tmp_path / "real"), "--out", str(tmp_path / "out")]) == 0
    assert "Videos per protocol split, found / expected" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").rename(tmp_path / "data")
    (tmp_path / "data").mkdir(exist_ok=True)
    synthetic = tmp_path / "data" / "synthetic"
    full_size("msu", synthetic / "msu")
    assert main(["index", "msu", "--root", "data/synthetic/msu", "--out", "out2"]) == 0
    assert "found / expected" not in capsys.readouterr().out


def test_colour_only_for_a_terminal(tmp_path):
    full_size("casia_fasd", tmp_path)
    tables = check.compare(*index_root("casia_fasd", tmp_path))
    assert "\033[32mok\033[0m" in check.render("casia_fasd", tables, colour=True)
    assert "\033[" not in check.render("casia_fasd", tables)
