"""`fas evaluate` on fabricated score files: provenance, fallbacks, guards, tracking."""

import json

import numpy as np
import pandas as pd
import pytest

from fas.cli import main
from fas.grid import Experiment

PAIS = {"cefa": ("print", "replay"), "msu": ("printed_photo", "replay"), "oulu": ("print", "replay")}
NO_DEV = {"msu", "casia_fasd", "cross"}


@pytest.fixture(autouse=True)
def tracking_off(monkeypatch):
    monkeypatch.setenv("FAS_TRACKING", "0")


def fabricate(train_root, experiment_id, *, seed=0, separation=3.0, run_id="run0",
              frames=True, history=True):
    """Score files of one experiment in the layout `fas train` writes; returns its folder."""
    experiment = Experiment.parse(experiment_id)
    rng = np.random.default_rng(seed)
    splits = ("train", "test") if experiment.dataset in NO_DEV else ("train", "dev", "test")
    pais = PAIS.get(experiment.dataset, ("print", "replay"))
    rows, frame_rows = [], []
    for split in splits:
        for pai, count in [("live", 12)] + [(p, 12) for p in pais]:
            for i in range(count):
                video_id = f"{split}_{pai}_{i}"
                centre = separation / 2 if pai == "live" else -separation / 2
                logits = centre + rng.normal(0, 1.0) + rng.normal(0, 0.3, 4)
                frame_scores = 1 / (1 + np.exp(-logits))
                frame_rows += [(video_id, split, pai == "live", pai, float(s), 1, k)
                               for k, s in enumerate(frame_scores)]
                rows.append((video_id, split, pai == "live", pai, float(frame_scores.mean()), 4))
    columns = ["video_id", "split", "is_live", "pai", "score", "n_frames"]
    folder = train_root / experiment.path
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_parquet(folder / "scores.parquet")
    if frames:
        pd.DataFrame(frame_rows, columns=columns + ["index"]).to_parquet(folder / "frame_scores.parquet")
    (folder / "receipt.json").write_text(json.dumps({"run_id": run_id, "run_key": "k"}))
    if history:
        epochs = np.arange(1, 4)
        pd.DataFrame({"epoch": epochs, "lr": 0.01, "train/loss": 1 / epochs,
                      "dev/eer": 0.3 / epochs, "dev/acer": 0.35 / epochs}).to_csv(
            folder / "history.csv", index=False)
    return folder


def evaluate(tmp_path, experiment_id):
    code = main(["evaluate", "--experiment", experiment_id, "--train-root", str(tmp_path / "train"),
                 "--out", str(tmp_path / "eval")])
    path = tmp_path / "eval" / Experiment.parse(experiment_id).path / "metrics.json"
    return code, (json.loads(path.read_text()) if path.exists() else None)


def thresholds_in(payload):
    yield payload["threshold"]
    for level in payload["levels"].values():
        for block in level["policies"].values():
            yield block["threshold"]


def test_dev_eer_headline_and_provenance_everywhere(tmp_path):
    fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    code, payload = evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    assert code == 0
    assert payload["threshold"]["policy"] == "dev_eer" and payload["threshold"]["split"] == "dev"
    assert payload["level"] == "video" and "run_id" not in payload["provenance"]  # volatile
    assert set(payload["levels"]) == {"video", "frame"}
    assert set(payload["levels"]["video"]["policies"]) == {"dev_eer", "fixed", "train_eer", "test_eer"}
    for threshold in thresholds_in(payload):
        assert {"policy", "split", "value", "oracle", "requested"} <= set(threshold)
    oracle = payload["levels"]["video"]["policies"]["test_eer"]["threshold"]
    assert oracle["oracle"] is True and "oracle" in oracle["note"]
    # The headline equals the dev_eer block of the video level.
    dev_block = payload["levels"]["video"]["policies"]["dev_eer"]
    assert payload["test"]["acer"] == dev_block["acer"]
    assert 0 <= payload["test"]["acer"] < 0.5 and payload["test"]["auc"] > 0.8
    assert set(payload["test"]["apcer_per_pai"]) == {"print", "replay"}
    assert payload["provenance"]["accept_rule"] == "accepted as live when score >= threshold"


def test_metrics_file_is_byte_identical_on_rerun(tmp_path):
    fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    path = tmp_path / "eval/cefa/p1/f1/sdnet/full/s0/metrics.json"
    first = path.read_bytes()
    evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    assert path.read_bytes() == first


def test_protocol_without_dev_split_names_no_dev_policy(tmp_path):
    fabricate(tmp_path / "train", "msu.standard.f1.motion.full.s0")
    code, payload = evaluate(tmp_path, "msu.standard.f1.motion.full.s0")
    assert code == 0
    threshold = payload["threshold"]
    assert (threshold["policy"], threshold["split"], threshold["requested"]) == ("train_eer", "train", "dev_eer")
    assert "no_dev_policy train_eer" in threshold["note"]
    assert "dev_eer" not in payload["levels"]["video"]["policies"]
    assert "no dev split" in payload["levels"]["video"]["unavailable"]["dev_eer"]


def test_inverted_labels_are_rejected(tmp_path, capsys):
    folder = fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    scores = pd.read_parquet(folder / "scores.parquet")
    scores.assign(score=1 - scores["score"]).to_parquet(folder / "scores.parquet")
    code, payload = evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    assert code == 1 and payload is None
    error = capsys.readouterr().err
    assert "scores.parquet (train split): AUC" in error and "inverted" in error


def test_flipped_is_live_column_is_rejected(tmp_path, capsys):
    folder = fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    scores = pd.read_parquet(folder / "scores.parquet")
    scores.assign(is_live=~scores["is_live"]).to_parquet(folder / "scores.parquet")
    assert evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0") == (1, None)
    assert "is_live disagrees with pai" in capsys.readouterr().err


def test_nan_scores_are_rejected_with_the_file_named(tmp_path, capsys):
    folder = fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    scores = pd.read_parquet(folder / "scores.parquet")
    scores.loc[3, "score"] = np.nan
    scores.to_parquet(folder / "scores.parquet")
    assert evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0") == (1, None)
    error = capsys.readouterr().err
    assert str(folder / "scores.parquet") in error and "1 NaN score(s)" in error


def test_missing_frame_scores_leave_video_level(tmp_path, capsys):
    fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0", frames=False)
    code, payload = evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    assert code == 0 and set(payload["levels"]) == {"video"}
    assert "frame_scores.parquet" in payload["provenance"]["problems"][0]["path"]
    assert "not found" in capsys.readouterr().err


def test_unknown_experiment_is_a_usage_error(tmp_path, capsys):
    assert evaluate(tmp_path, "cefa.p9.f1.sdnet.full.s0") == (2, None)  # a bad command line
    assert "not in the grid" in capsys.readouterr().err


def test_report_logs_the_metrics_into_the_training_run(tmp_path, recorded_tracking, monkeypatch):
    from fas import report

    calls = recorded_tracking.calls
    fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0", run_id="abc123")
    code, payload = evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    assert code == 0 and "run_id" not in calls  # evaluate itself never imports MLflow
    experiment = Experiment.parse("cefa.p1.f1.sdnet.full.s0")
    results = report.Results([experiment], tmp_path / "eval", report.FailureReport("report"))
    monkeypatch.setenv("FAS_TRACKING", "1")
    report.log_to_runs(results, {}, tmp_path / "train")
    assert calls["run_id"] == "abc123"
    assert calls["metrics"]["test/acer"] == payload["test"]["acer"]
    assert calls["metrics"]["test/apcer/print"] == payload["test"]["apcer_per_pai"]["print"]
    assert calls["metrics"]["eval/threshold"] == payload["threshold"]["value"]
    assert "test/frame/acer" in calls["metrics"]
    assert calls["tags"]["eval/threshold_policy"] == "dev_eer"
    assert calls["artifact"].endswith("metrics.json")


def test_every_metric_carries_a_confidence_interval(tmp_path):
    fabricate(tmp_path / "train", "cefa.p1.f1.sdnet.full.s0")
    _, payload = evaluate(tmp_path, "cefa.p1.f1.sdnet.full.s0")
    blocks = [payload["test"]] + [b for level in payload["levels"].values()
                                  for b in level["policies"].values()]
    for block in blocks:
        for key, value in block.items():
            if isinstance(value, float):
                low, high = block["ci"][key]
                assert low <= value <= high, key
        assert set(block["ci"]["apcer_per_pai"]) == set(block["apcer_per_pai"])
    described = payload["provenance"]["confidence_intervals"]
    assert described["resamples"] == 1000 and described["confidence"] == 0.95
