"""The tiny grid against MLflow as a team server: PostgreSQL backend store, proxied artifacts.

ci/tracking/up.sh starts PostgreSQL (as .ci/run does) and an `mlflow server`
on a database of its own; the jobs reach it over HTTP only. Skipped, with the
reason, only where PostgreSQL cannot start.
"""

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from fas.config import REPO_ROOT, load_params
from fas.grid import expand
from fixtures.tiny_project import (BIN, assert_every_output, assert_one_run_per_experiment,
                                   free_port, make_project, run, tiny_params)

pytestmark = pytest.mark.slow

UP = REPO_ROOT / "ci/tracking/up.sh"
DOWN = REPO_ROOT / "ci/tracking/down.sh"


@pytest.fixture()
def tracking_server(tmp_path):
    """(tracking URI, state folder, database) of a fresh server; stopped and dropped after."""
    postgres = subprocess.run([UP, "--postgres-only"], capture_output=True, text=True)
    if postgres.returncode != 0:
        pytest.skip(f"PostgreSQL cannot start here: {postgres.stderr.strip()[-300:]} "
                    "(run ci/tracking/up.sh --postgres-only as root, as .ci/run does)")
    port, state = free_port(), tmp_path / "server"
    database = f"fas_test_{os.getpid()}_{port}"
    started = subprocess.run([UP, "--port", str(port), "--database", database, "--state", state],
                             env={**os.environ, "MLFLOW": str(BIN / "mlflow")},
                             capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{port}", state, database
    finally:
        subprocess.run([DOWN, "--state", state, "--drop"], check=True)


def test_postgres_tracking_server_gets_one_run_per_experiment(tmp_path, tracking_server):
    uri, state, database = tracking_server
    folder = make_project(tmp_path / "project", tiny_params())
    run(folder, "snakemake", "-j4", tracking_uri=uri)
    assert_every_output(folder)
    children = assert_one_run_per_experiment(folder, uri, orchestrator="snakemake")
    assert not (folder / "mlflow.db").exists(), "the jobs wrote to a local store"

    counted = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-d", database, "-tAc",
                              "SELECT status, count(*) FROM runs GROUP BY status"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert counted == [f"FINISHED|{len(children) + 1}"], "PostgreSQL holds every run"

    client = MlflowClient(tracking_uri=uri)
    params = load_params(folder / "params.yaml")
    assert client.get_experiment_by_name(params["mlflow"]["experiment"]).artifact_location \
        .startswith("mlflow-artifacts:"), "artifacts go through the server"
    for experiment in expand(params):
        run_id = children[experiment.id].info.run_id
        listed = {Path(a.path).name for a in client.list_artifacts(run_id)}
        assert {"scores.parquet", "history.csv", "metrics.json", "model.pt"} <= listed
        downloaded = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="scores.parquet", tracking_uri=uri,
            dst_path=str(tmp_path / "downloads" / run_id))
        written = folder / "results/train" / experiment.path / "scores.parquet"
        assert Path(downloaded).read_bytes() == written.read_bytes()
    stored = list((state / "artifacts").rglob("scores.parquet"))
    assert len(stored) == len(children), "artifacts live in the server's store"
