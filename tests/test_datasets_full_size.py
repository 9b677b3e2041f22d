"""Published split sizes, recovered from full-size trees of placeholder files built from the layout rules.

CeFA P1 800/400/2723 and P4 400/200/2323 videos, OULU-NPU P1 1200/900/600,
Replay-Attack grandtest 360/360/480 (enrolment excluded), MSU-MFSD 120/160,
CASIA-FASD 240/360 (REFERENCE.md section 3).
"""

from collections import Counter

import pytest

from fas.datasets.cli import index_dataset
from fixtures import dataset_trees as trees


def split_sizes(protocols, protocol):
    return Counter((r["fold"], r["split"]) for r in protocols if r["protocol"] == protocol)


@pytest.mark.slow
def test_cefa_p1_and_p4_sizes(tmp_path):
    # 500 subjects per ethnicity: 000-199 train, 200-299 dev, 300-499 test; 1,123 mask videos.
    trees.cefa_tree(tmp_path, train=range(0, 200), dev=range(200, 300), test=range(300, 500),
                    n_masks=1123, extra=False)
    manifest, protocols, report = index_dataset("cefa", tmp_path)
    assert report.entries == [] and len(manifest) == 3 * 500 * 4 + 1123
    for fold in (1, 2, 3):
        sizes = split_sizes(protocols, "p1")
        assert (sizes[(fold, "train")], sizes[(fold, "dev")], sizes[(fold, "test")]) == (800, 400, 2723)
        sizes = split_sizes(protocols, "p4")
        assert (sizes[(fold, "train")], sizes[(fold, "dev")], sizes[(fold, "test")]) == (400, 200, 2323)


def test_oulu_p1_sizes(tmp_path):
    trees.oulu_tree(tmp_path, users={folder: list(ids) for folder, ids in trees.OULU_USERS.items()})
    manifest, protocols, report = index_dataset("oulu", tmp_path)
    assert report.entries == [] and len(manifest) == 6 * 3 * 55 * 5
    assert split_sizes(protocols, "p1") == {(1, "train"): 1200, (1, "dev"): 900, (1, "test"): 600}


def test_replay_grandtest_sizes(tmp_path):
    clients = {"train": range(1, 16), "devel": range(16, 31), "test": range(31, 51)}
    trees.replay_tree(tmp_path, clients=clients, annotations=False)
    manifest, protocols, _ = index_dataset("replay", tmp_path)
    assert split_sizes(protocols, "grandtest") == {(1, "train"): 360, (1, "dev"): 360, (1, "test"): 480}
    live = Counter(m["is_live"] for m in manifest)
    assert live == {True: 200, False: 1000}  # 60 + 60 + 80 real, 300 + 300 + 400 attack


def test_msu_sizes(tmp_path):
    trees.msu_tree(tmp_path, train=trees.MSU_TRAIN, test=trees.MSU_TEST, unlisted=())
    _, protocols, report = index_dataset("msu", tmp_path)
    assert report.entries == []
    assert split_sizes(protocols, "standard") == {(1, "train"): 120, (1, "test"): 160}


def test_casia_fasd_sizes(tmp_path):
    trees.casia_fasd_tree(tmp_path, train=20, test=30)
    _, protocols, report = index_dataset("casia_fasd", tmp_path)
    assert report.entries == []
    assert split_sizes(protocols, "standard") == {(1, "train"): 240, (1, "test"): 360}
