"""The generator's tiny output, read back by the adapters: nothing skipped, every split usable."""

import json

import pandas as pd
import pytest

from fas.cli import main as fas

pytestmark = pytest.mark.slow

DATASETS = ["cefa", "surf", "oulu", "siw", "replay", "msu", "casia_fasd"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    index = tmp_path_factory.mktemp("index")
    assert fas(["synth", "all", "--out", str(root), "--scale", "tiny", "--seed", "0"]) == 0
    for dataset in DATASETS:
        assert fas(["index", dataset, "--root", str(root / dataset), "--out",
                    str(index / dataset), "--strict"]) == 0, dataset
    assert fas(["index", "cross", "--root", str(index), "--out", str(index / "cross")]) == 0
    return index


@pytest.mark.parametrize("dataset", [*DATASETS, "cross"])
def test_every_protocol_split_has_both_classes(indexed, dataset):
    protocols = pd.read_parquet(indexed / dataset / "protocols.parquet")
    manifest = pd.read_parquet(indexed / dataset / "manifest.parquet")
    joined = protocols.merge(manifest[["dataset", "video_id", "is_live"]],
                             on=["dataset", "video_id"], how="left", validate="many_to_one")
    assert joined["is_live"].notna().all()
    for key, group in joined.groupby(["protocol", "fold", "split"]):
        assert group["is_live"].any() and (~group["is_live"]).any(), (dataset, key)


@pytest.mark.parametrize("dataset", DATASETS)
def test_nothing_generated_is_skipped(indexed, dataset):
    report = json.loads((indexed / dataset / "skipped.json").read_text())
    assert [e for e in report["entries"] if e["action"] == "skipped"] == []


@pytest.mark.parametrize("dataset", [*DATASETS, "cross"])
def test_the_protocol_table_params_are_checked_against_is_what_the_adapters_index(indexed,
                                                                                 dataset):
    """fas/data/protocols.yaml (grid validation) equals the indexed protocols and folds,
    except those without a test split (CeFA's challenge release)."""
    from fas.config import indexed_protocols

    protocols = pd.read_parquet(indexed / dataset / "protocols.parquet")
    found = {}
    for (protocol, fold), group in protocols.groupby(["protocol", "fold"]):
        if "test" in set(group["split"]):
            found.setdefault(protocol, []).append(int(fold))
    assert found == indexed_protocols()[dataset]
