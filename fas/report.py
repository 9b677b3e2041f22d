"""`fas report`: LaTeX tables beside the published numbers, plots and the results index.

Reads every grid experiment's `results/eval/<path>/metrics.json` (and the
training scores and history for plots); writes `results/tables/<table>.tex`
with a `<table>.cells.json` tracing every cell to its experiments, MLflow runs
and thresholds, `results/tables/all.tex`, `results/plots/...` (with the ROC
and DET points as CSV for `dvc plots`), `results/index.md` and
`results/metrics.json`, the headline numbers of every table (DVC metrics).
The grid's MLflow parent run gets the headline numbers, tables and index.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from fas import grid, paths, tracking
from fas.config import load_params, per_dataset
from fas.evaluate import load_scores, read_receipt
from fas.io import FailureReport, atomic_path, write_json
from fas.lazy import lazy_import

np = lazy_import("numpy")
pd = lazy_import("pandas")
metrics = lazy_import("fas.metrics")

REFERENCE_NUMBERS = Path(__file__).parent / "data" / "reference_numbers.yaml"
REFERENCE_KEYS = ("source", "table", "dataset", "protocol", "fold", "method", "variant", "metric", "value")
METRIC_LABELS = {"apcer": "APCER", "bpcer": "BPCER", "acer": "ACER", "hter": "HTER", "eer": "EER",
                 "auc": "AUC", "tpr_at_fpr_1e-4": "TPR@FPR=$10^{-4}$"}
METRICS_KEYS = {"level", "threshold", "test", "provenance"}
NO_NUMBER = "--"
MISSING = "missing"


@dataclass(frozen=True)
class RowGroup:
    """Rows of one (dataset, protocol, method, variant): per-fold rows (when
    `fold_label` is set and the grid has several folds) and a summary row."""

    label: str
    dataset: str
    protocol: str
    method: str
    variant: str
    fold_label: str | None = None  # e.g. "1_{fold}" for CeFA sub-protocols


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    source: str  # key of `sources` in reference_numbers.yaml
    metrics: tuple[str, ...]
    groups: tuple[RowGroup, ...]
    compares: str  # which of our models stands against which published model


def _cefa_groups(variant: str) -> tuple[RowGroup, ...]:
    return tuple(RowGroup(f"P{n} mean", "cefa", f"p{n}", "sdnet", variant, f"{n}_{{fold}}")
                 for n in (1, 2, 3, 4))


def _protocol_groups(dataset: str, protocols: tuple[str, ...], variant: str) -> tuple[RowGroup, ...]:
    return tuple(RowGroup(p.upper(), dataset, p, "sdnet", variant) for p in protocols)


APER = ("apcer", "bpcer", "acer")
PSMM_STATIC = "ours: static_only (PSMM-Net on static RGB, depth and IR frames) vs paper: PSMM-Net"
RESNET_RGB = "ours: static_rgb (one ResNet-18 on RGB frames) vs paper: ResNet"
NO_PUBLISHED = "no published numbers for these variants"
MOTION = "ours: the MotionEnhancement variants; the paper's numbers were not available"
TABLES = (
    TableSpec("cefa_protocols", "CASIA-SURF CeFA protocols 1-4, PSMM-Net on static frames",
              "wacv2021", APER, _cefa_groups("static_only"), PSMM_STATIC + " (WACV 2021 Table 6)"),
    TableSpec("cefa_protocols_arxiv", "CASIA-SURF CeFA protocols 1-4, SD-Net with PSMM fusion",
              "arxiv2003.05136", ("acer",), _cefa_groups("full"),
              "ours: full (SD-Net branches in every modality + PSMM) vs paper: SD-Net + PSMM"),
    TableSpec("cefa_sdnet", "CASIA-SURF CeFA protocols 1-4, SD-Net with PSMM fusion (all rates)",
              "iccvw2019", APER, _cefa_groups("full"), "ours: full; " + NO_PUBLISHED),
    TableSpec("cefa_modality_ablation", "CeFA protocol 1, modality ablation (static frames)",
              "wacv2021", APER, (
                  RowGroup("RGB", "cefa", "p1", "sdnet", "static_rgb"),
                  RowGroup("RGB+D", "cefa", "p1", "sdnet", "static_rgb_depth"),
                  RowGroup("RGB+D+IR", "cefa", "p1", "sdnet", "static_only")),
              "ours: static_rgb, static_rgb_depth, static_only vs paper: PSMM-Net on the same "
              "modalities (WACV 2021)"),
    TableSpec("cefa_fusion_ablation", "CeFA protocol 1, fusion ablation (static frames)",
              "wacv2021", APER, (
                  RowGroup("no sharing (NHF, halfway fusion)", "cefa", "p1", "sdnet", "static_nhf"),
                  RowGroup("PSMM w/o backward feeding", "cefa", "p1", "sdnet", "static_wobf"),
                  RowGroup("PSMM", "cefa", "p1", "sdnet", "static_only")),
              "ours: static_nhf, static_wobf, static_only vs paper: NHF, PSMM w/o backward "
              "feeding, PSMM-Net (WACV 2021)"),
    TableSpec("cefa_sdnet_ablation", "CeFA protocol 1, SD-Net branch and fusion ablation",
              "iccvw2019", APER, (
                  RowGroup("static branch only", "cefa", "p1", "sdnet", "static_only"),
                  RowGroup("dynamic branch only", "cefa", "p1", "sdnet", "dynamic_only"),
                  RowGroup("SD-Net, no sharing (halfway)", "cefa", "p1", "sdnet", "nhf"),
                  RowGroup("SD-Net + PSMM (full)", "cefa", "p1", "sdnet", "full")),
              "ours: SD-Net variants; " + NO_PUBLISHED),
    TableSpec("oulu", "OULU-NPU protocols 1-4, ResNet-18 on RGB", "wacv2021", APER,
              _protocol_groups("oulu", ("p1", "p2", "p3", "p4"), "static_rgb"),
              RESNET_RGB + " (WACV 2021 Table 10)"),
    TableSpec("siw", "SiW protocols 1-3, ResNet-18 on RGB", "wacv2021", APER,
              _protocol_groups("siw", ("p1", "p2", "p3"), "static_rgb"),
              RESNET_RGB + " (WACV 2021 Table 11)"),
    TableSpec("surf", "CASIA-SURF", "wacv2021", ("tpr_at_fpr_1e-4", "acer"), (
        RowGroup("PSMM-Net (static)", "surf", "main", "sdnet", "static_only"),
        RowGroup("SD-Net + PSMM (full)", "surf", "main", "sdnet", "full")),
              PSMM_STATIC + " (WACV 2021 Table 9); full has no published number"),
    TableSpec("motion_intra", "MotionEnhancement, intra-dataset", "tu2019", ("eer", "hter", "acer"), (
        RowGroup("Replay-Attack grandtest", "replay", "grandtest", "motion", "full"),
        RowGroup("MSU-MFSD", "msu", "standard", "motion", "full"),
        RowGroup("CASIA-FASD", "casia_fasd", "standard", "motion", "full")), MOTION),
    TableSpec("motion_cross", "MotionEnhancement, cross-dataset", "tu2019", ("hter", "auc"), tuple(
        RowGroup(p.replace("_to_", " to "), "cross", p, "motion", "full")
        for p in ("replay_to_casia_fasd", "casia_fasd_to_replay", "ocm_to_i", "oci_to_m",
                  "omi_to_c", "icm_to_o")), MOTION),
    TableSpec("motion_ablation", "MotionEnhancement ablations", "tu2019", ("eer", "hter"), tuple(
        RowGroup(f"{name}: {variant.replace('_', ' ')}", dataset, protocol, "motion", variant)
        for dataset, protocol, name in (("replay", "grandtest", "Replay-Attack"), ("msu", "standard", "MSU-MFSD"))
        for variant in ("full", "no_magnification", "last_state", "mean_pool", "cnn_only")), MOTION),
)


def load_references(path: Path = REFERENCE_NUMBERS) -> dict:
    """Sources and an index (source, dataset, protocol, fold, method, variant, metric) -> entry."""
    data = yaml.safe_load(Path(path).read_text())
    sources, index = data["sources"], {}
    for entry in data["numbers"]:
        missing = [k for k in REFERENCE_KEYS if k not in entry]
        if missing or entry["source"] not in sources:
            raise ValueError(f"{path}: bad entry {entry}: missing {missing} or unknown source")
        key = tuple(str(entry[k]) for k in REFERENCE_KEYS if k not in ("table", "value"))
        if key in index:
            raise ValueError(f"{path}: duplicate entry for {key}")
        index[key] = entry
    return {"sources": sources, "index": index}


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "$": r"\$"}


def latex_escape(text: str) -> str:
    """Plain text made safe for LaTeX."""
    return "".join(LATEX_SPECIAL.get(char, char) for char in str(text))


def fmt(summary: dict) -> str:
    """A mean (+- sample std) in percent with two decimals."""
    text = f"{100 * summary['mean']:.2f}"
    return text + (f"$\\pm${100 * summary['std']:.2f}" if summary["std"] is not None else "")


def format_published(reference: dict) -> str:
    """A published value (+- std) with the decimals it was printed with (9.0 stays 9.0)."""
    numbers = [float(reference["value"])] + ([float(reference["std"])] if "std" in reference else [])
    decimals = max(len(repr(x).split(".")[1]) if "." in repr(x) else 0 for x in numbers)
    texts = [f"{x:.{decimals}f}" for x in numbers]
    return "$\\pm$".join(texts)


def metric_name(metric: str, table_apcer: str) -> str:
    """The metrics.json key of a table column: pooled APCER/ACER when `table_apcer` says so."""
    return f"{metric}_pooled" if table_apcer == "pooled" and metric in ("apcer", "acer") else metric


class Results:
    """The metrics.json payloads of the grid, read once."""

    def __init__(self, experiments: list[grid.Experiment], eval_root: Path, failures: FailureReport):
        self.payloads, self.files = {}, {}
        for experiment in experiments:
            path = Path(eval_root) / experiment.path / "metrics.json"
            if not path.exists():
                continue
            try:
                payload = json.loads(path.read_text())
                if not isinstance(payload, dict) or not METRICS_KEYS <= set(payload):
                    raise ValueError(f"expected the keys {sorted(METRICS_KEYS)}")
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                failures.add(path, f"unreadable metrics file ({error})", "treated as missing")
                continue
            self.payloads[experiment], self.files[experiment] = payload, str(path)


def _summary(by_fold: dict[int, list[float]]) -> dict:
    """Mean +- sample std over folds (each fold first averaged over seeds), over seeds for one fold."""
    if len(by_fold) > 1:
        return metrics.aggregate([float(np.mean(v)) for v in by_fold.values()])
    return metrics.aggregate(next(iter(by_fold.values()), []))


def build_table(spec: TableSpec, experiments: list[grid.Experiment], results: Results,
                references: dict, table_apcer: Mapping[str, str]) -> dict | None:
    """Rows and traceable cells of one table, or None when the grid has none of its rows."""
    rows, cells, missing, policies, conventions = [], [], [], defaultdict(list), defaultdict(list)
    for group in spec.groups:
        members = [e for e in experiments if (e.dataset, e.protocol, e.method, e.variant)
                   == (group.dataset, group.protocol, group.method, group.variant)]
        if not members:
            continue
        folds = sorted({e.fold for e in members})
        convention = per_dataset(table_apcer, group.dataset)
        if group.label not in conventions[convention]:
            conventions[convention].append(group.label)
        row_specs = []
        if group.fold_label and len(folds) > 1:
            row_specs += [(group.fold_label.format(fold=f), [f], f) for f in folds]
        row_specs.append((group.label, folds, "mean" if len(folds) > 1 else folds[0]))
        for label, row_folds, ref_fold in row_specs:
            chosen = [e for e in members if e.fold in row_folds]
            present = [e for e in chosen if e in results.payloads]
            missing += [e.id for e in chosen if e not in results.payloads]
            for e in present:
                threshold = results.payloads[e]["threshold"]
                key = (results.payloads[e]["level"], threshold["policy"], threshold["split"],
                       threshold["requested"], threshold["oracle"])
                if group.label not in policies[key]:
                    policies[key].append(group.label)
            texts = [latex_escape(label)]
            for metric in spec.metrics:
                cell = _cell(spec, group, metric, label, ref_fold, chosen, present, results,
                             references, convention)
                cells.append(cell)
                texts += [cell["ours"], cell["paper"], cell["difference"]]
            rows.append({"texts": texts, "summary": label == group.label and len(row_specs) > 1})
    if not rows:
        return None
    return {"spec": spec, "rows": rows, "cells": cells, "missing": sorted(set(missing)),
            "policies": dict(policies), "apcer": dict(conventions)}


def _cell(spec, group, metric, label, ref_fold, chosen, present, results, references, convention):
    key = metric_name(metric, convention)
    by_fold: dict[int, list[float]] = defaultdict(list)
    for e in present:
        value = results.payloads[e]["test"].get(key)
        if value is not None:
            by_fold[e.fold].append(value)
    summary = _summary(by_fold)
    reference = references["index"].get(tuple(str(v) for v in (
        spec.source, group.dataset, group.protocol, ref_fold, group.method, group.variant, metric)))
    incomplete = len(present) < len(chosen)
    if summary["mean"] is None:
        ours = MISSING
    else:
        ours = fmt(summary) + ("$^{*}$" if incomplete else "")
    paper = NO_NUMBER
    difference = NO_NUMBER
    if reference is not None:
        paper = format_published(reference)
        if summary["mean"] is not None:
            difference = f"{100 * summary['mean'] - reference['value']:+.2f}"
    return {
        "table": spec.name, "row": label, "metric": metric, "metrics_key": key,
        "ours": ours, "paper": paper, "difference": difference,
        "mean_percent": None if summary["mean"] is None else 100 * summary["mean"],
        "std_percent": None if summary["std"] is None else 100 * summary["std"],
        "n": summary["n"], "std_over": "folds" if len(by_fold) > 1 else "seeds",
        "experiments": [e.id for e in present],
        "missing": [e.id for e in chosen if e not in results.payloads],
        "metrics_files": [results.files[e] for e in present],
        "thresholds": [{"experiment": e.id, "level": results.payloads[e]["level"],
                        **results.payloads[e]["threshold"]} for e in present],
        "reference": reference,
    }


def _threshold_note(policies: dict) -> str:
    parts = []
    for (level, policy, split, requested, oracle), labels in sorted(policies.items(), key=str):
        text = f"{level} level, {policy}"
        text += f" (threshold from the {split} split)" if split else " (fixed threshold)"
        if requested != policy:
            text += f", used because no dev split exists (requested {requested})"
        if oracle:
            text += ", ORACLE: threshold chosen on the test set itself"
        parts.append(f"{text}: {', '.join(labels)}")
    return "; ".join(parts)


APCER_NOTES = {"max": "APCER is the maximum over PAI species (ISO/IEC 30107-3)",
               "pooled": "APCER is pooled over all attacks (the benchmark's convention)"}


def render_latex(table: dict, references: dict) -> str:
    """A booktabs table float: ours, the paper's value and the difference per metric."""
    spec = table["spec"]
    source = references["sources"][spec.source]
    n = len(spec.metrics)
    header_metrics = " & ".join(f"\\multicolumn{{3}}{{c}}{{{METRIC_LABELS[m]} (\\%)}}" for m in spec.metrics)
    rules = " ".join(f"\\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(n))
    lines = [
        f"% Generated by `fas report`; every cell is traced in {spec.name}.cells.json.",
        "\\begin{table}[htbp]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{3pt}",
        f"\\caption{{{latex_escape(spec.title)}: {latex_escape(spec.compares)}. "
        f"Paper: {latex_escape(source['citation'])}}}",
        f"\\label{{tab:{spec.name}}}",
        "\\begin{tabular}{l" + " rrr" * n + "}", "\\toprule",
        f" & {header_metrics} \\\\", rules,
        "Row" + " & ours & paper & $\\Delta$" * n + " \\\\", "\\midrule",
    ]
    for row in table["rows"]:
        if row["summary"]:
            lines.append("\\addlinespace[1pt]")
        lines.append(" & ".join(row["texts"]) + " \\\\")
        if row["summary"]:
            lines.append("\\addlinespace[3pt]")
    conventions = table["apcer"]
    apcer = "; ".join(APCER_NOTES[c] + (f" ({', '.join(labels)})" if len(conventions) > 1 else "")
                      for c, labels in sorted(conventions.items()))
    notes = [
        f"Values in \\%; mean $\\pm$ sample std over folds (each fold averaged over seeds), "
        f"or over seeds for a single fold. {apcer}; ACER = (APCER + BPCER)/2. "
        f"$\\Delta$ = ours $-$ paper. {NO_NUMBER}: no published number "
        f"({latex_escape(source['version'])}). A sample is accepted as live when score $\\geq$ threshold.",
        f"Threshold: {latex_escape(_threshold_note(table['policies'])) or 'none (no results yet)'}.",
    ]
    if table["missing"]:
        notes.append(f"$^{{*}}$/{MISSING}: results missing for {len(table['missing'])} grid "
                     f"experiment(s): {latex_escape(', '.join(table['missing']))}.")
    if source.get("note"):
        notes.append(latex_escape(source["note"]))
    lines += ["\\bottomrule", "\\end{tabular}", "\\par\\smallskip",
              "\\parbox{\\linewidth}{\\scriptsize " + " ".join(notes) + "}", "\\end{table}", ""]
    return "\n".join(lines)


ALL_TEX_PREAMBLE = ("\\documentclass{article}\n\\usepackage{booktabs}\n"
                    "\\setlength{\\textwidth}{16cm}\n\\setlength{\\oddsidemargin}{-0.5cm}\n"
                    "\\begin{document}\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_tables(experiments, results, references, table_apcer, out: Path) -> dict[str, dict]:
    """Every table with at least one grid row, its cells file and all.tex; returns them by name."""
    tables = {}
    for spec in TABLES:
        table = build_table(spec, experiments, results, references, table_apcer)
        if table is None:
            continue
        write_text(out / f"{spec.name}.tex", render_latex(table, references))
        write_json(out / f"{spec.name}.cells.json", {"table": spec.name, "cells": table["cells"],
                                                      "missing": table["missing"]})
        tables[spec.name] = table
    inputs = "".join(f"\\input{{{name}.tex}}\n" for name in tables)
    write_text(out / "all.tex", ALL_TEX_PREAMBLE + inputs + "\\end{document}\n")
    return tables


def headline(tables: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Each table's summary rows: {table: {row: {metric: mean in percent}}}, for comparing runs."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name, table in tables.items():
        labels = {group.label for group in table["spec"].groups}
        for cell in table["cells"]:
            if cell["row"] in labels and cell["mean_percent"] is not None:
                summary.setdefault(name, {}).setdefault(cell["row"], {})[cell["metric"]] = \
                    round(cell["mean_percent"], 4)
    return summary


def log_to_grid_run(receipt: Path, summary: dict, out: Path) -> None:
    """The grid's MLflow parent run: headline numbers, the tables and the index."""
    run_id = json.loads(receipt.read_text()).get("parent_run_id") if receipt.exists() else None
    with tracking.resume_run(run_id) as run:
        run.log_metrics({tracking.metric_name(f"{table}/{row}/{metric}"): value
                         for table, rows in summary.items() for row, values in rows.items()
                         for metric, value in values.items()})
        run.log_artifact(out / "index.md")
        run.log_artifact(out / "metrics.json")
        run.log_artifacts(out / "tables", "tables")


def write_plots(experiments, results, train_root: Path, out: Path, failures: FailureReport) -> dict:
    """Per-experiment and per-protocol-group plots; returns {experiment or group: [paths]}."""
    from fas import plots  # matplotlib is imported only when plotting

    written: dict[str, list[Path]] = {}
    groups: dict[str, dict] = defaultdict(dict)
    for experiment in experiments:
        train_dir = Path(train_root) / experiment.path
        folder = out / experiment.path
        files = []
        scores_path = train_dir / "scores.parquet"
        if scores_path.exists():
            try:
                table = load_scores(scores_path)
                test = table[table["split"] == "test"]
                curve = {"test": (test["is_live"].to_numpy(bool), test["score"].to_numpy(float))}
                threshold = results.payloads.get(experiment, {}).get("threshold")
                for kind, points in plots.curve_points(*curve["test"]).items():
                    target = out / paths.plot_data(experiment, kind).relative_to(paths.PLOTS)
                    write_text(target, points.to_csv(index=False, float_format="%.6g"))
                files.append(plots.roc(curve, experiment.id, folder / "roc.png"))
                files.append(plots.det(curve, experiment.id, folder / "det.png"))
                files.append(plots.score_histogram(test, f"{experiment.id} (test)", folder / "hist.png",
                                                   threshold))
                group = f"{experiment.dataset}.{experiment.protocol}.{experiment.method}.{experiment.variant}"
                groups[group][f"f{experiment.fold} s{experiment.seed}"] = curve["test"]
            except ValueError as error:
                failures.add(scores_path, str(error), "plots skipped")
        history_path = train_dir / "history.csv"
        if history_path.exists():
            try:
                history = pd.read_csv(history_path)
                files.append(plots.training_curves(history, experiment.id, folder / "curves.png"))
            except (ValueError, KeyError, pd.errors.ParserError) as error:
                failures.add(history_path, f"unreadable training history ({error})", "plot skipped")
        if files:
            written[experiment.id] = files
    for group, curves in sorted(groups.items()):
        if len(curves) > 1:
            written[group] = [plots.roc(curves, group, out / "groups" / f"{group}.roc.png"),
                              plots.det(curves, group, out / "groups" / f"{group}.det.png")]
    return written


def log_plots(written: dict, train_root: Path) -> None:
    """Attach each experiment's plots to its MLflow training run where a run id is known."""
    for experiment_id, files in written.items():
        try:
            experiment = grid.Experiment.parse(experiment_id)
        except ValueError:  # a protocol group, not one run
            continue
        run_id = read_receipt(Path(train_root) / experiment.path).get("run_id")
        if run_id:
            with tracking.resume_run(run_id) as run:
                for path in files:
                    run.log_artifact(str(path))


def write_index(out: Path, tables: dict, written: dict, experiments, results,
                failures: FailureReport) -> None:
    """results/index.md: every table and plot, the missing experiments and the problems met."""
    def link(path: Path) -> str:
        relative = Path(path).relative_to(out).as_posix()
        return f"[{relative}]({relative})"

    lines = ["# Results index", "", "Generated by `fas report`.", "", "## Tables", "",
             f"- {link(out / 'tables' / 'all.tex')} (compile with pdflatex)"]
    for name, table in tables.items():
        lines.append(f"- {link(out / 'tables' / f'{name}.tex')}: {table['spec'].title}; cells "
                     f"{link(out / 'tables' / f'{name}.cells.json')}"
                     + (f"; {len(table['missing'])} experiment(s) missing" if table["missing"] else ""))
    absent = [spec.name for spec in TABLES if spec.name not in tables]
    if absent:
        lines.append(f"- not produced (no row of the table is in the grid): {', '.join(absent)}")
    lines += ["", "## Plots", ""]
    for key, files in written.items():
        lines.append(f"- {key}: " + ", ".join(link(p) for p in files))
    missing = [e.id for e in experiments if e not in results.payloads]
    lines += ["", f"## Missing metrics ({len(missing)} of {len(experiments)} grid experiments)", ""]
    lines += [f"- {experiment_id}" for experiment_id in missing]
    if failures.entries:
        lines += ["", "## Problems", ""] + [f"- `{e['path']}`: {e['reason']} ({e['action']})"
                                           for e in sorted(failures.entries, key=lambda e: e["path"])]
    write_text(out / "index.md", "\n".join(lines) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--eval-root", type=Path, default=paths.EVAL_ROOT)
    parser.add_argument("--train-root", type=Path, default=paths.TRAIN_ROOT)
    parser.add_argument("--out", type=Path, default=paths.RESULTS_ROOT)
    parser.add_argument("--no-plots", action="store_true", help="tables and index only")
    parser.add_argument("--grid-receipt", type=Path, default=paths.MLFLOW_RECEIPT,
                        help="receipt of `fas track init` naming the grid's MLflow parent run")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    table_apcer = params["evaluate"]["table_apcer"]
    experiments = grid.expand(params)
    failures = FailureReport("report")
    results = Results(experiments, args.eval_root, failures)
    tables = write_tables(experiments, results, load_references(), table_apcer, args.out / "tables")
    written = {} if args.no_plots else write_plots(experiments, results, args.train_root,
                                                   args.out / "plots", failures)
    log_plots(written, args.train_root)
    write_index(args.out, tables, written, experiments, results, failures)
    summary = headline(tables)
    write_json(args.out / "metrics.json", summary)
    log_to_grid_run(args.grid_receipt, summary, args.out)
    if failures.entries:
        print(failures.summary(), file=sys.stderr)
    print(f"fas report: {len(tables)} table(s), {sum(map(len, written.values()))} plot(s), "
          f"metrics for {len(results.payloads)} of {len(experiments)} grid experiments -> {args.out}")
    return 0
