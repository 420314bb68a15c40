"""The DB-VAE (Amini et al., AIES 2019), top to bottom: its loss, the model, the rule that turns latent means into
sampling probabilities, the weighted batches, and the per-epoch recompute that ties them together inside ``fit()``.

This file is the method. What sits around it lives elsewhere: argument checks (``core.validation``), encoding a
dataset's faces (``evaluation.latents``), the diagnostics of a draw and its warning (``evaluation.sampling``), the
encoder and decoder (``nn.models``), and the trainer that wires it all up (``training.trainers.train_dbvae``).

Fairness by construction: nothing here reads an attribute (skin tone, gender, group). The rules take latent means
only, and the recompute reads nothing of a :class:`~lab_utils.data.dataset.FaceDataset` but its images and face
labels; whatever the sampling achieves for a group, it achieves unsupervised, which is the paper's claim. A lab
measures the effect afterwards, from attributes, outside this file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Sequence

import keras
import numpy as np
from keras import ops

from lab_utils.core import validation
from lab_utils.core.validation import instance, integer, number
from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.latents import encode_faces
from lab_utils.evaluation.sampling import concentration_warning, resampling_diagnostics
from lab_utils.nn import backend
from lab_utils.nn.losses import (
    DBVAE_KL_WEIGHT,
    DBVAE_RECON,
    as_vector,
    classification_loss,
    static_shape,
    vae_loss,
)
from lab_utils.nn.models import LatentModel

# --- 1. The loss (Lab 3's Exercise 1) -------------------------------------------------------------------------------


def dbvae_loss(x: Any, x_hat: Any, y: Any, logit: Any, mu: Any, logvar: Any, kl_weight: float,
               recon: str = "l1") -> Any:
    """DB-VAE loss per sample, shape (B,): Lab 3's Exercise 1, and the DB-VAE's loss.

    ``classification + 1[face] * (reconstruction + kl_weight * KL)``: the face indicator is the gradient mask,
    so a non-face sends exactly zero gradient through the VAE terms.
    """
    y = as_vector("y", y)
    vae = vae_loss(x, x_hat, mu, logvar, kl_weight, recon)
    total = classification_loss(y, logit) + y * vae
    if static_shape(total) is not None and len(total.shape) != 1:
        raise ValueError(f"DB-VAE loss has shape {tuple(total.shape)}, expected (B,).")
    return total


# --- 2. The model: a face detector whose encoder is also a VAE on faces ---------------------------------------------


@keras.saving.register_keras_serializable(package="lab_utils")
class DBVAE(LatentModel):
    """Debiasing VAE: encoder outputs are ``[face logit, k means, k log-variances]``.

    It trains on ``loss_fn(x, x_hat, y, logit, mu, logvar, kl_weight, recon)`` per sample, averaged over the batch
    (default :func:`dbvae_loss`, or the student's). ``call`` returns a dict with the face ``logit`` (B, 1),
    ``x_hat``, ``mu`` and ``logvar``.
    """

    n_extra = 1
    kind = "dbvae"
    reference_loss = staticmethod(dbvae_loss)

    def __init__(self, latent_dim: int = 32, kl_weight: float = DBVAE_KL_WEIGHT, recon: str = DBVAE_RECON,
                 seed: int | None = None, loss_fn: Callable[..., Any] | None = None,
                 reparameterize_fn: Callable[..., Any] | None = None, encoder_body: str = "cnn",
                 **kwargs: Any) -> None:
        super().__init__(latent_dim, kl_weight, recon, seed, loss_fn, reparameterize_fn, encoder_body, **kwargs)
        self.classification_tracker = keras.metrics.Mean(name="classification_loss")
        self.accuracy_tracker = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # on logits
        self.build(None)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        if y is None:
            raise ValueError("DBVAE needs face labels: fit/evaluate it on (x, y) with y = 1 for faces, 0 otherwise.")
        y = ops.reshape(ops.cast(y, "float32"), (-1,))
        logit = y_pred["logit"]
        per_sample = self.loss_fn(x, y_pred["x_hat"], y, logit, y_pred["mu"], y_pred["logvar"], self.kl_weight,
                                  self.recon)
        self.classification_tracker.update_state(classification_loss(y, logit))
        self.track_vae_terms(x, y_pred, faces=y)  # the VAE terms apply to faces only
        self.accuracy_tracker.update_state(y, ops.reshape(ops.cast(logit, "float32"), (-1,)))
        return backend.replica_mean(per_sample)


# --- 3. The resampling rules: latent means in, one sampling probability per face out (Lab 3's Exercises 2-3) --------

DEFAULT_RULE = "principal_max"
"""The labs' rule (Lab 3's Exercise 3): the reference lab's max rule, taken along the leading principal directions of
the latent means. In the DB-VAE's live latent space the reference lab's per-dimension max rule hardly moves the
sampling, and the paper's product over 32 dimensions collapses onto a few faces (benchmarks/FINDINGS.md); both stay
registered, one argument away."""
DEFAULT_ALPHA = 1e-3
DEFAULT_BINS = 10
PRINCIPAL_COMPONENTS = 2
"""How many leading principal directions of the latent means :func:`principal_max_rule` takes the density along."""

Rule = Callable[..., np.ndarray]
"""A resampling rule: ``rule(mu, bins, alpha) -> one sampling probability per face``."""


def _logsumexp(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def _log_inverse_density(mu: np.ndarray, bins: int, alpha: float) -> np.ndarray:
    """``-log(Q_i(mu_i) + alpha)`` per face and dimension, (n, k).

    ``Q_i`` is the histogram of dimension i over ``bins`` equal-width bins spanning the faces' range, as bin
    masses that sum to 1 (so ``alpha`` means the same whatever the latent scale). A dimension where all faces agree
    is one bin.
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
    mu = validation.latent_means(mu)
    return _normalise_log(_log_inverse_density(mu, bins, alpha).sum(axis=1))


def max_rule(mu: np.ndarray, bins: int = DEFAULT_BINS, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The reference lab's rule (Lab 3's Exercise 2): per dimension, weights ``1 / (Q_i + alpha)``
    normalised over faces; a face's weight is its largest over dimensions, normalised to sum to 1."""
    mu = validation.latent_means(mu)
    log_inv = _log_inverse_density(mu, bins, alpha)
    return _normalise_log((log_inv - _logsumexp(log_inv, axis=0)).max(axis=1))


def principal_directions(mu: np.ndarray, components: int = PRINCIPAL_COMPONENTS) -> np.ndarray:
    """The faces' latent means projected on their ``components`` leading principal directions, each scaled to unit
    variance: the few directions along which the faces differ most."""
    mu = validation.latent_means(mu)
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
    """The labs' rule (Lab 3's Exercise 3): the max rule on the ``components`` leading principal
    directions of the latent means instead of on every latent dimension, so a rare group that differs from the
    others along one of the main axes of variation keeps its weight instead of being diluted by 32 dimensions of
    background, pose and lighting."""
    number("alpha", alpha, low=0.0, low_open=True, hint=" (the density smoothing; 0 or below lets one empty bin "
                                                        "decide)")
    return max_rule(principal_directions(mu, components), bins, alpha)


RULES: dict[str, Rule] = {"product": product_rule, "max": max_rule, "principal_max": principal_max_rule}


def rule_name(rule: str | Rule) -> str:
    """A rule's name for logs and warnings: the registered name, else the function's."""
    return rule if isinstance(rule, str) else getattr(rule, "__name__", type(rule).__name__)


# --- 4. How the rule is applied: one options object, latent means to sampling probabilities -------------------------

RECOMPUTE_EVERY: int | None = None
"""The labs' schedule: the sampling probabilities are computed once, at the start of epoch 1 from the latent space
one uniform epoch has learned, and kept (``None``); an integer recomputes them every that many epochs, as the paper
does every epoch (benchmarks/FINDINGS.md compares the two)."""


@dataclass(frozen=True)
class ResamplingOptions:
    """How the DB-VAE re-weights its faces, one object that the trainer, the callback and
    :func:`compute_sampling_probs` share; checked once, when it is made, so a bad option fails before training.

    ``rule`` is a name in :data:`RULES` or your own ``rule(mu, bins, alpha) -> probabilities``; ``dims`` restricts
    the density to some latent dimensions; the probabilities are computed at the start of epoch ``start_epoch``
    (before it the latent space is untrained) and, unless ``every`` is None (computed once:
    :data:`RECOMPUTE_EVERY`), again every ``every`` epochs after it.
    """

    rule: str | Rule = DEFAULT_RULE
    alpha: float = DEFAULT_ALPHA
    bins: int = DEFAULT_BINS
    dims: Sequence[int] | None = None
    every: int | None = RECOMPUTE_EVERY
    start_epoch: int = 1

    def __post_init__(self) -> None:
        integer("bins", self.bins)
        number("alpha", self.alpha, low=0.0, low_open=self.rule == "principal_max", hint=" (the density smoothing)")
        if not callable(self.rule) and self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)} (paper: 'product', reference lab: 'max') or a "
                             f"function rule(mu, bins, alpha) -> probabilities, got {self.rule!r}.")
        if self.every is not None:
            integer("every", self.every, hint=" (or None: computed once)")
        integer("start_epoch", self.start_epoch, minimum=0)
        if self.dims is not None:
            object.__setattr__(self, "dims", tuple(self.dims))  # frozen: a caller's list cannot change it later


def check_options(options: Any) -> ResamplingOptions:
    """``options`` if it is a :class:`ResamplingOptions` (already checked when made), else a ValueError saying how to
    make one."""
    return instance("The resampling settings", options, ResamplingOptions, "ResamplingOptions(rule='max', alpha=1e-3)")


def apply_rule(mu: np.ndarray, options: ResamplingOptions) -> np.ndarray:
    """Sampling probability per face (float64, sums to 1) from latent means ``mu`` (n, k) by ``options``."""
    mu = validation.latent_means(mu)
    mu = mu[:, validation.dimension_indices("dims", options.dims, mu.shape[1])]
    fn = RULES[options.rule] if isinstance(options.rule, str) else options.rule
    return validation.rule_output(rule_name(options.rule), fn(mu, options.bins, options.alpha), len(mu))


def histogram_weights(mu: np.ndarray, *, bins: int = DEFAULT_BINS, alpha: float = DEFAULT_ALPHA,
                      rule: str | Rule = DEFAULT_RULE, dims: Sequence[int] | None = None) -> np.ndarray:
    """:func:`apply_rule` with the options as keywords. Degenerate input (one face, identical latents) gives uniform
    probabilities."""
    return apply_rule(mu, ResamplingOptions(rule=rule, alpha=alpha, bins=bins, dims=dims))


def compute_sampling_probs(model: Any, dataset: FaceDataset, options: ResamplingOptions = ResamplingOptions(), *,
                           batch_size: int = 256, progress: bool | None = None
                           ) -> tuple[np.ndarray, dict[str, float]]:
    """Encode the dataset's faces and turn their latent means into sampling probabilities (``face_idx`` order), with
    the :func:`~lab_utils.evaluation.sampling.resampling_diagnostics` of the result."""
    mu = encode_faces(model, dataset, batch_size=batch_size, progress=progress)
    probs = apply_rule(mu, check_options(options))
    return probs, resampling_diagnostics(probs)


# --- 5. Weighted batches: half faces drawn by those probabilities, half non-faces drawn uniformly -------------------


class FaceBatchSampler:
    """Reproducible (``seed``) random training batches from a :class:`FaceDataset`, drawn with replacement as in the
    paper: ``round(B * face_fraction)`` faces by the current sampling probabilities, then uniform non-faces. It keeps
    count of who was drawn, so a lab can show the effect the method claims."""

    def __init__(self, dataset: FaceDataset, batch_size: int = 32, *, face_fraction: float = 0.5,
                 sampling_probs: np.ndarray | None = None, seed: int = 0) -> None:
        batch_size = integer("batch_size", batch_size)
        if not (isinstance(face_fraction, Real) and 0.0 <= face_fraction <= 1.0):
            raise ValueError(
                f"face_fraction must be a number in [0, 1] (share of faces per batch), got {face_fraction!r}."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.face_fraction = float(face_fraction)
        self.n_faces_per_batch = round(self.batch_size * self.face_fraction)
        self._face_idx = dataset.face_idx
        self._nonface_idx = dataset.nonface_idx
        validation.batch_composition(dataset.name, self.batch_size, self.face_fraction, self.n_faces_per_batch,
                                     len(self._face_idx), len(self._nonface_idx))
        self._rng = np.random.default_rng(validation.seed(seed))
        self._labels = np.concatenate([np.ones(self.n_faces_per_batch, np.float32),
                                       np.zeros(self.batch_size - self.n_faces_per_batch, np.float32)])
        self._counts = np.zeros(self.n_faces, np.int64)
        self.last_face_indices = np.empty(0, np.int64)
        self.set_sampling_probs(np.ones(self.n_faces) if sampling_probs is None else sampling_probs)

    @property
    def n_faces(self) -> int:
        return len(self._face_idx)

    @property
    def sampling_probs(self) -> np.ndarray:
        """Normalised draw probability of each face, in ``dataset.face_idx`` order (a copy)."""
        return self._probs.copy()

    @property
    def drawn_face_counts(self) -> np.ndarray:
        """How often each face (``dataset.face_idx`` order) was drawn since the last :meth:`reset_counts`."""
        return self._counts.copy()

    def reset_counts(self) -> None:
        self._counts[:] = 0

    def set_sampling_probs(self, p: np.ndarray) -> None:
        """Replace the face weights (any non-negative scale; normalised here). Takes effect on the next batch."""
        self._probs = validation.sampling_probs(p, self.n_faces)
        cdf = np.cumsum(self._probs)
        self._cdf = cdf / cdf[-1]  # last entry exactly 1, so a uniform draw in [0, 1) always lands on a face

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch ``(x, y)``: x float32 (B, 64, 64, 3) RGB in [0, 1], y float32 (B,), faces first."""
        n_faces = self.n_faces_per_batch
        # side="right" never lands on a zero-weight face: its cdf step has zero width.
        positions = np.searchsorted(self._cdf, self._rng.random(n_faces), side="right")
        n_nonfaces = self.batch_size - n_faces
        nonfaces = self._nonface_idx[self._rng.integers(len(self._nonface_idx), size=n_nonfaces)] \
            if n_nonfaces else self._nonface_idx[:0]
        self.last_face_indices = self._face_idx[positions]
        self._counts += np.bincount(positions, minlength=self.n_faces)
        x = self.dataset.images[np.concatenate([self.last_face_indices, nonfaces])].astype(np.float32)
        x /= 255.0
        return x, self._labels.copy()

    def as_keras_dataset(self, steps_per_epoch: int) -> keras.utils.PyDataset:
        """For ``model.fit``: each epoch is ``steps_per_epoch`` fresh batches drawn with the probabilities current at
        that time, so ``set_sampling_probs`` from a callback applies from the next epoch on. (Keras draws two extra
        batches once, before training, to learn the batch shapes.)"""
        return _SamplerDataset(self, steps_per_epoch)


class _SamplerDataset(keras.utils.PyDataset):
    """Keras view of a sampler; single-worker because the sampler's RNG and counts are shared state."""

    def __init__(self, sampler: FaceBatchSampler, steps_per_epoch: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.sampler = sampler
        self.steps_per_epoch = integer("steps_per_epoch", steps_per_epoch)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # Batches are random draws with replacement, so the index only bounds the epoch.
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch index {index} out of range for {self.steps_per_epoch} steps per epoch.")
        return self.sampler.sample()


# --- 6. The per-epoch recompute inside fit(): the model's own latent space re-weights the sampler -------------------


class ResamplingCallback(keras.callbacks.Callback):
    """At the start of an epoch, re-weight the sampler's faces from the model's current latent means.

    The probabilities are first computed at ``options.start_epoch`` (default 1): before any training the latent
    space is random, so the first epoch samples uniformly. They are kept from then on, or recomputed every
    ``options.every`` epochs.

    ``log`` gets one entry per epoch: ``epoch``, ``recomputed`` (bool), ``diagnostics`` (ESS, max/mean weight; None
    when not recomputed), ``sampling_probs`` in use and ``drawn_face_counts`` (how often each face, in ``face_idx``
    order, was drawn that epoch), so a lab can compute, from attributes it holds outside the resampler, e.g. the
    darker share of drawn faces. With ``resample=False`` it only records (the uniform-sampling control).
    """

    def __init__(self, sampler: FaceBatchSampler, options: ResamplingOptions = ResamplingOptions(), *,
                 resample: bool = True, batch_size: int = 256) -> None:
        super().__init__()
        self.sampler = sampler
        self.options = check_options(options)
        self.resample = bool(resample)
        self.batch_size = integer("batch_size", batch_size)
        self.log: list[dict[str, Any]] = []
        self._diagnostics: dict[str, float] | None = None

    def _due(self, epoch: int) -> bool:
        start, every = self.options.start_epoch, self.options.every
        due = epoch == start if every is None else epoch >= start and (epoch - start) % every == 0
        return self.resample and due

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._diagnostics = None
        if self._due(epoch):
            probs, self._diagnostics = compute_sampling_probs(self.model, self.sampler.dataset, self.options,
                                                              batch_size=self.batch_size)
            self.sampler.set_sampling_probs(probs)
            message = concentration_warning(self._diagnostics, rule_name(self.options.rule), self.options.alpha)
            if message:
                warnings.warn(f"Epoch {epoch}: {message}", RuntimeWarning, stacklevel=2)
        self.sampler.reset_counts()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.log.append({
            "epoch": epoch,
            "recomputed": self._diagnostics is not None,
            "diagnostics": self._diagnostics,
            "sampling_probs": self.sampler.sampling_probs,
            "drawn_face_counts": self.sampler.drawn_face_counts,
        })
