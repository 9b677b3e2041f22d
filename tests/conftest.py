"""Shared test set-up: tests run from the repository root, MLflow off unless a test turns it on."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _repo_cwd_and_no_tracking(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("FAS_TRACKING", os.environ.get("FAS_TEST_TRACKING", "0"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture()
def one_thread():
    """Tiny models run fastest on one torch thread, and the test machine is shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class RecordedTracking:
    """What code logged through `fas.tracking.resume_run`: the last call of each kind, and every artifact."""

    def __init__(self):
        self.calls: dict = {}
        self.artifacts: list[tuple[str, str]] = []  # (run id, file name)

    def resume_run(self, run_id):
        from contextlib import contextmanager

        recorder = self

        class Run:
            def log_metrics(self, values, step=None):
                recorder.calls["metrics"] = values

            def set_tags(self, tags):
                recorder.calls["tags"] = tags

            def log_artifact(self, path, artifact_path=None):
                recorder.calls["artifact"] = path
                recorder.artifacts.append((run_id, Path(path).name))

            def log_artifacts(self, folder, artifact_path=None):
                recorder.artifacts.append((run_id, Path(folder).name))

        @contextmanager
        def run():
            recorder.calls["run_id"] = run_id
            yield Run()

        return run()


@pytest.fixture()
def recorded_tracking(monkeypatch):
    """`fas.tracking.resume_run` replaced by a recorder (no MLflow store)."""
    from fas import tracking

    recorded = RecordedTracking()
    monkeypatch.setattr(tracking, "resume_run", recorded.resume_run)
    return recorded
