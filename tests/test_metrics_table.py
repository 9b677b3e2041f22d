"""`fas metrics` (a bob-like table) and `fas scores` (bob's PAD score files) on fabricated scores."""

import json

import pandas as pd
import pytest

from fas import bob_scores
from fas.cli import main
from fas.grid import Experiment
from test_evaluate import evaluate, fabricate

CEFA = "cefa.p1.f1.sdnet.full.s0"
MSU = "msu.standard.f1.motion.full.s0"  # no dev split: the threshold comes from train


@pytest.fixture()
def scored(tmp_path):
    fabricate(tmp_path / "train", CEFA, seed=1)
    fabricate(tmp_path / "train", MSU, seed=2)
    return tmp_path


def table_rows(output: str) -> dict[str, list[str]]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    return {line.split()[0]: line.split()[1:] for line in lines[start:]}


def test_table_rows_match_fas_evaluate_in_percent(scored, capsys):
    assert main(["metrics", "cefa.p1.*", MSU, "--train-root", str(scored / "train")]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert set(rows) == {CEFA, MSU}
    _, metrics = evaluate(scored, CEFA)
    test = metrics["test"]
    assert rows[CEFA][:6] == [f"{100 * test[k]:.2f}" for k in ("apcer", "bpcer", "acer", "hter",
                                                                 "eer", "auc")]
    assert rows[CEFA][6:] == ["dev_eer@dev", f"{metrics['threshold']['value']:.4g}",
                              str(test["n_live"]), str(test["n_attack"])]
    assert rows[MSU][6] == "train_eer@train"  # the fallback where the protocol has no dev split


def test_policy_can_be_chosen_and_unknown_experiments_are_refused(scored, capsys):
    assert main(["metrics", CEFA, "--policy", "fixed", "--train-root", str(scored / "train")]) == 0
    assert table_rows(capsys.readouterr().out)[CEFA][6:8] == ["fixed", "0.5"]
    assert main(["metrics", "nothing.*", "--train-root", str(scored / "train")]) == 2
    assert "no experiment of the grid matches nothing.*" in capsys.readouterr().err


def test_bob_score_files_round_trip_and_give_the_same_metrics(scored, capsys, tmp_path):
    out = tmp_path / "bob"
    assert main(["scores", "export", CEFA, "--out", str(out), "--train-root",
                 str(scored / "train"), "--index-root", str(tmp_path / "no_index")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["scores-dev.csv", "scores-eval.csv",
                                                     "scores-train.csv"]
    evaluation = pd.read_csv(out / "scores-eval.csv", keep_default_na=False)
    assert list(evaluation.columns) == bob_scores.COLUMNS
    live = evaluation[evaluation["is_bonafide"]]
    assert (live["attack_type"] == "").all() and set(evaluation["attack_type"]) == {"", "print",
                                                                                     "replay"}
    assert main(["scores", "import", "--dev", str(out / "scores-dev.csv"), "--eval",
                 str(out / "scores-eval.csv"), "--train", str(out / "scores-train.csv"),
                 "--out", str(tmp_path / "imported.parquet")]) == 0
    original = pd.read_parquet(scored / "train" / Experiment.parse(CEFA).path / "scores.parquet")
    imported = pd.read_parquet(tmp_path / "imported.parquet")
    columns = ["video_id", "split", "is_live", "pai", "score"]
    key = ["split", "video_id"]
    pd.testing.assert_frame_equal(imported.sort_values(key, ignore_index=True)[columns],
                                  original.sort_values(key, ignore_index=True)[columns])
    capsys.readouterr()
    assert main(["metrics", CEFA, "--bob", str(out / "scores-dev.csv"), str(out / "scores-eval.csv"),
                 "--train-root", str(scored / "train")]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[CEFA] == rows[str(out / "scores-eval.csv")]


def test_bob_scores_need_not_be_probabilities(tmp_path, capsys):
    """A bob classifier's scores (here log-odds) are ranked as they are: EER and AUC as for P(live)."""
    for group, n in (("dev", 20), ("eval", 30)):
        rows = [{"claimed_id": f"s{i}", "test_label": f"{group}/{i}", "is_bonafide": i % 2 == 0,
                 "attack_type": "" if i % 2 == 0 else "print", "score": (i % 2 == 0) * 4.0 - 2 + i / n}
                for i in range(n)]
        pd.DataFrame(rows).to_csv(tmp_path / f"scores-{group}.csv", index=False)
    assert main(["metrics", "--bob", str(tmp_path / "scores-dev.csv"),
                 str(tmp_path / "scores-eval.csv")]) == 0
    row = table_rows(capsys.readouterr().out)[str(tmp_path / "scores-eval.csv")]
    assert row[4:6] == ["0.00", "100.00"]  # EER, AUC: separated classes


def test_a_file_that_is_not_a_bob_score_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "scores-eval.csv"
    bad.write_text("id,score\nv1,0.3\n")
    assert main(["scores", "import", "--eval", str(bad), "--out", str(tmp_path / "x.parquet")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing column(s)" in err and str(bad) in err
    assert not (tmp_path / "x.parquet").exists()


def test_export_names_each_video_s_subject(tmp_path):
    fabricate(tmp_path / "train", CEFA)
    index = tmp_path / "index" / "cefa"
    index.mkdir(parents=True)
    scores = pd.read_parquet(tmp_path / "train" / Experiment.parse(CEFA).path / "scores.parquet")
    pd.DataFrame({"video_id": scores["video_id"], "subject": "subject-7"}).drop_duplicates() \
        .to_parquet(index / "manifest.parquet")
    assert main(["scores", "export", CEFA, "--out", str(tmp_path / "bob"), "--train-root",
                 str(tmp_path / "train"), "--index-root", str(tmp_path / "index")]) == 0
    evaluation = pd.read_csv(tmp_path / "bob" / "scores-eval.csv")
    assert set(evaluation["claimed_id"]) == {"subject-7"}
    assert json.dumps(list(evaluation.columns)) == json.dumps(bob_scores.COLUMNS)
