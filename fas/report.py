"""`fas report`: tables beside the published numbers, with confidence intervals; plots; the results index.

Reads every grid experiment's `results/eval/<path>/metrics.json` (and the
training scores and history for plots and for the intervals of rows that
average several experiments); writes `results/tables/<table>.tex` with a
`<table>.cells.json` tracing every cell to its experiments, MLflow runs and
thresholds, `results/tables/all.tex`, `results/plots/...` (with the ROC and
DET points as CSV for `dvc plots`), `results/index.md` (every table in
Markdown, the verdict, the plots) and `results/metrics.json`, the headline
numbers of every table (DVC metrics). It logs each experiment's test metrics
and plots into its MLflow training run, the headline numbers, tables and
index into the grid's parent run, and prints the verdict of `fas verdict`.
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

from fas import grid, paths, tracking, verdict
from fas.config import is_synthetic_root, load_params, metric_name, per_dataset
from fas.evaluate import LEVEL_FILES, load_scores, log_to_run, read_receipt
from fas.experiment import source_datasets
from fas.io import FailureReport, atomic_path, write_json
from fas.lazy import lazy_import

np = lazy_import("numpy")
pd = lazy_import("pandas")
metrics = lazy_import("fas.metrics")

REFERENCE_NUMBERS = Path(__file__).parent / "data" / "reference_numbers.yaml"
REFERENCE_KEYS = ("source", "table", "dataset", "protocol", "fold", "method", "variant", "metric", "value")
METRIC_LABELS = {"apcer": "APCER", "bpcer": "BPCER", "acer": "ACER", "hter": "HTER", "eer": "EER",
                 "auc": "AUC", "tpr_at_fpr_1e-4": "TPR@FPR=$10^{-4}$"}
MARKDOWN_LABELS = {**METRIC_LABELS, "tpr_at_fpr_1e-4": "TPR@FPR=1e-4"}
METRICS_KEYS = {"level", "threshold", "test", "provenance"}
NO_NUMBER = "--"
MISSING = "missing"
# Marks of a published number against our interval (real data only).
REPRODUCED, NOT_REPRODUCED = "r", "n"


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
MEVR = ("ours: MEVR, our construction of the design the MotionEnhancement note's abstract "
        "describes; no published numbers (no primary source with code or full text is public)")
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
    TableSpec("motion_intra", "MotionEnhancement, intra-dataset", "tu2019", ("eer", "hter", "acer", "auc"), (
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
    TableSpec("mevr_intra", "MEVR, intra-dataset", "mevr_note", ("auc", "eer", "hter", "acer"), (
        RowGroup("Replay-Attack grandtest", "replay", "grandtest", "mevr", "full"),
        RowGroup("MSU-MFSD", "msu", "standard", "mevr", "full"),
        RowGroup("CASIA-FASD", "casia_fasd", "standard", "mevr", "full")), MEVR),
    TableSpec("mevr_oulu", "MEVR, OULU-NPU protocols 1-4", "mevr_note", APER + ("auc",),
              tuple(RowGroup(p.upper(), "oulu", p, "mevr", "full") for p in ("p1", "p2", "p3", "p4")),
              MEVR),
    TableSpec("mevr_cross", "MEVR, cross-dataset", "mevr_note", ("hter", "auc"), tuple(
        RowGroup(p.replace("_to_", " to "), "cross", p, "mevr", "full")
        for p in ("replay_to_casia_fasd", "casia_fasd_to_replay")), MEVR),
    TableSpec("mevr_ablation", "MEVR ablations, Replay-Attack grandtest", "mevr_note",
              ("auc", "eer", "acer"), tuple(
                  RowGroup(label, "replay", "grandtest", "mevr", variant) for variant, label in (
                      ("full", "full (MEM + VRN, BCE + SupCon on live/attack)"),
                      ("no_mem", "no MEM"),
                      ("ce_only", "cross-entropy only"),
                      ("supcon_pai", "SupCon classes: PAI species"),
                      ("live_only", "SupCon: only live clips pulled together"))), MEVR),
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


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def fmt(summary: dict, interval: list | None, pm: str = "$\\pm$") -> str:
    """`mean [low, high]` in percent (`mean±std [low, high]` over folds or seeds)."""
    text = percent(summary["mean"])
    if summary["std"] is not None:
        text += pm + percent(summary["std"])
    if interval and interval[0] is not None:
        text += f" [{percent(interval[0])}, {percent(interval[1])}]"
    return text


def format_published(reference: dict, pm: str = "$\\pm$") -> str:
    """A published value (+- std) with the decimals it was printed with (9.0 stays 9.0)."""
    numbers = [float(reference["value"])] + ([float(reference["std"])] if "std" in reference else [])
    decimals = max(len(repr(x).split(".")[1]) if "." in repr(x) else 0 for x in numbers)
    texts = [f"{x:.{decimals}f}" for x in numbers]
    return pm.join(texts)


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


class Replicates:
    """Bootstrap replicates of each experiment's headline metrics, from its test scores.

    They are what `fas evaluate` computed its intervals from (same level, threshold,
    seed and resamples): a row that averages folds or seeds averages them replicate
    by replicate, so its interval is that of the mean.
    """

    def __init__(self, results: Results, train_root: Path, bootstrap: metrics.Bootstrap,
                 failures: FailureReport):
        self.results, self.train_root, self.bootstrap = results, Path(train_root), bootstrap
        self.failures = failures
        self._cache: dict[grid.Experiment, dict | None] = {}

    def of(self, experiment: grid.Experiment) -> dict | None:
        if experiment not in self._cache:
            self._cache[experiment] = self._compute(experiment)
        return self._cache[experiment]

    def _compute(self, experiment: grid.Experiment) -> dict | None:
        payload = self.results.payloads[experiment]
        path = self.train_root / experiment.path / LEVEL_FILES[payload["level"]]
        try:
            test = load_scores(path)
        except (ValueError, FileNotFoundError) as error:
            self.failures.add(path, f"no bootstrap replicates ({error})", "interval from metrics.json")
            return None
        test = test[test["split"] == "test"]
        weights = self.bootstrap.weights(test["video_id"].to_numpy(), test["pai"].astype(str).to_numpy())
        return metrics.replicate_metrics(test, float(payload["threshold"]["value"]), weights)


def _summary(by_fold: dict[int, list[float]]) -> dict:
    """Mean +- sample std over folds (each fold first averaged over seeds), over seeds for one fold."""
    if len(by_fold) > 1:
        return metrics.aggregate([float(np.mean(v)) for v in by_fold.values()])
    return metrics.aggregate(next(iter(by_fold.values()), []))


def _lookup(block: dict, key: str):
    """A metric of a metrics block or replicate dict; `apcer_per_pai.<pai>` reaches inside."""
    head, _, pai = key.partition(".")
    value = block.get(head)
    return value.get(pai) if pai and isinstance(value, dict) else value


def interval(experiments: list[grid.Experiment], key: str, replicates: Replicates,
             results: Results) -> list | None:
    """Interval of the fold mean of seed means of `key`; a single experiment's from metrics.json
    when its scores are gone; None when it cannot be had."""
    by_fold: dict[int, list[np.ndarray]] = defaultdict(list)
    for e in experiments:
        found = replicates.of(e)
        if found is None or _lookup(found, key) is None:
            if len(experiments) == 1:
                return _lookup(results.payloads[e]["test"].get("ci", {}), key)
            return None
        by_fold[e.fold].append(np.asarray(_lookup(found, key)))
    mean = np.mean([np.mean(seeds, axis=0) for seeds in by_fold.values()], axis=0)
    return replicates.bootstrap.interval(mean)


def is_synthetic(params: dict, dataset: str, protocol: str) -> bool:
    """True when a source of the protocol's data is the embedded synthetic default."""
    sources = source_datasets(grid.Experiment(dataset, protocol, 1, "m", "v", 0), params["datasets"])
    return any(is_synthetic_root(params["datasets"][d]["root"]) for d in sources)


def _counts(payloads: list[dict]) -> str:
    """`live/attack` test videos of a row (a range when its experiments differ)."""
    pairs = sorted({(p["test"].get("n_videos_live", p["test"]["n_live"]),
                     p["test"].get("n_videos_attack", p["test"]["n_attack"])) for p in payloads})
    if not pairs:
        return NO_NUMBER
    live, attack = zip(*pairs)
    span = lambda values: f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"
    return f"{span(live)}/{span(attack)}"


def build_table(spec: TableSpec, experiments: list[grid.Experiment], results: Results,
                references: dict, table_apcer: Mapping[str, str], replicates: Replicates,
                synthetic: Mapping[str, bool]) -> dict | None:
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
            row_cells = [_cell(spec, group, metric, label, ref_fold, chosen, present, results,
                               references, convention, replicates, synthetic[group.dataset, group.protocol])
                         for metric in spec.metrics]
            cells += row_cells
            rows.append({"label": label, "n": _counts([results.payloads[e] for e in present]),
                         "cells": row_cells, "summary": label == group.label and len(row_specs) > 1,
                         "synthetic": synthetic[group.dataset, group.protocol]})
    if not rows:
        return None
    return {"spec": spec, "rows": rows, "cells": cells, "missing": sorted(set(missing)),
            "policies": dict(policies), "apcer": dict(conventions),
            "synthetic": any(row["synthetic"] for row in rows)}


def _cell(spec, group, metric, label, ref_fold, chosen, present, results, references, convention,
          replicates, synthetic):
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
    found = summary["mean"] is not None
    ci = interval(present, key, replicates, results) if found else None
    verdict_mark = None
    if reference is not None and found and ci and ci[0] is not None and not synthetic:
        inside = 100 * ci[0] <= float(reference["value"]) <= 100 * ci[1]
        verdict_mark = REPRODUCED if inside else NOT_REPRODUCED
    return {
        "table": spec.name, "row": label, "metric": metric, "metrics_key": key,
        "mean_percent": None if not found else 100 * summary["mean"],
        "std_percent": None if summary["std"] is None else 100 * summary["std"],
        "ci_percent": None if not ci or ci[0] is None else [100 * ci[0], 100 * ci[1]],
        "n": summary["n"], "std_over": "folds" if len(by_fold) > 1 else "seeds",
        "incomplete": incomplete, "summary": summary, "interval": ci,
        "paper_value": None if reference is None else float(reference["value"]),
        "reproduced": None if verdict_mark is None else verdict_mark == REPRODUCED,
        "experiments": [e.id for e in present],
        "missing": [e.id for e in chosen if e not in results.payloads],
        "metrics_files": [results.files[e] for e in present],
        "thresholds": [{"experiment": e.id, "level": results.payloads[e]["level"],
                        **results.payloads[e]["threshold"]} for e in present],
        "reference": reference,
    }


def cell_texts(cell: dict, latex: bool) -> tuple[str, str, str]:
    """(ours, paper, difference) of a cell, for LaTeX or Markdown."""
    pm = "$\\pm$" if latex else "±"
    if cell["mean_percent"] is None:
        ours = MISSING
    else:
        ours = fmt(cell["summary"], cell["interval"], pm)
        if cell["incomplete"]:
            ours += "$^{*}$" if latex else "*"
    reference = cell["reference"]
    paper = NO_NUMBER if reference is None else format_published(reference, pm)
    difference = NO_NUMBER
    if reference is not None and cell["mean_percent"] is not None:
        difference = f"{cell['mean_percent'] - reference['value']:+.1f}"
        if cell["reproduced"] is not None:
            mark = REPRODUCED if cell["reproduced"] else NOT_REPRODUCED
            difference += f"\\textsuperscript{{{mark}}}" if latex else \
                (" reproduced" if cell["reproduced"] else " not reproduced")
    return ours, paper, difference


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


def table_notes(table: dict, references: dict, context: dict) -> list[str]:
    """The caption's notes as plain text (escaped by the LaTeX renderer)."""
    spec = table["spec"]
    source = references["sources"][spec.source]
    conventions = table["apcer"]
    apcer = "; ".join(APCER_NOTES[c] + (f" ({', '.join(labels)})" if len(conventions) > 1 else "")
                      for c, labels in sorted(conventions.items()))
    boot = context["bootstrap"]
    notes = [
        f"Preset {context['preset']}. Values in %: x [lo, hi] is our value and its "
        f"{100 * boot.confidence:.0f} % confidence interval (percentile bootstrap, {boot.resamples} "
        f"resamples of the test videos within each PAI label, seed {boot.seed}, threshold held "
        "fixed); a row over folds or seeds shows mean±sample std and the interval of the mean "
        "(each fold averaged over seeds, resampled replicate by replicate). n: test videos, "
        f"live/attack. {apcer}; ACER = (APCER + BPCER)/2. Δ = ours - paper. {NO_NUMBER}: no "
        f"published number ({source['version']}). A sample is accepted as live when score >= "
        "threshold.",
        f"Threshold: {_threshold_note(table['policies']) or 'none (no results yet)'}.",
    ]
    if table["synthetic"]:
        notes.append("Data: the embedded SYNTHETIC replicas (`fas synth`), not the real datasets: "
                     "our numbers show that the pipeline and the models work and are NOT comparable "
                     "with the paper's.")
    elif any(c["reproduced"] is not None for c in table["cells"]):
        notes.append(f"{REPRODUCED}: the published number lies inside our interval (reproduced); "
                     f"{NOT_REPRODUCED}: outside it (not reproduced).")
    if table["missing"]:
        notes.append(f"*/{MISSING}: results missing for {len(table['missing'])} grid "
                     f"experiment(s): {', '.join(table['missing'])}.")
    if source.get("note"):
        notes.append(" ".join(source["note"].split()))
    return notes


def render_latex(table: dict, references: dict, context: dict) -> str:
    """A booktabs table float: test counts, then ours [CI], the paper's value and the difference per metric."""
    spec = table["spec"]
    source = references["sources"][spec.source]
    n = len(spec.metrics)
    header_metrics = " & ".join(f"\\multicolumn{{3}}{{c}}{{{METRIC_LABELS[m]} (\\%)}}" for m in spec.metrics)
    rules = " ".join(f"\\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(n))
    lines = [
        f"% Generated by `fas report`; every cell is traced in {spec.name}.cells.json.",
        "\\begin{table}[htbp]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{3pt}",
        f"\\caption{{{latex_escape(spec.title)}: {latex_escape(spec.compares)}. "
        f"Paper: {latex_escape(source['citation'])}}}",
        f"\\label{{tab:{spec.name}}}",
        "\\begin{tabular}{lr" + " rrr" * n + "}", "\\toprule",
        f" & & {header_metrics} \\\\", rules,
        "Row & n" + " & ours [CI] & paper & $\\Delta$" * n + " \\\\", "\\midrule",
    ]
    for row in table["rows"]:
        if row["summary"]:
            lines.append("\\addlinespace[1pt]")
        texts = [latex_escape(row["label"]), row["n"]]
        for cell in row["cells"]:
            texts += cell_texts(cell, latex=True)
        lines.append(" & ".join(texts) + " \\\\")
        if row["summary"]:
            lines.append("\\addlinespace[3pt]")
    notes = [latex_escape(note).replace("±", "$\\pm$").replace("Δ", "$\\Delta$").replace(">=", "$\\geq$")
             for note in table_notes(table, references, context)]
    notes = [note.replace(f"{REPRODUCED}: the", f"\\textsuperscript{{{REPRODUCED}}}: the")
             .replace(f"{NOT_REPRODUCED}: outside", f"\\textsuperscript{{{NOT_REPRODUCED}}}: outside")
             .replace(f"*/{MISSING}:", f"$^{{*}}$/{MISSING}:") for note in notes]
    lines += ["\\bottomrule", "\\end{tabular}", "\\par\\smallskip",
              "\\parbox{\\linewidth}{\\scriptsize " + " ".join(notes) + "}", "\\end{table}", ""]
    return "\n".join(lines)


def render_markdown(table: dict, references: dict, context: dict) -> list[str]:
    """The table in Markdown: test counts, ours [CI] beside the paper's number, the notes."""
    spec = table["spec"]
    header = ["Row", "n live/attack"]
    for metric in spec.metrics:
        header += [f"{MARKDOWN_LABELS[metric]} % ours [95% CI]", "paper", "Δ"]
    lines = [f"### {spec.title}", "", f"{spec.compares}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table["rows"]:
        label = f"**{row['label']}**" if row["summary"] else row["label"]
        texts = [label, row["n"]]
        for cell in row["cells"]:
            texts += cell_texts(cell, latex=False)
        lines.append("| " + " | ".join(texts) + " |")
    lines += [""] + [f"{note}" for note in table_notes(table, references, context)] + [""]
    return lines


ALL_TEX_PREAMBLE = ("\\documentclass{article}\n\\usepackage{booktabs}\n"
                    "\\setlength{\\textwidth}{16cm}\n\\setlength{\\oddsidemargin}{-0.5cm}\n"
                    "\\begin{document}\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _cells_record(cell: dict) -> dict:
    """A cell as cells.json holds it: the texts, the numbers and where they came from."""
    ours, paper, difference = cell_texts(cell, latex=True)
    drop = {"summary", "interval", "incomplete"}
    return {"ours": ours, "paper": paper, "difference": difference,
            **{k: v for k, v in cell.items() if k not in drop}}


def write_tables(experiments, results, references, context, out: Path) -> dict[str, dict]:
    """Every table with at least one grid row, its cells file and all.tex; returns them by name."""
    tables = {}
    for spec in TABLES:
        table = build_table(spec, experiments, results, references, context["table_apcer"],
                            context["replicates"], context["synthetic"])
        if table is None:
            continue
        write_text(out / f"{spec.name}.tex", render_latex(table, references, context))
        write_json(out / f"{spec.name}.cells.json", {
            "table": spec.name, "preset": context["preset"], "synthetic": table["synthetic"],
            "confidence_intervals": context["bootstrap"].describe(),
            "cells": [_cells_record(c) for c in table["cells"]], "missing": table["missing"]})
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


def _experiment_plots(job: tuple) -> tuple[str, list[Path], list[tuple[str, str]], dict | None]:
    """Plots of one experiment (run in a worker process): (id, files, failures, test curve)."""
    from fas import plots  # matplotlib is imported only when plotting

    experiment, train_dir, out, threshold = job
    folder = out / experiment.path
    files, failed, curve = [], [], None
    scores_path = train_dir / "scores.parquet"
    if scores_path.exists():
        try:
            table = load_scores(scores_path)
            test = table[table["split"] == "test"]
            curve = {"test": (test["is_live"].to_numpy(bool), test["score"].to_numpy(float))}
            for kind, points in plots.curve_points(*curve["test"]).items():
                target = out / paths.plot_data(experiment, kind).relative_to(paths.PLOTS)
                write_text(target, points.to_csv(index=False, float_format="%.6g"))
            files.append(plots.roc(curve, experiment.id, folder / "roc.png"))
            files.append(plots.det(curve, experiment.id, folder / "det.png"))
            files.append(plots.score_histogram(test, f"{experiment.id} (test)", folder / "hist.png",
                                               threshold))
        except ValueError as error:
            failed.append((str(scores_path), str(error)))
            curve = None
    history_path = train_dir / "history.csv"
    if history_path.exists():
        try:
            history = pd.read_csv(history_path)
            files.append(plots.training_curves(history, experiment.id, folder / "curves.png"))
        except (ValueError, KeyError, pd.errors.ParserError) as error:
            failed.append((str(history_path), f"unreadable training history ({error})"))
    return experiment.id, files, failed, None if curve is None else curve["test"]


def _group_plots(job: tuple) -> tuple[str, list[Path]]:
    from fas import plots

    group, curves, folder = job
    return group, [plots.roc(curves, group, folder / f"{group}.roc.png"),
                   plots.det(curves, group, folder / f"{group}.det.png")]


def group_name(experiment: grid.Experiment) -> str:
    return f"{experiment.dataset}.{experiment.protocol}.{experiment.method}.{experiment.variant}"


def write_plots(experiments, results, train_root: Path, out: Path, failures: FailureReport,
                workers: int = 1) -> dict:
    """Per-experiment and per-protocol-group plots; returns {experiment or group: [paths]}."""
    jobs = [(e, Path(train_root) / e.path, out, results.payloads.get(e, {}).get("threshold"))
            for e in experiments]
    written: dict[str, list[Path]] = {}
    groups: dict[str, dict] = defaultdict(dict)
    with _pool(workers) as pool:
        for experiment, (experiment_id, files, failed, curve) in zip(
                experiments, pool(_experiment_plots, jobs)):
            for path, reason in failed:
                failures.add(path, reason, "plot skipped")
            if files:
                written[experiment_id] = files
            if curve is not None:
                groups[group_name(experiment)][f"f{experiment.fold} s{experiment.seed}"] = curve
        group_jobs = [(g, c, out / "groups") for g, c in sorted(groups.items()) if len(c) > 1]
        written.update(dict(pool(_group_plots, group_jobs)))
    return written


class _pool:
    """`map` over processes (fork) when workers > 1, else in this process."""

    def __init__(self, workers: int):
        self.workers = workers

    def __enter__(self):
        if self.workers <= 1:
            return lambda function, jobs: list(map(function, jobs))
        import multiprocessing

        self._pool = multiprocessing.get_context("fork").Pool(self.workers)
        return lambda function, jobs: self._pool.map(function, jobs, chunksize=1)

    def __exit__(self, *exc) -> None:
        if self.workers > 1:
            self._pool.close()
            self._pool.join()


def log_to_runs(results: Results, written: dict, train_root: Path) -> None:
    """Each experiment's test metrics and plots into its MLflow training run (one process for all)."""
    if not tracking.enabled():
        return
    for experiment, payload in results.payloads.items():
        run_id = read_receipt(Path(train_root) / experiment.path).get("run_id")
        if run_id:
            log_to_run(payload, Path(results.files[experiment]), run_id)
    log_plots(written, train_root)


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
                failures: FailureReport, references: dict, context: dict,
                judged: dict, rules: dict) -> None:
    """results/index.md: the tables first, then what failed, then the plots per group (folded)."""
    def link(path: Path) -> str:
        relative = Path(path).relative_to(out).as_posix()
        return f"[{relative}]({relative})"

    lines = ["# Results", "",
             f"Generated by `fas report`: preset {context['preset']}, "
             f"{len(results.payloads)} of {len(experiments)} grid experiments with metrics.", ""]
    if any(t["synthetic"] for t in tables.values()):
        lines += ["> The data is the embedded SYNTHETIC default (`fas synth`): these numbers show "
                  "that the pipeline and both methods work, and how far each can be trusted; they "
                  "are not comparable with the papers' numbers.", ""]
    lines += ["## Tables", ""]
    for name, table in tables.items():
        lines += render_markdown(table, references, context)
        lines += [f"LaTeX: {link(out / 'tables' / f'{name}.tex')}, every cell traced in "
                  f"{link(out / 'tables' / f'{name}.cells.json')}.", ""]
    absent = [spec.name for spec in TABLES if spec.name not in tables]
    lines.append(f"All tables in one document: {link(out / 'tables' / 'all.tex')} (pdflatex).")
    if absent:
        lines.append(f"Not produced (no row of the table is in the grid): {', '.join(absent)}.")
    lines += ["", "## Verdict and failures", ""]
    # a verdict line's indent nests it under the line before (a finding under its check)
    lines += [f"{line[:len(line) - len(line.lstrip())]}- {line.strip()}"
              for line in verdict.summary_lines(judged, rules)]
    missing = [e.id for e in experiments if e not in results.payloads]
    lines += ["", f"### Missing metrics ({len(missing)} of {len(experiments)} grid experiments)", ""]
    lines += [f"- {experiment_id}" for experiment_id in missing] or ["none"]
    if failures.entries:
        lines += ["", "### Problems", ""] + [f"- `{e['path']}`: {e['reason']} ({e['action']})"
                                            for e in sorted(failures.entries, key=lambda e: e["path"])]
    lines += ["", "## Plots", "",
              "Per experiment group (dataset, protocol, method, variant): the folds' and seeds' "
              "ROC and DET curves, then each experiment's ROC, DET, score histogram and training "
              "curves.", ""]
    by_group: dict[str, list[grid.Experiment]] = defaultdict(list)
    for e in experiments:
        by_group[group_name(e)].append(e)
    for group, members in by_group.items():
        entries = [f"- group: " + ", ".join(link(p) for p in written[group])] if group in written else []
        entries += [f"- {e.id}: " + ", ".join(link(p) for p in written[e.id])
                    for e in members if e.id in written]
        if not entries:
            continue
        aucs = [results.payloads[e]["test"].get("auc") for e in members if e in results.payloads]
        auc = f", test AUC {', '.join(f'{100 * a:.1f}' for a in aucs if a is not None)}" if aucs else ""
        lines += [f"<details><summary>{group} ({len(members)} experiment(s){auc})</summary>", "",
                  *entries, "", "</details>", ""]
    write_text(out / "index.md", "\n".join(lines) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--eval-root", type=Path, default=paths.EVAL_ROOT)
    parser.add_argument("--train-root", type=Path, default=paths.TRAIN_ROOT)
    parser.add_argument("--index-root", type=Path, default=paths.INDEX_ROOT)
    parser.add_argument("--out", type=Path, default=paths.RESULTS_ROOT)
    parser.add_argument("--no-plots", action="store_true", help="tables and index only")
    parser.add_argument("--grid-receipt", type=Path, default=paths.MLFLOW_RECEIPT,
                        help="receipt of `fas track init` naming the grid's MLflow parent run")
    parser.add_argument("--workers", type=int, default=1, help="processes drawing the plots")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    experiments = grid.expand(params)
    failures = FailureReport("report")
    results = Results(experiments, args.eval_root, failures)
    bootstrap = metrics.Bootstrap.from_settings(params["evaluate"]["bootstrap"])
    context = {"preset": params["preset"], "bootstrap": bootstrap,
               "table_apcer": params["evaluate"]["table_apcer"],
               "replicates": Replicates(results, args.train_root, bootstrap, failures),
               "synthetic": {(e.dataset, e.protocol): is_synthetic(params, e.dataset, e.protocol)
                             for e in experiments}}
    references = load_references()
    tables = write_tables(experiments, results, references, context, args.out / "tables")
    written = {} if args.no_plots else write_plots(experiments, results, args.train_root,
                                                   args.out / "plots", failures, args.workers)
    log_to_runs(results, written, args.train_root)
    judged = verdict.verdict(params, args.index_root, results.payloads)
    write_index(args.out, tables, written, experiments, results, failures, references, context,
                judged, params["verdict"])
    summary = headline(tables)
    write_json(args.out / "metrics.json", summary)
    log_to_grid_run(args.grid_receipt, summary, args.out)
    if failures.entries:
        print(failures.summary(), file=sys.stderr)
    print(f"fas report: {len(tables)} table(s), {sum(map(len, written.values()))} plot(s), "
          f"metrics for {len(results.payloads)} of {len(experiments)} grid experiments -> {args.out}")
    print("verdict:")
    for line in verdict.summary_lines(judged, params["verdict"]):
        print(f"  {line}")
    return 0
