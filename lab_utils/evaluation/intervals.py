"""Confidence intervals, named by method so every table can say which one each row uses.

A proportion (a group's recall, the FPR, accuracy) gets a Wilson score interval from its counts: a percentile
bootstrap of 250 detected faces out of 250 resamples 250 ones every time and reports [100, 100], while the data
are consistent with a true recall of 98.5%. Differences and spreads (gaps, E[A], Var[A]) keep the stratified
bootstrap of ``metrics.evaluate_detector``, which has no closed form.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from lab_utils.core.validation import number

WILSON = "wilson"
BOOTSTRAP = "bootstrap-percentile"
STUDENT_T = "student-t-over-seeds"
METHODS: dict[str, str] = {
    WILSON: "Wilson score interval from the counts (right at 0% and 100%)",
    BOOTSTRAP: "percentile interval of a bootstrap stratified by group (each group's faces resampled "
               "separately, sizes fixed)",
    STUDENT_T: "Student-t interval of the mean over seeds (n - 1 degrees of freedom), each seed its own data",
}
"""Every interval method a result file may name, with the words its tables use."""


def methods_record(*methods: str) -> dict[str, str]:
    """What a results file writes under ``"intervals"``: each method its numbers use, in words; ``{}`` says it
    holds no intervals at all."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown interval method(s) {unknown}; use those of intervals.METHODS: {sorted(METHODS)}.")
    return {m: METHODS[m] for m in methods}


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number of images, got the bool {value!r}.")
    if isinstance(value, Real) and not isinstance(value, Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name} must be a whole number of images (a count, not a fraction), got {value!r}.")
    elif not isinstance(value, Integral):
        raise ValueError(f"{name} must be a whole number of images, got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return int(value)


def wilson_interval(successes: Any, n: Any, ci: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n`` at level ``ci``; (NaN, NaN) when n = 0.

    Never of zero width for n > 0: 250 of 250 gives [98.5%, 100%], 5 of 5 gives [56.6%, 100%]. The same
    numbers as ``scipy.stats.binomtest(k, n).proportion_ci(ci, method="wilson")``, in closed form so that
    recomputing thousands of committed intervals stays fast.
    """
    k, total = _count("successes", successes), _count("n", n)
    if k > total:
        raise ValueError(f"successes ({k}) cannot exceed n ({total}): a count of detected faces, false positives "
                         "or correct calls is at most the number of images it is counted over.")
    ci = number("ci", ci, low=0.0, high=1.0, low_open=True, high_open=True)
    if total == 0:
        return math.nan, math.nan
    from scipy.stats import norm  # scipy is a dependency; imported here to keep lab_utils' start-up light

    z = float(norm.ppf((1.0 + ci) / 2.0))
    p = k / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    if k == 0:  # exact ends: the formula gives them up to rounding
        low = 0.0
    if k == total:
        high = 1.0
    return low, high


def count_from_rate(rate: float, n: int) -> int:
    """The whole count behind a stored rate (``value * n``), for recomputing intervals from result files; refuses
    a rate that is no count of ``n`` images."""
    n = _count("n", n)
    if n == 0 or rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return 0
    k = float(rate) * n
    if not (-1e-6 <= k <= n + 1e-6) or abs(k - round(k)) > 1e-6 * max(1, n):
        raise ValueError(f"rate {rate!r} over n = {n} is {k:.6g} images, not a whole count in [0, {n}]; it is not "
                         "a proportion of these images.")
    return int(round(k))


def percentile_interval(replicates: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ``ci`` percentile interval of bootstrap replicates; NaN when every replicate is NaN."""
    replicates = np.asarray(replicates, dtype=np.float64)
    if np.isnan(replicates).all():
        return math.nan, math.nan
    low, high = np.quantile(replicates, [(1 - ci) / 2, (1 + ci) / 2])
    return float(low), float(high)
