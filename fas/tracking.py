"""MLflow bookkeeping: the store, the grid's parent run, one child run per experiment.

Every MLflow call of the project goes through this module. Tracking is off
(each call a no-op) when ``FAS_TRACKING=0``. The store defaults to SQLite in
the project folder (`project_root`: DVC's project, even for an experiment DVC
runs in a temporary copy, else the working folder), so it moves with the
project; ``MLFLOW_TRACKING_URI`` overrides it. SQLite writes from parallel
jobs are retried on lock errors; the database and the experiment are created
once by ``fas track init``, the first node of the DAG. The SQLite store is
built under a temporary name and renamed (`ensure_store`), so a kill at any
moment leaves it absent or complete; ``fas track init`` recreates one that an
older kill left incomplete.

Every run carries MLflow's standard tags (user, source, git commit, branch,
remote); a training run also its splits as MLflow datasets (`log_input`) and
its network as an MLflow PyTorch model.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import hashlib
import json
import os
import random
import re
import sqlite3
import sys
import time
import warnings
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from fas.config import load_params
from fas.errors import UserError
from fas.experiment import ExperimentConfig, grid_identity
from fas.io import atomic_path, write_json

T = TypeVar("T")

STORE = "mlflow.db"  # the default store and artifact folder, in the project folder
ARTIFACTS = "mlartifacts"
RUN_KEY_TAG = "fas.run_key"
GRID_KEY_TAG = "fas.grid_key"
ROLE_TAG = "fas.role"
MODEL_URI_TAG = "fas.model_uri"


def enabled() -> bool:
    return os.environ.get("FAS_TRACKING", "1") not in ("0", "false", "off")


def project_root() -> Path:
    """The project folder: DVC's (`DVC_ROOT`, which names the project itself when an
    experiment runs in a temporary copy), else the working folder, where both
    orchestrators run every command."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else SQLite in the project folder (an absolute URI)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / STORE}"


def _client():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    ensure_store()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


# -- the SQLite store: absent or complete, whenever a job is killed -----------------------

_COMPLETE_STORES: set[Path] = set()  # checked in this process


def store_file() -> Path | None:
    """The SQLite file of the tracking URI; None for a tracking server or another database."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?")[0]
    return Path(path) if path and path != ":memory:" else None


def ensure_store(repair: bool = False) -> str | None:
    """Make the SQLite store usable; returns what was done (None: nothing).

    An absent store is created under a temporary name and renamed, under a
    lock, so a kill leaves no store rather than a half-migrated one. An
    incomplete store (a kill inside an older, non-atomic creation or a schema
    migration) is an error naming the fix; with `repair` (`fas track init`) it
    is recreated when it holds no run, and left alone when it does.
    """
    path = store_file()
    if path is None or (path in _COMPLETE_STORES and not repair):
        return None
    with _store_lock(path):
        done = None
        if not path.exists():
            _create_store(path)
            done = f"created the MLflow store {path}"
        elif (problem := store_problem(path)) is not None:
            runs = _count_runs(path)
            if runs:
                raise UserError(f"{path}: incomplete MLflow store ({problem}) holding {runs} "
                                "run(s), left as it is: back it up, then run `mlflow db upgrade "
                                f"sqlite:///{path}`")
            if not repair:
                raise UserError(f"{path}: incomplete MLflow store ({problem}): "
                                "`fas track init` recreates it")
            for leftover in (path, *(Path(f"{path}{end}") for end in ("-journal", "-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
            _create_store(path)
            done = f"recreated the MLflow store {path}, which held no run ({problem})"
    _COMPLETE_STORES.add(path)
    return done


def store_problem(path: Path) -> str | None:
    """Why the file at `path` is not a complete store of this MLflow's schema (None: it is)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        with closing(sqlite3.connect(path, timeout=60)) as db:
            tables = {name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
            if leftovers:
                return f"an interrupted schema migration left table {leftovers[0]}"
            if "alembic_version" not in tables:
                return "no schema version: its creation was interrupted"
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as error:
        return f"not an SQLite database ({error})"
    head = _get_latest_schema_revision()
    if row is None or row[0] != head:
        return f"schema version {row[0] if row else None}, this MLflow's is {head}"
    return None


def _count_runs(path: Path) -> int:
    try:
        with closing(sqlite3.connect(path, timeout=60)) as db:
            return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.DatabaseError:  # no runs table (or no database): no run to keep
        return 0


def _create_store(path: Path) -> None:
    """A complete store at `path`: migrated under a temporary name, checked, then renamed."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = ((project_root() / ARTIFACTS).as_uri() if not os.environ.get("MLFLOW_TRACKING_URI")
            else "./mlruns")  # MLflow's default; only its Default experiment keeps it
    with atomic_path(path) as tmp:
        try:
            SqlAlchemyStore(f"sqlite:///{tmp}", root).engine.dispose()
        except Exception as error:  # sqlalchemy's OperationalError: SQLite's own words
            if (full_or_read_only := _disk_error(str(error).lower(), path)) is not None:
                raise full_or_read_only from error
            raise
        problem = store_problem(tmp)
        if problem is not None:
            raise RuntimeError(f"a fresh MLflow store is incomplete: {problem}")


def _disk_error(text: str, path: Path | None) -> OSError | None:
    """SQLite's "database or disk is full" and "readonly database" as the OSError they are."""
    code = (errno.ENOSPC if "disk is full" in text else
            errno.EROFS if "readonly database" in text else None)
    return OSError(code, os.strerror(code), str(path or tracking_uri())) if code else None


@contextmanager
def _store_lock(path: Path):
    """One process at a time checks or creates the store (released when the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


LOCKED = ("locked", "busy")
"""SQLite's words for a lock held by a parallel job."""
INSERTED_MEANWHILE = ("unique constraint", "duplicate key")
"""SQLite's and PostgreSQL's words for a row a parallel job inserted between MLflow's check and
its insert (one dataset logged by two runs at once): the retry finds the row and links it."""


def _retry(call: Callable[[], T], attempts: int = 12, transient: tuple[str, ...] = LOCKED) -> T:
    """Retry a store call while it fails for a `transient` reason (a parallel job's lock)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:  # MlflowException wraps sqlalchemy's OperationalError
            text = str(error).lower()
            if (full_or_read_only := _disk_error(text, store_file())) is not None:
                raise full_or_read_only from error
            if not any(word in text for word in transient) or attempt == attempts - 1:
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
    """The commit checked out in the working folder (a DVC experiment's own copy included)."""
    from mlflow.utils.git_utils import get_git_commit

    return get_git_commit(str(Path.cwd())) or "unknown"


def source_tags(command: str) -> dict[str, str]:
    """MLflow's standard tags of a run: user, source (the command), git commit, branch, remote."""
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils import mlflow_tags
    from mlflow.utils.git_utils import get_git_branch, get_git_commit, get_git_repo_url

    root = str(Path.cwd())
    tags = resolve_tags({mlflow_tags.MLFLOW_SOURCE_NAME: command,
                         mlflow_tags.MLFLOW_SOURCE_TYPE: "LOCAL"})
    for key, value in ((mlflow_tags.MLFLOW_GIT_COMMIT, get_git_commit(root)),
                       (mlflow_tags.MLFLOW_GIT_BRANCH, get_git_branch(root)),
                       (mlflow_tags.MLFLOW_GIT_REPO_URL, get_git_repo_url(root))):
        if value:
            tags[key] = value
    return tags


def _orchestrator() -> str:
    """Who ran this job: Snakemake sets FAS_ORCHESTRATOR (workflow/rules/common.smk), DVC sets
    DVC_STAGE (and DVC_EXP_NAME in `dvc exp run`)."""
    if "FAS_ORCHESTRATOR" in os.environ:
        return os.environ["FAS_ORCHESTRATOR"]
    if "DVC_STAGE" in os.environ:
        return f"dvc exp {os.environ['DVC_EXP_NAME']}" if os.environ.get("DVC_EXP_NAME") else "dvc"
    return "cli"


def metric_name(text: str) -> str:
    """`text` with every character MLflow refuses in a metric name replaced by `_`."""
    return re.sub(r"[^\w\-. /:]", "_", text)


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

    def log_artifacts(self, folder: str | os.PathLike, artifact_path: str | None = None) -> None:
        if not self.active:
            return
        _retry(lambda: self._client.log_artifacts(self.id, str(folder), artifact_path))

    def log_input(self, table, name: str, source: str | os.PathLike, context: str) -> None:
        """A pandas table as an MLflow dataset input (name, digest, source, `context` tag)."""
        if not self.active:
            return
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        with warnings.catch_warnings():  # two equivalent local-file source types match the path
            warnings.filterwarnings("ignore", "The specified dataset source", UserWarning)
            dataset = mlflow.data.from_pandas(table, source=str(source), name=name)
        entry = DatasetInput(dataset._to_mlflow_entity(),
                             tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
        _retry(lambda: self._client.log_inputs(self.id, datasets=[entry]),
               transient=LOCKED + INSERTED_MEANWHILE)

    def log_model(self, model, name: str = "model") -> str | None:
        """A PyTorch network as an MLflow model of this run; its URI for `mlflow.pytorch.load_model`.

        A reused run keeps the model it has and returns its URI. Loading the
        model back needs the `fas` package (its classes), as training did.
        """
        if self._client is None:
            return None
        if self.reused:
            return _retry(lambda: self._client.get_run(self.id)).data.tags.get(MODEL_URI_TAG)
        from importlib.metadata import version

        import mlflow
        import mlflow.pytorch

        mlflow.set_tracking_uri(tracking_uri())
        with mlflow.start_run(run_id=self.id):
            # pickled: the networks take and return dicts of tensors, which tracing (pt2) cannot
            info = _retry(lambda: mlflow.pytorch.log_model(
                model, name=name, serialization_format="pickle",
                pip_requirements=[f"torch=={version('torch')}"]))
        self.set_tags({MODEL_URI_TAG: info.model_uri})
        return info.model_uri


def _experiment_id(client, name: str) -> str:
    found = _retry(lambda: client.get_experiment_by_name(name))
    if found is not None:
        return found.experiment_id
    try:
        return _retry(lambda: client.create_experiment(
            name, artifact_location=(project_root() / ARTIFACTS).as_uri()
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
        if parents[-1].info.status != "FINISHED":  # a kill between creating and closing it
            _retry(lambda: client.set_terminated(parent_id, "FINISHED"))
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
    orchestrator = orchestrator or _orchestrator()
    if finished:  # the same result again: link this job to that run, log nothing twice
        run = Run(client, finished[0].info.run_id, key, reused=True)
        run.set_tags({"fas.reproduced_by": orchestrator})
        yield run
        return
    tags = {
        ROLE_TAG: stage, RUN_KEY_TAG: key, "mlflow.parentRunId": grid["parent_run_id"],
        "dataset": experiment.dataset, "protocol": experiment.protocol,
        "fold": experiment.fold, "method": experiment.method, "variant": experiment.variant,
        "seed": experiment.seed, "experiment": experiment.id,
        "code_version": code_version(), "preset": config.preset, "orchestrator": orchestrator,
        **source_tags(f"fas {stage} --experiment {experiment.id}"),
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
    if enabled():
        done = ensure_store(repair=True)
        if done:
            print(f"fas track init: {done}", file=sys.stderr)
    receipt = init_grid(grid) if enabled() else {"tracking": "off", "grid_key": grid["key"]}
    with resume_run(receipt.get("parent_run_id")) as parent:
        parent.set_tags(source_tags("fas track init"))
    write_json(args.receipt, receipt)
    print(json.dumps(receipt, indent=2, sort_keys=True))
    return 0
