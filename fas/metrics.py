"""ISO/IEC 30107-3 presentation attack detection metrics, thresholds with provenance, bootstrap CIs.

Conventions (docs/evaluation.md, ../shared/docs/REFERENCE.md section 4): the
score is P(live); the positive class is bona fide (live); a presentation is
accepted as live when ``score >= threshold``. All rates are fractions in [0, 1].
Every threshold carries its policy, the split it was chosen on and its value.

Every metric is computed on a matrix of row weights [B, n]: one row of ones
for the point estimate, B bootstrap resamples (how often each row was drawn)
for its confidence interval, so both come from the same code. It is plain
NumPy: scikit-learn's ROC functions take one weighting per call (a thousand
calls per metric) and importing scikit-learn alone costs about 1.5 s of CPU
per evaluate job; tests check these functions against scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

SPLITS = ("train", "dev", "test")
SCORE_COLUMNS = ("video_id", "split", "is_live", "pai", "score")
LIVE_PAI = "live"
POLICIES = ("dev_eer", "fixed", "train_eer", "test_eer")
POLICY_SPLIT = {"dev_eer": "dev", "train_eer": "train", "test_eer": "test", "fixed": None}
# CASIA-SURF reports TPR at these false positive rates (REFERENCE section 4).
FPR_TARGETS = (1e-2, 1e-3, 1e-4)
ACCEPT_RULE = "accepted as live when score >= threshold"
# Resamples per block: bounds the [block, distinct scores] work arrays (~16 MB).
BLOCK_CELLS = 2_000_000


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
    from scipy.stats import mannwhitneyu  # only for a suspect ranking: importing SciPy is slow

    p_value = mannwhitneyu(scores[is_live], scores[~is_live], alternative="less").pvalue
    if p_value < alpha:
        raise ScoreError(f"{source}: AUC {value:.3f} < {min_auc} on {n_live} live and {n_attack} "
                         f"attack samples (one-sided Mann-Whitney p = {p_value:.2g} < {alpha}): "
                         "is_live looks inverted or score is P(attack), not P(live)")


def _both_classes(is_live: np.ndarray, what: str) -> None:
    if is_live.all() or not is_live.any():
        raise ValueError(f"{what} needs both live and attack samples "
                         f"(got {int(is_live.sum())} live, {int((~is_live).sum())} attack)")


# ----------------------------------------------------------------------------- weighted ROC


def _ones(n: int) -> np.ndarray:
    return np.ones((1, n))


def _sums_by_value(weights: np.ndarray, value_index: np.ndarray, n_values: int) -> np.ndarray:
    """[B, n_values]: the weights of rows sharing a distinct score, summed."""
    out = np.zeros((weights.shape[0], n_values))
    if value_index.size:
        order = np.argsort(value_index, kind="stable")
        sorted_index = value_index[order]
        starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
        out[:, sorted_index[starts]] = np.add.reduceat(weights[:, order], starts, axis=1)
    return out


@dataclass(frozen=True)
class WeightedRoc:
    """ROC of weighted rows at every distinct score, highest first (accept when score >= value).

    `tp`/`fp` [B, m] are the live/attack weight accepted at each distinct score
    `values` [m]; `live`/`attack` [B] the class totals.
    """

    values: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    live: np.ndarray
    attack: np.ndarray
    live_at: np.ndarray  # [B, m] live weight exactly at each value
    attack_at: np.ndarray

    @classmethod
    def build(cls, is_live: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> "WeightedRoc":
        values, inverse = np.unique(scores, return_inverse=True)  # ascending
        live_at = _sums_by_value(weights[:, is_live], inverse[is_live], len(values))[:, ::-1]
        attack_at = _sums_by_value(weights[:, ~is_live], inverse[~is_live], len(values))[:, ::-1]
        tp, fp = np.cumsum(live_at, axis=1), np.cumsum(attack_at, axis=1)
        return cls(values[::-1], tp, fp, tp[:, -1], fp[:, -1], live_at, attack_at)

    def far_frr(self) -> tuple[np.ndarray, np.ndarray]:
        """[B, m] false accept (pooled APCER) and false reject (BPCER) rates per distinct score."""
        if "_rates" not in self.__dict__:
            object.__setattr__(self, "_rates", (self.fp / self.attack[:, None],
                                                1.0 - self.tp / self.live[:, None]))
        return self._rates

    def eer(self) -> tuple[np.ndarray, np.ndarray]:
        """([B] EER, [B] index of its distinct score): |FAR - FRR| smallest, ties at the highest score."""
        far, frr = self.far_frr()
        best = np.argmin(np.abs(far - frr), axis=1)
        rows = np.arange(len(best))
        return (far[rows, best] + frr[rows, best]) / 2, best

    def auc(self) -> np.ndarray:
        """[B] area under the ROC: P(live score > attack score) + P(tie) / 2 (Mann-Whitney)."""
        below = self.attack[:, None] - self.fp  # attack weight strictly below each value
        pairs = (self.live_at * (below + 0.5 * self.attack_at)).sum(axis=1)
        return pairs / (self.live * self.attack)

    def tpr_at_fpr(self, target: float) -> np.ndarray:
        """[B] highest TPR at a threshold whose FAR is at most `target` (FAR = 0 included).

        FAR and TPR grow together as the threshold falls, so it is the TPR at the
        last distinct score whose FAR is within the target.
        """
        far, frr = self.far_frr()
        allowed = (far <= target).sum(axis=1)  # a prefix: FAR never decreases
        tpr = 1.0 - frr[np.arange(len(far)), np.maximum(allowed - 1, 0)]
        return np.where(allowed > 0, tpr, 0.0)


def roc_points(is_live: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, FRR, thresholds) at every distinct score, thresholds decreasing.

    FAR = attacks with score >= t / attacks (pooled APCER), FRR = live with
    score < t / live (BPCER); the first threshold is +inf (nothing accepted).
    """
    _both_classes(is_live, "a ROC curve")
    roc = WeightedRoc.build(is_live, scores, _ones(len(scores)))
    far, frr = roc.far_frr()
    return np.r_[0.0, far[0]], np.r_[1.0, frr[0]], np.r_[np.inf, roc.values]


def eer(is_live: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) at the ROC point where |FAR - FRR| is smallest (ties: highest threshold).

    EER is (FAR + FRR) / 2 there. Every threshold between that observed score and
    the next lower one gives the same rates; the threshold is the middle of that
    gap, so a cleanly separated set does not put it on its lowest live score.
    """
    _both_classes(is_live, "a ROC curve")
    roc = WeightedRoc.build(is_live, scores, _ones(len(scores)))
    value, best = roc.eer()
    best = int(best[0])
    upper = roc.values[best]
    lower = roc.values[best + 1] if best + 1 < len(roc.values) else upper
    return float(value[0]), float((upper + lower) / 2)


def auc(is_live: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, live as the positive class."""
    _both_classes(is_live, "AUC")
    return float(WeightedRoc.build(is_live, scores, _ones(len(scores))).auc()[0])


def tpr_at_fpr(is_live: np.ndarray, scores: np.ndarray, target: float) -> float:
    """Highest TPR (live accepted) at a threshold whose FAR is at most `target`.

    With fewer than 1/target attacks this is the TPR at FAR = 0.
    """
    _both_classes(is_live, "a ROC curve")
    return float(WeightedRoc.build(is_live, scores, _ones(len(scores))).tpr_at_fpr(target)[0])


# ----------------------------------------------------------------------------- error rates


def weighted_error_rates(is_live: np.ndarray, pai: np.ndarray, scores: np.ndarray,
                         threshold: float, weights: np.ndarray) -> dict:
    """APCER per PAI species, their maximum, pooled APCER, BPCER, ACER and HTER, each [B]."""
    accepted = scores >= threshold
    attack = ~is_live
    species = sorted(set(pai[attack].tolist()))
    groups = [is_live, attack] + [pai == s for s in species]
    errors = [~accepted, accepted] + [accepted] * len(species)
    members = np.stack(groups, axis=1).astype(float)  # [n, groups]: one product for every rate
    totals = weights @ members
    wrong = weights @ (members * np.stack(errors, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, wrong / np.where(totals > 0, totals, 1), np.nan)
    bpcer, apcer_pooled = rates[:, 0], rates[:, 1]
    per_pai = {s: rates[:, 2 + k] for k, s in enumerate(species)}
    apcer = rates[:, 2:].max(axis=1) if species else np.full(len(weights), np.nan)
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


def error_rates(is_live: np.ndarray, pai: np.ndarray, scores: np.ndarray,
                threshold: float) -> dict:
    """APCER per PAI species, their maximum, pooled APCER, BPCER, ACER and HTER."""
    rates = weighted_error_rates(is_live, pai, scores, threshold, _ones(len(scores)))
    return _first(rates)


def _first(values):
    """Plain floats from [1]-arrays (nested dicts too)."""
    if isinstance(values, dict):
        return {k: _first(v) for k, v in values.items()}
    return float(values[0])


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


# ----------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap over videos, stratified by PAI label (params `evaluate.bootstrap`)."""

    resamples: int
    seed: int
    confidence: float

    @classmethod
    def from_settings(cls, settings: Mapping) -> "Bootstrap":
        return cls(int(settings["resamples"]), int(settings["seed"]), float(settings["confidence"]))

    def describe(self) -> dict:
        return {"method": "percentile bootstrap", "resamples": self.resamples, "seed": self.seed,
                "confidence": self.confidence, "unit": "video",
                "strata": "pai (live and each attack species keep their test counts)",
                "threshold": "held at its value (the interval reflects the test sample only)"}

    def weights(self, videos: np.ndarray, strata: np.ndarray) -> np.ndarray:
        """[resamples, rows] how often each row's video is drawn.

        Within each stratum the videos are drawn with replacement as many times
        as the stratum has videos; every row of a drawn video (its frames) gets
        the video's count. The same (seed, videos) give the same resamples.
        """
        names, row_video = np.unique(videos.astype(str), return_inverse=True)
        video_stratum = np.empty(len(names), dtype=object)
        video_stratum[row_video] = strata.astype(str)
        counts = np.zeros((self.resamples, len(names)))
        rng = np.random.default_rng(self.seed)
        for stratum in sorted(set(video_stratum.tolist())):
            members = np.flatnonzero(video_stratum == stratum)
            draws = rng.integers(0, len(members), size=(self.resamples, len(members)))
            flat = draws + len(members) * np.arange(self.resamples)[:, None]
            counts[:, members] = np.bincount(flat.ravel(), minlength=self.resamples * len(members)
                                             ).reshape(self.resamples, len(members))
        return counts[:, row_video]

    def interval(self, replicates: np.ndarray) -> list[float | None]:
        """[low, high] percentile interval of replicate values (None where undefined)."""
        finite = replicates[np.isfinite(replicates)]
        if finite.size < len(replicates) or finite.size == 0:
            return [None, None]
        alpha = 1 - self.confidence
        low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
        return [float(low), float(high)]


def threshold_free(rows: pd.DataFrame, weights: np.ndarray) -> dict:
    """EER, AUC and TPR@FPR of weighted rows, one value per weight row ([B] arrays), and
    `auc_per_pai`: the AUC of live against each attack species alone."""
    is_live = rows["is_live"].to_numpy(bool)
    scores = rows["score"].to_numpy(float)
    if is_live.all() or not is_live.any():
        return {}
    pai = rows["pai"].astype(str).to_numpy()
    species_rows = {s: is_live | (pai == s) for s in sorted(set(pai[~is_live].tolist()))}
    blocks = []
    step = max(1, BLOCK_CELLS // max(1, len(np.unique(scores))))
    for start in range(0, len(weights), step):
        block = weights[start:start + step]
        roc = WeightedRoc.build(is_live, scores, block)
        blocks.append({"eer": roc.eer()[0], "auc": roc.auc(),
                       **{fpr_key(t): roc.tpr_at_fpr(t) for t in FPR_TARGETS},
                       **{("auc_per_pai", s): WeightedRoc.build(is_live[keep], scores[keep], block[:, keep]).auc()
                          for s, keep in species_rows.items()}})
    merged = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    merged["auc_per_pai"] = {s: merged.pop(("auc_per_pai", s)) for s in species_rows}
    return merged


def replicate_metrics(rows: pd.DataFrame, threshold: float, weights: np.ndarray,
                      free: dict | None = None) -> dict:
    """Every metric of one evaluated set at `threshold`, one value per weight row ([B] arrays);
    `free` passes the threshold-free ones when they are known already."""
    result = weighted_error_rates(rows["is_live"].to_numpy(bool), rows["pai"].astype(str).to_numpy(),
                                  rows["score"].to_numpy(float), threshold, weights)
    result.update(threshold_free(rows, weights) if free is None else free)
    return result


class Evaluation:
    """One evaluated set (normally test) under any threshold, with confidence intervals.

    The intervals resample the set's videos (`video_id`; frame-level rows carry
    their video's count) within each PAI label, the threshold held fixed. The
    resamples and the threshold-free metrics are computed once for every threshold.
    """

    def __init__(self, rows: pd.DataFrame, bootstrap: Bootstrap | None = None):
        self.rows, self.bootstrap = rows, bootstrap
        self.point = _ones(len(rows))
        self.point_free = threshold_free(rows, self.point)
        pai = rows["pai"].astype(str).to_numpy()
        self.videos = rows["video_id"].to_numpy()
        if bootstrap is not None:
            self.resampled = bootstrap.weights(self.videos, pai)
            self.resampled_free = threshold_free(rows, self.resampled)

    def at(self, threshold: Threshold) -> dict:
        """Every metric at `threshold`, its interval under `ci`, the counts and the threshold."""
        rows = self.rows
        result = _first(replicate_metrics(rows, threshold.value, self.point, self.point_free))
        is_live = rows["is_live"].to_numpy(bool)
        pai = rows["pai"].astype(str).to_numpy()
        result["n_live"], result["n_attack"] = int(is_live.sum()), int((~is_live).sum())
        result["n_per_pai"] = {str(k): int(v) for k, v in
                               sorted(pd.Series(pai[~is_live]).value_counts().items())}
        if len(np.unique(self.videos)) != len(rows):  # frame level: the resampled units are videos
            result["n_videos_live"] = int(len(np.unique(self.videos[is_live])))
            result["n_videos_attack"] = int(len(np.unique(self.videos[~is_live])))
        if self.bootstrap is not None:
            replicates = replicate_metrics(rows, threshold.value, self.resampled, self.resampled_free)
            interval = self.bootstrap.interval
            result["ci"] = {key: ({k: interval(v) for k, v in value.items()}
                                  if isinstance(value, dict) else interval(value))
                            for key, value in replicates.items()}
        result["threshold"] = threshold.as_dict()
        return result


def evaluate_rows(rows: pd.DataFrame, threshold: Threshold, bootstrap: Bootstrap | None = None) -> dict:
    """Every metric of one evaluated set (normally test) at `threshold`, with its CI under `ci`."""
    return Evaluation(rows, bootstrap).at(threshold)


def aggregate(values: Sequence[float]) -> dict:
    """Mean and SAMPLE standard deviation (ddof=1, as the papers report); std is None for n < 2."""
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if array.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {"mean": float(array.mean()), "std": std, "n": int(array.size)}
