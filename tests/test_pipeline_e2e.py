"""The whole DAG on tiny synthetic data, run by Snakemake and by DVC in copies of the project.

Covers: both orchestrators finish and agree; each finds nothing to do after the
other (dvc.lock is their shared record); a parameter change reruns exactly the
jobs that read it, in either tool; a killed run resumes to identical results;
DVC experiments compare by their summary metrics; every experiment is in
MLflow (REST API and UI), and a model loaded back from MLflow scores as
training did. Wall times of the bookkeeping steps are printed (`pytest -s`).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fas.config import load_params
from fas.grid import Experiment, expand
from fixtures.tiny_project import (BIN, TINY_GRID, assert_every_output,
                                   assert_one_run_per_experiment, env, free_port, git_commit,
                                   make_project, metrics_of, run, timed, tiny_params)

pytestmark = pytest.mark.slow

SDNET_JOBS = {f"{stage}-cefa.p1.f1.sdnet.{variant}.s0" for stage in ("train", "evaluate")
              for variant in ("full", "wobf")} | {"report"}

def planned(folder: Path) -> dict[str, int]:
    """Rule -> number of jobs `snakemake -n` plans."""
    dry = run(folder, "snakemake", "-n", "--quiet", "rules")
    counts = {}
    for line in dry.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def planned_rules(folder: Path) -> set[str]:
    return set(planned(folder))


def nothing_to_do(folder: Path) -> bool:
    done, _ = timed(folder, "snakemake", "-n")
    return "Nothing to be done" in done.stdout + done.stderr


def dvc_ran(output: str) -> set[str]:
    """Stages `dvc repro` ran (or restored from its run cache)."""
    return set(re.findall(r"(?:Running stage|Stage) '([^']+)'(?::| is cached)", output))


def set_param(folder: Path, change) -> None:
    params = load_params(folder / "params.yaml")
    change(params)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def sdnet_epochs(epochs: int):
    return lambda params: params["presets"]["demo"]["sdnet"].update(epochs=epochs)


def sdnet_lr(lr: float):
    """An SD-Net parameter whose change retrains at the same cost (epochs would add time)."""
    return lambda params: params["presets"]["demo"]["sdnet"].update(lr=lr)


@pytest.fixture(scope="module")
def snakemake_project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("snakemake"), tiny_params())
    timed(folder, "snakemake", "-j2")
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
    target = "data/cache/replay/static-0-of-1.parquet"  # index and align read the root
    run(folder, "snakemake", "-j2", target)
    built = (folder / target).read_bytes()
    run(folder, "dvc", "repro", "--force", "align-replay.0-of-1")
    assert (folder / target).read_bytes() == built and not trap.exists()


def test_snakemake_builds_every_output(snakemake_project):
    assert_every_output(snakemake_project)
    assert not (snakemake_project / "data/frames").exists(), "frames stay inside alignment"
    summary = json.loads((snakemake_project / "results/metrics.json").read_text())
    assert summary["cefa_protocols_arxiv"]["P1 mean"]["acer"] >= 0


def test_second_snakemake_run_does_nothing(snakemake_project):
    done = run(snakemake_project, "snakemake", "-j2")
    assert "Nothing to be done" in done.stdout + done.stderr


def test_snakemake_report_shows_tables_plots_and_headline_numbers(snakemake_project):
    timed(snakemake_project, "snakemake", "--report", "report.html")
    html = (snakemake_project / "report.html").read_text()
    for shown in ("cefa_protocols_arxiv.tex", "cefa/p1/f1/sdnet/full/s0/roc", "metrics.json", "index.md"):
        assert shown in html


def indexed_split_counts(folder: Path, params: dict) -> dict[str, pd.Series]:
    """`<dataset>.<protocol>.f<fold>.<split>` -> videos per PAI (`live` and each attack species) of
    the grid's test and dev splits, counted with pandas from the index the main job wrote."""
    counts = {}
    folds = sorted({(e.dataset, e.protocol, e.fold) for e in expand(params)})
    for dataset in sorted({dataset for dataset, _, _ in folds}):
        root = folder / "data/index" / dataset
        manifest = pd.read_parquet(root / "manifest.parquet", columns=["dataset", "video_id", "pai"])
        rows = (pd.read_parquet(root / "protocols.parquet")
                .merge(manifest, on=["dataset", "video_id"])
                .drop_duplicates(["protocol", "fold", "split", "dataset", "video_id"]))
        for _, protocol, fold in (key for key in folds if key[0] == dataset):
            for split in ("test", "dev"):
                chosen = rows[(rows.protocol == protocol) & (rows.fold == fold) & (rows.split == split)]
                if len(chosen):
                    counts[f"{dataset}.{protocol}.f{fold}.{split}"] = chosen.pai.value_counts()
    return counts


def shortfalls(per_pai: pd.Series, need: dict, test: bool) -> list[str]:
    """What a split lacks against the verdict's minima, as `fas verdict` words it."""
    live = int(per_pai.get("live", 0))
    attacks = per_pai.drop("live", errors="ignore").sort_index()
    short = [f"{n} {what} < {need[what]}" for n, what in ((live, "live"), (int(attacks.sum()), "attack"))
             if n < need[what]]
    return short + [f"{n} {pai} < {need['per_pai']}" for pai, n in attacks.items()
                    if test and n < need["per_pai"]]


def test_the_main_jobs_verdict_judges_the_built_grid(snakemake_project, tmp_path):
    """`fas verdict`, which the report runs at the end of the main job, on the tiny grid's index and
    metrics: the index page shows what it prints, every split is counted as the index holds it and
    each under the demo's minima is named, and an AUC rule is judged on the metrics written."""
    params = load_params(snakemake_project / "params.yaml")
    judged = run(snakemake_project, "fas", "verdict", check=False)
    assert judged.returncode == 1, judged.stdout + judged.stderr  # tiny splits: below the demo's minima
    page = (snakemake_project / "results/index.md").read_text()
    section = page.split("## Verdict and failures")[1].split("### Missing metrics")[0]
    assert [line.replace("- ", "", 1) for line in section.strip().splitlines()] == judged.stdout.splitlines()

    counts, minimum = indexed_split_counts(snakemake_project, params), params["verdict"]
    assert f"splits: {len(counts)} test/dev splits counted" in judged.stdout
    for name, per_pai in counts.items():
        test = name.endswith(".test")
        short = shortfalls(per_pai, minimum["test_min" if test else "dev_min"], test)
        named = [line for line in judged.stdout.splitlines()
                 if line.startswith(f"  split too small: {name}: ")]
        assert named == ([f"  split too small: {name}: {'; '.join(short)}"] if short else []), name

    eval_root = snakemake_project / "results/eval"
    aucs = {e: json.loads((eval_root / e.path / "metrics.json").read_text())["test"]["auc"]
            for e in expand(params)}
    experiment, auc = next((e, auc) for e, auc in aucs.items() if 0.01 < auc < 0.99)  # room both sides
    for min_auc, learned in ((round(auc - 0.001, 4), True), (round(auc + 0.001, 4), False)):
        params["verdict"] = {**minimum, "test_min": {"live": 1, "attack": 1, "per_pai": 1},
                             "dev_min": {"live": 1, "attack": 1}, "cross": {"min_auc": 0.0, "against": {}},
                             "intra": [{"dataset": experiment.dataset, "protocol": experiment.protocol,
                                        "method": experiment.method, "variants": [experiment.variant],
                                        "min_auc": min_auc}]}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        judged = run(snakemake_project, "fas", "verdict", "--params", str(tmp_path / "params.yaml"),
                     check=False)
        assert judged.returncode == (0 if learned else 1), judged.stdout + judged.stderr
        assert (f"did not learn: {experiment.id}: test AUC {auc:.3f} < {min_auc}" in judged.stdout) != learned


def test_after_snakemake_dvc_finds_everything_up_to_date(snakemake_project):
    """Snakemake recorded what it built in dvc.lock."""
    status, _ = timed(snakemake_project, "dvc", "status")
    assert "up to date" in status.stdout
    repro, _ = timed(snakemake_project, "dvc", "repro")
    assert not dvc_ran(repro.stdout) and "up to date" in repro.stdout


def test_training_parameter_reruns_only_training_and_after(snakemake_project):
    original = (snakemake_project / "params.yaml").read_text()
    try:
        set_param(snakemake_project, sdnet_epochs(3))  # SD-Net's own: motion is left alone
        assert planned(snakemake_project) == {"train": 2, "evaluate": 2, "report": 1,
                                              "default": 1}
        set_param(snakemake_project, lambda p: p["augment"].update(color_jitter=0.3))
        assert planned(snakemake_project) == {"train": 2, "evaluate": 2, "report": 1,
                                              "default": 1}  # motion does not augment
        set_param(snakemake_project, lambda p: p["dynamic"].update(window=4))
        assert planned_rules(snakemake_project) == {"dynamic", "train", "evaluate", "report",
                                                    "default"}
    finally:
        (snakemake_project / "params.yaml").write_text(original)
    assert nothing_to_do(snakemake_project)  # the plans above changed nothing


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


def command_line(process) -> list[str]:
    """A process's argv, or [] when it ended meanwhile (a zombie until its parent reaps it)."""
    import psutil
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:  # ZombieProcess included
        return []


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
               if command_line(p)[-4:] == init_command]
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
    """One finished run per experiment under the grid's run, with MLflow's standard tags,
    its splits as datasets; the grid's run holds the summary metrics and the report."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{snakemake_project / 'mlflow.db'}"
    children = assert_one_run_per_experiment(snakemake_project, uri, orchestrator="snakemake")
    client = MlflowClient(tracking_uri=uri)
    (grid,) = client.search_runs([client.get_experiment_by_name("fas").experiment_id],
                                 filter_string="tags.`fas.role` = 'grid'")
    head = run(snakemake_project, "git", "rev-parse", "HEAD").stdout.strip()
    for child in children.values():
        tags = child.data.tags
        assert tags["mlflow.source.git.commit"] == head and tags["mlflow.user"]
        assert tags["mlflow.source.name"] == f"fas train --experiment {tags['experiment']}"
        experiment = Experiment.parse(tags["experiment"])
        inputs = {i.dataset.name: i for i in child.inputs.dataset_inputs}
        split = f"{experiment.dataset}.{experiment.protocol}.f{experiment.fold}.test"
        assert split in inputs and inputs[split].dataset.digest
        assert {t.value for t in inputs[split].tags} == {"test"}
    assert grid.data.tags["mlflow.source.git.commit"] == head
    summary = json.loads((snakemake_project / "results/metrics.json").read_text())
    assert grid.data.metrics["cefa_protocols_arxiv/P1 mean/acer"] == summary["cefa_protocols_arxiv"]["P1 mean"]["acer"]
    logged = {a.path for a in client.list_artifacts(grid.info.run_id)}
    assert {"index.md", "metrics.json", "tables"} <= logged


def test_logged_model_scores_a_video_as_training_did(snakemake_project, one_thread):
    """The network MLflow holds, loaded back, gives the training run's scores exactly."""
    import mlflow
    import mlflow.pytorch
    import torch

    from fas.experiment import resolve
    from fas.train import Setup, score, video_scores

    experiment = Experiment.parse("cefa.p1.f1.sdnet.full.s0")
    train_dir = snakemake_project / "results/train" / experiment.path
    receipt = json.loads((train_dir / "receipt.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{snakemake_project / 'mlflow.db'}")
    model = mlflow.pytorch.load_model(receipt["model_uri"])
    config = resolve(load_params(snakemake_project / "params.yaml"), experiment)
    setup = Setup(config, snakemake_project / "data/index", snakemake_project / "data/cache",
                  torch.device("cpu"))
    frames = score(setup.trainer(model), setup, setup.open_splits(("test",)))
    trained = pd.read_parquet(train_dir / "frame_scores.parquet")
    trained = trained[trained["split"] == "test"].reset_index(drop=True)
    pd.testing.assert_frame_equal(frames, trained, check_exact=True)
    video = trained["video_id"].iloc[0]
    scores = pd.read_parquet(train_dir / "scores.parquet").set_index(["split", "video_id"])
    assert video_scores(frames).set_index(["split", "video_id"]).loc[("test", video), "score"] \
        == scores.loc[("test", video), "score"]


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


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("dvc"), tiny_params())
    timed(folder, "dvc", "repro")
    return folder


def test_dvc_reproduces_the_same_metrics_and_snakemake_agrees(dvc_project, snakemake_project):
    assert metrics_of(dvc_project) == metrics_of(snakemake_project)
    repro, _ = timed(dvc_project, "dvc", "repro")
    assert "up to date" in repro.stdout and not dvc_ran(repro.stdout)
    assert nothing_to_do(dvc_project)  # what DVC built, Snakemake takes as built


def test_snakemake_after_a_parameter_change_then_dvc_agrees(dvc_project):
    set_param(dvc_project, sdnet_lr(0.002))
    assert planned(dvc_project) == {"train": 2, "evaluate": 2, "report": 1, "default": 1}
    timed(dvc_project, "snakemake", "-j2")
    status, _ = timed(dvc_project, "dvc", "status")
    assert "up to date" in status.stdout


def test_a_dvc_rerun_of_an_experiment_reuses_its_mlflow_run(dvc_project):
    from mlflow.tracking import MlflowClient

    experiment = Experiment.parse("replay.grandtest.f1.motion.full.s0")
    receipt = dvc_project / "results/train" / experiment.path / "receipt.json"
    before = receipt.read_text()
    repro = run(dvc_project, "dvc", "repro", "--force", "--single-item",
                f"train-{experiment.id}").stdout
    assert dvc_ran(repro) == {f"train-{experiment.id}"}
    assert receipt.read_text() == before  # the same run and model: nothing after it reruns
    assert not dvc_ran(run(dvc_project, "dvc", "repro").stdout)
    client = MlflowClient(tracking_uri=f"sqlite:///{dvc_project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fas").experiment_id],
                              filter_string=f"tags.experiment = '{experiment.id}'")
    assert len(runs) == 1 and runs[0].info.run_id == json.loads(before)["run_id"]
    assert runs[0].data.tags["fas.reproduced_by"] == "dvc"


def test_dvc_after_a_parameter_change_then_snakemake_agrees_and_experiments_compare(
        snakemake_project):
    """The flow of the project: snakemake builds, a parameter changes, dvc repro reruns
    exactly what reads it, Snakemake has nothing left to do, and DVC compares the runs."""
    git_commit(snakemake_project, "the grid as Snakemake built it")  # dvc.lock: the baseline
    set_param(snakemake_project, sdnet_lr(0.004))
    repro, _ = timed(snakemake_project, "dvc", "repro")
    assert dvc_ran(repro.stdout) == SDNET_JOBS
    assert nothing_to_do(snakemake_project)
    run(snakemake_project, "dvc", "exp", "save", "--name", "sdnet-lr-0.004")
    shown, _ = timed(snakemake_project, "dvc", "exp", "show", "--json")
    rows = {row["name"] or row["rev"]: row for row in json.loads(shown.stdout)}
    experiments = [e for row in rows.values() for e in row.get("experiments") or []]
    assert [e["name"] for e in experiments] == ["sdnet-lr-0.004"]
    for state in [*rows.values(), *(e["revs"][0] for e in experiments)]:
        metrics = state["data"]["metrics"]["results/metrics.json"]["data"]
        assert "acer" in metrics["cefa_protocols_arxiv"]["P1 mean"]
    diff, _ = timed(snakemake_project, "dvc", "metrics", "diff", "HEAD", "--all", "--json")
    change = json.loads(diff.stdout)["results/metrics.json"]["cefa_protocols_arxiv.P1 mean.acer"]
    assert {"old", "new"} <= set(change)
