"""The whole DAG on tiny synthetic data, run by Snakemake and by DVC in copies of the project.

Covers: both orchestrators finish and agree, a second run does nothing, a
parameter change reruns exactly the dependent stages, a killed run resumes to
identical results, and every experiment is in MLflow (REST API and UI).
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from fas.config import load_params
from fas.grid import expand
from fixtures.tiny_project import (BIN, assert_every_output, assert_one_run_per_experiment, env,
                                   free_port, make_project, metrics_of, run, tiny_params)

pytestmark = pytest.mark.slow


def planned_rules(folder: Path) -> set[str]:
    dry = run(folder, "snakemake", "-n", "--quiet", "rules")
    names = set()
    for line in dry.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            names.add(parts[0])
    return names


@pytest.fixture(scope="module")
def snakemake_project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("snakemake"), tiny_params())
    run(folder, "snakemake", "-j2")
    return folder


def test_a_root_with_spaces_and_shell_metacharacters_under_both_orchestrators(tmp_path_factory):
    """The dataset root reaches every command as one argument; nothing after `;` runs."""
    base = tmp_path_factory.mktemp("quoting")
    trap = base / "TRAPPED"
    root = base / f"my data; touch {trap}; $(touch {trap}) 'x'" / "replay"
    run(base, "fas", "synth", "replay", "--out", str(root), "--scale", "tiny")
    params = tiny_params()
    params["datasets"]["replay"]["root"] = str(root)
    params["grid"] = [block for block in TINY_GRID if block["dataset"] == "replay"]
    folder = make_project(base / "project dir", params)
    target = "data/cache/replay/static-0-of-1.parquet"  # index, extract, align read the root
    run(folder, "snakemake", "-j2", target)
    built = (folder / target).read_bytes()
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    run(folder, "dvc", "init", "-q", "-f")
    run(folder, "dvc", "repro", "--force", "align-replay.0-of-1")
    assert (folder / target).read_bytes() == built and not trap.exists()


def test_snakemake_builds_every_output(snakemake_project):
    assert_every_output(snakemake_project)
    assert not list(snakemake_project.glob("data/frames/*/*.parquet")), "frames are temporary"


def test_second_snakemake_run_does_nothing(snakemake_project):
    done = run(snakemake_project, "snakemake", "-j2")
    assert "Nothing to be done" in done.stdout + done.stderr


def test_training_parameter_reruns_only_training_and_after(snakemake_project):
    params = load_params(snakemake_project / "params.yaml")
    original = (snakemake_project / "params.yaml").read_text()
    try:
        params["augment"]["rotation_deg"] = 10
        (snakemake_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert planned_rules(snakemake_project) == {"train", "evaluate", "report", "default"}
        params["dynamic"]["window"] = 4
        (snakemake_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert planned_rules(snakemake_project) == {"dynamic", "train", "evaluate", "report",
                                                    "default"}
    finally:
        (snakemake_project / "params.yaml").write_text(original)


def test_killed_training_resumes_to_identical_results(snakemake_project):
    before = metrics_of(snakemake_project)
    experiment = expand(load_params(snakemake_project / "params.yaml"))[0]
    scores = f"results/train/{experiment.path}/scores.parquet"
    checkpoints = snakemake_project / ".scratch/checkpoints" / experiment.path
    shutil.rmtree(checkpoints, ignore_errors=True)
    job = subprocess.Popen(["snakemake", "-j1", "--forcerun", scores], cwd=snakemake_project,
                           env=env(snakemake_project), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not any(checkpoints.glob("*")):
        time.sleep(0.2)
    assert any(checkpoints.glob("*")), "training wrote no checkpoint"
    os.killpg(job.pid, signal.SIGKILL)  # as hard as a power loss: nothing gets to clean up
    job.wait()
    run(snakemake_project, "snakemake", "--unlock")
    run(snakemake_project, "snakemake", "-j2")
    assert metrics_of(snakemake_project) == before


# Outputs a clean run and a run recovered from kills must hold byte for byte.
RESULT_FILES = ("results/eval/**/metrics.json", "results/train/**/scores.parquet",
                "results/train/**/frame_scores.parquet", "results/train/**/history.csv",
                "results/train/**/config.json", "results/tables/*", "results/index.md")


def result_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for pattern in RESULT_FILES for path in sorted(folder.glob(pattern))}


def wait_for(condition, what: str, job: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert job.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.02)


def test_kills_at_every_stage_are_survived_by_the_plain_command(snakemake_project,
                                                               tmp_path_factory):
    """SIGKILLs from the first job (3 s and 5 s into `fas track init`) to the moment training
    has written its outputs; after each, the README's command (`snakemake --unlock` when the
    kill left Snakemake's lock, then `snakemake -j 2`) carries on. The end: the clean run's
    bytes, one finished MLflow run per experiment, no run left RUNNING."""
    import psutil

    params = tiny_params()
    params["index"]["strict"] = True  # passes under Snakemake too
    folder = make_project(tmp_path_factory.mktemp("killed"), params)
    store = folder / "mlflow.db"

    def start() -> subprocess.Popen:
        return subprocess.Popen(["snakemake", "-j", "2"], cwd=folder, env=env(folder),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def store_state() -> str:
        from fas.tracking import store_problem

        return "absent" if not store.exists() else store_problem(store) or "complete"

    track_log = folder / "logs/track/init.log"
    # 1. the first job killed 3 s in (the job alone): Snakemake stops by itself, no lock left
    job = start()
    wait_for(track_log.exists, "track init", job)
    time.sleep(3)
    init_command = ["track", "init", "--receipt", "results/mlflow/grid.json"]
    (init,) = [p for p in psutil.Process(job.pid).children(recursive=True)
               if p.cmdline()[-4:] == init_command]
    init.kill()
    assert job.wait(timeout=600) != 0 and store_state() in ("absent", "complete")
    track_log.unlink()
    kill_points = [
        ("5 s into the first job", lambda: track_log.exists(), 5),
        ("preprocessing", lambda: any(folder.glob("logs/align/*.log")), 1),
        ("training", lambda: any(folder.glob(".scratch/checkpoints/**/last.pt")), 0),
        ("training wrote its outputs", lambda: any(folder.glob("results/train/**/receipt.json")), 0),
    ]
    for name, reached, delay in kill_points:  # 2-5: the whole Snakemake process group
        job = start()
        wait_for(reached, name, job)
        time.sleep(delay)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        assert store_state() in ("absent", "complete"), name
        run(folder, "snakemake", "--unlock")
    run(folder, "snakemake", "-j", "2")
    again = run(folder, "snakemake", "-j", "2")
    assert "Nothing to be done" in again.stdout + again.stderr
    reference = result_bytes(snakemake_project)
    assert result_bytes(folder) == reference and len(reference) > 20

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name("fas").experiment_id],
                              max_results=1000)
    assert [r.info.status for r in runs if r.info.status != "FINISHED"] == []
    roles = sorted(r.data.tags.get("fas.role") for r in runs)
    assert roles == ["grid"] + ["train"] * len(expand(params))


def test_every_experiment_is_in_mlflow(snakemake_project):
    assert_one_run_per_experiment(snakemake_project, f"sqlite:///{snakemake_project / 'mlflow.db'}",
                                  orchestrator="snakemake")


def test_mlflow_server_lists_every_run_and_ui_renders(snakemake_project, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri",
         f"sqlite:///{snakemake_project / 'mlflow.db'}", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env=env(snakemake_project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/health", timeout=2).read().strip() == b"OK":
                    break
            except OSError:
                time.sleep(0.5)
        experiments = json.load(urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=fas"))
        experiment_id = experiments["experiment"]["experiment_id"]
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search", method="POST",
            data=json.dumps({"experiment_ids": [experiment_id], "max_results": 1000}).encode(),
            headers={"Content-Type": "application/json"})
        runs = json.load(urllib.request.urlopen(request))["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        listed = {t["experiment"] for t in tags if t.get("fas.role") == "train"}
        assert listed == {e.id for e in expand(load_params(snakemake_project / "params.yaml"))}
        for record in runs:
            keys = {m["key"] for m in record["data"].get("metrics", [])}
            if any(t["key"] == "fas.role" and t["value"] == "train" for t in record["data"]["tags"]):
                assert {"test/acer", "train/loss"} <= keys

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            pytest.skip("chromium is not installed (apt-get install chromium): UI screenshot skipped")
        shot = tmp_path / "mlflow-ui.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000",
                        "--window-size=1400,900", f"--screenshot={shot}",
                        f"{base}/#/experiments/{experiment_id}/runs"],
                       check=True, capture_output=True, timeout=120)
        assert shot.stat().st_size > 10_000
        shutil.copy2(shot, snakemake_project / "results" / "mlflow-ui.png")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_dvc_reproduces_the_same_metrics_and_reruns_only_dependents(snakemake_project,
                                                                     tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("dvc"), tiny_params())
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    run(folder, "dvc", "init", "-q", "-f")
    run(folder, "dvc", "repro")
    assert metrics_of(folder) == metrics_of(snakemake_project)
    assert "up to date" in run(folder, "dvc", "repro").stdout
    params = load_params(folder / "params.yaml")
    params["augment"]["rotation_deg"] = 10
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rerun = run(folder, "dvc", "repro").stdout
    ran = {line.split("'")[1].split("-")[0] for line in rerun.splitlines()
           if line.startswith("Running stage")}
    assert ran == {"train", "evaluate", "report"}
