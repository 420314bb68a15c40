"""Is a latent space in use? The active-unit count, the usual test for a collapsed VAE."""

from __future__ import annotations

import numpy as np

ACTIVE_VARIANCE = 0.01
"""A latent dimension is active when its posterior mean varies across faces by more than this (variance)."""


def active_units(mu: np.ndarray, threshold: float = ACTIVE_VARIANCE) -> np.ndarray:
    """Which latent dimensions are active, one bool per column of the faces' latent means ``mu`` (n, k).

    An inactive dimension says the same for every face, so the decoder cannot use it: with none active every
    reconstruction is one average face (the KL term won over the reconstruction term).
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu must be the latent means of at least two faces, shape (n, k); got {mu.shape}.")
    if not np.isfinite(mu).all():
        raise ValueError("mu has non-finite values; the encoder diverged or the images were not in [0, 1].")
    return mu.var(axis=0) > threshold
