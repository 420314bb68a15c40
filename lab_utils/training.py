"""Training loops for the CNN, VAE and DB-VAE: ``compile()``/``fit()`` on :class:`FaceBatchSampler` batches.

Evaluation uses an exponential moving average (EMA) of the weights: in the prototype, final weights varied
by 6-11 points of darker-group recall between seeds, the EMA (decay 0.995) by 1-4. Adam keeps the average
(``use_ema=True``) and Keras writes it into the model at the end of ``fit()``, so after every ``train_*``
call the model holds the averaged weights. Note that a second ``fit()`` therefore resumes from the average.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from lab_utils.data import IMAGE_SHAPE, FaceDataset
from lab_utils.models import DBVAE, VAE, predict_batch
from lab_utils.resampling import PROGRESS_MIN_IMAGES, check_weight_options, compute_face_probs
from lab_utils.sampler import FaceBatchSampler

LOW_ESS_FRACTION = 0.01
"""Warn when the resampling weights are worth fewer than this share of the training faces: on the ``cpu``
benchmark the paper's product rule at alpha 1e-3 drew from an ESS of a few faces and the DB-VAE's recall fell
to about zero in every group (benchmarks/results/debias.md)."""

EMA_MIN_HORIZONS = 3.0
"""Warn when training is shorter than this many EMA time constants 1/(1 - momentum): the average would
still hold more than exp(-3) ~ 5% of the untrained initial weights."""


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend at once, for reproducible CPU runs (call before building a model)."""
    keras.utils.set_random_seed(int(seed))


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def _default(steps_per_epoch: int | None, one_pass: int) -> int:
    """``steps_per_epoch`` as given (validated later), else one pass over the data (at least one step)."""
    return max(1, one_pass) if steps_per_epoch is None else steps_per_epoch


def _optimizer(learning_rate: float, ema_momentum: float | None, total_steps: int) -> keras.optimizers.Adam:
    if ema_momentum is None:
        return keras.optimizers.Adam(learning_rate)
    if not (isinstance(ema_momentum, (float, int)) and 0.0 <= ema_momentum < 1.0):
        raise ValueError(f"ema_momentum must be in [0, 1) or None (no averaging), got {ema_momentum!r}.")
    horizons = total_steps * (1.0 - ema_momentum)
    if horizons < EMA_MIN_HORIZONS:
        warnings.warn(
            f"{total_steps} training steps are only {horizons:.1f} EMA time constants at ema_momentum="
            f"{ema_momentum}: the averaged weights keep {ema_momentum ** total_steps:.0%} of the untrained "
            "initial weights. Train longer, lower ema_momentum, or pass ema_momentum=None.",
            stacklevel=4,  # the user's train_* call
        )
    return keras.optimizers.Adam(learning_rate, use_ema=True, ema_momentum=float(ema_momentum))


def _fit(
    model: keras.Model,
    sampler: FaceBatchSampler,
    *,
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float,
    ema_momentum: float | None,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: str | int,
    **compile_kwargs: Any,
) -> keras.callbacks.History:
    epochs = _check_positive_int("epochs", epochs)
    steps_per_epoch = _check_positive_int("steps_per_epoch", steps_per_epoch)
    with model.distribute_strategy.scope():  # the strategy the model was built under (tf.distribute), if any
        model.compile(optimizer=_optimizer(learning_rate, ema_momentum, epochs * steps_per_epoch),
                      **compile_kwargs)
        return model.fit(sampler.as_keras_dataset(steps_per_epoch), epochs=epochs,
                         callbacks=list(callbacks), verbose=verbose)


def train_classifier(
    model: keras.Model,
    train: FaceDataset,
    *,
    epochs: int,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    learning_rate: float = 5e-4,
    ema_momentum: float | None = 0.995,
    seed: int = 0,
    face_probs: np.ndarray | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> keras.callbacks.History:
    """Train a logit-output classifier (the CNN) on half-face batches; the model ends up holding EMA weights.

    ``steps_per_epoch`` defaults to one pass over the data (``len(train) // batch_size``); ``face_probs``
    (``train.face_idx`` order) fixes the face sampling, e.g. for a label-aware oracle.
    """
    if isinstance(model, (VAE, DBVAE)):
        raise ValueError(f"train_classifier trains plain classifiers; use train_vae/train_dbvae for "
                         f"{type(model).__name__}.")
    batch_size = _check_positive_int("batch_size", batch_size)
    set_seed(seed)
    sampler = FaceBatchSampler(train, batch_size, face_probs=face_probs, seed=seed)
    return _fit(
        model, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, len(train) // batch_size),
        learning_rate=learning_rate, ema_momentum=ema_momentum, callbacks=callbacks, verbose=verbose,
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],  # logits: 0 <=> p = 0.5
    )


def train_vae(
    vae: VAE,
    train: FaceDataset,
    *,
    epochs: int,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    learning_rate: float = 5e-4,
    ema_momentum: float | None = 0.995,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> keras.callbacks.History:
    """Train a faces-only VAE (batches of faces only); ``steps_per_epoch`` defaults to one pass over faces."""
    if not isinstance(vae, VAE):
        raise ValueError(f"train_vae expects a lab_utils.models.VAE, got {type(vae).__name__}.")
    batch_size = _check_positive_int("batch_size", batch_size)
    set_seed(seed)
    sampler = FaceBatchSampler(train, batch_size, face_fraction=1.0, seed=seed)
    return _fit(
        vae, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, sampler.n_faces // batch_size),
        learning_rate=learning_rate, ema_momentum=ema_momentum, callbacks=callbacks, verbose=verbose,
    )


class ResamplingCallback(keras.callbacks.Callback):
    """At the start of an epoch, re-weight the sampler's faces from the model's current latent means.

    The first recompute is at ``start_epoch`` (default 1): before any training the latent space is random,
    and the product rule on random latents put almost all weight on one face (ESS 1.1 of 10,000 faces,
    measured on the ``cpu`` benchmark), so the first epoch samples uniformly.

    ``log`` gets one entry per epoch: ``epoch``, ``recomputed`` (bool), ``diagnostics`` (ESS, max/mean
    weight; None when not recomputed), ``face_probs`` in use and ``drawn_face_counts`` (how often each
    face, in ``face_idx`` order, was drawn that epoch), so a lab can compute, from attributes it holds
    outside the resampler, e.g. the darker share of drawn faces. With ``resample=False`` it only records
    (the uniform-sampling control).
    """

    def __init__(
        self,
        sampler: FaceBatchSampler,
        *,
        resample: bool = True,
        every: int = 1,
        start_epoch: int = 1,
        bins: int = 10,
        alpha: float = 1e-3,
        rule: str = "product",
        dims: Sequence[int] | None = None,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        check_weight_options(bins, alpha, rule)
        self.sampler = sampler
        self.resample = bool(resample)
        self.every = _check_positive_int("every", every)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, (int, np.integer)) or start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch!r}.")
        self.start_epoch = int(start_epoch)
        self.weight_options = {"bins": bins, "alpha": alpha, "rule": rule, "dims": dims}
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.log: list[dict[str, Any]] = []
        self._diagnostics: dict[str, float] | None = None

    def _due(self, epoch: int) -> bool:
        return self.resample and epoch >= self.start_epoch and (epoch - self.start_epoch) % self.every == 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._diagnostics = None
        if self._due(epoch):
            probs, self._diagnostics = compute_face_probs(self.model, self.sampler.dataset,
                                                          batch_size=self.batch_size, **self.weight_options)
            self.sampler.set_face_probs(probs)
            self._warn_if_concentrated(epoch)
        self.sampler.reset_counts()

    def _warn_if_concentrated(self, epoch: int) -> None:
        ess, n = self._diagnostics["ess"], self._diagnostics["n_faces"]
        if ess < LOW_ESS_FRACTION * n:
            options = self.weight_options
            warnings.warn(
                f"Epoch {epoch}: the resampling weights are worth only {ess:.1f} of {n:.0f} faces (effective "
                f"sample size), so the detector sees the same few faces over and over (rule={options['rule']!r}, "
                f"alpha={options['alpha']:g}). Raise alpha, histogram fewer dims, or use rule='max'.",
                RuntimeWarning, stacklevel=2,
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.log.append({
            "epoch": epoch,
            "recomputed": self._diagnostics is not None,
            "diagnostics": self._diagnostics,
            "face_probs": self.sampler.face_probs,
            "drawn_face_counts": self.sampler.drawn_face_counts,
        })


def train_dbvae(
    dbvae: DBVAE,
    train: FaceDataset,
    *,
    epochs: int,
    resample: bool = True,
    rule: str = "product",
    alpha: float = 1e-3,
    bins: int = 10,
    dims: Sequence[int] | None = None,
    recompute_every: int = 1,
    resample_start_epoch: int = 1,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    learning_rate: float = 5e-4,
    ema_momentum: float | None = 0.995,
    seed: int = 0,
    face_probs: np.ndarray | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> tuple[keras.callbacks.History, list[dict[str, Any]]]:
    """Train a DB-VAE on half-face batches, re-weighting faces by latent density from epoch
    ``resample_start_epoch`` on (see :class:`ResamplingCallback`). ``resample=False`` gives the uniform-sampling
    control with the same model, loss and log; with ``face_probs`` (``train.face_idx`` order) it gives a
    fixed-weight control such as a label-aware oracle (with resampling they only apply until the first recompute).
    ``rule`` defaults to the paper's product; the labs use ``"max"`` (``lab_utils.experiments.DEFAULT_RULE``), and a
    warning says when the weights collapse onto a few faces.
    Returns ``(history, resampling_log)``; the model ends up holding EMA weights.
    """
    if not isinstance(dbvae, DBVAE):
        raise ValueError(f"train_dbvae expects a lab_utils.models.DBVAE, got {type(dbvae).__name__}.")
    batch_size = _check_positive_int("batch_size", batch_size)
    set_seed(seed)
    sampler = FaceBatchSampler(train, batch_size, face_probs=face_probs, seed=seed)
    resampler = ResamplingCallback(sampler, resample=resample, every=recompute_every,
                                   start_epoch=resample_start_epoch, bins=bins, alpha=alpha, rule=rule, dims=dims)
    history = _fit(
        dbvae, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, len(train) // batch_size),
        learning_rate=learning_rate, ema_momentum=ema_momentum, callbacks=[resampler, *callbacks],
        verbose=verbose,
    )
    return history, resampler.log


def _as_float_images(images_or_dataset: FaceDataset | np.ndarray) -> tuple[np.ndarray, bool]:
    """The images and whether they are uint8 (to scale per batch, not copy 4x the memory up front)."""
    if isinstance(images_or_dataset, FaceDataset):
        return images_or_dataset.images, True
    images = np.asarray(images_or_dataset)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (N, 64, 64, 3), got {images.shape}; pass a FaceDataset or "
                         "an array of 64x64 RGB images.")
    if images.dtype == np.uint8:
        return images, True
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}.")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError("float images must be in [0, 1] (the models' input range); divide uint8 images by 255.")
    return images, False


def predict_face_probs(
    model: keras.Model,
    images_or_dataset: FaceDataset | np.ndarray,
    batch_size: int = 256,
    *,
    progress: bool | None = None,
) -> np.ndarray:
    """Sigmoid face probability per image, (N,), for the CNN or a DB-VAE (anything returning one logit).

    Accepts a FaceDataset, uint8 images or float images in [0, 1]; converts one batch at a time.
    """
    if isinstance(model, VAE):
        raise ValueError("A VAE has no face classifier; predict with a CNN or a DBVAE.")
    batch_size = _check_positive_int("batch_size", batch_size)
    images, is_uint8 = _as_float_images(images_or_dataset)
    if progress is None:
        progress = len(images) >= PROGRESS_MIN_IMAGES
    logits = []
    for start in tqdm(range(0, len(images), batch_size), desc="predict", unit="batch", disable=not progress,
                      leave=False):
        x = images[start: start + batch_size].astype(np.float32)
        if is_uint8:
            x /= 255.0
        out = predict_batch(model, x)
        if out.size != len(x):
            raise ValueError(f"{model.name} returned shape {out.shape} for {len(x)} images; "
                             "predict_face_probs needs one face logit per image.")
        logits.append(out.reshape(-1))
    if not logits:
        return np.empty(0, np.float32)
    z = np.concatenate(logits).astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -z)).astype(np.float32)  # sigmoid without overflow warnings
