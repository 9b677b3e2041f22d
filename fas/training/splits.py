"""The splits of one experiment (`protocols.parquet`) and which data modality feeds which branch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fas.grid import Experiment

SPLITS = ("train", "dev", "test")


@dataclass
class Split:
    """The videos of one split, grouped by source dataset, and the modalities it uses."""

    name: str
    videos: dict[str, list[str]] = field(default_factory=dict)  # dataset -> video ids
    modalities: list[str] | None = None  # null in protocols.parquet = all


def read_splits(index_root: Path, experiment: Experiment) -> dict[str, Split]:
    """The experiment's train/dev/test splits from `<index_root>/<dataset>/protocols.parquet`."""
    path = Path(index_root) / experiment.dataset / "protocols.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: protocol table not found (run `fas index` first)")
    table = pd.read_parquet(path)
    rows = table[(table["protocol"] == experiment.protocol) & (table["fold"] == experiment.fold)]
    splits: dict[str, Split] = {}
    for name, group in rows.groupby("split", sort=False):
        if name not in SPLITS:
            raise ValueError(f"{path}: unknown split {name!r} in {experiment.protocol} "
                             f"fold {experiment.fold}")
        split = Split(str(name))
        for dataset, ids in group.groupby("dataset", sort=True)["video_id"]:
            split.videos[str(dataset)] = sorted(ids.astype(str).unique())
        ids = [v for vs in split.videos.values() for v in vs]
        if len(ids) != len(set(ids)):  # scores are keyed by video_id alone
            raise ValueError(f"{path}: split {name} of {experiment.protocol} fold {experiment.fold} "
                             "has the same video_id in two source datasets")
        modality_sets = {tuple(m) if m is not None else None for m in group["modalities"]}
        if len(modality_sets) > 1:
            raise ValueError(f"{path}: split {name} of {experiment.protocol} fold "
                             f"{experiment.fold} mixes modality sets {modality_sets}")
        (modalities,) = modality_sets
        split.modalities = list(modalities) if modalities is not None else None
        splits[split.name] = split
    if "train" not in splits or "test" not in splits:
        raise ValueError(f"{path}: protocol {experiment.protocol} fold {experiment.fold} "
                         f"needs train and test rows, found {sorted(splits)}")
    return splits


def model_feeds(variant_modalities: list[str], splits: dict[str, Split]
                ) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """The model's modalities and, per split, the feeds (model modality -> data modality).

    The model trains on the variant's modalities that the train split provides;
    a split that lacks them (CeFA protocol 3) feeds each of its modalities in
    turn through a single-modality model.
    """
    provided = splits["train"].modalities
    trained = [m for m in variant_modalities if provided is None or m in provided]
    if not trained:
        raise ValueError(f"the train split provides modalities {provided}, "
                         f"the variant uses {list(variant_modalities)}: nothing to train on")
    feeds = {}
    for name, split in splits.items():
        used = split.modalities or trained
        if set(trained) <= set(used):
            feeds[name] = [{m: m for m in trained}]
        elif len(trained) == 1:  # CeFA p3: each test modality through the trained branch
            feeds[name] = [{trained[0]: m} for m in used]
        else:
            raise ValueError(f"split {name} provides modalities {used}, the model was trained on "
                             f"{trained}: only a single-modality model can switch modality")
    return trained, feeds


def data_modalities(feeds: list[dict[str, str]]) -> list[str]:
    """The data modalities a split's feeds read (colour for single-stream methods)."""
    return sorted({m for feed in feeds for m in feed.values()} or {"color"})
