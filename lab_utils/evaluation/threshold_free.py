"""Comparisons that no threshold can game: recall at a matched false-positive rate, and each group's AUC.

A model can "close the gap" at a fixed 0.5 threshold simply by calling more things faces; holding every model to
the same false-positive rate, or ranking faces against non-faces (AUC), removes that lever.

Only the order of the scores matters here, so each function also ranks logits (``logits=True``): a confident
model's probabilities round to exactly 1.0 (in float64 above a logit of about 37) and tie where its logits do not.
Ties that remain are handled as scikit-learn does (one threshold per distinct score), the tests' oracle.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lab_utils import GROUPS
from lab_utils.evaluation.metrics import check_unit_interval, spread, validated_predictions, warn_empty
from lab_utils.evaluation.results import RecallAtFPR


def recall_at_fpr(probs: Any, labels: Any, groups: Any, *, fpr: float = 0.01, logits: bool = False) -> RecallAtFPR:
    """Per-group recall with the threshold set by the non-faces, so models are compared at equal FPR.

    A fixed 0.5 threshold lets a model look fairer by flagging more non-faces; matching the FPR removes that.
    With ``logits=True`` the scores are logits and the threshold is one too.
    """
    p, is_face, g = validated_predictions(probs, labels, groups, logits=logits)
    check_unit_interval("fpr", fpr, open_=False)
    neg = np.sort(p[~is_face])[::-1]
    if neg.size == 0:
        raise ValueError("recall_at_fpr needs non-faces (label 0) to set the threshold; none were given.")
    k = math.floor(fpr * neg.size + 1e-9)  # the tolerance keeps e.g. 0.2 * 10 from flooring to 1
    threshold = (float(p.min()) if logits else 0.0) if k >= neg.size else float(np.nextafter(neg[k], np.inf))
    achieved = float((neg >= threshold).mean())
    recall, n, empty = {}, {}, []
    for code, name in enumerate(GROUPS):
        s = p[is_face & (g == code)]
        n[name] = int(s.size)
        recall[name] = float((s >= threshold).mean()) if s.size else math.nan
        if not s.size:
            empty.append(name)
    warn_empty(empty, "recall at the matched FPR is")
    gap, ld, _, _ = (float(x[0]) for x in spread(np.array([[recall[c]] for c in GROUPS])))
    return RecallAtFPR(float(fpr), threshold, achieved, recall, n, gap, ld, "logit" if logits else "probability")


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


def _per_group(probs: Any, labels: Any, groups: Any, score: Callable[[np.ndarray, np.ndarray], float], caller: str,
               what: str, logits: bool) -> dict[str, float]:
    """``score(group's face scores, all non-face scores)`` per group; NaN (with one warning) for an empty group."""
    p, is_face, g = validated_predictions(probs, labels, groups, logits=logits)
    neg = p[~is_face]
    if neg.size == 0:
        raise ValueError(f"{caller} needs non-faces (label 0) to compare against; none were given.")
    out, empty = {}, []
    for code, name in enumerate(GROUPS):
        s = p[is_face & (g == code)]
        if not s.size:
            out[name] = math.nan
            empty.append(name)
            continue
        out[name] = score(s, neg)
    warn_empty(empty, f"{what} is")
    return out


def per_group_auc(probs: Any, labels: Any, groups: Any, *, logits: bool = False) -> dict[str, float]:
    """AUC of each group's faces against all non-faces: P(face scores above non-face), ties counting half.

    Threshold-free, so it separates "the model ranks darker faces lower" from "the threshold is unlucky".
    """
    return _per_group(probs, labels, groups, rank_auc, "per_group_auc", "AUC", logits)


def average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """Average precision (area under the step-wise precision-recall curve): the mean, over positives, of the
    precision at the threshold equal to that positive's score, i.e. among all scores at least as high, tied ones
    included on both sides. This is scikit-learn's ``average_precision_score``: tied scores are one threshold."""
    pos = np.sort(np.asarray(positive, dtype=np.float64))
    neg = np.sort(np.asarray(negative, dtype=np.float64))
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"average_precision needs scores on both sides, got {pos.size} positive and "
                         f"{neg.size} negative.")
    positives_at_or_above = pos.size - np.searchsorted(pos, pos, side="left")
    negatives_at_or_above = neg.size - np.searchsorted(neg, pos, side="left")
    return float(np.mean(positives_at_or_above / (positives_at_or_above + negatives_at_or_above)))


def per_group_ap(probs: Any, labels: Any, groups: Any, *, logits: bool = False) -> dict[str, float]:
    """Average precision of each group's faces against all non-faces, the seed paper's threshold-free metric.

    Unlike AUC it depends on how many non-faces there are per face, so compare it across groups of equal size
    (the benchmark's test split is balanced) or across models on the same test set.
    """
    return _per_group(probs, labels, groups, average_precision, "per_group_ap", "AP", logits)
