"""DB-VAE's adaptive resampling: draw faces with probability inverse to their density in latent space.

Fairness by construction of the API: the resampler never sees an attribute (skin tone, gender, group).
:func:`histogram_weights` takes latent means only, and :func:`encode_faces` / :func:`compute_sampling_probs`
read nothing from a :class:`~lab_utils.data.dataset.FaceDataset` but ``images`` and the face labels (through
``face_idx``). Whatever the weights achieve for a group, they achieve it unsupervised, which is the
paper's claim; a lab measures the effect afterwards, from attributes, outside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.sampling import resampling_diagnostics
from lab_utils.nn.models import pad_batch
from lab_utils.core.validation import instance, integer, number

DEFAULT_RULE = "principal_max"
"""The labs' and the library's rule (Lab 3's exercise): the reference lab's max rule, taken along the leading
principal directions of the latent means. In the DB-VAE's live latent space the reference lab's per-dimension max
rule hardly moves the sampling, and the paper's product over 32 dimensions collapses onto a few faces
(benchmarks/FINDINGS.md); both stay registered, one argument away."""
DEFAULT_ALPHA = 1e-3
DEFAULT_BINS = 10
RECOMPUTE_EVERY: int | None = None
"""The labs' schedule: the weights are computed once, at the start of epoch 1 from the latent space one uniform
epoch has learned, and kept (``None``); an integer recomputes them every that many epochs, as the paper does every
epoch. Recomputed every epoch, the darker share drawn swings from one epoch to the next (the encoder, shown some
faces more often, encodes them differently); computed once, it is the first recompute's share
(benchmarks/FINDINGS.md)."""
PROGRESS_MIN_IMAGES = 10_000

Rule = Callable[..., np.ndarray]
"""A resampling rule: ``rule(mu, bins, alpha) -> one sampling probability per face``."""


def _logsumexp(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def _log_inverse_density(mu: np.ndarray, bins: int, alpha: float) -> np.ndarray:
    """``-log(Q_i(mu_i) + alpha)`` per face and dimension, (n, k).

    ``Q_i`` is the histogram of dimension i over ``bins`` equal-width bins spanning the faces' range, as bin
    masses that sum to 1 (so ``alpha`` means the same whatever the latent scale; latents shrink to std ~0.07 at
    a high KL weight). A dimension where all faces agree is one bin.
    """
    n, k = mu.shape
    mu = mu / np.maximum(np.abs(mu).max(axis=0), np.finfo(np.float64).tiny)  # scale-free; keeps 1e308 from overflowing
    lo, width = mu.min(axis=0), np.ptp(mu, axis=0)
    scale = np.divide(bins, width, out=np.zeros_like(width), where=width > 0)
    bin_idx = np.clip(((mu - lo) * scale).astype(np.int64), 0, bins - 1)  # (n, k); max lands in last bin
    flat = bin_idx + np.arange(k) * bins
    mass = np.bincount(flat.ravel(), minlength=k * bins).reshape(k, bins) / n  # (k, bins), rows sum to 1
    return -np.log(np.take_along_axis(mass, bin_idx.T, axis=1).T + alpha)


def _normalise_log(log_w: np.ndarray) -> np.ndarray:
    probs = np.exp(log_w - _logsumexp(log_w))
    return probs / probs.sum()


def product_rule(mu: np.ndarray, bins: int = DEFAULT_BINS, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The paper's rule (a comparison Lab 3 runs): ``p(x)`` proportional to ``prod_i 1 / (Q_i(mu_i(x)) + alpha)``, in
    log space so 100 dimensions cannot under- or overflow."""
    mu = _check_mu(mu)
    return _normalise_log(_log_inverse_density(mu, bins, alpha).sum(axis=1))


def max_rule(mu: np.ndarray, bins: int = DEFAULT_BINS, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The reference lab's rule (Lab 3's first exercise): per dimension, weights ``1 / (Q_i + alpha)`` normalised
    over faces; a face's weight is its largest over dimensions, normalised to sum to 1."""
    mu = _check_mu(mu)
    log_inv = _log_inverse_density(mu, bins, alpha)
    return _normalise_log((log_inv - _logsumexp(log_inv, axis=0)).max(axis=1))


PRINCIPAL_COMPONENTS = 2
"""How many leading principal directions of the latent means :func:`principal_max_rule` takes the density along."""


def principal_directions(mu: np.ndarray, components: int = PRINCIPAL_COMPONENTS) -> np.ndarray:
    """The faces' latent means projected on their ``components`` leading principal directions, each scaled to unit
    variance: the few directions along which the faces differ most (with a face-centred reconstruction, skin tone
    is among them; benchmarks/results/face_focus_*.md)."""
    mu = _check_mu(mu)
    components = integer("components", components)
    if len(mu) < 2:
        raise ValueError(f"mu holds {len(mu)} face; principal directions need at least 2 faces.")
    mu = mu / max(np.abs(mu).max(), np.finfo(np.float64).tiny)  # scale-free, so codes near 1e308 cannot overflow
    centred = mu - mu.mean(axis=0)
    if not np.abs(centred).max() > 0:
        raise ValueError("mu: every face has the same latent code, so no direction tells faces apart; the latent "
                         "space has collapsed (Lab 2 shows how to count active dimensions).")
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(components, int((s > s[0] * 1e-9).sum()))
    z = centred @ vt[:k].T
    return z / z.std(axis=0)


def principal_max_rule(mu: np.ndarray, bins: int = DEFAULT_BINS, alpha: float = DEFAULT_ALPHA,
                       components: int = PRINCIPAL_COMPONENTS) -> np.ndarray:
    """The labs' rule (Lab 3's second exercise): the max rule on the ``components`` leading principal directions of
    the latent means instead of on every latent dimension: a rare group that differs from the others along one of the
    main axes of variation keeps its weight, instead of being diluted by 32 dimensions of background, pose and
    lighting."""
    number("alpha", alpha, low=0.0, low_open=True, hint=" (the density smoothing; 0 or below lets one empty bin "
                                                        "decide)")
    return max_rule(principal_directions(mu, components), bins, alpha)


RULES: dict[str, Rule] = {"product": product_rule, "max": max_rule, "principal_max": principal_max_rule}


def check_weight_options(bins: int, alpha: float, rule: str | Rule) -> None:
    """Raise ValueError for options :func:`histogram_weights` cannot use (so a trainer can fail before fit)."""
    integer("bins", bins)
    number("alpha", alpha, low=0.0, low_open=rule == "principal_max", hint=" (the density smoothing)")
    if not callable(rule) and rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)} (paper: 'product', reference lab: 'max') or a "
                         f"function rule(mu, bins, alpha) -> probabilities, got {rule!r}.")


@dataclass(frozen=True)
class ResamplingOptions:
    """How the DB-VAE re-weights its faces, in one object that the trainer, the callback and
    :func:`compute_sampling_probs` share; checked once, when it is made, so a bad option fails before training.

    ``rule`` is a name in :data:`RULES` or your own ``rule(mu, bins, alpha) -> probabilities``; ``dims`` restricts
    the density to some latent dimensions; the weights are computed at the start of epoch ``start_epoch`` (before it
    the latent space is untrained) and, unless ``every`` is None (computed once: :data:`RECOMPUTE_EVERY`), again
    every ``every`` epochs after it.
    """

    rule: str | Rule = DEFAULT_RULE
    alpha: float = DEFAULT_ALPHA
    bins: int = DEFAULT_BINS
    dims: Sequence[int] | None = None
    every: int | None = RECOMPUTE_EVERY
    start_epoch: int = 1

    def __post_init__(self) -> None:
        check_weight_options(self.bins, self.alpha, self.rule)
        if self.every is not None:
            integer("every", self.every, hint=" (or None: computed once)")
        integer("start_epoch", self.start_epoch, minimum=0)
        if self.dims is not None:
            object.__setattr__(self, "dims", tuple(self.dims))  # frozen: a caller's list cannot change it later


def check_options(options: Any) -> ResamplingOptions:
    """``options`` if it is a :class:`ResamplingOptions` (already checked when made), else a ValueError saying how to
    make one."""
    return instance("The resampling settings", options, ResamplingOptions, "ResamplingOptions(rule='max', alpha=1e-3)")


def rule_name(rule: str | Rule) -> str:
    """A rule's name for logs and warnings: the registered name, else the function's."""
    return rule if isinstance(rule, str) else getattr(rule, "__name__", type(rule).__name__)


def _check_mu(mu: np.ndarray) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"mu must be a non-empty (n_faces, latent_dim) array of latent means, got {mu.shape}.")
    if not np.isfinite(mu).all():
        raise ValueError(
            f"mu has {int((~np.isfinite(mu)).sum())} non-finite values; the encoder diverged "
            "(check the learning rate / KL weight) or the input images are not in [0, 1]."
        )
    return mu


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
    bins: int = DEFAULT_BINS,
    alpha: float = DEFAULT_ALPHA,
    rule: str | Rule = DEFAULT_RULE,
    dims: Sequence[int] | None = None,
) -> np.ndarray:
    """Sampling probability per face (float64, sums to 1) from latent means ``mu`` (N, k) by ``rule``: a name
    in :data:`RULES` or your own function ``rule(mu, bins, alpha)``. ``dims`` restricts the histograms to some
    latent dimensions. Degenerate input (one face, identical latents) gives uniform probabilities."""
    return _weights(mu, ResamplingOptions(rule=rule, alpha=alpha, bins=bins, dims=dims))


def _weights(mu: np.ndarray, options: ResamplingOptions) -> np.ndarray:
    """:func:`histogram_weights` with options already checked."""
    mu = _check_mu(mu)
    mu = mu[:, _select_dims(options.dims, mu.shape[1])]
    fn = RULES[options.rule] if isinstance(options.rule, str) else options.rule
    probs = np.asarray(fn(mu, options.bins, options.alpha), dtype=np.float64)
    name = rule_name(options.rule)
    if probs.shape != (len(mu),):
        raise ValueError(f"The resampling rule {name!r} returned shape {probs.shape}; it must return one "
                         f"probability per face, shape ({len(mu)},).")
    if not np.isfinite(probs).all() or (probs < 0).any() or not probs.max() > 0:
        raise ValueError(f"The resampling rule {name!r} returned weights that are negative, non-finite or all "
                         "zero; every face needs a finite weight >= 0 and at least one a positive one.")
    probs = probs / probs.max()  # weights near the float64 limit must not overflow the sum
    return probs / probs.sum()


def encode_posteriors(model: Any, dataset: FaceDataset, *, batch_size: int = 256,
                      progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and log-variances (each n_faces x k) of the dataset's faces, in ``dataset.face_idx`` order.

    Reads only ``dataset.images`` and ``dataset.face_idx`` (labels), never ``dataset.attributes``.
    ``model`` is anything with ``encode(x) -> (mu, logvar)`` (a :class:`~lab_utils.nn.models.DBVAE` or VAE).
    """
    if not callable(getattr(model, "encode", None)):
        raise ValueError(f"model must have an encode(x) -> (mu, logvar) method (a DBVAE or VAE), got "
                         f"{type(model).__name__}.")
    batch_size = integer("batch_size", batch_size)
    face_idx = dataset.face_idx
    if len(face_idx) == 0:
        raise ValueError(f"{dataset.name}: no faces (label 1) to encode.")
    if progress is None:
        progress = len(face_idx) >= PROGRESS_MIN_IMAGES
    means, logvars = [], []
    for start in tqdm(range(0, len(face_idx), batch_size), desc="encode faces", unit="batch",
                      disable=not progress, leave=False):
        rows = face_idx[start: start + batch_size]
        x = dataset.images[rows].astype(np.float32) / 255.0
        mu, logvar = model.encode(pad_batch(x, batch_size))
        means.append(ops.convert_to_numpy(mu)[: len(rows)])
        logvars.append(ops.convert_to_numpy(logvar)[: len(rows)])
    return np.concatenate(means, axis=0), np.concatenate(logvars, axis=0)


def encode_faces(model: Any, dataset: FaceDataset, *, batch_size: int = 256,
                 progress: bool | None = None) -> np.ndarray:
    """Latent means (n_faces, k) of the dataset's faces, in ``dataset.face_idx`` order: what the resampler
    reads (see :func:`encode_posteriors`)."""
    return encode_posteriors(model, dataset, batch_size=batch_size, progress=progress)[0]


def compute_sampling_probs(
    model: Any,
    dataset: FaceDataset,
    options: ResamplingOptions = ResamplingOptions(),
    *,
    batch_size: int = 256,
    progress: bool | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Encode the faces and turn their latent means into sampling probabilities (``face_idx`` order) by
    ``options``, with :func:`resampling_diagnostics` of the result."""
    check_options(options)
    mu = encode_faces(model, dataset, batch_size=batch_size, progress=progress)
    probs = _weights(mu, options)
    return probs, resampling_diagnostics(probs)
