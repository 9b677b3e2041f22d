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
