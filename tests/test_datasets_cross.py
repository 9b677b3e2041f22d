"""`fas index cross`: protocols over the other datasets' index folders."""

import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

from fas.cli import main
from fixtures import dataset_trees as trees

BUILDERS = {"replay": trees.replay_tree, "casia_fasd": trees.casia_fasd_tree,
            "msu": trees.msu_tree, "oulu": trees.oulu_tree}


@pytest.fixture(scope="module")
def index_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("cross")
    for dataset, builder in BUILDERS.items():
        builder(base / "data" / dataset)
        assert main(["index", dataset, "--root", str(base / "data" / dataset),
                     "--out", str(base / "index" / dataset)]) == 0
    return base / "index"


def split_counts(rows):
    return Counter((r["protocol"], r["split"], r["dataset"]) for r in rows)


def test_cross_protocols_train_on_sources_and_test_on_the_target(index_root):
    assert main(["index", "cross", "--root", str(index_root), "--out", str(index_root / "cross")]) == 0
    rows = pq.read_table(index_root / "cross" / "protocols.parquet").to_pylist()
    got = split_counts(rows)
    # Source train (+dev) sets and the target's test set of each tree:
    # replay 24 + 24 / 48, casia_fasd 24 / 36, msu 16 / 8, oulu (all P1-P4 rows) 180 + 90 / 90.
    assert got[("replay_to_casia_fasd", "train", "replay")] == 48
    assert got[("replay_to_casia_fasd", "test", "casia_fasd")] == 36
    assert got[("casia_fasd_to_replay", "train", "casia_fasd")] == 24
    assert got[("casia_fasd_to_replay", "test", "replay")] == 48
    assert {k[2]: v for k, v in got.items() if k[:2] == ("ocm_to_i", "train")} == {
        "oulu": 270, "casia_fasd": 24, "msu": 16}
    assert got[("ocm_to_i", "test", "replay")] == 48
    assert got[("icm_to_o", "test", "oulu")] == 90
    assert {r["protocol"] for r in rows} == {"replay_to_casia_fasd", "casia_fasd_to_replay",
                                            "ocm_to_i", "oci_to_m", "omi_to_c", "icm_to_o"}
    assert {r["fold"] for r in rows} == {1} and {r["split"] for r in rows} == {"train", "test"}
    manifest = pq.read_table(index_root / "cross" / "manifest.parquet").to_pylist()
    keys = {(m["dataset"], m["video_id"]) for m in manifest}
    assert {(r["dataset"], r["video_id"]) for r in rows} <= keys
    assert Counter(m["dataset"] for m in manifest) == {"replay": 96, "casia_fasd": 60, "msu": 32, "oulu": 360}


def test_a_missing_source_is_reported_and_its_protocols_skipped(index_root, tmp_path):
    partial = tmp_path / "index"
    for dataset in ("replay", "casia_fasd"):
        shutil.copytree(index_root / dataset, partial / dataset)
    assert main(["index", "cross", "--root", str(partial), "--out", str(partial / "cross")]) == 0
    rows = pq.read_table(partial / "cross" / "protocols.parquet").to_pylist()
    assert {r["protocol"] for r in rows} == {"replay_to_casia_fasd", "casia_fasd_to_replay"}
    entries = json.loads((partial / "cross" / "skipped.json").read_text())["entries"]
    assert {e["path"] for e in entries} == {str(partial / "msu"), str(partial / "oulu"),
                                            "ocm_to_i", "oci_to_m", "omi_to_c", "icm_to_o"}
    # Datasets the project never indexed are a deliberate omission, not a problem for --strict
    # (a grid whose cross protocols read only some sources indexes only those) ...
    assert {e["action"] for e in entries} == {"ignored"}
    assert main(["index", "cross", "--root", str(partial), "--out", str(partial / "cross"), "--strict"]) == 0
    # ... while an index that is there but unreadable is.
    (partial / "msu").mkdir()
    (partial / "msu" / "manifest.parquet").write_bytes(b"not parquet")
    assert main(["index", "cross", "--root", str(partial), "--out", str(partial / "cross"), "--strict"]) == 1
