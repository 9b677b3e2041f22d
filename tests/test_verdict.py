"""`fas verdict`: the demo scale's split sizes, and the AUC rules on fabricated metrics."""

import json

import pytest

from fas import verdict
from fas.cli import main
from fas.config import load_params
from fas.grid import Experiment, expand
from fas.synth import DATASETS
from fas.synth.generate import generate


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    """Every dataset at demo scale with placeholder media, indexed (cross included)."""
    root = tmp_path_factory.mktemp("demo")
    for dataset in DATASETS:
        generate(dataset, root / "synthetic" / dataset, "demo", 0, 0.5, layout_only=True, workers=2)
        assert main(["index", dataset, "--root", str(root / "synthetic" / dataset),
                     "--out", str(root / "index" / dataset)]) == 0
    assert main(["index", "cross", "--root", str(root / "index"), "--out", str(root / "index" / "cross")]) == 0
    return root / "index"


def test_every_split_of_the_demo_grid_is_big_enough(demo_index):
    params = load_params()
    findings, counts = verdict.check_splits(params, demo_index)
    assert findings == []
    tests = {name: c for name, c in counts.items() if name.endswith(".test")}
    # every test split of the grid is counted: each fold of OULU P3/P4, SiW P2/P3, CeFA sub-protocols
    assert {f"oulu.p{p}.f{f}.test" for p in (3, 4) for f in range(1, 7)} <= set(tests)
    assert {f"siw.p2.f{f}.test" for f in range(1, 5)} <= set(tests)
    assert {f"cefa.p{p}.f{f}.test" for p, folds in ((1, 3), (2, 2), (3, 3), (4, 3))
            for f in range(1, folds + 1)} <= set(tests)
    for name, count in tests.items():
        assert count["live"] >= 20 and count["attack"] >= 20, name
        assert min(count["per_pai"].values()) >= 10, name
    assert counts["oulu.p4.f3.dev"]["live"] >= 5 and counts["cefa.p4.f1.dev"]["attack"] >= 5


def test_an_undersized_split_is_named(demo_index):
    params = load_params()
    params["verdict"]["test_min"]["per_pai"] = 11  # OULU P3/P4 folds test 10 prints, 10 replays
    findings, _ = verdict.check_splits(params, demo_index)
    named = {f.subject for f in findings}
    assert "oulu.p3.f1.test" in named and "cefa.p1.f1.test" in named  # 10 of each mask species
    assert all(f.check == "split_size" for f in findings)
    assert any("10 print < 11" in f.message for f in findings if f.subject == "oulu.p4.f2.test")


def payloads(aucs: dict[str, float]) -> dict[Experiment, dict]:
    return {Experiment.parse(e): {"test": {"auc": auc}} for e, auc in aucs.items()}


def small_grid(params: dict) -> dict:
    params["grid"] = [
        {"name": "oulu", "dataset": "oulu", "method": "sdnet", "variants": ["static_rgb"],
         "protocols": {"p1": [1], "p3": [1, 2]}},
        {"name": "motion", "dataset": "replay", "method": "motion", "variants": ["full"],
         "protocols": {"grandtest": [1]}}]
    return params


def test_auc_rules_name_what_did_not_learn():
    params = small_grid(load_params())
    good = {"oulu.p1.f1.sdnet.static_rgb.s0": 0.97, "oulu.p3.f1.sdnet.static_rgb.s0": 0.8,
            "oulu.p3.f2.sdnet.static_rgb.s0": 0.7, "replay.grandtest.f1.motion.full.s0": 0.93}
    assert verdict.check_auc(params, payloads(good)) == []
    bad = {**good, "oulu.p1.f1.sdnet.static_rgb.s0": 0.9, "oulu.p3.f2.sdnet.static_rgb.s0": 0.55}
    found = {(f.check, f.subject) for f in verdict.check_auc(params, payloads(bad))}
    assert found == {("intra_auc", "oulu.p1.f1.sdnet.static_rgb.s0"),
                     ("cross_auc", "oulu.p3.f2.sdnet.static_rgb.s0")}
    easier = {**good, "oulu.p3.f1.sdnet.static_rgb.s0": 0.99, "oulu.p3.f2.sdnet.static_rgb.s0": 0.98}
    (finding,) = verdict.check_auc(params, payloads(easier))
    assert finding.subject == "oulu.p3 static_rgb" and "not below oulu.p1's 0.970" in finding.message
    missing = dict(good)
    del missing["replay.grandtest.f1.motion.full.s0"]
    assert [f.check for f in verdict.check_auc(params, payloads(missing))] == ["missing"]


def test_an_intra_rule_judges_its_own_method():
    """motion and mevr both name their design `full`: each rule holds one method to its AUC."""
    params = load_params()
    params["grid"] = [{"name": method, "dataset": "replay", "method": method, "variants": ["full"],
                       "protocols": {"grandtest": [1]}} for method in ("motion", "mevr")]
    params["verdict"]["cross"]["against"] = {}
    params["verdict"]["intra"] = [
        {"dataset": "replay", "protocol": "grandtest", "method": "motion", "variants": ["full"], "min_auc": 0.9},
        {"dataset": "replay", "protocol": "grandtest", "method": "mevr", "variants": ["full"], "min_auc": 0.8}]
    aucs = {"replay.grandtest.f1.motion.full.s0": 0.85, "replay.grandtest.f1.mevr.full.s0": 0.85}
    (finding,) = verdict.check_auc(params, payloads(aucs))
    assert (finding.subject, finding.message) == ("replay.grandtest.f1.motion.full.s0", "test AUC 0.850 < 0.9")


def test_a_shifted_protocol_is_compared_with_its_counterpart_method_by_method():
    """motion and mevr share the variant name `full`: each is held to its own intra-domain AUC."""
    params = load_params()
    params["grid"] = [
        {"name": method, "dataset": dataset, "method": method, "variants": ["full"],
         "protocols": {protocol: [1]}}
        for method in ("motion", "mevr")
        for dataset, protocol in (("casia_fasd", "standard"), ("cross", "replay_to_casia_fasd"))]
    params["verdict"]["intra"] = []
    aucs = {"casia_fasd.standard.f1.motion.full.s0": 0.95, "cross.replay_to_casia_fasd.f1.motion.full.s0": 0.7,
            "casia_fasd.standard.f1.mevr.full.s0": 0.8, "cross.replay_to_casia_fasd.f1.mevr.full.s0": 0.85}
    (finding,) = verdict.check_auc(params, payloads(aucs))  # pooled, 0.775 would pass against 0.875
    assert finding.subject == "cross.replay_to_casia_fasd mevr.full"
    assert "0.850 is not below casia_fasd.standard's 0.800" in finding.message


def replay_and_its_cross_protocol() -> dict:
    """Params whose grid is MotionEnhancement on Replay-Attack and CASIA-FASD -> Replay-Attack."""
    params = load_params()
    params["grid"] = [{"name": dataset, "dataset": dataset, "method": "motion", "variants": ["full"],
                       "protocols": {protocol: [1]}}
                      for dataset, protocol in (("replay", "grandtest"), ("cross", "casia_fasd_to_replay"))]
    params["verdict"]["intra"] = []
    return params


def test_a_cross_finding_shows_both_intervals_and_says_when_they_overlap():
    params = replay_and_its_cross_protocol()
    found = payloads({"replay.grandtest.f1.motion.full.s0": 0.967,
                      "cross.casia_fasd_to_replay.f1.motion.full.s0": 0.978})
    found[Experiment.parse("replay.grandtest.f1.motion.full.s0")]["test"]["ci"] = {"auc": [0.922, 0.995]}
    cross = Experiment.parse("cross.casia_fasd_to_replay.f1.motion.full.s0")
    found[cross]["test"]["ci"] = {"auc": [0.94, 1.0]}
    (finding,) = verdict.check_auc(params, found)
    assert finding.message == ("mean test AUC 0.978 [0.940, 1.000] is not below replay.grandtest's "
                               "0.967 [0.922, 0.995] (the 95 % intervals overlap: within the noise "
                               "of these test splits)")
    found[cross]["test"]["auc"], found[cross]["test"]["ci"] = 0.999, {"auc": [0.998, 1.0]}
    (finding,) = verdict.check_auc(params, found)
    assert finding.message.endswith("0.999 [0.998, 1.000] is not below replay.grandtest's 0.967 "
                                    "[0.922, 0.995]")


def test_an_undefined_interval_is_left_out_of_a_cross_finding():
    params = replay_and_its_cross_protocol()
    found = payloads({"replay.grandtest.f1.motion.full.s0": 0.9,
                      "cross.casia_fasd_to_replay.f1.motion.full.s0": 0.95})
    for payload in found.values():
        payload["test"]["ci"] = {"auc": [None, None]}
    (finding,) = verdict.check_auc(params, found)
    assert finding.message == "mean test AUC 0.950 is not below replay.grandtest's 0.900"


def test_cli_exits_1_and_prints_each_failure(tmp_path, capsys):
    params = small_grid(load_params())
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    for experiment in expand(params):
        path = tmp_path / "eval" / experiment.path / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"test": {"auc": 0.5}}))
    code = main(["verdict", "--params", str(tmp_path / "params.yaml"), "--index-root",
                 str(tmp_path / "index"), "--eval-root", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    assert code == 1
    assert "did not learn: oulu.p1.f1.sdnet.static_rgb.s0: test AUC 0.500 < 0.95" in out
    assert "cross-domain: oulu.p3.f1.sdnet.static_rgb.s0: test AUC 0.500 < 0.6" in out
    assert "split too small: oulu: no index to count splits" in out


def test_each_finding_is_listed_under_its_own_check():
    findings = [verdict.Finding("intra_auc", "oulu.p1.f1.sdnet.static_rgb.s0", "test AUC 0.500 < 0.95"),
                verdict.Finding("split_size", "oulu.p1.f1.test", "2 live < 20")]
    result = {"findings": findings, "split_counts": {"oulu.p1.f1.test": {}}, "experiments": 1,
              "with_metrics": 1}
    lines = verdict.summary_lines(result, load_params()["verdict"])
    assert [line.split(":")[0] for line in lines] == [
        "splits", "  split too small", "learning", "  did not learn"]


def test_unseen_species_are_reported_apart_and_the_seen_ones_checked_each():
    """CeFA P1 tests masks it never trains on: the learning check is each seen species' AUC."""
    params = load_params()
    params["grid"] = [{"name": "cefa", "dataset": "cefa", "method": "sdnet", "variants": ["static_rgb"],
                       "protocols": {"p1": [1]}}]
    params["verdict"]["cross"]["against"] = {}
    (rule,) = [r for r in params["verdict"]["intra"] if r["dataset"] == "cefa"]
    assert set(rule["unseen_pai"]) == {"mask_3d", "mask_silicone"}

    def metrics(cloth, replay):
        per_pai = {"cloth": cloth, "replay": replay, "mask_3d": 0.12, "mask_silicone": 0.3}
        return {Experiment.parse("cefa.p1.f1.sdnet.static_rgb.s0"): {"test": {"auc": 0.77, "auc_per_pai": per_pai}}}

    assert verdict.check_auc(params, metrics(0.99, 0.97)) == []
    (finding,) = verdict.check_auc(params, metrics(0.99, 0.85))
    assert finding.check == "intra_auc" and "live vs replay" in finding.message
    assert "0.850 < 0.9" in finding.message and "mask_3d 0.120" in finding.message
    assert verdict.unseen_aucs(params, metrics(0.99, 0.97)) == [
        "cefa.p1.f1.sdnet.static_rgb.s0: mask_3d 0.120, mask_silicone 0.300"]
    no_species = {Experiment.parse("cefa.p1.f1.sdnet.static_rgb.s0"): {"test": {"auc": 0.95}}}
    assert [f.check for f in verdict.check_auc(params, no_species)] == ["missing"]


def with_thresholds(applied: dict, oracle: dict) -> dict:
    """A metrics.json payload: rates at the dev threshold (the result) and at the oracle's."""
    return {"test": {**applied, "auc": 0.99}, "level": "video",
            "threshold": {"policy": "dev_eer", "value": 0.59, "oracle": False},
            "levels": {"video": {"policies": {"test_eer": {**oracle, "threshold": {"value": 0.987}}}}}}


def test_thresholds_that_did_not_carry_over_are_reported_largest_gap_first():
    params = load_params()
    params["verdict"]["threshold_gap"] = 0.15
    found = {
        Experiment.parse("oulu.p1.f1.sdnet.static_rgb.s0"):  # gap 0.32: listed first
            with_thresholds({"acer": 0.358}, {"acer": 0.038}),
        Experiment.parse("oulu.p3.f1.sdnet.static_rgb.s0"):  # gap 0.20
            with_thresholds({"acer": 0.25}, {"acer": 0.05}),
        Experiment.parse("oulu.p2.f1.sdnet.static_rgb.s0"):  # gap 0.05: carried over
            with_thresholds({"acer": 0.10}, {"acer": 0.05}),
        # CeFA tables pool APCER over species (evaluate.table_apcer): the pooled gap is what counts
        Experiment.parse("cefa.p4.f1.sdnet.full.s0"):
            with_thresholds({"acer": 0.45, "acer_pooled": 0.12}, {"acer": 0.10, "acer_pooled": 0.05}),
    }
    oracle_applied = with_thresholds({"acer": 0.5}, {"acer": 0.0})
    oracle_applied["threshold"]["oracle"] = True
    found[Experiment.parse("oulu.p4.f1.sdnet.static_rgb.s0")] = oracle_applied
    lines = verdict.threshold_shifts(params, found)
    assert [line.split(":")[0] for line in lines] == ["oulu.p1.f1.sdnet.static_rgb.s0",
                                                      "oulu.p3.f1.sdnet.static_rgb.s0"]
    assert lines[0] == ("oulu.p1.f1.sdnet.static_rgb.s0: ACER 35.8% at the dev_eer threshold 0.590, "
                        "3.8% at the test split's own EER threshold 0.987 (test AUC 0.990)")
    result = {"findings": [], "split_counts": {}, "experiments": 5, "with_metrics": 5, "unseen": [],
              "threshold_shifts": lines}
    summary = verdict.summary_lines(result, params["verdict"])
    assert summary[-3] == ("thresholds that did not carry over to test (2 of 5 experiments; ACER at least "
                           "15 points above the oracle's; reported, not judged):")
    assert verdict.threshold_shifts(params, payloads({"oulu.p1.f1.sdnet.static_rgb.s0": 0.9})) == []
