"""Charts for the labs' fairness results (image grids live in ``lab_utils.evaluation.galleries``).

Every function returns a pyplot-managed ``Figure`` and never calls ``show``: a notebook displays it with
``plt.show()`` (or as a cell's value), a script passes it to ``save_figure`` and may ``plt.close`` it.
Colours are the Okabe-Ito palette, distinguishable with colour-vision deficiency.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab_utils import GROUP_NAMES, GROUPS
from lab_utils.evaluation.metrics import validated_predictions
from lab_utils.evaluation.results import DetectorEvaluation, Estimate
from lab_utils.core.files import atomic_path
from lab_utils.core.validation import integer

OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
                              "#000000")
GROUP_COLORS: dict[str, str] = {"LF": "#E69F00", "LM": "#56B4E9", "DF": "#D55E00", "DM": "#0072B2"}
NONFACE_COLOR = "#999999"

Results = Mapping[str, DetectorEvaluation | Mapping[str, Any]] | Sequence[DetectorEvaluation | Mapping[str, Any]]


def _named_results(results: Results) -> list[tuple[str, DetectorEvaluation]]:
    """(name, evaluation) pairs from a dict of models or a plain list; saved ``to_dict()`` JSON works too."""
    items = list(results.items()) if isinstance(results, Mapping) else [
        (f"model {i + 1}", r) for i, r in enumerate(results)]
    if not items:
        raise ValueError("No results to plot: pass {model name: evaluate_detector(...)} with at least one entry.")
    out = []
    for name, r in items:
        if isinstance(r, Mapping):
            r = DetectorEvaluation.from_dict(r)
        if not isinstance(r, DetectorEvaluation):
            raise ValueError(f"Result {name!r} is a {type(r).__name__}; expected what evaluate_detector returns "
                             "(or its to_dict()).")
        out.append((str(name), r))
    return out


def _grouped_bars(results: Results, field: str, ylabel: str, title: str, fpr_in_legend: bool) -> Figure:
    named = _named_results(results)
    fig = plt.figure(figsize=(5 + len(named), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(GROUPS))
    width = 0.8 / len(named)
    for i, (name, r) in enumerate(named):
        est: list[Estimate] = [getattr(r, field)[g] for g in GROUPS]
        values = np.array([e.value for e in est])
        # A percentile interval can miss the point by a hair; matplotlib rejects negative error lengths.
        err = np.maximum(0.0, [values - [e.low for e in est], [e.high for e in est] - values])
        label = f"{name} (FPR {r.fpr.value:.1%})" if fpr_in_legend else name
        ax.bar(x + (i - (len(named) - 1) / 2) * width, values, width, yerr=err, capsize=3, label=label,
               color=OKABE_ITO[i % len(OKABE_ITO)], error_kw={"elinewidth": 1})
    ax.set_xticks(x, [f"{g}\n{GROUP_NAMES[g]}" for g in GROUPS])
    ax.set_xlabel("test group")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ci, threshold = named[0][1].ci, named[0][1].threshold
    ax.set_title(f"{title} (threshold {threshold:g}, {ci:.0%} bootstrap CI)")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_group_recall(results: Results) -> Figure:
    """Bars of each model's per-group detection rate with CIs; the legend carries each model's FPR,
    because a higher recall bought with more false positives is not a fairer detector."""
    return _grouped_bars(results, "recall", "recall (share of faces detected)", "Detection rate per group",
                         fpr_in_legend=True)


def plot_mean_probability(results: Results) -> Figure:
    """The reference lab's chart, mean P(face) per group, now with CIs so small differences are not over-read."""
    return _grouped_bars(results, "mean_probability", "mean P(face) on the group's faces",
                         "Mean face probability per group", fpr_in_legend=False)


def plot_score_distributions(probs: Any, labels: Any, groups: Any, *, threshold: float = 0.5,
                             bins: int = 20) -> Figure:
    """Per-group histograms of face scores over the non-face scores, with the decision threshold.

    Shows whether a gap comes from darker faces sitting just below the threshold (a calibration issue)
    or far below it (a ranking issue). Bars are shares of each group's images, so group sizes don't matter.
    """
    p, is_face, g = validated_predictions(probs, labels, groups)
    bins = integer("bins", bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig = plt.figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    nonface = p[~is_face]
    if nonface.size:
        ax.stairs(np.histogram(nonface, edges)[0] / nonface.size, edges, fill=True, color=NONFACE_COLOR,
                  alpha=0.5, label=f"non-faces (n={nonface.size})")
    for code, name in enumerate(GROUPS):
        s = p[is_face & (g == code)]
        if s.size:
            ax.stairs(np.histogram(s, edges)[0] / s.size, edges, color=GROUP_COLORS[name], linewidth=1.8,
                      label=f"{name} faces (n={s.size})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("P(face)")
    ax.set_ylabel("share of the group's images")
    ax.set_xlim(0, 1)
    ax.set_title("Score distributions by group")
    ax.legend(fontsize="small", loc="best")
    return fig


OFF_SCALE_POINTS = 20.0
"""A point whose accuracy is this many percentage points below the median of the others is drawn as a marker on
the lower edge with its value written next to it, so one collapsed run does not squash every other point."""


def plot_tradeoff(points: Sequence[Mapping[str, Any]]) -> Figure:
    """Accuracy against best-minus-worst recall gap, one point per setting, named in the legend.

    Each point is a mapping with ``label``, ``accuracy`` and ``gap`` (fractions, as the metrics return them;
    drawn in percent), optionally ``accuracy_err`` / ``gap_err`` (symmetric half-widths, e.g. the std across
    seeds) and ``series``: points of one series (e.g. one resampling rule across alpha) are joined by a line in
    the order given, which draws the trade-off curve. A fairness gain that costs accuracy, or sits inside the
    noise, is visible at a glance.
    """
    if not points:
        raise ValueError("plot_tradeoff needs at least one point ({'label', 'accuracy', 'gap'}).")
    for i, pt in enumerate(points):
        missing = {"label", "accuracy", "gap"} - set(pt)
        if missing:
            raise ValueError(f"Point {i} lacks {sorted(missing)}; each needs 'label', 'accuracy' and 'gap'.")

    def column(key: str) -> np.ndarray:
        return 100 * np.array([float(pt.get(key) if pt.get(key) is not None else np.nan) for pt in points])

    gap, acc = column("gap"), column("accuracy")
    gap_err, acc_err = column("gap_err"), column("accuracy_err")
    off = acc < np.nanmedian(acc) - OFF_SCALE_POINTS
    fig = plt.figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    series: dict[str, list[int]] = {}
    for i, pt in enumerate(points):
        if pt.get("series") is not None:
            series.setdefault(str(pt["series"]), []).append(i)
    for members in series.values():
        on = [i for i in members if not off[i]]
        ax.plot(gap[on], acc[on], color=NONFACE_COLOR, linewidth=1, zorder=1)
    markers = "osD^vP*X"
    bottom = np.nanmin(np.where(off, np.nan, acc - np.nan_to_num(acc_err))) - 1.0 if (~off).any() else 0.0
    handles, labels = [], []
    for i, pt in enumerate(points):
        # colour and marker cycle at different rates, so no two of up to 64 points look alike
        color, marker = OKABE_ITO[i % len(OKABE_ITO)], markers[(i + i // len(OKABE_ITO)) % len(markers)]
        if off[i]:
            (handle,) = ax.plot(gap[i], bottom, marker="v", color=color, linestyle="none")
            ax.annotate(f"{acc[i]:.1f}%", (gap[i], bottom), textcoords="offset points", xytext=(6, 3),
                        fontsize="small", color=color)
            labels.append(f"{pt['label']} (off scale: accuracy {acc[i]:.1f}%)")
        else:
            handle = ax.errorbar(gap[i], acc[i], xerr=None if np.isnan(gap_err[i]) else gap_err[i],
                                 yerr=None if np.isnan(acc_err[i]) else acc_err[i], fmt=marker, color=color,
                                 capsize=3)
            labels.append(str(pt["label"]))
        handles.append(handle)
    if off.any():
        ax.set_ylim(bottom - 0.5, None)
    ax.set_xlabel("recall gap, best - worst group (percentage points; lower is fairer)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs. fairness gap")
    ax.legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    return fig


def plot_seed_recall(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Per-group recall of each variant, mean and 95% interval over seeds, from a multi-seed summary
    (``benchmarks/debias.py``'s ``summary``: ``{variant: {"recall_LF": {"mean", "ci_high", ...}, ...}}``)."""
    if not summary:
        raise ValueError("plot_seed_recall needs at least one variant's summary.")
    fig = plt.figure(figsize=(max(6, 1.2 * len(summary) + 3), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(GROUPS))
    width = 0.8 / len(summary)
    for i, (variant, s) in enumerate(summary.items()):
        means = np.array([s[f"recall_{g}"]["mean"] for g in GROUPS]) * 100
        half = np.array([s[f"recall_{g}"]["ci_high"] - s[f"recall_{g}"]["mean"] for g in GROUPS]) * 100
        ax.bar(x + (i - (len(summary) - 1) / 2) * width, means, width, yerr=np.nan_to_num(half), capsize=2,
               label=variant, color=OKABE_ITO[i % len(OKABE_ITO)],
               hatch=("", "//", "..", "xx")[(i // len(OKABE_ITO)) % 4])  # past 8 variants the colours repeat
    lowest = min(100 * (s[f"recall_{g}"]["mean"] - np.nan_to_num(s[f"recall_{g}"]["ci_high"] - s[f"recall_{g}"]["mean"]))
                 for s in summary.values() for g in GROUPS)
    ax.set_ylim(max(0.0, 10 * np.floor(lowest / 10) - 5), 101)  # the differences live near the top
    ax.set_xticks(x, GROUPS)
    ax.set_ylabel("recall (%), mean ± 95% CI over seeds")
    ax.set_title("Detection rate per group")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def seed_tradeoff_points(summary: Mapping[str, Mapping[str, Mapping[str, float]]],
                         variants: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`plot_tradeoff` points (mean ± std over seeds) from a multi-seed summary; resampled DB-VAEs of one
    rule and KL weight form a series, sorted by alpha, so each rule draws its curve across alpha."""
    def point(name: str, s: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
        variant = variants.get(name, {})
        series = f"{variant['rule']} rule, KL {variant['kl_weight']:g}" if variant.get("resample") else None
        return {"label": name, "accuracy": s["accuracy"]["mean"], "gap": s["gap_best_worst"]["mean"],
                "accuracy_err": s["accuracy"]["std"], "gap_err": s["gap_best_worst"]["std"], "series": series,
                "alpha": variant.get("alpha", 0.0)}

    return sorted((point(n, s) for n, s in summary.items()), key=lambda p: (p["series"] or "", p["alpha"]))


def plot_history(history: Mapping[str, Sequence[float]] | Any, keys: Sequence[str] | None = None, *,
                 xlabel: str = "epoch", logy: bool = False) -> Figure:
    """Loss curves from a Keras ``History`` (or its ``.history`` dict); validation curves are dashed in the
    colour of their training curve. ``keys`` defaults to every key containing "loss"."""
    h = getattr(history, "history", history)
    if not isinstance(h, Mapping) or not h:
        raise ValueError("plot_history needs a non-empty dict of per-epoch lists, e.g. model.fit(...).history.")
    if keys is None:
        keys = [k for k in h if "loss" in k] or list(h)
    unknown = [k for k in keys if k not in h]
    if unknown:
        raise ValueError(f"Keys {unknown} are not in the history; available: {sorted(h)}.")
    fig = plt.figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    base_keys = list(dict.fromkeys(k.removeprefix("val_") for k in keys))
    for k in keys:
        base = k.removeprefix("val_")
        values = np.asarray(h[k], dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, label=k, marker="o" if len(values) < 30 else None,
                linestyle="--" if k.startswith("val_") else "-",
                color=OKABE_ITO[base_keys.index(base) % len(OKABE_ITO)])
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss" if all("loss" in k for k in keys) else "value")
    if logy:
        ax.set_yscale("log")
    ax.set_title("Training history")
    ax.legend(fontsize="small")
    return fig


def plot_resampling(log: Mapping[str, Any]) -> Figure:
    """Left: darker share of the faces the sampler drew each epoch against the training base rate; right:
    effective sample size (ESS) of the sampling weights. Together they show whether debiasing reweights
    towards darker faces, and whether it does so by leaning on only a handful of them.

    ``log`` holds plain lists ``epochs``, ``shares`` (fractions) and ``ess``, and ``base_rate``: one
    fraction, or one per epoch.
    """
    missing = {"epochs", "shares", "base_rate", "ess"} - set(log)
    if missing:
        raise ValueError(f"Resampling log lacks {sorted(missing)}; it needs 'epochs', 'shares', 'base_rate', 'ess'.")
    epochs = np.asarray(log["epochs"], dtype=float)
    shares, ess = np.asarray(log["shares"], dtype=float), np.asarray(log["ess"], dtype=float)
    base = np.asarray(log["base_rate"], dtype=float)
    if not len(epochs) == len(shares) == len(ess) or (base.ndim and len(base) != len(epochs)):
        raise ValueError(f"epochs, shares, ess (and a per-epoch base_rate) must have equal lengths; got "
                         f"{len(epochs)}, {len(shares)}, {len(ess)}, base_rate shape {base.shape}.")
    fig = plt.figure(figsize=(10, 3.8), layout="constrained")
    ax_share, ax_ess = fig.subplots(1, 2)
    ax_share.plot(epochs, 100 * shares, marker="o", color=OKABE_ITO[3], label="darker share of drawn faces")
    if base.ndim:
        ax_share.plot(epochs, 100 * base, linestyle="--", color=NONFACE_COLOR, label="base rate in training faces")
    else:
        ax_share.axhline(100 * base, linestyle="--", color=NONFACE_COLOR, label="base rate in training faces")
    ax_share.set_xlabel("epoch")
    ax_share.set_ylabel("darker faces (% of faces)")
    ax_share.set_ylim(bottom=0)
    ax_share.legend(fontsize="small")
    ax_share.set_title("Who the sampler draws")
    ax_ess.plot(epochs, ess, marker="o", color=OKABE_ITO[0])
    ax_ess.set_xlabel("epoch")
    ax_ess.set_ylabel("effective sample size (faces)")
    ax_ess.set_ylim(bottom=0)
    ax_ess.set_title("Effective sample size of the weights")
    for ax in (ax_share, ax_ess):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write ``fig`` via a temporary file in the same folder and ``os.replace``, so a crash or a concurrent
    reader never sees a half-written image. The format follows the suffix (.png, .pdf, .svg, ...)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"Cannot save {path.name!r}: give a file suffix matplotlib can write, one of "
                         f"{sorted(supported)}.")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path
