"""Results over several seeds: each seed its own data and initialisation, summarised with a t-interval."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lab_utils.evaluation.metrics import check_unit_interval


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves by dotted path ('recall.DF.value'); None counts as NaN, strings are skipped."""
    out: dict[str, float] = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        elif value is None:
            out[path] = math.nan
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


def summarize_seeds(results: Sequence[Mapping[str, Any] | Any], *, ci: float = 0.95,
                    skip: tuple[str, ...] = ("settings",)) -> dict[str, dict[str, float]]:
    """Mean, sample std (ddof=1) and a Student-t interval (n-1 dof) of every numeric field across seeds.

    Seeds, not bootstrap resamples, capture training noise. Accepts
    dicts (e.g. ``DetectorEvaluation.to_dict()``, nested is fine) or objects with ``to_dict()``; top-level
    keys in ``skip`` (run settings such as the seed itself) are left out. Keys are dotted paths.
    """
    check_unit_interval("ci", ci, open_=True)
    if len(results) == 0:
        raise ValueError("summarize_seeds needs at least one result (one per seed); got none.")
    dicts = [r.to_dict() if hasattr(r, "to_dict") else r for r in results]
    flat = [_flatten({k: v for k, v in d.items() if k not in skip}) for d in dicts]
    keys = list(flat[0])
    for i, f in enumerate(flat[1:], start=1):
        if set(f) != set(keys):
            diff = sorted(set(f) ^ set(keys))[:5]
            raise ValueError(f"Result {i} has different fields from result 0 (e.g. {diff}); summarize runs of "
                             "the same evaluation only.")
    n = len(flat)
    if n < 2:
        warnings.warn("One seed only: std and confidence interval are NaN; run more seeds.", RuntimeWarning,
                      stacklevel=2)
        t = math.nan
    else:
        from scipy.stats import t as student_t  # imported here: only seed summaries need scipy

        t = float(student_t.ppf((1 + ci) / 2, df=n - 1))
    out = {}
    for key in keys:
        v = np.array([f[key] for f in flat])
        mean = float(v.mean())
        std = float(v.std(ddof=1)) if n > 1 else math.nan
        half = t * std / math.sqrt(n)
        out[key] = {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n}
    return out
