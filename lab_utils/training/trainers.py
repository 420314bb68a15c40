"""Training loops for the CNN, VAE and DB-VAE: ``compile()``/``fit()`` on :class:`FaceBatchSampler` batches, each
set up by one :class:`~lab_utils.training.config.TrainingConfig` (batch, learning rate, EMA, resampling).

Evaluation uses an exponential moving average (EMA) of the weights, which varies much less between seeds than
the last step's weights. Adam keeps the average
(``use_ema=True``) and Keras writes it into the model at the end of ``fit()``, so after every ``train_*``
call the model holds the averaged weights. Note that a second ``fit()`` therefore resumes from the average.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from lab_utils.data.dataset import FaceDataset
from lab_utils.nn import backend
from lab_utils.nn.models import VAE, predict_logits
from lab_utils.core.env import fit_verbosity, seed_everything
from lab_utils.training.config import TrainingConfig, check_config
from lab_utils.training.debiasing import DBVAE, FaceBatchSampler, ResamplingCallback
from lab_utils.evaluation.latents import PROGRESS_MIN_IMAGES
from lab_utils.core import validation
from lab_utils.core.validation import integer

EMA_MIN_HORIZONS = 3.0
"""Warn when training is shorter than this many EMA time constants 1/(1 - momentum): the average would
still hold more than exp(-3) ~ 5% of the untrained initial weights."""
DEFAULT_CONFIG = TrainingConfig()


def _default(steps_per_epoch: int | None, one_pass: int) -> int:
    """``steps_per_epoch`` as given (validated later), else one pass over the data (at least one step)."""
    return max(1, one_pass) if steps_per_epoch is None else steps_per_epoch


def _optimizer(config: TrainingConfig, total_steps: int) -> keras.optimizers.Adam:
    momentum = config.ema_momentum
    if momentum is None:
        return keras.optimizers.Adam(config.learning_rate)
    horizons = total_steps * (1.0 - momentum)
    if horizons < EMA_MIN_HORIZONS:
        warnings.warn(
            f"{total_steps} training steps are only {horizons:.1f} EMA time constants at ema_momentum="
            f"{momentum}: the averaged weights keep {momentum ** total_steps:.0%} of the untrained "
            "initial weights. Train longer, lower ema_momentum, or make the config with ema_momentum=None.",
            stacklevel=4,  # the user's train_* call
        )
    return keras.optimizers.Adam(config.learning_rate, use_ema=True, ema_momentum=float(momentum))


def _fit(
    model: keras.Model,
    sampler: FaceBatchSampler,
    *,
    epochs: int,
    steps_per_epoch: int,
    config: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: str | int,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
    **compile_kwargs: Any,
) -> keras.callbacks.History:
    epochs = integer("epochs", epochs)
    steps_per_epoch = integer("steps_per_epoch", steps_per_epoch)
    steps_per_execution = integer("steps_per_execution", steps_per_execution)
    with backend.training_scope(model):  # the tf.distribute strategy the model was built under, if any
        model.compile(optimizer=_optimizer(config, epochs * steps_per_epoch),
                      jit_compile=jit_compile, steps_per_execution=steps_per_execution, **compile_kwargs)
        history = model.fit(sampler.as_keras_dataset(steps_per_epoch), epochs=epochs,
                            callbacks=list(callbacks), verbose=fit_verbosity(verbose))
    backend.unalias_after_fit(model)
    return history


def train_classifier(
    model: keras.Model,
    train: FaceDataset,
    *,
    epochs: int,
    config: TrainingConfig = DEFAULT_CONFIG,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    sampling_probs: np.ndarray | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.callbacks.History:
    """Train a logit-output classifier (the CNN) on half-face batches; the model ends up holding EMA weights.

    ``steps_per_epoch`` defaults to one pass over the data (``len(train) // batch_size``); ``sampling_probs``
    (``train.face_idx`` order) fixes the face sampling, e.g. for a label-aware oracle.
    """
    if isinstance(model, (VAE, DBVAE)):
        raise ValueError(f"train_classifier trains plain classifiers; use train_vae/train_dbvae for "
                         f"{type(model).__name__}.")
    batch_size = check_config(config).batch_size
    seed_everything(seed)
    sampler = FaceBatchSampler(train, batch_size, sampling_probs=sampling_probs, seed=seed)
    return _fit(
        model, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, len(train) // batch_size),
        config=config, callbacks=callbacks, verbose=verbose,
        jit_compile=jit_compile, steps_per_execution=steps_per_execution,
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],  # logits: 0 <=> p = 0.5
    )


def train_vae(
    vae: VAE,
    train: FaceDataset,
    *,
    epochs: int,
    config: TrainingConfig = DEFAULT_CONFIG,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.callbacks.History:
    """Train a faces-only VAE (batches of faces only); ``steps_per_epoch`` defaults to one pass over faces."""
    if not isinstance(vae, VAE):
        raise ValueError(f"train_vae expects a lab_utils.nn.models.VAE, got {type(vae).__name__}.")
    batch_size = check_config(config).batch_size
    seed_everything(seed)
    sampler = FaceBatchSampler(train, batch_size, face_fraction=1.0, seed=seed)
    return _fit(
        vae, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, sampler.n_faces // batch_size),
        config=config, callbacks=callbacks, verbose=verbose,
        jit_compile=jit_compile, steps_per_execution=steps_per_execution,
    )


def train_dbvae(
    dbvae: DBVAE,
    train: FaceDataset,
    *,
    epochs: int,
    resample: bool = True,
    config: TrainingConfig = DEFAULT_CONFIG,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    sampling_probs: np.ndarray | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> tuple[keras.callbacks.History, list[dict[str, Any]]]:
    """Train a DB-VAE on half-face batches, re-weighting faces by latent density as ``config.resampling`` says (its
    rule, smoothing and schedule; see :class:`ResamplingCallback`). ``resample=False`` gives the uniform-sampling
    control with the same model, loss and log; with ``sampling_probs`` (``train.face_idx`` order) it gives a fixed-weight
    control such as a label-aware oracle (with resampling they only apply until the first recompute). The rule is a
    name in ``debiasing.RULES`` or your own function ``rule(mu, bins, alpha) -> probabilities`` (Lab 3 trains with
    the student's); a warning says when the weights collapse onto a few faces.
    Returns ``(history, resampling_log)``; the model ends up holding EMA weights.
    """
    if not isinstance(dbvae, DBVAE):
        raise ValueError(f"train_dbvae expects a lab_utils.training.debiasing.DBVAE, got {type(dbvae).__name__}.")
    batch_size = check_config(config).batch_size
    seed_everything(seed)
    sampler = FaceBatchSampler(train, batch_size, sampling_probs=sampling_probs, seed=seed)
    resampler = ResamplingCallback(sampler, config.resampling, resample=resample)
    history = _fit(
        dbvae, sampler, epochs=epochs, steps_per_epoch=_default(steps_per_epoch, len(train) // batch_size),
        config=config, callbacks=[resampler, *callbacks],
        verbose=verbose, jit_compile=jit_compile, steps_per_execution=steps_per_execution,
    )
    return history, resampler.log


def one_step_changes(model: DBVAE | VAE, x: np.ndarray, y: np.ndarray, *, learning_rate: float = 0.1
                     ) -> dict[str, float]:
    """Largest absolute change of the encoder's and of the decoder's weights after one plain SGD step on
    ``(x, y)``, with the model's own loss.

    A step of SGD moves each weight by ``learning_rate`` times its gradient, so a weight that does not move got
    exactly zero gradient: Lab 3 shows the face indicator's gradient mask this way, on every backend, without
    a gradient tape. It compiles the model (once, for any number of steps), so use a throwaway one.
    """
    if not isinstance(model, (VAE, DBVAE)):
        raise ValueError(f"one_step_changes expects a lab_utils VAE or DBVAE, got {type(model).__name__}.")
    parts = {"encoder": model.encoder, "decoder": model.decoder}
    before = {name: [np.array(w.numpy()) for w in part.trainable_weights] for name, part in parts.items()}
    optimizer = getattr(model, "optimizer", None)
    if not (isinstance(optimizer, keras.optimizers.SGD) and float(optimizer.learning_rate) == learning_rate
            and not optimizer.momentum):  # compile (and trace) once for several steps
        model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    model.train_on_batch(np.asarray(x, np.float32), np.asarray(y, np.float32))
    return {name: max(float(np.max(np.abs(np.asarray(w.numpy()) - b)))
                      for w, b in zip(part.trainable_weights, before[name]))
            for name, part in parts.items()}


def _images_and_scale(images_or_dataset: FaceDataset | np.ndarray) -> tuple[np.ndarray, bool]:
    """The images as given and whether they are uint8, to be scaled to [0, 1] per batch (not copied as float32, 4x
    the memory, up front)."""
    if isinstance(images_or_dataset, FaceDataset):
        return images_or_dataset.images, True
    return validation.images("images", images_or_dataset)


def predict_face_logits(
    model: keras.Model,
    images_or_dataset: FaceDataset | np.ndarray,
    batch_size: int = 256,
    *,
    progress: bool | None = None,
) -> np.ndarray:
    """Face logit per image, (N,) float64, for the CNN or a DB-VAE (anything returning one logit).

    What the threshold-free metrics rank (``logits=True``): a confident model's probabilities saturate at 1.0 and
    tie where its logits do not. Accepts a FaceDataset, uint8 images or float images in [0, 1]; converts one
    batch at a time.
    """
    if isinstance(model, VAE):
        raise ValueError("A VAE has no face classifier; predict with a CNN or a DBVAE.")
    batch_size = integer("batch_size", batch_size)
    images, is_uint8 = _images_and_scale(images_or_dataset)
    if progress is None:
        progress = len(images) >= PROGRESS_MIN_IMAGES
    logits = []
    for start in tqdm(range(0, len(images), batch_size), desc="predict", unit="batch", disable=not progress,
                      leave=False):
        x = images[start: start + batch_size].astype(np.float32)
        if is_uint8:
            x /= 255.0
        out = predict_logits(model, x)
        if out.size != len(x):
            raise ValueError(f"{model.name} returned shape {out.shape} for {len(x)} images; "
                             "predict_face_logits needs one face logit per image.")
        logits.append(out.reshape(-1))
    return np.concatenate(logits).astype(np.float64) if logits else np.empty(0, np.float64)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """float64 probabilities from logits, without overflow warnings (distinct up to a logit of about 37)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def predict_face_probs(
    model: keras.Model,
    images_or_dataset: FaceDataset | np.ndarray,
    batch_size: int = 256,
    *,
    progress: bool | None = None,
) -> np.ndarray:
    """Sigmoid face probability per image, (N,) float64, for the CNN or a DB-VAE.

    float64 keeps logits up to about 37 apart (float32 made every logit above 17.3 exactly 1.0); rank on
    :func:`predict_face_logits` where even that matters.
    """
    return sigmoid(predict_face_logits(model, images_or_dataset, batch_size, progress=progress))
