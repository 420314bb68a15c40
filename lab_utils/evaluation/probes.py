"""How linearly an attribute is written in a latent space: a class-balanced logistic probe, scored held out.

A probe scored on the faces it was fitted on overstates what the latent space encodes (32 dimensions can fit
noise), so every printed probe score, in the labs and the benchmarks, comes from :func:`cross_validated_probe`:
stratified folds, each scored by a probe fitted on the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lab_utils.evaluation.threshold_free import rank_auc
from lab_utils.core.validation import integer, number


def _checked(codes: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(codes, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"codes must be (N, k) with one target per row, got {x.shape} and {y.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(f"codes contain {int((~np.isfinite(x)).sum())} NaN or infinite values; encode finite "
                         "images with a model that has not diverged.")
    if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
        raise ValueError("target must be 0/1 with both classes present (e.g. the 'darker' attribute of faces).")
    return x, y


def fit_linear_probe(codes: Any, target: Any, *, steps: int = 500,
                     learning_rate: float = 0.5) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression ``target ~ codes`` by gradient descent on standardised codes.

    Returns ``(w, b)`` in the *original* code units: ``codes @ w + b`` is the logit of ``target``.
    """
    x, y = _checked(codes, target)
    learning_rate = number("learning_rate", learning_rate, low=0.0, low_open=True)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
    xs = (x - mean) / std
    sample_w = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(integer("steps", steps)):
        p = 1.0 / (1.0 + np.exp(-(xs @ w + b)))
        grad = sample_w * (p - y)
        w -= learning_rate * (xs.T @ grad)
        b -= learning_rate * grad.sum()
    w_orig = w / std
    return w_orig, float(b - w_orig @ mean)


@dataclass(frozen=True)
class ProbeScore:
    """A probe's held-out AUC and balanced accuracy (at logit 0), from ``folds`` stratified folds of ``n`` rows."""

    auc: float
    balanced_accuracy: float
    folds: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "protocol": f"{self.folds}-fold cross-validated, class-balanced logistic probe"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProbeScore":
        return cls(float(d["auc"]), float(d["balanced_accuracy"]), int(d["folds"]), int(d["n"]))


def out_of_fold_logits(codes: Any, target: Any, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each row's probe logit from a :func:`fit_linear_probe` fitted on the other folds, so it never saw the row.

    Folds are stratified (each holds its share of both classes), so a 5% minority is in every fold.
    """
    x, y = _checked(codes, target)
    folds = integer("folds", folds, minimum=2)
    smaller = int(min(y.sum(), (1 - y).sum()))
    if smaller < folds:
        raise ValueError(f"A {folds}-fold probe needs at least {folds} rows of each class; the smaller class has "
                         f"{smaller}. Use fewer folds or more faces.")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for cls in (0.0, 1.0):
        rows = rng.permutation(np.flatnonzero(y == cls))
        fold_of[rows] = np.arange(rows.size) % folds
    logit = np.empty(len(y))
    for f in range(folds):
        held = fold_of == f
        w, b = fit_linear_probe(x[~held], y[~held])
        logit[held] = x[held] @ w + b
    return logit


def cross_validated_probe(codes: Any, target: Any, *, folds: int = 5, seed: int = 0) -> ProbeScore:
    """The probe score every lab and benchmark prints: AUC and balanced accuracy of :func:`out_of_fold_logits`."""
    logit = out_of_fold_logits(codes, target, folds=folds, seed=seed)
    positive = np.asarray(target, dtype=np.float64).reshape(-1) == 1
    called = logit > 0
    balanced = 0.5 * (called[positive].mean() + (~called[~positive]).mean())
    return ProbeScore(rank_auc(logit[positive], logit[~positive]), float(balanced), int(folds), len(logit))
