"""DB-VAE's adaptive resampling: draw faces with probability inverse to their density in latent space.

Fairness by construction of the API: the resampler never sees an attribute (skin tone, gender, group).
:func:`histogram_weights` takes latent means only, and :func:`encode_faces` / :func:`compute_face_probs`
read nothing from a :class:`~lab_utils.data.FaceDataset` but ``images`` and the face labels (through
``face_idx``). Whatever the weights achieve for a group, they achieve it unsupervised, which is the
paper's claim; a lab measures the effect afterwards, from attributes, outside this module.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from lab_utils.data import FaceDataset

RULES = ("product", "max")
PROGRESS_MIN_IMAGES = 10_000


def _logsumexp(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def check_weight_options(bins: int, alpha: float, rule: str) -> None:
    """Raise ValueError for options :func:`histogram_weights` cannot use (so a trainer can fail before fit)."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (density smoothing), got {alpha!r}.")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES} (paper: 'product', reference lab: 'max'), got {rule!r}.")


def _select_dims(dims: Sequence[int] | None, k: int) -> np.ndarray:
    if dims is None:
        return np.arange(k)
    sel = np.asarray(dims)
    if sel.ndim != 1 or sel.size == 0 or not np.issubdtype(sel.dtype, np.integer):
        raise ValueError(f"dims must be a non-empty sequence of latent dimension indices, got {dims!r}.")
    if sel.min() < -k or sel.max() >= k or len(np.unique(sel % k)) != sel.size:
        raise ValueError(f"dims must be distinct indices in [0, {k}) for {k} latent dimensions, got {dims!r}.")
    return sel % k


def histogram_weights(
    mu: np.ndarray,
    *,
    bins: int = 10,
    alpha: float = 1e-3,
    rule: str = "product",
    dims: Sequence[int] | None = None,
) -> np.ndarray:
    """Sampling probability per face (float64, sums to 1) from latent means ``mu`` (N, k).

    Per latent dimension i, ``Q_i`` is the histogram over ``bins`` equal-width bins spanning the faces'
    range, normalised to bin masses that sum to 1 (so ``alpha`` means the same whatever the latent scale;
    latents can shrink to std ~0.07 at high KL weight). A face's weight in dimension i is
    ``1 / (Q_i(z_i) + alpha)``. ``rule="product"`` (the paper) multiplies them over dimensions, in log
    space so 100 dimensions cannot under/overflow; ``rule="max"`` (the reference lab) normalises each
    dimension's weights over faces and takes the element-wise maximum. ``dims`` restricts the histogram to
    some latent dimensions. Degenerate input (one face, identical latents) gives uniform probabilities.
    """
    check_weight_options(bins, alpha, rule)
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"mu must be a non-empty (n_faces, latent_dim) array of latent means, got {mu.shape}.")
    if not np.isfinite(mu).all():
        raise ValueError(
            f"mu has {int((~np.isfinite(mu)).sum())} non-finite values; the encoder diverged "
            "(check the learning rate / KL weight) or the input images are not in [0, 1]."
        )
    mu = mu[:, _select_dims(dims, mu.shape[1])]
    n, k = mu.shape
    lo, width = mu.min(axis=0), np.ptp(mu, axis=0)
    scale = np.divide(bins, width, out=np.zeros_like(width), where=width > 0)  # zero width -> one bin
    bin_idx = np.clip(((mu - lo) * scale).astype(np.int64), 0, bins - 1)  # (n, k); max lands in last bin
    flat = bin_idx + np.arange(k) * bins
    mass = np.bincount(flat.ravel(), minlength=k * bins).reshape(k, bins) / n  # (k, bins), rows sum to 1
    log_inv = -np.log(np.take_along_axis(mass, bin_idx.T, axis=1).T + alpha)  # (n, k)
    if rule == "product":
        log_w = log_inv.sum(axis=1)
    else:
        log_w = (log_inv - _logsumexp(log_inv, axis=0)).max(axis=1)
    probs = np.exp(log_w - _logsumexp(log_w))
    return probs / probs.sum()


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


def encode_faces(model: Any, dataset: FaceDataset, *, batch_size: int = 256,
                 progress: bool | None = None) -> np.ndarray:
    """Latent means (n_faces, k) of the dataset's faces, in ``dataset.face_idx`` order.

    Reads only ``dataset.images`` and ``dataset.face_idx`` (labels), never ``dataset.attributes``.
    ``model`` is anything with ``encode(x) -> (mu, logvar)`` (a :class:`~lab_utils.models.DBVAE` or VAE).
    """
    if not callable(getattr(model, "encode", None)):
        raise ValueError(f"model must have an encode(x) -> (mu, logvar) method (a DBVAE or VAE), got "
                         f"{type(model).__name__}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    face_idx = dataset.face_idx
    if len(face_idx) == 0:
        raise ValueError(f"{dataset.name}: no faces (label 1) to encode.")
    if progress is None:
        progress = len(face_idx) >= PROGRESS_MIN_IMAGES
    means = []
    for start in tqdm(range(0, len(face_idx), batch_size), desc="encode faces", unit="batch",
                      disable=not progress, leave=False):
        x = dataset.images[face_idx[start: start + batch_size]].astype(np.float32) / 255.0
        mu, _ = model.encode(x)
        means.append(ops.convert_to_numpy(mu))
    return np.concatenate(means, axis=0)


def compute_face_probs(
    model: Any,
    dataset: FaceDataset,
    *,
    bins: int = 10,
    alpha: float = 1e-3,
    rule: str = "product",
    dims: Sequence[int] | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Encode the faces and turn their latent means into sampling probabilities (``face_idx`` order),
    with :func:`resampling_diagnostics` of the result."""
    check_weight_options(bins, alpha, rule)
    mu = encode_faces(model, dataset, batch_size=batch_size, progress=progress)
    probs = histogram_weights(mu, bins=bins, alpha=alpha, rule=rule, dims=dims)
    return probs, resampling_diagnostics(probs)
