"""What an evaluation found, as values with intervals: one per-group estimate, one detector's evaluation, recall at a
matched false-positive rate; each round-trips through JSON for the benchmarks' results files, interval method
included."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab_utils import GROUP_NAMES, GROUPS
from lab_utils.evaluation.intervals import BOOTSTRAP, METHODS, WILSON

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
    """A point estimate, its interval [low, high], how many samples it rests on, and how the interval was made
    (a key of ``intervals.METHODS``: Wilson for proportions, the stratified bootstrap for the rest)."""

    value: float
    low: float
    high: float
    n: int
    method: str = BOOTSTRAP

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Unknown interval method {self.method!r}; use one of {sorted(METHODS)}.")

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.n, self.method)

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {"value": _json_float(self.value), "low": _json_float(self.low),
                "high": _json_float(self.high), "n": self.n, "method": self.method}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Estimate":
        """Files written before intervals named their method hold bootstrap intervals only."""
        return cls(_from_json(d["value"]), _from_json(d["low"]), _from_json(d["high"]), int(d["n"]),
                   d.get("method", BOOTSTRAP))


@dataclass(frozen=True)
class DetectorEvaluation:
    """Everything ``evaluate_detector`` measures, with intervals at level ``ci``: Wilson intervals for the
    proportions (recall per group, FPR, accuracy), stratified-bootstrap percentiles for the rest.

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

        def how(e: Estimate) -> str:
            return "Wilson" if e.method == WILSON else "bootstrap"

        lines = [f"Threshold {self.threshold:g} (face if P(face) >= threshold). Intervals: Wilson = "
                 f"{METHODS[WILSON]}; bootstrap = {METHODS[BOOTSTRAP]}, {self.n_boot} resamples.",
                 "", f"| group | faces | recall ({level}, {how(self.recall[GROUPS[0]])}) | "
                 f"mean P(face) ({level}, {how(self.mean_probability[GROUPS[0]])}) |", "|---|---:|---:|---:|"]
        for g in GROUPS:
            r, m = self.recall[g], self.mean_probability[g]
            lines.append(f"| {g} ({GROUP_NAMES[g]}) | {r.n} | {pct(r)} | "
                         f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}] |")
        v = self.var_accuracy_pct2_ddof0
        gap_label = f"recall gap, best - worst ({self.best_group} - {self.worst_group})"
        lines += ["", f"| metric | value ({level}) | interval |", "|---|---:|---|",
                  f"| false-positive rate on {self.fpr.n} non-faces | {pct(self.fpr)} | {how(self.fpr)} |",
                  f"| accuracy on {self.accuracy.n} images | {pct(self.accuracy)} | {how(self.accuracy)} |",
                  f"| {gap_label} = equal-opportunity difference | {pts(self.recall_gap)} | "
                  f"{how(self.recall_gap)} |",
                  f"| lighter - darker recall gap | {pts(self.lighter_darker_gap)} | "
                  f"{how(self.lighter_darker_gap)} |",
                  f"| E[A], mean of group accuracies | {pct(self.expected_accuracy)} | "
                  f"{how(self.expected_accuracy)} |",
                  f"| Var[A] across groups, ddof=0, in %^2 | {v.value:.2f} [{v.low:.2f}, {v.high:.2f}] | {how(v)} |",
                  f"| KL(lighter \\|\\| darker) of face scores, {self.kl_bins} bins, eps {self.kl_eps:g} | "
                  f"{self.score_kl_lighter_darker:.4f} | none |"]
        return "\n".join(lines)


@dataclass(frozen=True)
class RecallAtFPR:
    """Per-group recall at the one threshold that holds the non-face false-positive rate at ``target_fpr``.

    ``threshold`` is the smallest with FPR <= target, i.e. just above the (k+1)-th highest non-face score for
    k = floor(target * n_nonfaces); ties can make ``achieved_fpr`` fall below the target. It is on the scale
    of the scores ranked: ``"probability"`` or ``"logit"`` (``scores``), which keeps saturated faces apart.
    """

    target_fpr: float
    threshold: float
    achieved_fpr: float
    recall: dict[str, float]
    n: dict[str, int]
    recall_gap: float
    lighter_darker_gap: float
    scores: str = "probability"

    def to_dict(self) -> dict[str, Any]:
        return {"target_fpr": self.target_fpr, "threshold": _json_float(self.threshold),
                "achieved_fpr": self.achieved_fpr,
                "recall": {g: _json_float(r) for g, r in self.recall.items()}, "n": dict(self.n),
                "recall_gap": _json_float(self.recall_gap),
                "lighter_darker_gap": _json_float(self.lighter_darker_gap), "scores": self.scores}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RecallAtFPR":
        """Inverse of ``to_dict``; files written before ``scores`` was recorded ranked probabilities."""
        return cls(target_fpr=float(d["target_fpr"]), threshold=_from_json(d["threshold"]),
                   achieved_fpr=float(d["achieved_fpr"]),
                   recall={g: _from_json(r) for g, r in d["recall"].items()},
                   n={g: int(k) for g, k in d["n"].items()}, recall_gap=_from_json(d["recall_gap"]),
                   lighter_darker_gap=_from_json(d["lighter_darker_gap"]), scores=d.get("scores", "probability"))
