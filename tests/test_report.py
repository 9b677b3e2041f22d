"""`fas report` end to end on fabricated score files: tables, traceability, LaTeX, index."""

import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from fas import report, tracking
from fas.cli import main
from fas.config import load_params
from fas.grid import Experiment, expand
from test_evaluate import fabricate

ABSENT = "cefa.p1.f3.sdnet.static_rgb.s1"  # in the grid, never trained


def small_params(tmp_path):
    """The repository's params with a small grid of two seeds."""
    params = load_params()
    keep = {"cefa_protocols": {"p1": [1, 2, 3]}, "cefa_ablations": {"p1": [1, 2, 3]},
            "motion_msu": {"standard": [1]}}
    params["grid"] = [{**b, "protocols": keep[b["name"]]} for b in params["grid"] if b["name"] in keep]
    params["grid"][[b["name"] for b in params["grid"]].index("cefa_ablations")]["variants"] = ["static_rgb"]
    params["grid"][[b["name"] for b in params["grid"]].index("motion_msu")]["variants"] = ["full"]
    params["seeds"] = [0, 1]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """Fabricated scores and metrics for a small two-seed grid, and its report without plots."""
    tmp_path = tmp_path_factory.mktemp("report")
    params_path = small_params(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAS_TRACKING", "0")
        for number, experiment in enumerate(expand(load_params(params_path))):
            if experiment.id == ABSENT:
                continue
            fabricate(tmp_path / "train", experiment.id, seed=number, separation=1.5 + 0.2 * number,
                      run_id=f"run-{number}")
            assert main(["evaluate", "--experiment", experiment.id, "--params", str(params_path),
                         "--train-root", str(tmp_path / "train"), "--out", str(tmp_path / "eval")]) == 0
        assert run_report(tmp_path, params_path, "results", "--no-plots") == 0
    return tmp_path, params_path


def run_report(tmp_path, params_path, out, *extra):
    return main(["report", "--params", str(params_path), "--eval-root", str(tmp_path / "eval"),
                 "--train-root", str(tmp_path / "train"), "--out", str(tmp_path / out), *extra])


def metric(tmp_path, experiment_id, key):
    path = tmp_path / "eval" / Experiment.parse(experiment_id).path / "metrics.json"
    return json.loads(path.read_text())["test"][key]


def parse_rows(tex: str) -> dict[str, list[str]]:
    """Row label -> cell texts, read back from the tabular body."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    rows = {}
    for line in body.splitlines():
        if line.endswith("\\\\"):
            cells = [c.strip() for c in line[:-2].split("&")]
            rows[cells[0].replace("\\_", "_")] = cells[1:]
    return rows


def number(text: str) -> tuple[float, float | None, tuple[float, float]]:
    r"""(value, std or None, (low, high)) of an `x [lo, hi]` or `x$\pm$s [lo, hi]` cell."""
    match = re.fullmatch(r"([-+]?\d+\.\d)(?:\$\\pm\$(\d+\.\d))? \[(\d+\.\d), (\d+\.\d)\]"
                         r"(?:\$\^\{\*\}\$)?", text)
    assert match, text
    return float(match[1]), (float(match[2]) if match[2] else None), (float(match[3]), float(match[4]))


def cell(row: list[str], metric: int) -> list[str]:
    """(ours, paper, difference) of the metric-th metric of a parsed row (after its counts)."""
    return row[1 + 3 * metric: 4 + 3 * metric]


def test_latex_round_trip_and_aggregation(produced):
    tmp_path, _ = produced
    rows = parse_rows((tmp_path / "results/tables/cefa_protocols.tex").read_text())
    assert set(rows) == {"1_1", "1_2", "1_3", "P1 mean"}
    assert rows["1_2"][0] == "12/24"  # test videos, live/attack (the fabricated split)
    # WACV's PSMM-Net is compared with static_only, APCER pooled (the CeFA benchmark's convention).
    # A fold row: mean +- sample std over the two seeds and the interval of their mean.
    seeds = [100 * metric(tmp_path, f"cefa.p1.f2.sdnet.static_only.s{s}", "acer_pooled") for s in (0, 1)]
    mean, std, (low, high) = number(cell(rows["1_2"], 2)[0])
    assert mean == pytest.approx(np.mean(seeds), abs=0.05)
    assert std == pytest.approx(statistics.stdev(seeds), abs=0.05)
    assert low <= mean <= high
    assert cell(rows["1_2"], 2)[1] == "4.8"
    assert float(cell(rows["1_2"], 2)[2]) == pytest.approx(mean - 4.8, abs=0.11)
    # The protocol row: mean +- sample std over the fold means.
    fold_means = [np.mean([100 * metric(tmp_path, f"cefa.p1.f{f}.sdnet.static_only.s{s}", "apcer_pooled")
                           for s in (0, 1)]) for f in (1, 2, 3)]
    mean, std, (low, high) = number(cell(rows["P1 mean"], 0)[0])
    assert mean == pytest.approx(np.mean(fold_means), abs=0.05)
    assert std == pytest.approx(statistics.stdev(fold_means), abs=0.05)
    assert low <= mean <= high
    assert cell(rows["P1 mean"], 0)[1] == "2.4$\\pm$0.6"
    assert cell(rows["1_1"], 0)[1] == "--"  # no published per-sub-protocol APCER


def test_interval_of_one_experiment_is_its_metrics_file_interval(produced):
    tmp_path, _ = produced
    cells = json.loads((tmp_path / "results/tables/motion_intra.cells.json").read_text())["cells"]
    row = [c for c in cells if c["metric"] == "eer"][0]
    assert len(row["experiments"]) == 2  # two seeds: the interval of their mean
    low, high = row["ci_percent"]
    assert low <= row["mean_percent"] <= high
    # one experiment: the same interval as metrics.json, recomputed from the scores
    experiment = Experiment.parse(row["experiments"][0])
    own = json.loads((tmp_path / "eval" / experiment.path / "metrics.json").read_text())["test"]["ci"]["eer"]
    results = report.Results([experiment], tmp_path / "eval", report.FailureReport("report"))
    replicates = report.Replicates(results, tmp_path / "train", metrics_bootstrap(), report.FailureReport("r"))
    assert report.interval([experiment], "eer", replicates, results) == pytest.approx(own)


def metrics_bootstrap():
    from fas import metrics

    return metrics.Bootstrap.from_settings(load_params()["evaluate"]["bootstrap"])


def test_captions_name_preset_intervals_counts_and_synthetic_data(produced):
    tmp_path, _ = produced
    tex = (tmp_path / "results/tables/cefa_protocols.tex").read_text()
    assert "Preset demo" in tex and "95 \\% confidence interval" in tex
    assert "1000 resamples of the test videos" in tex and "live/attack" in tex
    assert "SYNTHETIC" in tex and "NOT comparable" in tex
    assert "textsuperscript" not in tex  # no reproduced / not reproduced marks on synthetic data


def test_index_opens_with_markdown_tables_then_verdict_then_folded_plots(produced):
    tmp_path, _ = produced
    index = (tmp_path / "results/index.md").read_text()
    tables, verdict_at, plots = (index.index("## Tables"), index.index("## Verdict and failures"),
                                 index.index("## Plots"))
    assert tables < verdict_at < plots
    assert "| Row | n live/attack | APCER % ours [95% CI] | paper | Δ |" in index
    assert "| **P1 mean** | 12/24 |" in index
    assert "SYNTHETIC" in index.split("## Tables")[0]
    verdict_lines = index[verdict_at:plots].splitlines()
    nested = [line for line in verdict_lines if line.startswith("  - ")]
    assert nested and all(line.startswith(("- ", "  - ", "#")) or not line for line in verdict_lines)


def test_missing_experiments_are_flagged(produced):
    tmp_path, _ = produced
    tex = (tmp_path / "results/tables/cefa_modality_ablation.tex").read_text()
    assert ABSENT.replace("_", "\\_") in tex
    assert cell(parse_rows(tex)["RGB"], 0)[0].endswith("$^{*}$")
    cells = json.loads((tmp_path / "results/tables/cefa_modality_ablation.cells.json").read_text())
    assert cells["missing"] == [ABSENT]
    assert ABSENT in (tmp_path / "results/index.md").read_text()
    # Tables with no grid row are not produced, and the index says so.
    assert not (tmp_path / "results/tables/oulu.tex").exists()
    assert "Not produced" in (tmp_path / "results/index.md").read_text()


def test_every_cell_is_traceable_with_threshold_provenance(produced):
    tmp_path, _ = produced
    for path in (tmp_path / "results/tables").glob("*.cells.json"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["ours"] == report.MISSING:
                continue
            assert len(cell["experiments"]) == len(cell["metrics_files"]) == len(cell["thresholds"]) > 0
            assert all({"policy", "split", "value"} <= set(t) for t in cell["thresholds"])
    msu = (tmp_path / "results/tables/motion_intra.tex").read_text()
    assert "train\\_eer (threshold from the train split), used because no dev split exists" in msu
    assert "dev\\_eer (threshold from the dev split)" in (
        tmp_path / "results/tables/cefa_protocols.tex").read_text()


def test_index_links_resolve(produced):
    tmp_path, _ = produced
    index = (tmp_path / "results/index.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert "tables/all.tex" in links and "tables/cefa_protocols.cells.json" in links
    assert all((tmp_path / "results" / link).exists() for link in links)


@pytest.mark.slow
def test_plots_are_written_linked_and_stable(produced, monkeypatch):
    tmp_path, params_path = produced
    monkeypatch.setenv("FAS_TRACKING", "0")
    assert run_report(tmp_path, params_path, "with_plots") == 0
    plots = tmp_path / "with_plots/plots"
    one = plots / "cefa/p1/f1/sdnet/full/s0"
    assert {p.name for p in one.iterdir()} == {"roc.png", "det.png", "hist.png", "curves.png"}
    assert (plots / "groups/cefa.p1.sdnet.full.roc.png").exists()
    roc = (plots / "data/cefa/p1/f1/sdnet/full/s0/roc.csv").read_text().splitlines()
    det = (plots / "data/cefa/p1/f1/sdnet/full/s0/det.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr" and roc[1] == "0,0" and roc[-1] == "1,1"  # the data of `dvc plots`
    assert det[0] == "apcer,bpcer,apcer_probit,bpcer_probit"
    index = (tmp_path / "with_plots/index.md").read_text()
    assert "plots/cefa/p1/f1/sdnet/full/s0/det.png" in index
    before = {p: p.read_bytes() for p in plots.rglob("*.png")}
    run_report(tmp_path, params_path, "with_plots")
    assert {p: p.read_bytes() for p in plots.rglob("*.png")} == before


def test_reference_numbers_cite_their_source():
    references = report.load_references()
    for source in references["sources"].values():
        assert source["citation"] and source["version"]
    for entry in references["index"].values():
        assert entry["table"] and entry["metric"] in report.METRIC_LABELS
    assert references["index"][("wacv2021", "cefa", "p3", "mean", "sdnet", "static_only", "acer")]["value"] == 12.2
    assert not any(key[0] == "wacv2021" and key[5] == "full" for key in references["index"])


def test_duplicate_reference_entries_are_rejected(tmp_path):
    data = yaml.safe_load(report.REFERENCE_NUMBERS.read_text())
    data["numbers"].append(dict(data["numbers"][0]))
    path = tmp_path / "refs.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="duplicate entry"):
        report.load_references(path)


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not on PATH (apt-get install texlive-latex-base texlive-latex-recommended)")
def test_tables_compile_with_pdflatex(produced):
    tmp_path, _ = produced
    tables = tmp_path / "results/tables"
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
                            cwd=tables, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tables / "all.pdf").stat().st_size > 0


def test_png_bytes_are_stable(tmp_path):
    from fas import plots  # imports matplotlib
    rng = np.random.default_rng(0)
    curves = {"test": (np.array([True] * 20 + [False] * 20), rng.uniform(0, 1, 40))}
    first = plots.roc(curves, "x", tmp_path / "a.png").read_bytes()
    assert plots.roc(curves, "x", tmp_path / "b.png").read_bytes() == first
    assert b"Software" not in first


def test_table_apcer_selects_the_metrics_key():
    assert report.metric_name("acer", "max") == "acer"
    assert report.metric_name("acer", "pooled") == "acer_pooled"
    assert report.metric_name("bpcer", "pooled") == "bpcer"


def test_unreadable_metrics_file_is_reported_and_treated_as_missing(tmp_path):
    experiments = [Experiment.parse("cefa.p1.f1.sdnet.full.s0"), Experiment.parse("cefa.p1.f2.sdnet.full.s0")]
    for experiment, text in zip(experiments, ["{not json", json.dumps({"test": {}})]):
        path = tmp_path / experiment.path / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(text)
    failures = report.FailureReport("report")
    results = report.Results(experiments, tmp_path, failures)
    assert results.payloads == {} and len(failures) == 2
    assert "unreadable metrics file" in failures.summary() and "cefa/p1/f2" in failures.summary()


def payload(acer, policy="test_eer", split="test", oracle=True, ci=None):
    threshold = {"policy": policy, "requested": policy, "split": split, "value": 0.5,
                 "oracle": oracle, "source_eer": 0.1, "note": None}
    test = {"acer": acer, "hter": acer, "n_live": 20, "n_attack": 60}
    if ci:
        test["ci"] = {"acer": ci, "hter": ci}
    return {"level": "video", "threshold": threshold, "test": test, "provenance": {}}


def table_of(spec_name, payloads, params=None):
    """A table built from in-memory payloads (no score files: intervals from metrics.json)."""
    results = report.Results([], Path("/nonexistent"), report.FailureReport("report"))
    results.payloads = payloads
    results.files = {e: "m.json" for e in payloads}
    replicates = report.Replicates(results, Path("/nonexistent"), metrics_bootstrap(),
                                   report.FailureReport("report"))
    spec = next(s for s in report.TABLES if s.name == spec_name)
    params = params or load_params()
    synthetic = {(e.dataset, e.protocol): report.is_synthetic(params, e.dataset, e.protocol)
                 for e in payloads}
    table = report.build_table(spec, list(payloads), results, report.load_references(),
                               {"default": "max"}, replicates, synthetic)
    context = {"preset": "demo", "bootstrap": metrics_bootstrap()}
    return table, report.render_latex(table, report.load_references(), context)


def test_oracle_threshold_is_labelled_in_the_table():
    experiment = Experiment.parse("surf.main.f1.sdnet.static_only.s0")
    _, tex = table_of("surf", {experiment: payload(0.02, ci=[0.01, 0.04])})
    assert "ORACLE: threshold chosen on the test set itself" in tex
    rows = parse_rows(tex)
    assert cell(rows["PSMM-Net (static)"], 1) == ["2.0 [1.0, 4.0]", "0.4", "+1.6"]  # ACER ours, paper
    assert cell(rows["PSMM-Net (static)"], 0)[0] == "missing"  # no TPR@FPR in this payload


def test_real_data_cells_say_whether_the_published_number_is_inside_the_interval():
    params = load_params()
    params["datasets"]["surf"]["root"] = "/data/CASIA-SURF"
    experiment = Experiment.parse("surf.main.f1.sdnet.static_only.s0")
    for interval, mark, word in (([0.002, 0.009], "r", "reproduced"), ([0.01, 0.04], "n", "not reproduced")):
        table, tex = table_of("surf", {experiment: payload(0.005, ci=interval)}, params)
        assert cell(parse_rows(tex)["PSMM-Net (static)"], 1)[2].endswith(f"\\textsuperscript{{{mark}}}")
        assert "SYNTHETIC" not in tex and "(reproduced)" in tex
        markdown = "\n".join(report.render_markdown(table, report.load_references(),
                                                     {"preset": "demo", "bootstrap": metrics_bootstrap()}))
        assert f" {word} |" in markdown


def test_headline_metrics_summarise_each_table(produced):
    """results/metrics.json: each table's summary rows in percent, what `dvc exp show` compares."""
    tmp_path, _ = produced
    summary = json.loads((tmp_path / "results/metrics.json").read_text())
    cells = json.loads((tmp_path / "results/tables/cefa_protocols.cells.json").read_text())["cells"]
    (p1,) = [c for c in cells if c["row"] == "P1 mean" and c["metric"] == "acer"]
    assert summary["cefa_protocols"]["P1 mean"]["acer"] == round(p1["mean_percent"], 4)
    assert "1_1" not in summary["cefa_protocols"]  # per-fold rows stay in the tables
    assert set(summary["motion_intra"]["MSU-MFSD"]) == {"eer", "hter", "acer", "auc"}
    columns = [m for rows in summary.values() for values in rows.values() for m in values]
    assert len(columns) < 40


def test_grid_run_gets_the_headline_numbers_and_the_tables(produced, recorded_tracking):
    tmp_path, _ = produced
    receipt = tmp_path / "grid.json"
    receipt.write_text(json.dumps({"parent_run_id": "grid-run"}))
    summary = json.loads((tmp_path / "results/metrics.json").read_text())
    report.log_to_grid_run(receipt, summary, tmp_path / "results")
    assert recorded_tracking.calls["run_id"] == "grid-run"
    assert recorded_tracking.calls["metrics"]["cefa_protocols/P1 mean/acer"] == \
        summary["cefa_protocols"]["P1 mean"]["acer"]
    marked = [f"{table}/{row}/acer" for table, rows in summary.items() for row in rows
              if "(" in row or "+" in row]
    assert marked, "no row label MLflow would refuse: the test checks nothing"
    for name in marked:  # characters MLflow refuses become '_'; no row is dropped
        assert tracking.metric_name(name) in recorded_tracking.calls["metrics"]
    assert [name for _, name in recorded_tracking.artifacts] == ["index.md", "metrics.json", "tables"]


def test_plots_are_logged_to_training_runs(tmp_path, recorded_tracking):
    logged = recorded_tracking.artifacts
    folder = tmp_path / "cefa/p1/f1/sdnet/full/s0"
    folder.mkdir(parents=True)
    (folder / "receipt.json").write_text(json.dumps({"run_id": "abc"}))
    report.log_plots({"cefa.p1.f1.sdnet.full.s0": [tmp_path / "roc.png"],
                      "cefa.p1.sdnet.full": [tmp_path / "group.png"],
                      "cefa.p1.f2.sdnet.full.s0": [tmp_path / "no_receipt.png"]}, tmp_path)
    assert logged == [("abc", "roc.png")]
