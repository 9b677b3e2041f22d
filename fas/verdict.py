"""`fas verdict`: does the grid show what it should? Split sizes, and models that learn.

Two checks, with the thresholds of params `verdict:` (docs/evaluation.md, "Verdict"):
- every test split of the grid holds at least `test_min` live and attack videos
  and per attack species, every dev split at least `dev_min` of each class
  (from the index: `protocols.parquet` and `manifest.parquet`);
- every intra-domain experiment named under `verdict.intra` reaches its test
  AUC (where the rule names `unseen_pai`, species the protocol's training never
  shows, each other species' own AUC against live), and every cross-domain
  protocol under `verdict.cross` stays below its intra-domain counterpart (mean
  test AUC of the same method and variant) and above the floor (from `metrics.json`).
Reported beside them, not judged: the unseen species' AUCs, and the experiments
whose threshold did not carry over to test (`threshold_gap`).

`fas report` prints the verdict at the end of the main job; `fas verdict`
exits 1 when anything fails.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fas import paths
from fas.config import load_params, metric_name, per_dataset
from fas.grid import Experiment, expand
from fas.lazy import lazy_import

np = lazy_import("numpy")
pq = lazy_import("pyarrow.parquet")


@dataclass(frozen=True)
class Finding:
    """One failed check: what, where, and the numbers."""

    check: str  # split_size | intra_auc | cross_auc | missing
    subject: str  # an experiment id, a split, or a protocol
    message: str


def split_counts(index_root: Path, dataset: str) -> dict[tuple[str, int, str], dict]:
    """(protocol, fold, split) -> {live, attack, per_pai} video counts of one indexed dataset."""
    folder = Path(index_root) / dataset
    protocols = pq.read_table(folder / "protocols.parquet",
                              columns=["dataset", "protocol", "fold", "split", "video_id"]).to_pylist()
    manifest = pq.read_table(folder / "manifest.parquet", columns=["dataset", "video_id", "pai"])
    pai_of = dict(zip(zip(manifest.column("dataset").to_pylist(), manifest.column("video_id").to_pylist()),
                      manifest.column("pai").to_pylist()))
    members: dict[tuple, set] = defaultdict(set)
    for row in protocols:
        members[row["protocol"], int(row["fold"]), row["split"]].add((row["dataset"], row["video_id"]))
    counts = {}
    for key, videos in members.items():
        pais = [pai_of[video] for video in videos]
        per_pai = {p: pais.count(p) for p in sorted(set(pais)) if p != "live"}
        counts[key] = {"live": pais.count("live"), "attack": sum(per_pai.values()), "per_pai": per_pai}
    return counts


def check_splits(params: dict, index_root: Path) -> tuple[list[Finding], dict]:
    """Findings for undersized test and dev splits of the grid's experiments, and every count."""
    rules = params["verdict"]
    findings, seen = [], {}
    experiments = expand(params)
    for dataset in sorted({e.dataset for e in experiments}):
        try:
            counts = split_counts(index_root, dataset)
        except (OSError, ValueError) as error:
            findings.append(Finding("split_size", dataset, f"no index to count splits ({error})"))
            continue
        for protocol, fold in sorted({(e.protocol, e.fold) for e in experiments if e.dataset == dataset}):
            for split, minimum in (("test", rules["test_min"]), ("dev", rules["dev_min"])):
                found = counts.get((protocol, fold, split))
                name = f"{dataset}.{protocol}.f{fold}.{split}"
                if found is None:
                    if split == "test":
                        findings.append(Finding("split_size", name, "no test split in the index"))
                    continue
                seen[name] = found
                short = [f"{found[c]} {c} < {minimum[c]}" for c in ("live", "attack")
                         if found[c] < minimum[c]]
                if split == "test":
                    short += [f"{n} {pai} < {minimum['per_pai']}" for pai, n in found["per_pai"].items()
                              if n < minimum["per_pai"]]
                if short:
                    findings.append(Finding("split_size", name, "; ".join(short)))
    return findings, seen


def _auc(payloads: dict, experiment: Experiment) -> float | None:
    payload = payloads.get(experiment)
    return None if payload is None else payload["test"].get("auc")


def _rule_members(rule: dict, experiments: list[Experiment]) -> list[Experiment]:
    """The experiments an intra rule judges: its dataset, protocol and method, its variants."""
    return [e for e in experiments
            if (e.dataset, e.protocol, e.method) == (rule["dataset"], rule["protocol"], rule["method"])
            and e.variant in rule["variants"]]


def _per_pai(payloads: dict, experiment: Experiment) -> dict:
    payload = payloads.get(experiment)
    return {} if payload is None else payload["test"].get("auc_per_pai") or {}


def _unseen_text(per_pai: dict, unseen: list[str]) -> str:
    """The unseen species' AUCs, `mask_3d 0.120, mask_silicone 0.300`."""
    return ", ".join(f"{p} {v:.3f}" for p, v in sorted(per_pai.items()) if p in unseen and v is not None)


def _seen_auc(payloads: dict, experiment: Experiment, unseen: list[str]) -> tuple[float | None, str]:
    """The lowest per-species test AUC over the species training saw, and how to say it
    (with the unseen species' AUCs, which the check leaves out)."""
    per_pai = _per_pai(payloads, experiment)
    seen = {p: v for p, v in per_pai.items() if p not in unseen and v is not None}
    if not seen:
        return None, ""
    worst = min(seen, key=seen.get)
    return seen[worst], (f"test AUC of live vs {worst} (lowest seen species; unseen, not checked: "
                         f"{_unseen_text(per_pai, unseen)})")


def check_auc(params: dict, payloads: dict[Experiment, dict]) -> list[Finding]:
    """Findings for intra-domain experiments under their AUC and cross-domain protocols out of order."""
    rules = params["verdict"]
    experiments = expand(params)
    findings = []
    for rule in rules["intra"]:
        unseen = rule.get("unseen_pai", [])
        for e in _rule_members(rule, experiments):
            value, what = (_auc(payloads, e), "test AUC") if not unseen else _seen_auc(payloads, e, unseen)
            if value is None:
                findings.append(Finding("missing", e.id, "no metrics (or no AUC)"))
            elif value < rule["min_auc"]:
                findings.append(Finding("intra_auc", e.id, f"{what} {value:.3f} < {rule['min_auc']}"))
    floor = rules["cross"]["min_auc"]

    def mean_auc(dataset: str, protocol: str, method: str, variant: str) -> tuple[float | None, list]:
        members = [e for e in experiments
                   if (e.dataset, e.protocol, e.method, e.variant) == (dataset, protocol, method, variant)]
        values = [v for e in members if (v := _auc(payloads, e)) is not None]
        return (float(np.mean(values)) if values else None), members

    for shifted, intra in rules["cross"]["against"].items():
        dataset, protocol = shifted.split(".")
        models = sorted({(e.method, e.variant) for e in experiments
                         if (e.dataset, e.protocol) == (dataset, protocol)})
        several = len({method for method, _ in models}) > 1  # then a variant name alone is ambiguous
        for method, variant in models:
            value, members = mean_auc(dataset, protocol, method, variant)
            for e in members:
                auc = _auc(payloads, e)
                if auc is not None and auc < floor:
                    findings.append(Finding("cross_auc", e.id, f"test AUC {auc:.3f} < {floor} (chance level)"))
            reference, references = mean_auc(*intra.split("."), method, variant)
            if value is not None and reference is not None and value >= reference:
                model = f"{method}.{variant}" if several else variant
                shifted_ci, intra_ci = _auc_interval(payloads, members), _auc_interval(payloads, references)
                message = (f"mean test AUC {value:.3f}{_bracket(shifted_ci)} is not below {intra}'s "
                           f"{reference:.3f}{_bracket(intra_ci)}")
                if shifted_ci and intra_ci and shifted_ci[0] <= intra_ci[1]:
                    message += " (the 95 % intervals overlap: within the noise of these test splits)"
                findings.append(Finding("cross_auc", f"{shifted} {model}", message))
    return findings


def _auc_interval(payloads: dict, members: list[Experiment]) -> tuple[float, float] | None:
    """The test AUC's 95 % interval where one experiment makes the mean and it is defined
    (`fas.metrics` writes [None, None] where a bootstrap replicate has no AUC); else None."""
    if len(members) != 1 or members[0] not in payloads:
        return None
    interval = payloads[members[0]]["test"].get("ci", {}).get("auc")
    return tuple(interval) if interval and None not in interval else None


def _bracket(interval: tuple[float, float] | None) -> str:
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def read_payloads(experiments: list[Experiment], eval_root: Path) -> dict[Experiment, dict]:
    """metrics.json of every experiment that has a readable one."""
    payloads = {}
    for experiment in experiments:
        path = Path(eval_root) / experiment.path / "metrics.json"
        try:
            payloads[experiment] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return payloads


def unseen_aucs(params: dict, payloads: dict[Experiment, dict]) -> list[str]:
    """Per experiment, the AUCs of the species its intra rule leaves unjudged (`unseen_pai`)."""
    experiments, lines = expand(params), []
    for rule in params["verdict"]["intra"]:
        unseen = rule.get("unseen_pai", [])
        for e in _rule_members(rule, experiments) if unseen else []:
            if text := _unseen_text(_per_pai(payloads, e), unseen):
                lines.append(f"{e.id}: {text}")
    return lines


def threshold_shifts(params: dict, payloads: dict[Experiment, dict]) -> list[str]:
    """Experiments whose threshold did not carry over to the test split: the table's ACER at the
    applied threshold at least `verdict.threshold_gap` above the ACER at the test split's own EER
    threshold (an oracle, never a result), largest gap first."""
    gap, conventions = params["verdict"]["threshold_gap"], params["evaluate"]["table_apcer"]
    found = []
    for experiment, payload in payloads.items():
        key = metric_name("acer", per_dataset(conventions, experiment.dataset))
        applied, threshold = payload["test"], payload.get("threshold", {})
        policies = payload.get("levels", {}).get(payload.get("level"), {}).get("policies", {})
        oracle = policies.get("test_eer", {})
        if threshold.get("oracle", True) or applied.get(key) is None or oracle.get(key) is None:
            continue  # an oracle threshold applied, or a metrics.json without the rates to compare
        if applied[key] - oracle[key] >= gap:
            found.append((applied[key] - oracle[key], experiment.id,
                          f"{experiment.id}: ACER {applied[key]:.1%} at the {threshold['policy']} threshold "
                          f"{threshold['value']:.3f}, {oracle[key]:.1%} at the test split's own EER "
                          f"threshold {oracle['threshold']['value']:.3f} (test AUC {applied['auc']:.3f})"))
    return [line for _, _, line in sorted(found, key=lambda item: (-item[0], item[1]))]


def verdict(params: dict, index_root: Path, payloads: dict[Experiment, dict] | None) -> dict:
    """Every finding of both checks (AUC only when `payloads` is given), the split counts, the
    unseen species' AUCs and the thresholds that did not carry over."""
    findings, counts = check_splits(params, index_root)
    if payloads is not None:
        findings += check_auc(params, payloads)
    return {"findings": findings, "split_counts": counts, "experiments": len(expand(params)),
            "with_metrics": None if payloads is None else len(payloads),
            "unseen": [] if payloads is None else unseen_aucs(params, payloads),
            "threshold_shifts": [] if payloads is None else threshold_shifts(params, payloads)}


def summary_lines(result: dict, rules: dict) -> list[str]:
    """The short verdict: what passed, and each failure on its own line."""
    findings = result["findings"]
    by_check = defaultdict(list)
    for finding in findings:
        by_check[finding.check].append(finding)
    test, dev = rules["test_min"], rules["dev_min"]
    titles = {"split_size": "split too small", "intra_auc": "did not learn",
              "cross_auc": "cross-domain", "missing": "missing"}

    def nested(checks: tuple[str, ...]) -> list[str]:
        return [f"  {titles[f.check]}: {f.subject}: {f.message}" for f in findings if f.check in checks]

    lines = [f"splits: {len(result['split_counts'])} test/dev splits counted; test needs "
             f">= {test['live']} live, {test['attack']} attack and {test['per_pai']} per species, "
             f"dev >= {dev['live']} live and {dev['attack']} attack: "
             + (f"{len(by_check['split_size'])} too small" if by_check["split_size"] else "all big enough")]
    lines += nested(("split_size",))
    if result["with_metrics"] is not None:
        lines.append(f"learning: {result['with_metrics']} of {result['experiments']} experiments have "
                     "metrics; " + ("every intra-domain experiment reaches its AUC and every "
                                    "cross-domain protocol sits below its intra-domain counterpart"
                                    if not (by_check["intra_auc"] or by_check["cross_auc"] or by_check["missing"])
                                    else f"{len(by_check['intra_auc'])} intra-domain experiment(s) did not learn, "
                                         f"{len(by_check['cross_auc'])} cross-domain finding(s), "
                                         f"{len(by_check['missing'])} without metrics"))
        lines += nested(("intra_auc", "cross_auc", "missing"))
    if result.get("unseen"):
        lines.append("unseen attack species (test AUC against live; reported, not judged):")
        lines += [f"  {line}" for line in result["unseen"]]
    if result.get("threshold_shifts"):
        gap = 100 * rules["threshold_gap"]
        lines.append(f"thresholds that did not carry over to test ({len(result['threshold_shifts'])} of "
                     f"{result['with_metrics']} experiments; ACER at least {gap:.0f} points above the "
                     "oracle's; reported, not judged):")
        lines += [f"  {line}" for line in result["threshold_shifts"]]
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--index-root", type=Path, default=paths.INDEX_ROOT)
    parser.add_argument("--eval-root", type=Path, default=paths.EVAL_ROOT)
    parser.add_argument("--splits-only", action="store_true",
                        help="check the split sizes only (needs the index, no trained model)")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    payloads = None if args.splits_only else read_payloads(expand(params), args.eval_root)
    result = verdict(params, args.index_root, payloads)
    for line in summary_lines(result, params["verdict"]):
        print(line)
    return 1 if result["findings"] else 0
