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
