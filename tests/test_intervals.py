"""Intervals of proportions are right at 0 and 1, agree with scipy, and refuse counts that are no counts."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from lab_utils.evaluation.intervals import count_from_rate, wilson_interval
from lab_utils.evaluation.metrics import evaluate_detector
from lab_utils.evaluation.results import DetectorEvaluation, Estimate


@pytest.mark.parametrize("k, n", [(250, 250), (0, 250), (5, 5), (0, 1), (1, 1), (17, 40), (999, 1000), (3, 1000)])
@pytest.mark.parametrize("ci", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy_and_never_has_zero_width(k, n, ci):
    expected = binomtest(k, n).proportion_ci(confidence_level=ci, method="wilson")
    low, high = wilson_interval(k, n, ci)
    assert low == pytest.approx(expected.low, abs=1e-12) and high == pytest.approx(expected.high, abs=1e-12)
    assert high - low > 0 and 0.0 <= low <= k / n <= high <= 1.0


def test_the_issues_examples():
    assert [round(100 * x, 1) for x in wilson_interval(250, 250)] == [98.5, 100.0]
    assert [round(100 * x, 1) for x in wilson_interval(5, 5)] == [56.6, 100.0]


def test_n_zero_is_nan_and_numpy_counts_are_counts():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    assert wilson_interval(np.int64(3), np.int32(10)) == wilson_interval(3, 10)
    assert wilson_interval(3.0, 10.0) == wilson_interval(3, 10)  # a whole float is a count


@pytest.mark.parametrize("k, n, match", [
    (-1, 10, "successes must be >= 0"), (11, 10, "cannot exceed n"), (2.5, 10, "whole number"),
    (3, -2, "n must be >= 0"), (math.nan, 10, "whole number"), (True, 10, "bool"), ("3", 10, "whole number"),
    (3, 10.5, "whole number"),
])
def test_bad_counts_are_refused_by_name(k, n, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(k, n)


@pytest.mark.parametrize("ci", [0.0, 1.0, -0.5, math.nan, "0.95"])
def test_bad_level_is_refused(ci):
    with pytest.raises(ValueError, match="ci must be"):
        wilson_interval(3, 10, ci)


def test_count_from_rate_recovers_counts_and_refuses_non_counts():
    assert count_from_rate(0.996, 250) == 249 and count_from_rate(1.0, 250) == 250 and count_from_rate(0.0, 7) == 0
    assert count_from_rate(None, 0) == 0
    for rate in (0.5001, 1.2, -0.1):
        with pytest.raises(ValueError, match="not a whole count"):
            count_from_rate(rate, 250)


def test_a_perfect_group_of_250_prints_a_real_interval():
    """Lab 1 and Lab 4 printed `LF | 250 | 100.0% [100.0, 100.0]`."""
    groups = np.r_[np.repeat(np.arange(4), 250), np.full(1000, -1)]
    probs = np.r_[np.full(500, 0.99), np.linspace(0.2, 0.9, 500), np.full(1000, 0.01)]
    r = evaluate_detector(probs, (groups >= 0).astype(int), groups, n_boot=200)
    assert r.recall["LF"].value == 1.0 and (round(100 * r.recall["LF"].low, 1), r.recall["LF"].high) == (98.5, 1.0)
    table = r.table()
    assert "100.0% [98.5, 100.0]" in table and "[100.0, 100.0]" not in table
    assert "Wilson" in table and "bootstrap" in table  # each row says how its interval was made
    proportions = [*r.recall.values(), r.fpr, r.accuracy]
    assert all(e.method == "wilson" and e.high > e.low for e in proportions)
    assert r.lighter_darker_gap.method == r.expected_accuracy.method == "bootstrap-percentile"
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["recall"]["LF"]["method"] == "wilson" and d["lighter_darker_gap"]["method"] == "bootstrap-percentile"
    assert DetectorEvaluation.from_dict(d) == r


def test_estimates_without_a_method_were_bootstrapped_and_unknown_methods_are_refused():
    assert Estimate.from_dict({"value": 0.5, "low": 0.4, "high": 0.6, "n": 10}).method == "bootstrap-percentile"
    with pytest.raises(ValueError, match="Unknown interval method"):
        Estimate(0.5, 0.4, 0.6, 10, "jackknife")
