"""Fairness metrics for face detectors, each with a confidence interval.

The labs compare models that differ by a few points of recall on ~250 faces per group, so every number
comes with an interval (and, across seeds, a t-interval) to tell a real gap from evaluation noise: a Wilson
interval for each proportion (recall, FPR, accuracy; right at 0% and 100%), a stratified bootstrap for the
differences and spreads between groups.
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
from typing import Any

import numpy as np

from lab_utils import GROUP_NAMES, GROUPS
from lab_utils.evaluation.intervals import WILSON, percentile_interval, wilson_interval
from lab_utils.evaluation.results import DARKER, LIGHTER, DetectorEvaluation, Estimate


def validated_predictions(probs: Any, labels: Any, groups: Any, *, logits: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs float64, is_face bool, group int8), or a ValueError that says what to fix.

    Shared by every metric and plot so bad input fails the same clear way everywhere; a (N, 1) array from
    ``model.predict`` is accepted as probs. With ``logits=True`` the scores are logits: any finite number.
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
    if logits:
        if not np.isfinite(p).all():
            raise ValueError(f"logits contains {int((~np.isfinite(p)).sum())} infinite values; a model's logits are "
                             "finite, so check its output for divergence.")
    elif p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"probs must be probabilities in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]; "
                         "if these are logits, apply keras.ops.sigmoid first.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0 (non-face) or 1 (face); found {np.setdiff1d(y, (0.0, 1.0))[:5]}.")
    bad = np.setdiff1d(g, np.arange(-1, len(GROUPS)))
    if bad.size:
        raise ValueError(f"Unknown group codes {bad[:5].tolist()}: use 0..{len(GROUPS) - 1} for {GROUPS} and -1 for "
                         "non-faces or faces of unknown group.")
    return p, y == 1.0, g.astype(np.int8)


def check_unit_interval(name: str, value: float, *, open_: bool) -> None:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (number and (0.0 < value < 1.0 if open_ else 0.0 <= value <= 1.0)):
        bounds = "(0, 1)" if open_ else "[0, 1]"
        raise ValueError(f"{name} must be a number in {bounds}, got {value!r}.")


SMALL_GROUP = 30
"""Below this many faces a group's recall says little and no gap between groups can be concluded."""


def _warn_small(sizes: dict[str, int]) -> None:
    small = {g: n for g, n in sizes.items() if 0 < n < SMALL_GROUP}
    if small:
        listed = ", ".join(f"{g} {n}" for g, n in small.items())
        warnings.warn(f"Only a few test faces in group(s) {listed} (fewer than {SMALL_GROUP}): their recall and "
                      "its interval say little, and no gap between groups can be concluded from them. Evaluate on "
                      "more faces per group.", RuntimeWarning, stacklevel=3)


def warn_empty(empty: list[str], what: str) -> None:
    if empty:
        names = ", ".join(f"{g} ({GROUP_NAMES[g]})" for g in empty)
        warnings.warn(f"No faces in group(s) {names}, so {what} NaN there; any gaps use the other groups. "
                      "Check the test split's 'group' attribute.", RuntimeWarning, stacklevel=3)


def spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    """Per-group recall and mean P(face), FPR, accuracy and the fairness gaps, each with a confidence interval.

    Recall, FPR and accuracy are proportions of counted images and get Wilson intervals, which never have zero
    width (250 of 250 faces detected: [98.5%, 100%]). Mean P(face), the gaps, E[A] and Var[A] get a bootstrap,
    stratified: each group's faces are resampled separately, with their sizes fixed, and every statistic (gaps,
    E[A], Var[A]) is recomputed per resample.
    For best - worst gaps near zero the resampled max - min is biased upwards, so the interval can sit above
    the point estimate; read it as an upper bound then. Lighter/darker figures average LF and LM (DF and DM)
    with equal weight, as E[A] does; the KL pools their face scores, with ``kl_eps`` added to every bin's
    probability (then renormalised) so an empty bin does not make it infinite.
    """
    p, is_face, g = validated_predictions(probs, labels, groups)
    check_unit_interval("threshold", threshold, open_=False)
    check_unit_interval("ci", ci, open_=True)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2 (1000 is the usual), got {n_boot!r}.")
    if not isinstance(kl_bins, (int, np.integer)) or kl_bins < 1 or not kl_eps > 0:
        raise ValueError(f"kl_bins must be a positive integer and kl_eps > 0, got {kl_bins!r} and {kl_eps!r}.")

    rng = np.random.default_rng(seed)
    called_face = p >= threshold
    correct = called_face == is_face
    nan_reps = np.full(n_boot, math.nan)

    def resample(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-resample mean of 'called face' and mean prob, from one draw of a group's indices."""
        if idx.size == 0:
            return nan_reps, nan_reps
        draw = idx[rng.integers(0, idx.size, size=(n_boot, idx.size))]
        return called_face[draw].mean(axis=1), p[draw].mean(axis=1)

    recall, mean_prob, rec_reps = {}, {}, []
    empty = []
    for code, name in enumerate(GROUPS):
        idx = np.flatnonzero(is_face & (g == code))
        r_reps, m_reps = resample(idx)
        rec_reps.append(r_reps)
        if idx.size == 0:
            empty.append(name)
        r_hat = float(called_face[idx].mean()) if idx.size else math.nan
        m_hat = float(p[idx].mean()) if idx.size else math.nan
        recall[name] = Estimate(r_hat, *wilson_interval(int(called_face[idx].sum()), idx.size, ci), int(idx.size),
                                WILSON)
        mean_prob[name] = Estimate(m_hat, *percentile_interval(m_reps, ci), int(idx.size))
    warn_empty(empty, "recall and mean probability are")
    _warn_small({name: recall[name].n for name in GROUPS})

    unknown = np.flatnonzero(is_face & (g < 0))
    nonface = np.flatnonzero(~is_face)
    if nonface.size == 0:
        warnings.warn("No non-faces: the false-positive rate is NaN and accuracy covers faces only.",
                      RuntimeWarning, stacklevel=2)
    fpr_hat = float(called_face[nonface].mean()) if nonface.size else math.nan
    n = len(p)

    point = np.array([[recall[c].value] for c in GROUPS])
    gap, ld, mean, var = (float(x[0]) for x in spread(point))
    gap_r, ld_r, mean_r, var_r = spread(np.vstack(rec_reps))
    present = [c for c in GROUPS if not math.isnan(recall[c].value)]
    n_faces = int(is_face.sum() - unknown.size)
    return DetectorEvaluation(
        threshold=float(threshold), ci=float(ci), n_boot=int(n_boot), seed=int(seed),
        recall=recall, mean_probability=mean_prob,
        fpr=Estimate(fpr_hat, *wilson_interval(int(called_face[nonface].sum()), nonface.size, ci),
                     int(nonface.size), WILSON),
        accuracy=Estimate(float(correct.mean()), *wilson_interval(int(correct.sum()), n, ci), n, WILSON),
        recall_gap=Estimate(gap, *percentile_interval(gap_r, ci), n_faces),
        best_group=max(present, key=lambda c: recall[c].value) if present else None,
        worst_group=min(present, key=lambda c: recall[c].value) if present else None,
        lighter_darker_gap=Estimate(ld, *percentile_interval(ld_r, ci), n_faces),
        expected_accuracy=Estimate(mean, *percentile_interval(mean_r, ci), n_faces),
        var_accuracy_ddof0=Estimate(var, *percentile_interval(var_r, ci), n_faces),
        score_kl_lighter_darker=_kl_histograms(
            p[is_face & np.isin(g, [GROUPS.index(c) for c in LIGHTER])],
            p[is_face & np.isin(g, [GROUPS.index(c) for c in DARKER])], int(kl_bins), float(kl_eps)),
        kl_bins=int(kl_bins), kl_eps=float(kl_eps),
    )
