"""ISO/IEC 30107-3 metrics: hand-worked cases and independent computations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from fas import metrics

# Hand-worked case: 4 live, 2 print, 4 replay; threshold 0.5.
LIVE = [0.9, 0.8, 0.3, 0.7]
PRINT = [0.6, 0.2]
REPLAY = [0.1, 0.55, 0.4, 0.05]


def hand_case():
    scores = np.array(LIVE + PRINT + REPLAY)
    pai = np.array(["live"] * 4 + ["print"] * 2 + ["replay"] * 4)
    return pai == "live", pai, scores


def table(rows):
    """A scores table from (split, pai, score) triples."""
    frame = pd.DataFrame(rows, columns=["split", "pai", "score"])
    frame.insert(0, "video_id", [f"v{i}" for i in range(len(frame))])
    frame["is_live"] = frame["pai"] == "live"
    return frame


def test_error_rates_hand_worked():
    is_live, pai, scores = hand_case()
    rates = metrics.error_rates(is_live, pai, scores, 0.5)
    assert rates["apcer_per_pai"] == {"print": 0.5, "replay": 0.25}
    assert rates["apcer"] == 0.5  # max over species
    assert rates["apcer_pooled"] == pytest.approx(2 / 6)
    assert rates["bpcer"] == 0.25  # the live 0.3 is rejected
    assert rates["acer"] == pytest.approx(0.375)
    assert rates["acer_pooled"] == pytest.approx((2 / 6 + 0.25) / 2)
    assert rates["hter"] == pytest.approx(7 / 24)


def test_score_equal_to_threshold_is_accepted_as_live():
    is_live, pai, scores = hand_case()
    rates = metrics.error_rates(is_live, pai, scores, 0.3)
    assert rates["bpcer"] == 0.0  # 0.3 >= 0.3
    assert rates["apcer_per_pai"]["replay"] == 0.5  # 0.55 and 0.4


def test_eer_hand_worked():
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05])
    is_live = np.array([True] * 4 + [False] * 4)
    value, threshold = metrics.eer(is_live, scores)
    # FAR 1/4 (0.6 accepted) = FRR 1/4 (0.3 rejected) for every threshold in (0.3, 0.6]
    assert value == 0.25 and threshold == pytest.approx(0.45)


def test_eer_of_constant_scores_has_a_finite_threshold():
    value, threshold = metrics.eer(np.array([True, False, True]), np.full(3, 0.5))
    assert value == 0.5 and threshold == 0.5


def random_scores(seed, n_live=400, n_attack=600):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.beta(5, 2, n_live), rng.beta(2, 5, n_attack)])
    return np.array([True] * n_live + [False] * n_attack), scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_agrees_with_interpolated_sklearn_roc(seed):
    is_live, scores = random_scores(seed)
    fpr, tpr, _ = roc_curve(is_live.astype(int), scores, pos_label=1)
    reference = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    value, threshold = metrics.eer(is_live, scores)
    assert value == pytest.approx(reference, abs=1 / 400)
    # The threshold reproduces the EER through the explicit accept rule.
    rates = metrics.error_rates(is_live, np.where(is_live, "live", "print"), scores, threshold)
    assert abs(rates["apcer_pooled"] - rates["bpcer"]) <= 2 / 400
    assert (rates["apcer_pooled"] + rates["bpcer"]) / 2 == pytest.approx(value)


def test_roc_points_match_explicit_sweep():
    is_live, scores = random_scores(3, 50, 70)
    far, frr, thresholds = metrics.roc_points(is_live, scores)
    pai = np.where(is_live, "live", "replay")
    for f, r, t in zip(far[1:], frr[1:], thresholds[1:]):
        rates = metrics.error_rates(is_live, pai, scores, t)
        assert (rates["apcer_pooled"], rates["bpcer"]) == pytest.approx((f, r))


def test_auc_equals_mann_whitney_count():
    is_live, scores = random_scores(4, 60, 80)
    live, attack = scores[is_live], scores[~is_live]
    pairs = (live[:, None] > attack[None, :]).mean() + 0.5 * (live[:, None] == attack[None, :]).mean()
    assert metrics.auc(is_live, scores) == pytest.approx(pairs)


def test_tpr_at_fpr():
    # 100 attacks at 0.000..0.495; live: one at 0.2, one at 0.4925 (just below
    # the top attack), eight at 0.6..0.95.
    attack = np.arange(100) / 200
    live = np.array([0.2, 0.4925] + [0.6 + 0.05 * i for i in range(8)])
    is_live = np.array([False] * 100 + [True] * 10)
    scores = np.concatenate([attack, live])
    # FAR <= 1e-2 allows one attack (0.495) accepted, so the threshold may drop to 0.4925.
    assert metrics.tpr_at_fpr(is_live, scores, 1e-2) == pytest.approx(0.9)
    # FAR <= 1e-3 with 100 attacks means FAR = 0: threshold above 0.495.
    assert metrics.tpr_at_fpr(is_live, scores, 1e-3) == pytest.approx(0.8)
    assert metrics.fpr_key(1e-4) == "tpr_at_fpr_1e-4"


def test_check_scores_rejects_bad_tables():
    good = table([("test", "live", 0.9), ("test", "print", 0.1)])
    metrics.check_scores(good, "ok.parquet")
    with pytest.raises(metrics.ScoreError, match=r"bad\.parquet: missing column\(s\) \['score'\]"):
        metrics.check_scores(good.drop(columns="score"), "bad.parquet")
    with pytest.raises(metrics.ScoreError, match="NaN"):
        metrics.check_scores(good.assign(score=[0.9, math.nan]), "bad.parquet")
    with pytest.raises(metrics.ScoreError, match=r"outside \[0, 1\]"):
        metrics.check_scores(good.assign(score=[1.5, 0.1]), "bad.parquet")
    with pytest.raises(metrics.ScoreError, match="boolean"):
        metrics.check_scores(good.assign(is_live=[1, 0]), "bad.parquet")
    with pytest.raises(metrics.ScoreError, match="unknown split"):
        metrics.check_scores(good.assign(split=["test", "val"]), "bad.parquet")
    with pytest.raises(metrics.ScoreError, match="is_live disagrees with pai"):
        metrics.check_scores(good.assign(is_live=[False, True]), "bad.parquet")


def test_polarity_guard_rejects_inverted_scores():
    is_live, scores = random_scores(5, 30, 30)
    metrics.check_polarity(is_live, scores, "dev", min_auc=0.2, alpha=0.01)
    with pytest.raises(metrics.ScoreError, match="inverted"):
        metrics.check_polarity(is_live, 1 - scores, "dev", min_auc=0.2, alpha=0.01)


@pytest.mark.parametrize("n_live, n_attack, rejected", [
    (5, 5, True), (3, 7, True), (2, 13, True),  # below 10 per class: still caught
    (4, 4, False), (3, 6, False), (2, 2, False),  # a perfect inversion chance explains at 1 %
])
def test_polarity_guard_weighs_the_evidence_of_small_splits(n_live, n_attack, rejected):
    is_live = np.array([True] * n_live + [False] * n_attack)
    inverted = np.linspace(0.1, 0.9, n_live + n_attack)  # every live sample below every attack
    if rejected:
        with pytest.raises(metrics.ScoreError, match=r"Mann-Whitney p = .* < 0.01"):
            metrics.check_polarity(is_live, inverted, "train", min_auc=0.2, alpha=0.01)
    else:
        metrics.check_polarity(is_live, inverted, "train", min_auc=0.2, alpha=0.01)
    metrics.check_polarity(is_live, inverted[::-1], "train", min_auc=0.2, alpha=0.01)


def split_table(seed=0, splits=("train", "dev", "test")):
    rng = np.random.default_rng(seed)
    rows = []
    for split in splits:
        rows += [(split, "live", s) for s in rng.beta(5, 2, 30)]
        rows += [(split, pai, s) for pai in ("print", "replay") for s in rng.beta(2, 5, 20)]
    return table(rows)


def test_dev_eer_threshold_comes_from_dev():
    frame = split_table()
    threshold = metrics.select_threshold(frame, "dev_eer", fixed=0.5, no_dev_policy="train_eer")
    dev = frame[frame["split"] == "dev"]
    expected_eer, expected = metrics.eer(dev["is_live"].to_numpy(), dev["score"].to_numpy())
    assert (threshold.value, threshold.split, threshold.policy) == (expected, "dev", "dev_eer")
    assert threshold.source_eer == expected_eer and not threshold.oracle


def test_no_dev_split_uses_and_names_no_dev_policy():
    frame = split_table(splits=("train", "test"))
    threshold = metrics.select_threshold(frame, "dev_eer", fixed=0.5, no_dev_policy="train_eer")
    assert (threshold.policy, threshold.split, threshold.requested) == ("train_eer", "train", "dev_eer")
    assert "no_dev_policy train_eer" in threshold.note
    with pytest.raises(ValueError, match="no dev split"):
        metrics.select_threshold(frame, "dev_eer", fixed=0.5, no_dev_policy=None)


def test_oracle_and_fixed_thresholds_are_labelled():
    frame = split_table()
    oracle = metrics.select_threshold(frame, "test_eer", fixed=0.5, no_dev_policy=None)
    assert oracle.oracle and oracle.split == "test" and "oracle" in oracle.note
    fixed = metrics.select_threshold(frame, "fixed", fixed=0.42, no_dev_policy=None)
    assert (fixed.value, fixed.split, fixed.oracle) == (0.42, None, False)


def test_evaluate_rows_carries_threshold_and_counts():
    frame = split_table()
    threshold = metrics.select_threshold(frame, "fixed", fixed=0.5, no_dev_policy=None)
    result = metrics.evaluate_rows(frame[frame["split"] == "test"], threshold)
    assert result["threshold"]["policy"] == "fixed" and result["threshold"]["value"] == 0.5
    assert result["n_live"] == 30 and result["n_per_pai"] == {"print": 20, "replay": 20}
    assert {"eer", "auc", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "tpr_at_fpr_1e-4"} <= set(result)


def test_auc_per_pai_is_live_against_each_species_alone():
    """An unseen species the model scores as live shows in its own AUC, with an interval."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    rows = [("test", "live", s) for s in rng.uniform(0.4, 1.0, 40)]
    rows += [("test", "print", s) for s in rng.uniform(0.0, 0.5, 30)]
    rows += [("test", "mask_3d", s) for s in rng.uniform(0.5, 1.0, 20)]
    frame = table(rows)
    threshold = metrics.Threshold(0.5, "fixed", None, "fixed", False, None)
    result = metrics.evaluate_rows(frame, threshold, bootstrap(200))
    for species in ("print", "mask_3d"):
        part = frame[frame["is_live"] | (frame["pai"] == species)]
        assert result["auc_per_pai"][species] == pytest.approx(roc_auc_score(part["is_live"], part["score"]))
        low, high = result["ci"]["auc_per_pai"][species]
        assert low <= result["auc_per_pai"][species] <= high
    assert result["auc_per_pai"]["print"] > 0.95 > 0.6 > result["auc_per_pai"]["mask_3d"]


def test_aggregate_uses_sample_std():
    summary = metrics.aggregate([0.01, 0.02, 0.03, 0.04])
    assert summary["mean"] == pytest.approx(0.025)
    assert summary["std"] == pytest.approx(0.012909944)  # ddof=1; population std is 0.01118
    assert metrics.aggregate([0.5]) == {"mean": 0.5, "std": None, "n": 1}
    assert metrics.aggregate([]) == {"mean": None, "std": None, "n": 0}


def test_eer_threshold_of_separated_classes_lies_between_them():
    is_live = np.array([True, True, False, False])
    value, threshold = metrics.eer(is_live, np.array([0.99, 0.98, 0.2, 0.1]))
    assert value == 0.0 and threshold == pytest.approx(0.59)


def test_weighted_metrics_equal_metrics_of_repeated_rows():
    """A row weight of k is the row drawn k times: every metric agrees with the repeated table."""
    rng = np.random.default_rng(6)
    frame = split_table(6, splits=("test",))
    frame["score"] = np.round(frame["score"], 1)  # ties between and within classes
    counts = rng.integers(0, 4, len(frame))
    counts[frame.index[frame["pai"] == "print"][0]] += 1  # every class keeps a member
    counts[frame.index[frame["is_live"]][0]] += 1
    counts[frame.index[frame["pai"] == "replay"][0]] += 1
    weighted = metrics.replicate_metrics(frame, 0.5, counts[None].astype(float))
    repeated = frame.loc[frame.index.repeat(counts)]
    expected = metrics.replicate_metrics(repeated, 0.5, np.ones((1, len(repeated))))
    for key, value in expected.items():
        if isinstance(value, dict):
            for pai, rate in value.items():
                assert weighted[key][pai][0] == pytest.approx(rate[0])
        else:
            assert weighted[key][0] == pytest.approx(value[0]), key


def test_auc_with_weights_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    is_live, scores = random_scores(7, 40, 60)
    scores = np.round(scores, 2)
    weights = np.random.default_rng(7).integers(1, 5, len(scores)).astype(float)
    roc = metrics.WeightedRoc.build(is_live, scores, weights[None])
    assert roc.auc()[0] == pytest.approx(roc_auc_score(is_live, scores, sample_weight=weights))


def bootstrap(resamples=200, seed=0):
    return metrics.Bootstrap(resamples=resamples, seed=seed, confidence=0.95)


def test_bootstrap_resamples_videos_within_each_pai_label():
    frame = split_table(8, splits=("test",))
    weights = bootstrap().weights(frame["video_id"].to_numpy(), frame["pai"].to_numpy())
    assert weights.shape == (200, len(frame))
    for pai, rows in frame.groupby("pai").groups.items():
        assert (weights[:, frame.index.get_indexer(rows)].sum(axis=1) == len(rows)).all(), pai
    again = bootstrap().weights(frame["video_id"].to_numpy(), frame["pai"].to_numpy())
    assert (weights == again).all()
    assert not (weights == bootstrap(seed=1).weights(frame["video_id"].to_numpy(),
                                                     frame["pai"].to_numpy())).all()


def test_frames_of_a_video_share_its_count():
    videos = np.array(["a", "a", "b", "b", "b", "c"])
    pai = np.array(["live", "live", "print", "print", "print", "live"])
    weights = bootstrap(50).weights(videos, pai)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 2] == weights[:, 4]).all()
    assert (weights[:, 2] == 1).all()  # the only print video is drawn once in each resample
    assert set(np.unique(weights[:, 0] + weights[:, 5])) == {2}


def test_confidence_intervals_bracket_the_estimate_and_narrow_with_more_videos():
    widths = []
    for n in (30, 480):
        rng = np.random.default_rng(9)
        rows = [("test", "live", s) for s in rng.beta(4, 2, n)]
        rows += [("test", "print", s) for s in rng.beta(2, 4, n)]
        frame = table(rows)
        threshold = metrics.Threshold(0.5, "fixed", None, "fixed", False, None)
        result = metrics.evaluate_rows(frame, threshold, bootstrap(400))
        for key in ("acer", "bpcer", "apcer_pooled", "eer", "auc"):
            low, high = result["ci"][key]
            assert low <= result[key] <= high, key
        assert result["ci"]["apcer_per_pai"]["print"] == result["ci"]["apcer"]
        widths.append(result["ci"]["auc"][1] - result["ci"]["auc"][0])
    assert widths[1] < widths[0] / 2  # 16x the videos: about a quarter of the width


def test_frame_level_rows_are_counted_per_video_too():
    frame = split_table(10, splits=("test",))
    frames = pd.concat([frame, frame.assign(score=frame["score"] * 0.9)], ignore_index=True)
    threshold = metrics.Threshold(0.5, "fixed", None, "fixed", False, None)
    result = metrics.evaluate_rows(frames, threshold, bootstrap(50))
    assert (result["n_live"], result["n_videos_live"]) == (60, 30)
    assert result["n_videos_attack"] == 40 and "ci" in result


def test_acer_interval_covers_the_true_acer_about_as_often_as_it_claims():
    """Beta(4, 2) live and Beta(2, 4) attack scores, threshold 0.5: the true APCER and BPCER are
    both I_0.5(4, 2) = 3/16, so ACER = 0.1875. Over 200 test splits of 40 + 40 videos its 95 %
    interval must cover it about 95 % of the time (the percentile bootstrap of a proportion
    undercovers a little at this size)."""
    true_acer = 3 / 16
    threshold = metrics.Threshold(0.5, "fixed", None, "fixed", False, None)
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        rows = [("test", "live", s) for s in rng.beta(4, 2, 40)]
        rows += [("test", "print", s) for s in rng.beta(2, 4, 40)]
        low, high = metrics.evaluate_rows(table(rows), threshold, bootstrap(300, seed=trial))["ci"]["acer"]
        covered += low <= true_acer <= high
    assert 0.88 <= covered / 200 <= 0.99
