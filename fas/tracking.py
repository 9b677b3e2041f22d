"""MLflow bookkeeping: the store, the grid's parent run, one child run per experiment.

Every MLflow call of the project goes through this module. Tracking is off
(each call a no-op) when ``FAS_TRACKING=0``. The store defaults to SQLite at
an absolute path in the repository (DVC experiments run in temporary copies),
overridable with ``MLFLOW_TRACKING_URI``. SQLite writes from parallel jobs are
retried on lock errors; the database and the experiment are created once by
``fas track init``, the first node of the DAG.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from fas.config import REPO_ROOT, load_params
from fas.experiment import ExperimentConfig, grid_identity
from fas.io import write_json

T = TypeVar("T")

DEFAULT_DB = REPO_ROOT / "mlflow.db"
DEFAULT_ARTIFACTS = REPO_ROOT / "mlartifacts"
RUN_KEY_TAG = "fas.run_key"
GRID_KEY_TAG = "fas.grid_key"
ROLE_TAG = "fas.role"


def enabled() -> bool:
    return os.environ.get("FAS_TRACKING", "1") not in ("0", "false", "off")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else SQLite at an absolute repository path."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"


def _client():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def _retry(call: Callable[[], T], attempts: int = 12) -> T:
    """Retry a store call while SQLite reports a lock held by a parallel job."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:  # MlflowException wraps sqlalchemy's OperationalError
            text = str(error).lower()
            if "locked" not in text and "busy" not in text or attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


def code_version() -> str:
    """A hash of the package's source, stable across checkouts and temporary copies."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_key(config: ExperimentConfig, stage: str = "train") -> str:
    """Hash of what determines an experiment's result: resolved parameters, code and data."""
    return config.run_key(stage, code_version())


def git_commit() -> str:
    head = REPO_ROOT / ".git"
    try:
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            return (head / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return "unknown"


def _orchestrator() -> str:
    """Who ran this job: Snakemake sets FAS_ORCHESTRATOR (workflow/rules/common.smk), DVC sets DVC_STAGE."""
    if "FAS_ORCHESTRATOR" in os.environ:
        return os.environ["FAS_ORCHESTRATOR"]
    return "dvc" if "DVC_STAGE" in os.environ else "cli"


def flatten(mapping: dict, prefix: str = "") -> dict[str, str]:
    """Nested dict to MLflow params: `a.b.c` keys, string values."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return flat


class Run:
    """A handle on one MLflow run; every method is a no-op when tracking is off."""

    def __init__(self, client=None, run_id: str | None = None, key: str | None = None,
                 reused: bool = False):
        self._client = client
        self.id = run_id
        self.key = key
        self.reused = reused  # a finished run with the same key: nothing is logged again

    @property
    def active(self) -> bool:
        return self._client is not None and not self.reused

    def log_params(self, params: dict[str, Any]) -> None:
        if not self.active:
            return
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        existing = _retry(lambda: self._client.get_run(self.id)).data.params
        items = [p for p in items if p.key not in existing]  # params are immutable
        for start in range(0, len(items), 100):
            _retry(lambda: self._client.log_batch(self.id, params=items[start:start + 100]))

    def set_tags(self, tags: dict[str, Any]) -> None:
        if self._client is None:
            return
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in sorted(tags.items())]
        _retry(lambda: self._client.log_batch(self.id, tags=items))

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        if not self.active:
            return
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, step) for k, v in sorted(metrics.items())]
        _retry(lambda: self._client.log_batch(self.id, metrics=items))

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if not self.active:
            return
        _retry(lambda: self._client.log_artifact(self.id, str(path), artifact_path))


def _experiment_id(client, name: str) -> str:
    found = _retry(lambda: client.get_experiment_by_name(name))
    if found is not None:
        return found.experiment_id
    try:
        return _retry(lambda: client.create_experiment(
            name, artifact_location=DEFAULT_ARTIFACTS.as_uri()
            if not os.environ.get("MLFLOW_TRACKING_URI") else None,
            # the UI then opens on the run list (model training), not the GenAI views
            tags={"mlflow.experimentKind": "custom_model_development"}))
    except Exception:  # created meanwhile by a parallel job
        return _retry(lambda: client.get_experiment_by_name(name)).experiment_id


def _search(client, experiment_id: str, tag: str, value: str):
    return _retry(lambda: client.search_runs(
        [experiment_id], filter_string=f"tags.`{tag}` = '{value}'",
        order_by=["attributes.start_time DESC"], max_results=50))


def init_grid(grid: Mapping[str, str]) -> dict[str, str]:
    """Create the store, the experiment and the grid's parent run, once (`grid_identity`)."""
    client = _client()
    experiment_id = _experiment_id(client, grid["mlflow_experiment"])
    runs = _search(client, experiment_id, GRID_KEY_TAG, grid["key"])
    parents = [r for r in runs if r.data.tags.get(ROLE_TAG) == "grid"]
    if parents:
        parent_id = parents[-1].info.run_id  # the oldest, should a race ever have made two
    else:
        run = _retry(lambda: client.create_run(experiment_id, run_name=f"grid-{grid['preset']}",
                                               tags={ROLE_TAG: "grid", GRID_KEY_TAG: grid["key"],
                                                     "preset": grid["preset"],
                                                     "git_commit": git_commit()}))
        parent_id = run.info.run_id
        _retry(lambda: client.set_terminated(parent_id, "FINISHED"))
    return {"experiment_id": experiment_id, "parent_run_id": parent_id, "grid_key": grid["key"],
            "tracking_uri": tracking_uri()}


@contextmanager
def start_run(config: ExperimentConfig, stage: str = "train",
              orchestrator: str | None = None) -> Iterator[Run]:
    """The child run of one experiment: reused when finished with the same run key.

    A run with the same key that did not finish (a killed job) is reopened, so
    a resumed training continues in the same run. An exception marks it FAILED.
    """
    if not enabled():
        yield Run()
        return
    client = _client()
    grid = init_grid(config.grid)
    key = run_key(config, stage)
    experiment = config.experiment
    runs = [r for r in _search(client, grid["experiment_id"], RUN_KEY_TAG, key)
            if r.data.tags.get(ROLE_TAG) == stage]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    if finished:
        yield Run(client, finished[0].info.run_id, key, reused=True)
        return
    tags = {
        ROLE_TAG: stage, RUN_KEY_TAG: key, "mlflow.parentRunId": grid["parent_run_id"],
        "dataset": experiment.dataset, "protocol": experiment.protocol,
        "fold": experiment.fold, "method": experiment.method, "variant": experiment.variant,
        "seed": experiment.seed, "experiment": experiment.id, "git_commit": git_commit(),
        "code_version": code_version(), "preset": config.preset,
        "orchestrator": orchestrator or _orchestrator(),
    }
    if runs:
        run_id = runs[0].info.run_id
        _retry(lambda: client.update_run(run_id, status="RUNNING"))
    else:
        created = _retry(lambda: client.create_run(
            grid["experiment_id"], run_name=experiment.id,
            tags={k: str(v) for k, v in tags.items()}))
        run_id = created.info.run_id
    run = Run(client, run_id, key)
    try:
        yield run
    except BaseException:
        _retry(lambda: client.set_terminated(run_id, "FAILED"))
        raise
    _retry(lambda: client.set_terminated(run_id, "FINISHED"))


@contextmanager
def resume_run(run_id: str | None) -> Iterator[Run]:
    """Log into an existing run (evaluation into its training run), status unchanged."""
    if not enabled() or not run_id:
        yield Run()
        return
    yield Run(_client(), run_id)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    init = sub.add_parser("init", help="create the store, experiment and grid parent run")
    init.add_argument("--params", type=Path, default=None)
    init.add_argument("--receipt", type=Path, required=True, help="JSON receipt to write")
    sub.add_parser("uri", help="print the tracking URI")


def run(args: argparse.Namespace) -> int:
    if args.action == "uri":
        print(tracking_uri())
        return 0
    grid = grid_identity(load_params(args.params))
    receipt = init_grid(grid) if enabled() else {"tracking": "off", "grid_key": grid["key"]}
    write_json(args.receipt, receipt)
    print(json.dumps(receipt, indent=2, sort_keys=True))
    return 0
