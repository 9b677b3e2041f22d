"""MLflow bookkeeping: parent/child runs, run-key reuse, failures, parallel jobs."""

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from fas import tracking
from fas.cli import main
from fas.config import REPO_ROOT, load_params
from fas.errors import UserError
from fas.experiment import grid_identity, resolve
from fas.grid import Experiment, expand


@pytest.fixture()
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FAS_TRACKING", "1")
    params = load_params()
    params["mlflow"]["experiment"] = "test"
    tracking.init_grid(grid_identity(params))
    return params


def _runs(params, role="train"):
    client = tracking._client()
    experiment = client.get_experiment_by_name(params["mlflow"]["experiment"])
    return [r for r in client.search_runs([experiment.experiment_id], max_results=1000)
            if r.data.tags.get(tracking.ROLE_TAG) == role]


@pytest.mark.slow
def test_child_run_is_linked_tagged_and_reused(store):
    experiment = expand(store)[0]
    with tracking.start_run(resolve(store, experiment)) as run:
        run.log_params({"a": 1})
        run.log_metrics({"train/loss": 0.5}, step=0)
    with tracking.start_run(resolve(store, experiment)) as again:
        assert again.reused and again.id == run.id
        again.log_metrics({"train/loss": 9.0}, step=0)  # ignored: identical run exists
    (child,) = _runs(store)
    (parent,) = _runs(store, role="grid")
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["dataset"] == experiment.dataset
    assert child.data.tags["variant"] == experiment.variant
    assert child.info.status == "FINISHED"
    assert child.data.metrics["train/loss"] == 0.5


@pytest.mark.slow
def test_changed_parameters_make_a_new_run_and_errors_mark_failed(store):
    experiment = expand(store)[0]
    with pytest.raises(RuntimeError):
        with tracking.start_run(resolve(store, experiment)):
            raise RuntimeError("loss is NaN")
    assert [r.info.status for r in _runs(store)] == ["FAILED"]
    with tracking.start_run(resolve(store, experiment)) as resumed:  # same key: the failed run reopens
        pass
    store["presets"][store["preset"]][experiment.method]["lr"] *= 2  # a key the experiment reads
    with tracking.start_run(resolve(store, experiment)) as changed:
        pass
    assert changed.id != resumed.id
    assert sorted(r.info.status for r in _runs(store)) == ["FINISHED", "FINISHED"]


def _worker(args):
    uri, experiment_id = args
    os.environ["MLFLOW_TRACKING_URI"] = uri
    params = load_params()
    params["mlflow"]["experiment"] = "test"
    with tracking.start_run(resolve(params, Experiment.parse(experiment_id))) as run:
        run.log_params({"x": experiment_id})
        for step in range(3):
            run.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    return run.id


@pytest.mark.slow
def test_parallel_jobs_lose_and_duplicate_no_run(store):
    ids = [e.id for e in expand(store)[:6]]
    uri = os.environ["MLFLOW_TRACKING_URI"]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        run_ids = pool.map(_worker, [(uri, i) for i in ids])
    runs = _runs(store)
    assert len(set(run_ids)) == len(ids) == len(runs)
    assert sorted(r.data.tags["experiment"] for r in runs) == sorted(ids)


def test_tracking_off_is_a_no_op(monkeypatch):
    monkeypatch.setenv("FAS_TRACKING", "0")
    params = load_params()
    with tracking.start_run(resolve(params, expand(params)[0])) as run:
        run.log_metrics({"x": 1.0})
        assert run.id is None


class _RacedClient:
    """An MLflow client whose first `log_inputs` meets a parallel job's insert (as PostgreSQL says it)."""

    RACE = ('BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates unique '
            'constraint "dataset_pk"\nDETAIL:  Key (experiment_id, name, digest)=(1, cefa.p1.f1.train, '
            'f01775b1) already exists.')

    def __init__(self, error: str):
        self.error, self.calls = error, []

    def log_inputs(self, run_id, datasets):
        self.calls.append((run_id, [d.dataset.name for d in datasets]))
        if len(self.calls) == 1:
            raise RuntimeError(self.error)


def test_a_dataset_inserted_meanwhile_by_a_parallel_run_is_linked_on_retry():
    import pandas as pd

    client = _RacedClient(_RacedClient.RACE)
    run = tracking.Run(client, "run-1", key="k")
    run.log_input(pd.DataFrame({"video_id": ["a", "b"]}), "cefa.p1.f1.train",
                  "data/index/cefa/protocols.parquet", "training")
    assert client.calls == [("run-1", ["cefa.p1.f1.train"])] * 2

    other = _RacedClient("RESOURCE_DOES_NOT_EXIST: run 'run-1' not found")
    with pytest.raises(RuntimeError, match="not found"):
        tracking.Run(other, "run-1", key="k").log_input(
            pd.DataFrame({"video_id": ["a"]}), "x", "x.parquet", "training")
    assert len(other.calls) == 1


def test_flatten_params():
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {
        "a.b": "1", "a.c": "[1, 2]", "d": "x"}


# -- the SQLite store: absent or complete whatever the moment of a kill ------------------

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory):
    """A complete store made once (migrations take seconds); tests work on copies."""
    path = tmp_path_factory.mktemp("fresh") / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
        assert tracking.ensure_store() == f"created the MLflow store {path}"
    return path


def _copy_of(fresh_store, folder, monkeypatch) -> Path:
    path = folder / "mlflow.db"
    shutil.copyfile(fresh_store, path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
    monkeypatch.setenv("FAS_TRACKING", "1")
    return path


def _sql(path, statement):
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(statement)


def _track_init(folder) -> int:
    return main(["track", "init", "--receipt", str(folder / "grid.json")])


def _kill_mlflows_own_creation_midway(path: Path) -> None:
    """MLflow creating a store in place, SIGKILLed once its schema migrations have begun."""
    creator = subprocess.Popen([sys.executable, "-c", (
        "from mlflow.tracking import MlflowClient\n"
        f"MlflowClient(tracking_uri='sqlite:///{path}').search_experiments()\n")],
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0.1)) as db:
                if db.execute("SELECT version_num FROM alembic_version").fetchone():
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    os.kill(creator.pid, signal.SIGKILL)
    creator.wait()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["killed creation", "leftover migration table",
                                    "not a database"])
def test_track_init_recreates_an_incomplete_store_without_runs(
        fresh_store, tmp_path, monkeypatch, capsys, damage):
    path = _copy_of(fresh_store, tmp_path, monkeypatch)
    if damage == "killed creation":  # the defect: MLflow's own creation killed 5-6 s in
        path.unlink()
        _kill_mlflows_own_creation_midway(path)
    elif damage == "leftover migration table":
        _sql(path, "CREATE TABLE _alembic_tmp_latest_metrics (x INTEGER)")
    else:
        path.write_bytes(b"x" * 4096)
    problem = tracking.store_problem(path)
    assert problem is not None
    params = load_params()
    with pytest.raises(UserError, match="incomplete MLflow store .*`fas track init` recreates it"):
        with tracking.start_run(resolve(params, expand(params)[0])):
            pass
    assert _track_init(tmp_path) == 0
    assert f"recreated the MLflow store {path}, which held no run" in capsys.readouterr().err
    assert tracking.store_problem(path) is None
    assert json.loads((tmp_path / "grid.json").read_text())["parent_run_id"]


@pytest.mark.slow
def test_an_incomplete_store_holding_runs_is_left_as_it_is(fresh_store, tmp_path, monkeypatch,
                                                           capsys):
    path = _copy_of(fresh_store, tmp_path, monkeypatch)
    assert _track_init(tmp_path) == 0  # one run: the grid's parent
    _sql(path, "CREATE TABLE _alembic_tmp_latest_metrics (x INTEGER)")
    before = path.read_bytes()
    capsys.readouterr()
    assert _track_init(tmp_path) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"fas track: {path}: incomplete MLflow store (an interrupted "
                            "schema migration left table _alembic_tmp_latest_metrics) holding "
                            "1 run(s), left as it is: back it up")
    assert len(error.splitlines()) == 1 and path.read_bytes() == before


@pytest.mark.slow
def test_a_kill_at_any_moment_of_track_init_leaves_no_store_or_a_complete_one(tmp_path):
    path = tmp_path / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{path}", "FAS_TRACKING": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    receipt = tmp_path / "grid.json"
    command = ["fas", "track", "init", "--receipt", str(receipt)]
    seen = set()
    for delay in (1, 3, 5, 7, "migrating"):
        job = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        if delay == "migrating":  # the temporary store exists: migrations are under way
            deadline = time.monotonic() + 120
            while not list(tmp_path.glob(".mlflow.db.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            time.sleep(delay)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        state = "absent" if not path.exists() else tracking.store_problem(path) or "complete"
        assert state in ("absent", "complete"), (delay, state)
        seen.add(state)
        if state == "complete":
            path.unlink()
            receipt.unlink(missing_ok=True)
    assert "absent" in seen
    assert subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True).returncode == 0
    assert tracking.store_problem(path) is None and receipt.is_file()
    assert not list(tmp_path.glob(".mlflow.db.*.tmp*"))  # the kills' temporaries are gone


@pytest.mark.slow
def test_a_grid_run_left_running_by_a_kill_is_closed_on_reuse(fresh_store, tmp_path,
                                                             monkeypatch):
    _copy_of(fresh_store, tmp_path, monkeypatch)
    grid = grid_identity(load_params())
    parent = tracking.init_grid(grid)["parent_run_id"]
    tracking._client().update_run(parent, status="RUNNING")  # killed before set_terminated
    assert tracking.init_grid(grid)["parent_run_id"] == parent
    assert tracking._client().get_run(parent).info.status == "FINISHED"
