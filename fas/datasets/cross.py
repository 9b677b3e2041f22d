"""Cross-dataset protocols over the other datasets' index folders (`fas index cross`).

Convention (REFERENCE.md section 3, "Cross-dataset"): a protocol trains on the
training and development videos of its source datasets and tests on the test
videos of its target. A dataset's training (development, test) videos are those
in a `train` (`dev`, `test`) split of any of its own protocols: for Replay-Attack,
MSU-MFSD and CASIA-FASD that is their single protocol, for OULU-NPU the union of
P1-P4, i.e. its Train/Dev/Test folders. There is no dev split: thresholds follow
`evaluate.no_dev_policy`. Rows carry the video's own dataset in `dataset`.
"""

from __future__ import annotations

from pathlib import Path

from fas.datasets.base import IGNORED, SKIPPED, SPLITS, read_table
from fas.io import FailureReport

# protocol -> (sources, target). O OULU-NPU, C CASIA-FASD, I Idiap Replay-Attack, M MSU-MFSD.
CROSS_PROTOCOLS = {
    "replay_to_casia_fasd": (("replay",), "casia_fasd"),
    "casia_fasd_to_replay": (("casia_fasd",), "replay"),
    "ocm_to_i": (("oulu", "casia_fasd", "msu"), "replay"),
    "oci_to_m": (("oulu", "casia_fasd", "replay"), "msu"),
    "omi_to_c": (("oulu", "msu", "replay"), "casia_fasd"),
    "icm_to_o": (("replay", "casia_fasd", "msu"), "oulu"),
}
TRAIN_FROM = ("train", "dev")


def load_index(index_root: Path, dataset: str, report: FailureReport):
    """(manifest rows, {split: video ids}) of one indexed dataset, or None when unusable.

    A dataset never indexed here (no grid experiment reads it) is `ignored`, so
    `index.strict` can pass; an index that is there but unreadable is `skipped`.
    """
    folder = index_root / dataset
    if not any((folder / name).exists() for name in ("manifest.parquet", "protocols.parquet")):
        report.add(folder, f"{dataset} is not indexed here: its cross protocols are not built",
                   IGNORED)
        return None
    try:
        manifest = read_table(folder / "manifest.parquet")
        protocols = read_table(folder / "protocols.parquet")
    except (OSError, ValueError) as error:
        report.add(folder, f"index of {dataset} missing or unreadable ({error}); "
                           f"run `fas index {dataset}` first: its cross protocols are skipped")
        return None
    splits = {split: set() for split in SPLITS}
    for row in protocols:
        splits[row["split"]].add(row["video_id"])
    return manifest, splits


def build_cross(index_root: Path, report: FailureReport) -> tuple[list[dict], list[dict]]:
    """Manifest rows (the used datasets' own rows) and cross protocol rows, both sorted."""
    needed = sorted({d for sources, target in CROSS_PROTOCOLS.values() for d in (*sources, target)})
    loaded = {d: index for d in needed if (index := load_index(index_root, d, report)) is not None}
    protocols, used = [], set()
    for name, (sources, target) in CROSS_PROTOCOLS.items():
        missing = [d for d in (*sources, target) if d not in loaded]
        if missing:
            unreadable = [d for d in missing if (index_root / d).is_dir()
                          and any((index_root / d).glob("*.parquet"))]
            report.add(name, f"protocol {'skipped' if unreadable else 'not built'}: no index for "
                       f"{', '.join(missing)}", SKIPPED if unreadable else IGNORED)
            continue
        members = [(d, "train", v) for d in sources for s in TRAIN_FROM for v in loaded[d][1][s]]
        members += [(target, "test", v) for v in loaded[target][1]["test"]]
        protocols += [{"dataset": d, "protocol": name, "fold": 1, "split": split, "video_id": v,
                       "modalities": None, "max_frames": None} for d, split, v in set(members)]
        used.update((*sources, target))
    protocols.sort(key=lambda r: (r["protocol"], SPLITS.index(r["split"]), r["dataset"], r["video_id"]))
    manifest = sorted((row for d in sorted(used) for row in loaded[d][0]),
                      key=lambda r: (r["dataset"], r["video_id"]))
    return manifest, protocols
