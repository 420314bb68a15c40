"""What a resampler did, measured from the outside: how concentrated its weights are (the ESS), and, reading an
attribute after training, whom it drew."""

from __future__ import annotations

from typing import Any

import numpy as np

from lab_utils.data.dataset import FaceDataset

LOW_ESS_FRACTION = 0.01
"""Warn when the sampling probabilities are worth fewer than this share of the training faces: a detector that sees
the same few faces over and over stops finding faces at all."""


def resampling_diagnostics(probs: np.ndarray) -> dict[str, float]:
    """How concentrated the sampling is: ``ess`` = 1 / sum p^2 is the number of equally weighted faces
    the distribution is worth (the paper's product rule can collapse it to a handful)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"probs must be a non-empty 1-D array, got shape {p.shape}.")
    if not np.isfinite(p).all() or (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-6):
        raise ValueError("probs must be finite, non-negative and sum to 1 (e.g. from histogram_weights).")
    n = p.size
    ess = float(1.0 / np.sum(p**2))
    top = max(1, int(np.ceil(0.01 * n)))
    return {
        "n_faces": float(n),
        "ess": ess,
        "ess_fraction": ess / n,
        "max_over_mean": float(p.max() * n),
        "min_over_mean": float(p.min() * n),
        "top1pct_mass": float(np.sort(p)[-top:].sum()),
    }


def concentration_warning(diagnostics: dict[str, float], rule: str, alpha: float) -> str | None:
    """What to say when :func:`resampling_diagnostics` finds the sampling concentrated on too few faces (fewer than
    :data:`LOW_ESS_FRACTION` of them), with what to change; None when it is not."""
    ess, n = diagnostics["ess"], diagnostics["n_faces"]
    if ess >= LOW_ESS_FRACTION * n:
        return None
    advice = ("Raise alpha" + ("" if rule == "principal_max" else ", histogram fewer dims")
              + (", or use rule='principal_max'" if rule == "product" else ""))
    return (f"the resampling weights are worth only {ess:.1f} of {n:.0f} faces (effective sample size), so the "
            f"detector sees the same few faces over and over (rule={rule!r}, alpha={alpha:g}). {advice}.")


def resampling_summary(train: FaceDataset, log: list[dict[str, Any]], attribute: str = "darker") -> dict[str, Any]:
    """Per epoch of a resampling log: the share of drawn faces with ``attribute`` == 1 and the ESS of the weights
    in use, plus the attribute's base rate among training faces; what ``plots.plot_resampling`` takes.

    This *reads an attribute*, after training, to measure what the attribute-free resampler did.
    """
    if attribute not in train.attributes:
        raise ValueError(f"The training set has no {attribute!r} attribute (the embedded benchmark records "
                         f"{sorted(train.attributes) or 'none'}).")
    flag = np.asarray(train.attributes[attribute])[train.face_idx] == 1
    shares, ess = [], []
    for entry in log:
        counts = np.asarray(entry["drawn_face_counts"], dtype=np.float64)
        if counts.shape != flag.shape:
            raise ValueError(f"Log entry for epoch {entry.get('epoch')} counts {counts.size} faces but the "
                             f"training set has {flag.size}; pass the dataset the model was trained on.")
        shares.append(float(counts[flag].sum() / counts.sum()) if counts.sum() else float("nan"))
        ess.append(resampling_diagnostics(np.asarray(entry["sampling_probs"], dtype=np.float64))["ess"])
    return {"epochs": list(range(1, len(log) + 1)), "shares": shares, "ess": ess,
            "base_rate": float(flag.mean())}
