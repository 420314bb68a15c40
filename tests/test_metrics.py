"""Fairness metrics on hand-made predictions whose answers are known exactly."""

import json
import math
import warnings

import numpy as np
import pytest

from lab_utils import GROUPS
from lab_utils.evaluation.metrics import evaluate_detector
from lab_utils.evaluation.results import DetectorEvaluation
from lab_utils.evaluation.seeds import summarize_seeds
from lab_utils.evaluation.threshold_free import matched_fpr_target, per_group_auc, rank_auc, recall_at_fpr

HI, LO = 0.9, 0.1
# Four faces per group with recalls LF 1.0, LM 0.5, DF 0.75, DM 0.25 at threshold 0.5, then 4 non-faces, 1 flagged.
FACE_SCORES = {"LF": [HI, HI, HI, HI], "LM": [HI, HI, LO, LO], "DF": [HI, HI, HI, LO], "DM": [HI, LO, LO, LO]}
NONFACE_SCORES = [LO, LO, LO, HI]


def known_case(repeat: int = 1, drop: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs, labels, groups = [], [], []
    for code, name in enumerate(GROUPS):
        if name not in drop:
            probs += FACE_SCORES[name] * repeat
            labels += [1] * 4 * repeat
            groups += [code] * 4 * repeat
    probs += NONFACE_SCORES * repeat
    labels += [0] * 4 * repeat
    groups += [-1] * 4 * repeat
    return np.array(probs), np.array(labels), np.array(groups, dtype=np.int8)


def noisy_case(n_per_group: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.r_[np.repeat(np.arange(4), n_per_group), np.full(4 * n_per_group, -1)].astype(np.int8)
    labels = (groups >= 0).astype(float)
    probs = np.where(labels == 1, rng.beta(4, 2, len(groups)), rng.beta(1, 6, len(groups)))
    probs[groups == 2] *= 0.8
    return probs, labels, groups


def all_estimates(r: DetectorEvaluation) -> list:
    return [*r.recall.values(), *r.mean_probability.values(), r.fpr, r.accuracy, r.lighter_darker_gap,
            r.expected_accuracy]


def test_known_recalls_gaps_and_paper_metrics():
    r = evaluate_detector(*known_case(), n_boot=200)
    assert {g: e.value for g, e in r.recall.items()} == {"LF": 1.0, "LM": 0.5, "DF": 0.75, "DM": 0.25}
    assert r.mean_probability["LF"].value == pytest.approx(0.9)
    assert r.mean_probability["DM"].value == pytest.approx((0.9 + 3 * 0.1) / 4)
    assert r.fpr.value == 0.25
    assert r.accuracy.value == pytest.approx((4 + 2 + 3 + 1 + 3) / 20)
    assert r.recall_gap.value == pytest.approx(0.75)
    assert (r.best_group, r.worst_group) == ("LF", "DM")
    assert r.equal_opportunity_difference == r.recall_gap
    assert r.lighter_darker_gap.value == pytest.approx((1.0 + 0.5) / 2 - (0.75 + 0.25) / 2)
    assert r.expected_accuracy.value == pytest.approx(0.625)
    # Population variance (ddof=0): squared deviations 0.375^2, 0.125^2, 0.125^2, 0.375^2 over 4 groups.
    assert r.var_accuracy_ddof0.value == pytest.approx(0.078125)
    assert r.var_accuracy_ddof0.value != pytest.approx(np.var([1, 0.5, 0.75, 0.25], ddof=1))
    assert r.var_accuracy_pct2_ddof0.value == pytest.approx(781.25)


def test_score_equal_to_threshold_counts_as_face():
    with pytest.warns(RuntimeWarning, match="LM"):
        r = evaluate_detector([0.5, 0.49, 0.2], [1, 1, 0], [0, 0, -1], n_boot=10, threshold=0.5)
    assert r.recall["LF"].value == 0.5


def test_intervals_contain_estimates_and_shrink_with_n():
    small = evaluate_detector(*noisy_case(100), n_boot=500)
    large = evaluate_detector(*noisy_case(1000), n_boot=500)
    for r in (small, large):
        for e in all_estimates(r):
            assert e.low <= e.value <= e.high
        assert r.recall_gap.low <= r.recall_gap.high
    for g in GROUPS:
        assert large.recall[g].high - large.recall[g].low < small.recall[g].high - small.recall[g].low
    assert large.recall_gap.high - large.recall_gap.low < small.recall_gap.high - small.recall_gap.low


def test_intervals_are_deterministic_by_seed():
    data = noisy_case(50)
    a, b = evaluate_detector(*data, n_boot=200, seed=3), evaluate_detector(*data, n_boot=200, seed=3)
    c = evaluate_detector(*data, n_boot=200, seed=4)
    assert a == b
    assert a.recall_gap != c.recall_gap


def test_bootstrap_resamples_within_groups_and_proportions_keep_their_uncertainty():
    # Perfect groups stay perfect in every resample (sizes fixed per group), so the gap interval is exactly 0;
    # the proportions themselves (10 of 10 detected, 0 of 10 false positives) get Wilson intervals of real width.
    probs = np.r_[np.full(40, 0.9), np.full(10, 0.1)]
    groups = np.r_[np.repeat(np.arange(4), 10), np.full(10, -1)]
    r = evaluate_detector(probs, (groups >= 0).astype(int), groups, n_boot=300)
    assert (r.recall_gap.value, r.recall_gap.low, r.recall_gap.high) == (0.0, 0.0, 0.0)
    assert r.recall_gap.method == "bootstrap-percentile"
    assert r.fpr.low == 0.0 and r.fpr.high == pytest.approx(0.2775, abs=1e-4) and r.fpr.method == "wilson"
    assert r.recall["LF"].low == pytest.approx(0.7225, abs=1e-4) and r.recall["LF"].high == 1.0
    assert r.accuracy.low == pytest.approx(0.9287, abs=1e-4) and r.accuracy.high == 1.0
    assert r.recall["LF"].n == 10 and r.fpr.n == 10 and r.accuracy.n == 50


def test_empty_group_is_nan_with_a_warning_naming_it():
    with pytest.warns(RuntimeWarning, match="DM"):
        r = evaluate_detector(*known_case(drop=("DM",)), n_boot=50)
    assert math.isnan(r.recall["DM"].value) and math.isnan(r.mean_probability["DM"].low)
    assert r.recall["DM"].n == 0
    assert r.recall_gap.value == pytest.approx(0.5)  # over LF, LM, DF
    assert r.lighter_darker_gap.value == pytest.approx(0.75 - 0.75)
    json.dumps(r.to_dict(), allow_nan=False)
    with pytest.warns(RuntimeWarning, match="DF"):
        assert math.isnan(per_group_auc(*known_case(drop=("DF",)))["DF"])
    with pytest.warns(RuntimeWarning, match="LF"):
        assert math.isnan(recall_at_fpr(*known_case(drop=("LF",))).recall["LF"])


def test_to_dict_round_trips_through_json_and_table_reads_well():
    r = evaluate_detector(*noisy_case(30), n_boot=50)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert DetectorEvaluation.from_dict(d) == r
    assert d["equal_opportunity_difference"] == d["recall_gap"]
    assert d["var_accuracy_pct2_ddof0"]["value"] == pytest.approx(1e4 * d["var_accuracy_ddof0"]["value"])
    table = r.table()
    for text in (*GROUPS, "ddof=0", "equal-opportunity", "false-positive rate", "95% CI"):
        assert text in table


@pytest.mark.parametrize(
    "probs, labels, groups, match",
    [
        ([0.5, 0.5], [1, 0, 1], [0, -1, 0], "same length"),
        ([0.5, 1.2], [1, 0], [0, -1], r"\[0, 1\]"),
        ([0.5, np.nan], [1, 0], [0, -1], "NaN"),
        ([0.5, 0.5], [1, 0], [4, -1], "Unknown group codes"),
        ([0.5, 0.5], [1, 2], [0, -1], "labels"),
        ([[0.5, 0.5], [0.5, 0.5]], [1, 0], [0, -1], "shape"),
        ([], [], [], "empty"),
    ],
)
def test_invalid_inputs_raise_clear_errors(probs, labels, groups, match):
    for fn in (evaluate_detector, recall_at_fpr, per_group_auc):
        with pytest.raises(ValueError, match=match):
            fn(probs, labels, groups)


def test_invalid_settings_raise():
    data = known_case()
    with pytest.raises(ValueError, match="threshold"):
        evaluate_detector(*data, threshold=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        evaluate_detector(*data, n_boot=1)
    with pytest.raises(ValueError, match="ci"):
        evaluate_detector(*data, ci=1.0)
    with pytest.raises(ValueError, match="kl_eps"):
        evaluate_detector(*data, kl_eps=0.0)
    with pytest.raises(ValueError, match="non-faces"):
        recall_at_fpr([0.9], [1], [0])


def test_model_predict_column_is_accepted():
    probs, labels, groups = known_case()
    a = evaluate_detector(probs[:, None], labels, groups, n_boot=20)
    assert a == evaluate_detector(probs, labels, groups, n_boot=20)


def test_recall_at_fpr_picks_the_threshold_above_the_allowed_false_positives():
    nonfaces = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    faces = {0: [0.8, 0.76, 0.7, 0.5], 1: [0.75, 0.9], 2: [0.99], 3: [0.1]}
    probs = nonfaces + [s for g in faces for s in faces[g]]
    groups = [-1] * 10 + [g for g in faces for _ in faces[g]]
    labels = [0] * 10 + [1] * (len(probs) - 10)
    r = recall_at_fpr(probs, labels, groups, fpr=0.2)  # 2 of 10 non-faces may pass: 0.95 and 0.85
    assert 0.75 < r.threshold < 0.76
    assert r.achieved_fpr == 0.2
    assert r.recall == {"LF": 0.5, "LM": 0.5, "DF": 1.0, "DM": 0.0}  # 0.75 ties a non-face and stays out
    assert r.recall_gap == 1.0 and r.lighter_darker_gap == pytest.approx(0.5 - 0.5)
    assert recall_at_fpr(probs, labels, groups, fpr=0.0).achieved_fpr == 0.0
    everything = recall_at_fpr(probs, labels, groups, fpr=1.0)
    assert everything.achieved_fpr == 1.0 and set(everything.recall.values()) == {1.0}


def test_recall_at_fpr_with_tied_nonfaces_stays_below_target():
    with pytest.warns(RuntimeWarning, match="DM"):
        r = recall_at_fpr([0.5] * 10 + [0.6], [0] * 10 + [1], [-1] * 10 + [0], fpr=0.2)
    assert r.achieved_fpr == 0.0 and r.recall["LF"] == 1.0


def test_auc_perfect_random_inverted_and_ties():
    groups = np.r_[np.repeat(np.arange(4), 50), np.full(200, -1)]
    labels = (groups >= 0).astype(int)
    perfect = per_group_auc(np.where(labels == 1, 0.9, 0.1), labels, groups)
    assert set(perfect.values()) == {1.0}
    assert set(per_group_auc(np.where(labels == 1, 0.1, 0.9), labels, groups).values()) == {0.0}
    assert set(per_group_auc(np.full(400, 0.5), labels, groups).values()) == {0.5}
    rng = np.random.default_rng(0)
    big = np.r_[np.repeat(np.arange(4), 2000), np.full(8000, -1)]
    random_auc = per_group_auc(rng.random(16000), (big >= 0).astype(int), big)
    assert all(abs(a - 0.5) < 0.05 for a in random_auc.values())
    # One face at 0.5 against non-faces 0.4, 0.5, 0.6: beats one, ties one -> (1 + 0.5) / 3.
    with pytest.warns(RuntimeWarning, match="DM"):
        tied = per_group_auc([0.5, 0.4, 0.5, 0.6], [1, 0, 0, 0], [0, -1, -1, -1])
    assert tied["LF"] == pytest.approx(0.5)


def test_kl_zero_for_identical_and_positive_otherwise_in_the_stated_direction():
    same = evaluate_detector([0.2, 0.7, 0.2, 0.7, 0.1], [1, 1, 1, 1, 0], [0, 1, 2, 3, -1], n_boot=10)
    assert same.score_kl_lighter_darker == pytest.approx(0.0, abs=1e-12)
    # Lighter faces all in the top bin; darker split half/half. KL(lighter || darker) ~= log 2, whereas
    # KL(darker || lighter) would be ~= 0.5 * log(0.5 / eps), i.e. huge.
    r = evaluate_detector([0.9, 0.9, 0.1, 0.9, 0.1], [1, 1, 1, 1, 0], [0, 1, 2, 3, -1], n_boot=10, kl_bins=2,
                          kl_eps=1e-9)
    assert r.score_kl_lighter_darker == pytest.approx(math.log(2), rel=1e-6)


def test_summarize_seeds_on_known_numbers():
    runs = [{"a": 1.0, "b": {"c": 2}, "name": "x", "settings": {"seed": i}} for i in range(3)]
    runs[1]["a"], runs[2]["a"] = 3.0, 5.0
    s = summarize_seeds(runs)
    assert set(s) == {"a", "b.c"}  # strings and settings are left out
    assert s["a"]["mean"] == 3.0 and s["a"]["std"] == pytest.approx(2.0) and s["a"]["n"] == 3
    half = 4.302653 * 2.0 / math.sqrt(3)  # t(0.975, 2 dof) from tables
    assert s["a"]["ci_low"] == pytest.approx(3.0 - half, rel=1e-5)
    assert s["a"]["ci_high"] == pytest.approx(3.0 + half, rel=1e-5)
    assert s["b.c"]["std"] == 0.0 and s["b.c"]["ci_low"] == s["b.c"]["ci_high"] == 2.0


def test_summarize_seeds_accepts_evaluations_and_rejects_bad_input():
    evals = [evaluate_detector(*noisy_case(20, seed), n_boot=20) for seed in range(3)]
    s = summarize_seeds(evals)
    assert s["recall_gap.value"]["mean"] == pytest.approx(np.mean([e.recall_gap.value for e in evals]))
    with pytest.raises(ValueError, match="at least one"):
        summarize_seeds([])
    with pytest.raises(ValueError, match="different fields"):
        summarize_seeds([{"a": 1.0}, {"b": 1.0}])
    with pytest.warns(RuntimeWarning, match="One seed"):
        assert math.isnan(summarize_seeds([{"a": 1.0}])["a"]["std"])
    assert math.isnan(summarize_seeds([{"a": None}, {"a": 1.0}])["a"]["mean"])


def test_rank_auc_counts_ties_half_and_needs_both_sides():
    assert rank_auc([0.9, 0.5], [0.1, 0.5]) == pytest.approx((1.0 + 0.75) / 2)
    assert rank_auc([0.1], [0.9]) == 0.0
    with pytest.raises(ValueError, match="both sides"):
        rank_auc([], [0.5])


def test_matched_fpr_target_needs_500_nonfaces_for_one_percent():
    assert matched_fpr_target(500) == 0.01 and matched_fpr_target(499) == 0.05


def test_a_group_too_small_to_conclude_anything_is_warned_about():
    groups = np.r_[np.arange(4), np.full(50, 0), np.full(50, 1), np.full(50, 2), np.full(50, 3), np.full(10, -1)]
    labels = (groups >= 0).astype(np.float32)
    probs = np.where(labels == 1, 0.9, 0.1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_detector(probs, labels, groups, n_boot=50)  # 51 faces per group: no warning
    one_each = np.r_[np.arange(4), np.full(4, -1)]
    with pytest.warns(RuntimeWarning, match=r"group\(s\) LF 1, LM 1, DF 1, DM 1 .*no gap between groups can be"):
        result = evaluate_detector(np.r_[np.full(4, 0.9), np.full(4, 0.1)], (one_each >= 0).astype(float),
                                   one_each, n_boot=50)
    # one face detected out of one: the interval says almost nothing, which is what the warning is about
    assert result.recall["LF"].high == 1.0 and result.recall["LF"].low < 0.25


def test_every_result_type_round_trips_through_json():
    """results.py promises it: a results file can be read back into the values that wrote it."""
    from lab_utils.evaluation.probes import ProbeScore
    from lab_utils.evaluation.results import Estimate, RecallAtFPR

    with pytest.warns(RuntimeWarning, match="LF"):
        matched = recall_at_fpr(*known_case(drop=("LF",)))  # an empty group: NaN recall, None in JSON
    evaluation = evaluate_detector(*noisy_case(30), n_boot=50)
    values = [matched, recall_at_fpr(*noisy_case(30), logits=False), evaluation, evaluation.recall["LF"],
              Estimate(0.5, 0.4, 0.6, 10, "wilson"), ProbeScore(0.9, 0.8, 5, 100)]
    for value in values:
        text = json.dumps(value.to_dict(), allow_nan=False)
        back = type(value).from_dict(json.loads(text))
        assert json.dumps(back.to_dict(), allow_nan=False) == text, type(value).__name__
    back = RecallAtFPR.from_dict(json.loads(json.dumps(matched.to_dict(), allow_nan=False)))
    assert math.isnan(back.recall["LF"]) and back.n == matched.n and back.scores == "probability"
