"""`fas evaluate`: ISO/IEC 30107-3 metrics of one experiment, video and frame level, with CIs.

Reads `results/train/<path>/{scores,frame_scores}.parquet` and `receipt.json`,
writes `results/eval/<path>/metrics.json` (a DVC metrics file): every number
with its bootstrap confidence interval. `fas report` logs the headline numbers
into the experiment's MLflow run (`log_to_run`), all runs in one process: a
job of its own here would spend more on importing MLflow than on the metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Mapping

from fas import paths, tracking
from fas.config import load_params
from fas.experiment import resolve
from fas.grid import Experiment
from fas.io import write_json
from fas.lazy import lazy_import

pd = lazy_import("pandas")
metrics = lazy_import("fas.metrics")

LEVEL_FILES = {"video": "scores.parquet", "frame": "frame_scores.parquet"}
# Splits the label polarity guard looks at: in-domain data only, since a model
# may legitimately rank a shifted test domain below chance.
POLARITY_SPLITS = ("train", "dev")
def load_scores(path: Path) -> pd.DataFrame:
    """A scores table, checked for columns, values and label consistency."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: scores file not found (run `fas train` first)")
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise metrics.ScoreError(f"{path}: unreadable Parquet file ({error})") from error
    metrics.check_scores(table, str(path))
    return table


def evaluate_table(table: pd.DataFrame, source: str, settings: Mapping) -> dict:
    """Headline result under the configured policy and one block per available policy, with CIs."""
    for split in POLARITY_SPLITS:
        rows = table[table["split"] == split]
        metrics.check_polarity(rows["is_live"].to_numpy(bool), rows["score"].to_numpy(float),
                               f"{source} ({split} split)",
                               min_auc=settings["polarity_min_auc"],
                               alpha=settings["polarity_alpha"])
    test = table[table["split"] == "test"]
    if test.empty:
        raise metrics.ScoreError(f"{source}: no test rows to evaluate")

    def at(policy: str, no_dev_policy: str | None) -> metrics.Threshold:
        return metrics.select_threshold(table, policy, fixed=settings["fixed_threshold"],
                                        no_dev_policy=no_dev_policy)

    evaluation = metrics.Evaluation(test, metrics.Bootstrap.from_settings(settings["bootstrap"]))
    headline = evaluation.at(at(settings["threshold_policy"], settings["no_dev_policy"]))
    policies, unavailable = {}, {}
    for policy in metrics.POLICIES:
        try:
            policies[policy] = evaluation.at(at(policy, None))
        except ValueError as error:
            unavailable[policy] = str(error)
    return {"headline": headline, "policies": policies, "unavailable": unavailable}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_receipt(train_dir: Path) -> dict:
    """The training receipt (`run_id`, ...), or {} when there is none."""
    path = train_dir / "receipt.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _finite(value):
    """NaN and infinities become null: metrics.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate_experiment(experiment: Experiment, settings: Mapping, train_root: Path) -> dict:
    """The metrics.json payload of one experiment.

    The headline level must be scorable; a problem with the other level is
    recorded under provenance.problems and that level is left out.
    """
    train_dir = Path(train_root) / experiment.path
    levels, problems, files = {}, [], {}
    for level, name in LEVEL_FILES.items():
        path = train_dir / name
        try:
            levels[level] = evaluate_table(load_scores(path), str(path), settings)
            files[level] = {"path": str(path), "sha256": sha256(path)}
        except (metrics.ScoreError, FileNotFoundError, ValueError) as error:
            if level == settings["level"]:
                raise
            problems.append({"path": str(path), "reason": str(error), "action": "level skipped"})
    headline = levels[settings["level"]]["headline"]
    return _finite({
        "experiment": experiment.id,
        "level": settings["level"],
        "threshold": headline["threshold"],
        "test": {k: v for k, v in headline.items() if k != "threshold"},
        "levels": {level: {"policies": r["policies"], "unavailable": r["unavailable"]}
                   for level, r in levels.items()},
        "provenance": {
            "accept_rule": metrics.ACCEPT_RULE,
            "evaluated_split": "test",
            "settings": dict(settings),
            "confidence_intervals": metrics.Bootstrap.from_settings(settings["bootstrap"]).describe(),
            "scores": files,
            "problems": problems,
        },
    })


def mlflow_metrics(payload: dict) -> dict[str, float]:
    """Flat `test/...` metric names of the headline and `test/<level>/...` of the other level
    (confidence intervals stay in metrics.json)."""
    flat = {}

    def add(prefix: str, block: dict) -> None:
        for key, value in block.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
                flat[f"{prefix}/{key}"] = float(value)
        for pai, value in block.get("apcer_per_pai", {}).items():
            if value is not None:
                flat[f"{prefix}/apcer/{pai}"] = float(value)

    add("test", payload["test"])
    policy = payload["threshold"]["policy"]
    for level, result in payload["levels"].items():
        if level != payload["level"] and policy in result["policies"]:
            add(f"test/{level}", result["policies"][policy])
    flat["eval/threshold"] = float(payload["threshold"]["value"])
    if payload["threshold"]["source_eer"] is not None:
        flat["eval/threshold_source_eer"] = float(payload["threshold"]["source_eer"])
    return flat


def percent(rate: float | None) -> str:
    """A rate as the tables print it: percent with two decimals."""
    return "--" if rate is None else f"{100 * rate:.2f}%"


def log_to_run(payload: dict, metrics_path: Path, run_id: str | None) -> None:
    """Log the headline numbers and threshold provenance into the training run."""
    threshold = payload["threshold"]
    with tracking.resume_run(run_id) as run:
        run.log_metrics(mlflow_metrics(payload))
        run.set_tags({"eval/level": payload["level"], "eval/threshold_policy": threshold["policy"],
                      "eval/threshold_requested": threshold["requested"],
                      "eval/threshold_split": str(threshold["split"]),
                      "eval/threshold_oracle": str(threshold["oracle"]).lower()})
        run.log_artifact(str(metrics_path))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment id from `fas grid`")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--train-root", type=Path, default=paths.TRAIN_ROOT)
    parser.add_argument("--out", type=Path, default=paths.EVAL_ROOT)


def run(args: argparse.Namespace) -> int:
    config = resolve(load_params(args.params), args.experiment)
    try:
        payload = evaluate_experiment(config.experiment, config.evaluate, args.train_root)
    except (ValueError, FileNotFoundError) as error:
        print(f"fas evaluate: {error}", file=sys.stderr)
        return 1
    for problem in payload["provenance"]["problems"]:
        print(f"fas evaluate: {problem['path']}: {problem['reason']} ({problem['action']})",
              file=sys.stderr)
    target = args.out / config.experiment.path / "metrics.json"
    write_json(target, payload)
    # MLflow gets these numbers from `fas report`, which logs every experiment in one
    # process: importing MLflow here would cost each evaluate job seconds.
    test, threshold = payload["test"], payload["threshold"]
    rates = " ".join(f"{name} {percent(test.get(key))}"
                     for name, key in (("ACER", "acer"), ("HTER", "hter"), ("EER", "eer")))
    print(f"{config.id}: {rates} ({payload['level']} level, {threshold['policy']} threshold "
          f"{threshold['value']:.4f} from {threshold['split']} split) -> {target}")
    return 0
