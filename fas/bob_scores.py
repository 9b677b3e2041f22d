"""bob's PAD score files: `fas scores export` and `fas scores import`, to compare with bob.pad.face.

bob.pad.base writes one CSV file per group, `scores-dev.csv` and
`scores-eval.csv`, with the columns `claimed_id`, `test_label`, `is_bonafide`
(True/False), `attack_type` (empty for bona fide) and `score` (higher = more
bona fide), then any metadata columns; `bob pad metrics` reads them
(bob.pad.base `split_csv_pad_per_pai`). Our scores are P(live), the same
polarity. bob's `dev` group is our dev split and `eval` our test split; the
train split is written as `scores-train.csv`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

from fas import paths
from fas.errors import UserError
from fas.io import atomic_path
from fas.lazy import lazy_import

pd = lazy_import("pandas")
metrics = lazy_import("fas.metrics")
GROUPS = {"train": "train", "dev": "dev", "test": "eval"}  # our split -> bob's group
COLUMNS = ["claimed_id", "test_label", "is_bonafide", "attack_type", "score"]
UNNAMED_ATTACK = "attack"  # the pai of an attack row whose attack_type is empty


class BobFormatError(UserError, ValueError):
    """A file that is not a bob PAD score CSV."""


def to_bob(scores: pd.DataFrame, subjects: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Our scores table as bob's score tables by group; `subjects`: video_id -> claimed_id.

    A frame-level table keeps its `index` as a metadata column `frame`.
    """
    subjects = subjects or {}
    tables = {}
    for split, group in GROUPS.items():
        rows = scores[scores["split"] == split]
        if rows.empty:
            continue
        table = pd.DataFrame({
            "claimed_id": rows["video_id"].map(lambda v: subjects.get(v, "")),
            "test_label": rows["video_id"],
            "is_bonafide": rows["is_live"].map({True: "True", False: "False"}),
            "attack_type": rows["pai"].where(~rows["is_live"], ""),
            "score": rows["score"],
        })
        if "index" in rows:
            table["frame"] = rows["index"]
        tables[group] = table.reset_index(drop=True)
    return tables


def read_bob(path: str | Path) -> pd.DataFrame:
    """One bob PAD score CSV, checked for its columns and labels."""
    try:
        table = pd.read_csv(path, dtype={"claimed_id": str, "test_label": str, "attack_type": str,
                                         "is_bonafide": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BobFormatError(f"{path}: not readable as CSV ({error})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise BobFormatError(f"{path}: missing column(s) {missing}; a bob PAD score file has "
                             f"{COLUMNS}")
    labels = set(table["is_bonafide"].str.lower())
    if not labels <= {"true", "false"}:
        raise BobFormatError(f"{path}: is_bonafide must be True or False, found {sorted(labels)}")
    table["score"] = pd.to_numeric(table["score"], errors="coerce")
    if table["score"].isna().any():
        raise BobFormatError(f"{path}: {int(table['score'].isna().sum())} score(s) are not numbers")
    return table


def from_bob(groups: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """bob's score tables by group (`dev`, `eval`, `train`) as our scores table.

    Scores keep bob's values: a classifier's scores need not lie in [0, 1].
    """
    splits = {group: split for split, group in GROUPS.items()}
    parts = []
    for group, table in groups.items():
        live = table["is_bonafide"].str.lower() == "true"
        attack_type = table["attack_type"].where(table["attack_type"] != "", UNNAMED_ATTACK)
        parts.append(pd.DataFrame({"video_id": table["test_label"], "split": splits[group],
                                   "is_live": live, "pai": attack_type.where(~live, metrics.LIVE_PAI),
                                   "score": table["score"].astype(float)}))
    return pd.concat(parts, ignore_index=True)


def write_bob(folder: str | Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """`scores-<group>.csv` per group in `folder`."""
    written = []
    for group, table in tables.items():
        target = Path(folder) / f"scores-{group}.csv"
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False)
        written.append(target)
    return written


def subjects_of(index_root: Path, datasets: list[str]) -> dict[str, str]:
    """video_id -> subject from the manifests of `datasets` (those indexed)."""
    subjects: dict[str, str] = {}
    for dataset in datasets:
        manifest = Path(index_root) / dataset / "manifest.parquet"
        if manifest.is_file():
            table = pd.read_parquet(manifest, columns=["video_id", "subject"])
            subjects.update(zip(table["video_id"].astype(str), table["subject"].astype(str)))
    return subjects


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    export = sub.add_parser("export", help="an experiment's scores as bob score files")
    export.add_argument("experiment", help="experiment id, see `fas grid`")
    export.add_argument("--out", type=Path, required=True, help="folder for scores-<group>.csv")
    export.add_argument("--level", choices=["video", "frame"], default="video")
    export.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    export.add_argument("--train-root", type=Path, default=paths.TRAIN_ROOT)
    export.add_argument("--index-root", type=Path, default=paths.INDEX_ROOT,
                        help="manifests giving each video's subject (claimed_id)")
    imported = sub.add_parser("import", help="bob score files as a scores.parquet table")
    imported.add_argument("--dev", type=Path, help="scores-dev.csv")
    imported.add_argument("--eval", type=Path, required=True, help="scores-eval.csv")
    imported.add_argument("--train", type=Path, help="scores-train.csv")
    imported.add_argument("--out", type=Path, required=True, help="scores table (.parquet)")


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        groups = {group: read_bob(path) for group, path in
                  (("train", args.train), ("dev", args.dev), ("eval", args.eval)) if path}
        table = from_bob(groups)
        with atomic_path(args.out) as tmp:
            table.to_parquet(tmp, index=False)
        print(f"fas scores: {len(table)} scores -> {args.out}")
        return 0
    from fas.config import load_params
    from fas.evaluate import LEVEL_FILES, load_scores
    from fas.experiment import resolve, source_datasets

    params = load_params(args.params)
    experiment = resolve(params, args.experiment).experiment
    scores = load_scores(args.train_root / experiment.path / LEVEL_FILES[args.level])
    subjects = subjects_of(args.index_root, source_datasets(experiment, params["datasets"]))
    for path in write_bob(args.out, to_bob(scores, subjects)):
        print(path)
    return 0
