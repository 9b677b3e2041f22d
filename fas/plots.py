"""ROC and DET curves, score histograms by PAI species and training curves (matplotlib Agg).

PNG files are written without the Software metadata and SVG hashes are
salted, so a rerun on the same inputs writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import norm  # noqa: E402

from fas import metrics  # noqa: E402
from fas.io import atomic_path  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "fas"
# Titles at a fixed height: matplotlib's automatic one measures every tick label at each draw
# to keep the title clear of a top axis, which no plot here has (a third of the drawing time).
matplotlib.rcParams["axes.titley"] = 1.0
DPI = 100
DET_TICKS = (0.001, 0.01, 0.05, 0.2, 0.5, 0.8)
DET_CLIP = 1e-4  # rates of 0 and 1 have no normal deviate: drawn at this distance from them
# training curves: fixed margins, since tight_layout measures every label (0.13 s a figure)
CURVES_MARGINS = {"left": 0.08, "right": 0.98, "bottom": 0.13, "top": 0.92, "wspace": 0.22}


def save(figure: plt.Figure, path: Path) -> Path:
    """Write a PNG atomically with no varying metadata; close the figure."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)
    return path


Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # label -> (is_live, scores)


def curve_points(is_live: np.ndarray, scores: np.ndarray) -> dict[str, pd.DataFrame]:
    """The points of the ROC (fpr, tpr) and DET (pooled APCER, BPCER, and their normal
    deviates) curves, as tables for `dvc plots`."""
    far, frr, _ = metrics.roc_points(is_live, scores)
    return {"roc": pd.DataFrame({"fpr": far, "tpr": 1 - frr}),
            "det": pd.DataFrame({"apcer": far, "bpcer": frr, "apcer_probit": probit(far),
                                 "bpcer_probit": probit(frr)})}


def probit(rates) -> np.ndarray:
    """Normal deviates of error rates, the DET axes."""
    return norm.ppf(np.clip(rates, DET_CLIP, 1 - DET_CLIP))


def roc(curves: Curves, title: str, path: Path) -> Path:
    """ROC: live accepted (TPR = 1 - BPCER) against attacks accepted (FPR = pooled APCER)."""
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for label, (is_live, scores) in curves.items():
        far, frr, _ = metrics.roc_points(is_live, scores)
        axes.plot(far, 1 - frr, label=f"{label} (AUC {metrics.auc(is_live, scores):.3f})", lw=1.2)
    axes.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    axes.set(xlabel="attacks accepted (FPR, pooled APCER)", ylabel="live accepted (TPR)",
             title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(fontsize=7, loc="lower right")
    return save(figure, path)


def det(curves: Curves, title: str, path: Path) -> Path:
    """DET: BPCER against pooled APCER on normal-deviate axes, with each curve's EER marked."""
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for label, (is_live, scores) in curves.items():
        points = curve_points(is_live, scores)["det"]
        value, _ = metrics.eer(is_live, scores)
        line, = axes.plot(points["apcer_probit"], points["bpcer_probit"],
                          label=f"{label} (EER {100 * value:.2f}%)", lw=1.2)
        point = probit(value)
        axes.plot(point, point, "o", color=line.get_color(), ms=3)
    ticks = norm.ppf(DET_TICKS)
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    axes.set_xticks(ticks, labels)
    axes.set_yticks(ticks, labels)
    axes.set(xlim=(ticks[0], ticks[-1]), ylim=(ticks[0], ticks[-1]), title=title,
             xlabel="APCER, pooled (%)", ylabel="BPCER (%)")
    axes.grid(True, color="0.9")
    axes.legend(fontsize=7, loc="upper right")
    return save(figure, path)


def score_histogram(rows: pd.DataFrame, title: str, path: Path,
                    threshold: dict | None = None) -> Path:
    """Score distributions of one split by PAI species, with the decision threshold."""
    figure, axes = plt.subplots(figsize=(5.5, 4))
    bins = np.linspace(0, 1, 41)
    for pai in sorted(rows["pai"].astype(str).unique(), key=lambda p: (p != metrics.LIVE_PAI, p)):
        scores = rows.loc[rows["pai"].astype(str) == pai, "score"].to_numpy(float)
        axes.hist(scores, bins=bins, histtype="step", lw=1.4, label=f"{pai} ({len(scores)})")
    if threshold:
        axes.axvline(threshold["value"], color="k", ls="--", lw=1,
                     label=f"threshold {threshold['value']:.3f} ({threshold['policy']}, "
                           f"{threshold['split'] or 'fixed'})")
    axes.set(xlabel="score = P(live)", ylabel="count", title=title, xlim=(0, 1))
    axes.legend(fontsize=7)
    return save(figure, path)


def training_curves(history: pd.DataFrame, title: str, path: Path) -> Path:
    """Every per-epoch column of history.csv against the epoch; losses left, rates right."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw=CURVES_MARGINS)
    for column in history.columns:
        if column in ("epoch", "lr") or not pd.api.types.is_numeric_dtype(history[column]):
            continue
        axes = left if "loss" in column else right
        axes.plot(history["epoch"], history[column], marker="o", ms=3, label=column)
    left.set(xlabel="epoch", ylabel="loss", title=title)
    right.set(xlabel="epoch", ylabel="rate", title="rates")
    for axes in (left, right):
        if axes.lines:
            axes.legend(fontsize=7)
    return save(figure, path)
