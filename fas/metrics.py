"""ISO/IEC 30107-3 presentation attack detection metrics, thresholds with provenance.

Conventions (docs/evaluation.md, ../shared/docs/REFERENCE.md section 4): the
score is P(live); the positive class is bona fide (live); a presentation is
accepted as live when ``score >= threshold``. All rates are fractions in [0, 1].
Every threshold carries its policy, the split it was chosen on and its value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score, roc_curve

SPLITS = ("train", "dev", "test")
SCORE_COLUMNS = ("video_id", "split", "is_live", "pai", "score")
LIVE_PAI = "live"
POLICIES = ("dev_eer", "fixed", "train_eer", "test_eer")
POLICY_SPLIT = {"dev_eer": "dev", "train_eer": "train", "test_eer": "test", "fixed": None}
# CASIA-SURF reports TPR at these false positive rates (REFERENCE section 4).
FPR_TARGETS = (1e-2, 1e-3, 1e-4)
ACCEPT_RULE = "accepted as live when score >= threshold"


class ScoreError(ValueError):
    """A scores table that must not be scored (wrong columns, values or polarity)."""


def check_scores(table: pd.DataFrame, source: str) -> None:
    """Reject a scores table with missing columns, bad values or contradictory labels."""
    missing = [c for c in SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise ScoreError(f"{source}: missing column(s) {missing}; expected {list(SCORE_COLUMNS)}")
    if not pd.api.types.is_bool_dtype(table["is_live"]) or table["is_live"].isna().any():
        raise ScoreError(f"{source}: column is_live must be boolean without nulls "
                         f"(got dtype {table['is_live'].dtype}); a bare 0/1 label is ambiguous")
    if not pd.api.types.is_numeric_dtype(table["score"]):
        raise ScoreError(f"{source}: column score must be numeric (got {table['score'].dtype})")
    scores = table["score"].to_numpy(dtype=float)
    if np.isnan(scores).any():
        raise ScoreError(f"{source}: {int(np.isnan(scores).sum())} NaN score(s)")
    outside = (scores < 0) | (scores > 1)
    if outside.any():
        raise ScoreError(f"{source}: {int(outside.sum())} score(s) outside [0, 1] "
                         f"(min {scores.min():.4g}, max {scores.max():.4g}); score must be P(live)")
    unknown = sorted(set(table["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise ScoreError(f"{source}: unknown split value(s) {unknown}; expected {list(SPLITS)}")
    contradictory = table["is_live"].to_numpy(bool) != (table["pai"].astype(str) == LIVE_PAI).to_numpy()
    if contradictory.any():
        raise ScoreError(f"{source}: is_live disagrees with pai ('{LIVE_PAI}' means bona fide) "
                         f"in {int(contradictory.sum())} row(s): labels inverted or mislabelled")


def check_polarity(is_live: np.ndarray, scores: np.ndarray, source: str, *,
                   min_auc: float, alpha: float) -> None:
    """Reject scores that rank attacks above live: inverted labels or a P(attack) score.

    Rejected when the AUC is below `min_auc` and the one-sided Mann-Whitney U
    test (live scores lower than attack scores) is significant at `alpha`. The
    test weighs the evidence at any sample count, where a fixed minimum count
    would leave small splits unchecked: at alpha 0.01 a perfect inversion is
    caught from 5 + 5 samples (3 + 7, 2 + 13), while a chance ranking of a
    few samples is not rejected.
    """
    n_live, n_attack = int(is_live.sum()), int((~is_live).sum())
    if not n_live or not n_attack:
        return
    value = auc(is_live, scores)
    if value >= min_auc:
        return
    p_value = mannwhitneyu(scores[is_live], scores[~is_live], alternative="less").pvalue
    if p_value < alpha:
        raise ScoreError(f"{source}: AUC {value:.3f} < {min_auc} on {n_live} live and {n_attack} "
                         f"attack samples (one-sided Mann-Whitney p = {p_value:.2g} < {alpha}): "
                         "is_live looks inverted or score is P(attack), not P(live)")


def _both_classes(is_live: np.ndarray, what: str) -> None:
    if is_live.all() or not is_live.any():
        raise ValueError(f"{what} needs both live and attack samples "
                         f"(got {int(is_live.sum())} live, {int((~is_live).sum())} attack)")


def roc_points(is_live: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, FRR, thresholds) at every distinct score, thresholds decreasing.

    FAR = attacks with score >= t / attacks (pooled APCER), FRR = live with
    score < t / live (BPCER); the first threshold is +inf (nothing accepted).
    """
    _both_classes(is_live, "a ROC curve")
    far, tpr, thresholds = roc_curve(is_live, scores, pos_label=True, drop_intermediate=False)
    return far, 1.0 - tpr, thresholds


def eer(is_live: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) at the ROC point where |FAR - FRR| is smallest (ties: highest threshold).

    EER is (FAR + FRR) / 2 there. Every threshold between that observed score and
    the next lower one gives the same rates; the threshold is the middle of that
    gap, so a cleanly separated set does not put it on its lowest live score.
    """
    far, frr, thresholds = roc_points(is_live, scores)
    # Skip roc_curve's leading +inf: the threshold is always within the observed scores.
    best = 1 + int(np.argmin(np.abs(far[1:] - frr[1:])))
    upper = thresholds[best]
    lower = thresholds[best + 1] if best + 1 < len(thresholds) else upper
    return float((far[best] + frr[best]) / 2), float((upper + lower) / 2)


def auc(is_live: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, live as the positive class."""
    _both_classes(is_live, "AUC")
    return float(roc_auc_score(is_live, scores))


def tpr_at_fpr(is_live: np.ndarray, scores: np.ndarray, target: float) -> float:
    """Highest TPR (live accepted) at a threshold whose FAR is at most `target`.

    With fewer than 1/target attacks this is the TPR at FAR = 0.
    """
    far, frr, _ = roc_points(is_live, scores)
    return float((1.0 - frr)[far <= target].max())


def error_rates(is_live: np.ndarray, pai: np.ndarray, scores: np.ndarray,
                threshold: float) -> dict:
    """APCER per PAI species, their maximum, pooled APCER, BPCER, ACER and HTER."""
    accepted = scores >= threshold
    attack = ~is_live
    per_pai = {str(s): float(accepted[pai == s].mean())
               for s in sorted(set(pai[attack].tolist()))}
    bpcer = float((~accepted[is_live]).mean()) if is_live.any() else math.nan
    apcer_pooled = float(accepted[attack].mean()) if attack.any() else math.nan
    apcer = max(per_pai.values()) if per_pai else math.nan
    return {
        "apcer": apcer,
        "apcer_pooled": apcer_pooled,
        "apcer_per_pai": per_pai,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "acer_pooled": (apcer_pooled + bpcer) / 2,
        # HTER = (FAR + FRR) / 2 with FAR the pooled attack acceptance rate.
        "hter": (apcer_pooled + bpcer) / 2,
    }


@dataclass(frozen=True)
class Threshold:
    """A decision threshold and where it came from."""

    value: float
    policy: str  # the policy actually applied
    split: str | None  # split it was chosen on; None for `fixed`
    requested: str  # the policy asked for (differs when no dev split exists)
    oracle: bool  # chosen on the evaluated test set itself
    source_eer: float | None  # EER on `split`, for EER policies
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _rows(table: pd.DataFrame, split: str) -> pd.DataFrame:
    return table[table["split"] == split]


def _has_both_classes(rows: pd.DataFrame) -> bool:
    return bool(rows["is_live"].any() and (~rows["is_live"]).any())


def select_threshold(table: pd.DataFrame, policy: str, *, fixed: float,
                     no_dev_policy: str | None) -> Threshold:
    """The threshold of `policy` on a checked scores table.

    `dev_eer` falls back to `no_dev_policy` (named in the result) when the
    protocol has no dev split with both classes; with None it raises instead.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown threshold policy {policy!r}; known: {list(POLICIES)}")
    requested, note = policy, None
    if policy == "dev_eer" and not _has_both_classes(_rows(table, "dev")):
        if no_dev_policy is None:
            raise ValueError("no dev split with both classes")
        if no_dev_policy == "dev_eer" or no_dev_policy not in POLICIES:
            raise ValueError(f"no_dev_policy must be one of fixed, train_eer, test_eer "
                             f"(got {no_dev_policy!r})")
        policy, note = no_dev_policy, f"no dev split with both classes: no_dev_policy {no_dev_policy}"
    if policy == "fixed":
        return Threshold(float(fixed), "fixed", None, requested, False, None, note)
    split = POLICY_SPLIT[policy]
    rows = _rows(table, split)
    if not _has_both_classes(rows):
        raise ValueError(f"threshold policy {policy} needs {split} scores of both classes "
                         f"(got {len(rows)} row(s))")
    value_eer, value = eer(rows["is_live"].to_numpy(bool), rows["score"].to_numpy(float))
    if policy == "test_eer":
        note = "; ".join(filter(None, [note, "oracle: threshold chosen on the test set itself"]))
    return Threshold(value, policy, split, requested, policy == "test_eer", value_eer, note)


def fpr_key(target: float) -> str:
    """Metric name of TPR at a false positive rate, e.g. tpr_at_fpr_1e-4."""
    return f"tpr_at_fpr_{target:.0e}".replace("e-0", "e-")


def evaluate_rows(rows: pd.DataFrame, threshold: Threshold) -> dict:
    """Every metric of one evaluated set (normally test) at `threshold`."""
    is_live = rows["is_live"].to_numpy(bool)
    pai = rows["pai"].astype(str).to_numpy()
    scores = rows["score"].to_numpy(float)
    result = error_rates(is_live, pai, scores, threshold.value)
    if is_live.any() and (~is_live).any():
        result["eer"], _ = eer(is_live, scores)
        result["auc"] = auc(is_live, scores)
        for target in FPR_TARGETS:
            result[fpr_key(target)] = tpr_at_fpr(is_live, scores, target)
    result["n_live"] = int(is_live.sum())
    result["n_attack"] = int((~is_live).sum())
    result["n_per_pai"] = {str(k): int(v) for k, v in
                           sorted(pd.Series(pai[~is_live]).value_counts().items())}
    result["threshold"] = threshold.as_dict()
    return result


def aggregate(values: Sequence[float]) -> dict:
    """Mean and SAMPLE standard deviation (ddof=1, as the papers report); std is None for n < 2."""
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if array.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {"mean": float(array.mean()), "std": std, "n": int(array.size)}
