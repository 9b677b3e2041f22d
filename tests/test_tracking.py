"""MLflow bookkeeping: parent/child runs, run-key reuse, failures, parallel jobs."""

import multiprocessing
import os

import pytest

from fas import tracking
from fas.config import load_params
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
    store["augment"]["rotation_deg"] = 10
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


def test_flatten_params():
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {
        "a.b": "1", "a.c": "[1, 2]", "d": "x"}
