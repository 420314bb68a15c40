"""Fairness metrics for face detectors, each with a bootstrap confidence interval.

The labs compare models that differ by a few points of recall on ~250 faces per group, so every number
comes with an interval (and, across seeds, a t-interval) to tell a real gap from evaluation noise.
Threshold-free views (recall at a matched false-positive rate, per-group AUC) sit next to the thresholded
ones because a model can "close the gap" simply by calling more things faces.

We use plain numpy rather than fairlearn's ``MetricFrame``: our needs are a by-group mean and a few gaps,
while fairlearn (0.15, a 141 kB wheel) pulls in pandas, scikit-learn and narwhals, which the labs otherwise
avoid, and its bootstrap resamples the pooled data rather than within each group as the gaps need.

Conventions: ``groups`` holds int codes 0..3 indexing ``lab_utils.GROUPS`` for faces and -1 for non-faces
(faces with -1 count towards overall accuracy only); an image is called a face when ``prob >= threshold``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lab_utils import GROUP_NAMES, GROUPS

LIGHTER: tuple[str, ...] = ("LF", "LM")
DARKER: tuple[str, ...] = ("DF", "DM")
PCT2 = 1e4
"""Factor from a variance of fractions to one of percentages (the paper's Var[A] scale)."""


def _json_float(x: float) -> float | None:
    """JSON has no NaN; None keeps ``json.dumps(..., allow_nan=False)`` working."""
    return None if x is None or math.isnan(x) else float(x)


def _from_json(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its bootstrap percentile interval [low, high], and how many samples it rests on."""

    value: float
    low: float
    high: float
    n: int

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.n)

    def to_dict(self) -> dict[str, float | int | None]:
        return {"value": _json_float(self.value), "low": _json_float(self.low),
                "high": _json_float(self.high), "n": self.n}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Estimate":
        return cls(_from_json(d["value"]), _from_json(d["low"]), _from_json(d["high"]), int(d["n"]))


@dataclass(frozen=True)
class DetectorEvaluation:
    """Everything ``evaluate_detector`` measures; intervals are bootstrap percentiles at level ``ci``.

    ``recall`` and ``mean_probability`` are per group (keys from ``GROUPS``). Gaps, E[A] and Var[A] use the
    groups that have faces. ``var_accuracy_ddof0`` is the population variance (ddof=0: the four groups are
    all the groups, not a sample) of per-group accuracy as fractions; ``var_accuracy_pct2_ddof0`` is the same
    in squared percentage points, the scale of the paper's Var[A]. ``score_kl_lighter_darker`` is
    KL(lighter || darker) = sum p_L log(p_L / p_D) between smoothed histograms of face scores.
    """

    threshold: float
    ci: float
    n_boot: int
    seed: int
    recall: dict[str, Estimate]
    mean_probability: dict[str, Estimate]
    fpr: Estimate
    accuracy: Estimate
    recall_gap: Estimate
    best_group: str | None
    worst_group: str | None
    lighter_darker_gap: Estimate
    expected_accuracy: Estimate
    var_accuracy_ddof0: Estimate
    score_kl_lighter_darker: float
    kl_bins: int
    kl_eps: float

    @property
    def var_accuracy_pct2_ddof0(self) -> Estimate:
        return self.var_accuracy_ddof0.scaled(PCT2)

    @property
    def equal_opportunity_difference(self) -> Estimate:
        """Largest TPR difference between groups; on faces TPR is recall, so this *is* ``recall_gap``."""
        return self.recall_gap

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes None); ``from_dict`` reads it back."""
        return {
            "settings": {"threshold": self.threshold, "ci": self.ci, "n_boot": self.n_boot, "seed": self.seed,
                         "kl_bins": self.kl_bins, "kl_eps": self.kl_eps},
            "recall": {g: e.to_dict() for g, e in self.recall.items()},
            "mean_probability": {g: e.to_dict() for g, e in self.mean_probability.items()},
            "fpr": self.fpr.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "recall_gap": self.recall_gap.to_dict(),
            "best_group": self.best_group,
            "worst_group": self.worst_group,
            "lighter_darker_gap": self.lighter_darker_gap.to_dict(),
            "expected_accuracy": self.expected_accuracy.to_dict(),
            "var_accuracy_ddof0": self.var_accuracy_ddof0.to_dict(),
            "var_accuracy_pct2_ddof0": self.var_accuracy_pct2_ddof0.to_dict(),
            "equal_opportunity_difference": self.equal_opportunity_difference.to_dict(),
            "score_kl_lighter_darker": _json_float(self.score_kl_lighter_darker),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DetectorEvaluation":
        """Inverse of ``to_dict``, so plots and tables can be redrawn from saved JSON."""
        s = d["settings"]
        return cls(
            threshold=float(s["threshold"]), ci=float(s["ci"]), n_boot=int(s["n_boot"]), seed=int(s["seed"]),
            recall={g: Estimate.from_dict(e) for g, e in d["recall"].items()},
            mean_probability={g: Estimate.from_dict(e) for g, e in d["mean_probability"].items()},
            fpr=Estimate.from_dict(d["fpr"]), accuracy=Estimate.from_dict(d["accuracy"]),
            recall_gap=Estimate.from_dict(d["recall_gap"]),
            best_group=d["best_group"], worst_group=d["worst_group"],
            lighter_darker_gap=Estimate.from_dict(d["lighter_darker_gap"]),
            expected_accuracy=Estimate.from_dict(d["expected_accuracy"]),
            var_accuracy_ddof0=Estimate.from_dict(d["var_accuracy_ddof0"]),
            score_kl_lighter_darker=_from_json(d["score_kl_lighter_darker"]),
            kl_bins=int(s["kl_bins"]), kl_eps=float(s["kl_eps"]),
        )

    def table(self) -> str:
        """Markdown tables (readable as plain text) for notebooks and benchmark reports."""
        level = f"{self.ci:.0%} CI"

        def pct(e: Estimate) -> str:
            return f"{100 * e.value:.1f}% [{100 * e.low:.1f}, {100 * e.high:.1f}]"

        def pts(e: Estimate) -> str:
            return f"{100 * e.value:+.1f} pts [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"

        lines = [f"Threshold {self.threshold:g} (face if P(face) >= threshold), {self.n_boot} bootstrap resamples.",
                 "", f"| group | faces | recall ({level}) | mean P(face) ({level}) |", "|---|---:|---:|---:|"]
        for g in GROUPS:
            r, m = self.recall[g], self.mean_probability[g]
            lines.append(f"| {g} ({GROUP_NAMES[g]}) | {r.n} | {pct(r)} | "
                         f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}] |")
        v = self.var_accuracy_pct2_ddof0
        gap_label = f"recall gap, best - worst ({self.best_group} - {self.worst_group})"
        lines += ["", f"| metric | value ({level}) |", "|---|---:|",
                  f"| false-positive rate on {self.fpr.n} non-faces | {pct(self.fpr)} |",
                  f"| accuracy on {self.accuracy.n} images | {pct(self.accuracy)} |",
                  f"| {gap_label} = equal-opportunity difference | {pts(self.recall_gap)} |",
                  f"| lighter - darker recall gap | {pts(self.lighter_darker_gap)} |",
                  f"| E[A], mean of group accuracies | {pct(self.expected_accuracy)} |",
                  f"| Var[A] across groups, ddof=0, in %^2 | {v.value:.2f} [{v.low:.2f}, {v.high:.2f}] |",
                  f"| KL(lighter \\|\\| darker) of face scores, {self.kl_bins} bins, eps {self.kl_eps:g} | "
                  f"{self.score_kl_lighter_darker:.4f} |"]
        return "\n".join(lines)


@dataclass(frozen=True)
class RecallAtFPR:
    """Per-group recall at the one threshold that holds the non-face false-positive rate at ``target_fpr``.

    ``threshold`` is the smallest with FPR <= target, i.e. just above the (k+1)-th highest non-face score for
    k = floor(target * n_nonfaces); ties can make ``achieved_fpr`` fall below the target.
    """

    target_fpr: float
    threshold: float
    achieved_fpr: float
    recall: dict[str, float]
    n: dict[str, int]
    recall_gap: float
    lighter_darker_gap: float

    def to_dict(self) -> dict[str, Any]:
        return {"target_fpr": self.target_fpr, "threshold": _json_float(self.threshold),
                "achieved_fpr": self.achieved_fpr,
                "recall": {g: _json_float(r) for g, r in self.recall.items()}, "n": dict(self.n),
                "recall_gap": _json_float(self.recall_gap),
                "lighter_darker_gap": _json_float(self.lighter_darker_gap)}


def check_predictions(probs: Any, labels: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs float64, is_face bool, group int8), or a ValueError that says what to fix.

    Shared by every metric and plot so bad input fails the same clear way everywhere; a (N, 1) array from
    ``model.predict`` is accepted as probs.
    """
    try:
        p = np.asarray(probs, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        g = np.asarray(groups, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"probs, labels and groups must be numeric arrays: {err}") from None
    if p.ndim == 2 and p.shape[1] == 1:  # model.predict() output
        p = p[:, 0]
    for name, a in (("probs", p), ("labels", y), ("groups", g)):
        if a.ndim != 1:
            raise ValueError(f"{name} must be one value per image (shape (N,)), got shape {a.shape}.")
    if not len(p) == len(y) == len(g):
        raise ValueError(f"probs, labels and groups must have the same length; got {len(p)}, {len(y)}, {len(g)}.")
    if len(p) == 0:
        raise ValueError("No images to evaluate: probs, labels and groups are empty.")
    if np.isnan(p).any():
        raise ValueError(f"probs contains {int(np.isnan(p).sum())} NaN values (first at index "
                         f"{int(np.flatnonzero(np.isnan(p))[0])}); check the model's output for divergence.")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"probs must be probabilities in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]; "
                         "if these are logits, apply keras.ops.sigmoid first.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0 (non-face) or 1 (face); found {np.setdiff1d(y, (0.0, 1.0))[:5]}.")
    bad = np.setdiff1d(g, np.arange(-1, len(GROUPS)))
    if bad.size:
        raise ValueError(f"Unknown group codes {bad[:5].tolist()}: use 0..{len(GROUPS) - 1} for {GROUPS} and -1 for "
                         "non-faces or faces of unknown group.")
    return p, y == 1.0, g.astype(np.int8)


def _check_unit_interval(name: str, value: float, *, open_: bool) -> None:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and (0.0 < value < 1.0 if open_ else 0.0 <= value <= 1.0)):
        bounds = "(0, 1)" if open_ else "[0, 1]"
        raise ValueError(f"{name} must be a number in {bounds}, got {value!r}.")


SMALL_GROUP = 30
"""Below this many faces a group's bootstrap interval is too coarse to trust (with one face it has width zero)."""


def _warn_small(sizes: dict[str, int]) -> None:
    small = {g: n for g, n in sizes.items() if 0 < n < SMALL_GROUP}
    if small:
        listed = ", ".join(f"{g} {n}" for g, n in small.items())
        warnings.warn(f"Only a few test faces in group(s) {listed} (fewer than {SMALL_GROUP}): their recall and "
                      "its interval say little, and no gap between groups can be concluded from them. Evaluate on "
                      "more faces per group.", RuntimeWarning, stacklevel=3)


def _warn_empty(empty: list[str], what: str) -> None:
    if empty:
        names = ", ".join(f"{g} ({GROUP_NAMES[g]})" for g in empty)
        warnings.warn(f"No faces in group(s) {names}, so {what} NaN there; any gaps use the other groups. "
                      "Check the test split's 'group' attribute.", RuntimeWarning, stacklevel=3)


def _interval(reps: np.ndarray, ci: float) -> tuple[float, float]:
    if np.isnan(reps).all():
        return math.nan, math.nan
    low, high = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2])
    return float(low), float(high)


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """best - worst, lighter - darker, mean and ddof-0 variance over groups (rows of a groups x resamples array).

    All-NaN rows are empty groups and are left out.
    """
    present = ~np.isnan(values[:, 0])
    v = values[present]
    codes = [g for g, keep in zip(GROUPS, present) if keep]
    lighter = [i for i, g in enumerate(codes) if g in LIGHTER]
    darker = [i for i, g in enumerate(codes) if g in DARKER]
    nan = np.full(v.shape[1:], math.nan)
    enough = len(codes) >= 2
    gap = v.max(axis=0) - v.min(axis=0) if enough else nan
    ld = v[lighter].mean(axis=0) - v[darker].mean(axis=0) if lighter and darker else nan
    mean = v.mean(axis=0) if codes else nan
    var = v.var(axis=0, ddof=0) if enough else nan
    return gap, ld, mean, var


def _kl_histograms(p: np.ndarray, q: np.ndarray, bins: int, eps: float) -> float:
    if len(p) == 0 or len(q) == 0:
        return math.nan
    hp = np.histogram(p, bins=bins, range=(0.0, 1.0))[0] / len(p)
    hq = np.histogram(q, bins=bins, range=(0.0, 1.0))[0] / len(q)
    hp, hq = (hp + eps) / (1 + bins * eps), (hq + eps) / (1 + bins * eps)
    return float(np.sum(hp * np.log(hp / hq)))


def evaluate_detector(probs: Any, labels: Any, groups: Any, *, threshold: float = 0.5, n_boot: int = 1000,
                      seed: int = 0, ci: float = 0.95, kl_bins: int = 20,
                      kl_eps: float = 1e-3) -> DetectorEvaluation:
    """Per-group recall and mean P(face), FPR, accuracy and the fairness gaps, each with a bootstrap CI.

    Resampling is stratified: each group's faces, unknown-group faces and the non-faces are resampled
    separately, with their sizes fixed, and every statistic (gaps, E[A], Var[A]) is recomputed per resample.
    For best - worst gaps near zero the resampled max - min is biased upwards, so the interval can sit above
    the point estimate; read it as an upper bound then. Lighter/darker figures average LF and LM (DF and DM)
    with equal weight, as E[A] does; the KL pools their face scores, with ``kl_eps`` added to every bin's
    probability (then renormalised) so an empty bin does not make it infinite.
    """
    p, is_face, g = check_predictions(probs, labels, groups)
    _check_unit_interval("threshold", threshold, open_=False)
    _check_unit_interval("ci", ci, open_=True)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2 (1000 is the usual), got {n_boot!r}.")
    if not isinstance(kl_bins, (int, np.integer)) or kl_bins < 1 or not kl_eps > 0:
        raise ValueError(f"kl_bins must be a positive integer and kl_eps > 0, got {kl_bins!r} and {kl_eps!r}.")

    rng = np.random.default_rng(seed)
    called_face = p >= threshold
    correct = called_face == is_face
    nan_reps = np.full(n_boot, math.nan)

    def resample(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-resample mean of 'called face', mean prob and number correct, from one draw of indices."""
        if idx.size == 0:
            return nan_reps, nan_reps, np.zeros(n_boot)
        draw = idx[rng.integers(0, idx.size, size=(n_boot, idx.size))]
        return called_face[draw].mean(axis=1), p[draw].mean(axis=1), correct[draw].sum(axis=1)

    recall, mean_prob, rec_reps = {}, {}, []
    correct_reps = np.zeros(n_boot)
    empty = []
    for code, name in enumerate(GROUPS):
        idx = np.flatnonzero(is_face & (g == code))
        r_reps, m_reps, c_reps = resample(idx)
        correct_reps += c_reps
        rec_reps.append(r_reps)
        if idx.size == 0:
            empty.append(name)
        r_hat = float(called_face[idx].mean()) if idx.size else math.nan
        m_hat = float(p[idx].mean()) if idx.size else math.nan
        recall[name] = Estimate(r_hat, *_interval(r_reps, ci), int(idx.size))
        mean_prob[name] = Estimate(m_hat, *_interval(m_reps, ci), int(idx.size))
    _warn_empty(empty, "recall and mean probability are")
    _warn_small({name: recall[name].n for name in GROUPS})

    unknown = np.flatnonzero(is_face & (g < 0))
    correct_reps += resample(unknown)[2]
    nonface = np.flatnonzero(~is_face)
    fpr_reps, _, c_reps = resample(nonface)
    correct_reps += c_reps
    if nonface.size == 0:
        warnings.warn("No non-faces: the false-positive rate is NaN and accuracy covers faces only.",
                      RuntimeWarning, stacklevel=2)
    fpr_hat = float(called_face[nonface].mean()) if nonface.size else math.nan
    n = len(p)

    point = np.array([[recall[c].value] for c in GROUPS])
    gap, ld, mean, var = (float(x[0]) for x in _spread(point))
    gap_r, ld_r, mean_r, var_r = _spread(np.vstack(rec_reps))
    present = [c for c in GROUPS if not math.isnan(recall[c].value)]
    n_faces = int(is_face.sum() - unknown.size)
    return DetectorEvaluation(
        threshold=float(threshold), ci=float(ci), n_boot=int(n_boot), seed=int(seed),
        recall=recall, mean_probability=mean_prob,
        fpr=Estimate(fpr_hat, *_interval(fpr_reps, ci), int(nonface.size)),
        accuracy=Estimate(float(correct.mean()), *_interval(correct_reps / n, ci), n),
        recall_gap=Estimate(gap, *_interval(gap_r, ci), n_faces),
        best_group=max(present, key=lambda c: recall[c].value) if present else None,
        worst_group=min(present, key=lambda c: recall[c].value) if present else None,
        lighter_darker_gap=Estimate(ld, *_interval(ld_r, ci), n_faces),
        expected_accuracy=Estimate(mean, *_interval(mean_r, ci), n_faces),
        var_accuracy_ddof0=Estimate(var, *_interval(var_r, ci), n_faces),
        score_kl_lighter_darker=_kl_histograms(
            p[is_face & np.isin(g, [GROUPS.index(c) for c in LIGHTER])],
            p[is_face & np.isin(g, [GROUPS.index(c) for c in DARKER])], int(kl_bins), float(kl_eps)),
        kl_bins=int(kl_bins), kl_eps=float(kl_eps),
    )


def recall_at_fpr(probs: Any, labels: Any, groups: Any, *, fpr: float = 0.01) -> RecallAtFPR:
    """Per-group recall with the threshold set by the non-faces, so models are compared at equal FPR.

    A fixed 0.5 threshold lets a model look fairer by flagging more non-faces; matching the FPR removes that.
    """
    p, is_face, g = check_predictions(probs, labels, groups)
    _check_unit_interval("fpr", fpr, open_=False)
    neg = np.sort(p[~is_face])[::-1]
    if neg.size == 0:
        raise ValueError("recall_at_fpr needs non-faces (label 0) to set the threshold; none were given.")
    k = math.floor(fpr * neg.size + 1e-9)  # the tolerance keeps e.g. 0.2 * 10 from flooring to 1
    threshold = 0.0 if k >= neg.size else float(np.nextafter(neg[k], np.inf))
    achieved = float((neg >= threshold).mean())
    recall, n, empty = {}, {}, []
    for code, name in enumerate(GROUPS):
        s = p[is_face & (g == code)]
        n[name] = int(s.size)
        recall[name] = float((s >= threshold).mean()) if s.size else math.nan
        if not s.size:
            empty.append(name)
    _warn_empty(empty, "recall at the matched FPR is")
    gap, ld, _, _ = (float(x[0]) for x in _spread(np.array([[recall[c]] for c in GROUPS])))
    return RecallAtFPR(float(fpr), threshold, achieved, recall, n, gap, ld)


def matched_fpr_target(n_nonfaces: int) -> float:
    """The FPR at which to compare models: 1% when there are at least 500 non-faces (so at least 5 false
    positives set the threshold), else 5%, which a small test set can still estimate."""
    return 0.01 if n_nonfaces >= 500 else 0.05


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney U / AUC)."""
    neg = np.sort(np.asarray(negative, dtype=np.float64))
    pos = np.asarray(positive, dtype=np.float64)
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"rank_auc needs scores on both sides, got {pos.size} positive and {neg.size} negative.")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).mean() / neg.size)


def per_group_auc(probs: Any, labels: Any, groups: Any) -> dict[str, float]:
    """AUC of each group's faces against all non-faces: P(face scores above non-face), ties counting half.

    Threshold-free, so it separates "the model ranks darker faces lower" from "the threshold is unlucky".
    """
    p, is_face, g = check_predictions(probs, labels, groups)
    neg = p[~is_face]
    if neg.size == 0:
        raise ValueError("per_group_auc needs non-faces (label 0) to compare against; none were given.")
    auc, empty = {}, []
    for code, name in enumerate(GROUPS):
        s = p[is_face & (g == code)]
        if not s.size:
            auc[name] = math.nan
            empty.append(name)
            continue
        auc[name] = rank_auc(s, neg)
    _warn_empty(empty, "AUC is")
    return auc


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

    Seeds, not bootstrap resamples, capture training noise, which the prototype found to dominate. Accepts
    dicts (e.g. ``DetectorEvaluation.to_dict()``, nested is fine) or objects with ``to_dict()``; top-level
    keys in ``skip`` (run settings such as the seed itself) are left out. Keys are dotted paths.
    """
    _check_unit_interval("ci", ci, open_=True)
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
        from scipy.stats import t as student_t  # optional dependency: only seed summaries need it

        t = float(student_t.ppf((1 + ci) / 2, df=n - 1))
    out = {}
    for key in keys:
        v = np.array([f[key] for f in flat])
        mean = float(v.mean())
        std = float(v.std(ddof=1)) if n > 1 else math.nan
        half = t * std / math.sqrt(n)
        out[key] = {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n}
    return out
