"""`fas metrics`: APCER, BPCER, ACER, HTER, EER and AUC of experiments, as a terminal table.

Like `bob pad metrics`: every row names its threshold (policy, the split it
was chosen on, its value) and its sample counts; rates are in percent. Rows
are grid experiments (ids or globs such as `'cefa.p1.*'`, scored as `fas
evaluate` does) and bob score files (`--bob scores-dev.csv scores-eval.csv`,
e.g. from bob.pad.face), so both can be compared at the same policy.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from fas import paths
from fas.config import load_params
from fas.errors import UsageError

COLUMNS = [("APCER", "apcer"), ("BPCER", "bpcer"), ("ACER", "acer"), ("HTER", "hter"),
           ("EER", "eer"), ("AUC", "auc")]
POLICIES = ("dev_eer", "fixed", "train_eer", "test_eer")


def select(patterns: list[str], ids: list[str]) -> list[str]:
    """Grid experiment ids matching any of `patterns` (ids or shell globs), in grid order."""
    chosen = [i for i in ids if any(fnmatch.fnmatchcase(i, p) for p in patterns)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(i, p) for i in ids)]
    if unmatched:
        raise UsageError(f"no experiment of the grid matches {', '.join(unmatched)} "
                         "(`fas grid` lists them)")
    return chosen


def row(label: str, table, settings: dict) -> dict:
    """The headline metrics of one scores table at the settings' threshold policy."""
    from fas.evaluate import evaluate_table

    headline = evaluate_table(table, label, settings)["headline"]
    threshold = headline["threshold"]
    where = f"@{threshold['split']}" if threshold["split"] else ""
    return {"label": label, **{key: headline.get(key) for _, key in COLUMNS},
            "threshold": f"{threshold['policy']}{where} {threshold['value']:.4g}",
            "live": headline["n_live"], "attack": headline["n_attack"]}


def render(rows: list[dict]) -> str:
    """Aligned columns, rates in percent with two decimals."""
    from fas.evaluate import percent

    header = ["", *(name for name, _ in COLUMNS), "threshold", "live", "attack"]
    lines = [[r["label"], *(percent(r[key]).rstrip("%") for _, key in COLUMNS), r["threshold"],
              str(r["live"]), str(r["attack"])] for r in rows]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *map(fmt, lines)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help="experiment ids or globs (quote them), e.g. 'cefa.p1.*'; "
                             "default: every grid experiment that has scores")
    parser.add_argument("--bob", nargs=2, action="append", default=[], metavar=("DEV", "EVAL"),
                        help="a pair of bob score files (scores-dev.csv scores-eval.csv)")
    parser.add_argument("--policy", choices=POLICIES, default=None,
                        help="threshold policy (default: params evaluate.threshold_policy)")
    parser.add_argument("--level", choices=["video", "frame"], default=None,
                        help="score level (default: params evaluate.level)")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--train-root", type=Path, default=paths.TRAIN_ROOT)


def run(args: argparse.Namespace) -> int:
    from fas import bob_scores
    from fas.evaluate import LEVEL_FILES, load_scores
    from fas.experiment import resolve
    from fas.grid import expand

    params = load_params(args.params)
    ids = [e.id for e in expand(params)]
    wanted = select(args.experiments, ids) if args.experiments else []
    overrides = {k: v for k, v in (("threshold_policy", args.policy), ("level", args.level)) if v}
    rows, skipped = [], []
    for experiment_id in wanted or ([] if args.bob else ids):
        config = resolve(params, experiment_id)
        settings = {**config.evaluate, **overrides}
        path = args.train_root / config.experiment.path / LEVEL_FILES[settings["level"]]
        if not path.exists():
            skipped.append(experiment_id)
            continue
        rows.append(row(experiment_id, load_scores(path), settings))
    for dev, evaluation in args.bob:
        table = bob_scores.from_bob({"dev": bob_scores.read_bob(dev),
                                     "eval": bob_scores.read_bob(evaluation)})
        rows.append(row(str(evaluation), table, {**params["evaluate"], **overrides}))
    if wanted and skipped:
        print(f"fas metrics: no scores yet for {', '.join(skipped)}", file=sys.stderr)
    if not rows:
        raise UsageError("no scores to show: run the pipeline first, or pass --bob files")
    print("Rates in %. APCER: the maximum over PAI species (ISO/IEC 30107-3); ACER = "
          "(APCER + BPCER)/2; HTER = (pooled APCER + BPCER)/2; a presentation is accepted as "
          "live when score >= threshold; threshold: policy@split value.")
    print(render(rows))
    return 0
