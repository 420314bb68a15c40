"""Keras 3 models: the baseline CNN face detector, a faces-only VAE and the DB-VAE, plus .keras save/load.

The VAE and DB-VAE follow keras-io's VAE example: a seeded ``Sampling`` layer, named functional
``encoder``/``decoder`` models, and a ``keras.Model`` subclass whose ``train_step`` computes the loss and
exposes its trackers through ``metrics``, so they train with ``compile()``/``fit()`` like any model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from lab_utils.files import atomic_path
from lab_utils.losses import RECONSTRUCTION_KINDS, dbvae_loss, kl_divergence, reconstruction_loss

CNN_FILTERS = (12, 24, 48, 72)
CNN_KERNELS = (5, 5, 3, 3)
DECODER_FILTERS = (48, 24, 12, 3)
DECODER_KERNELS = (3, 3, 5, 5)
LAB_KL_WEIGHT = 5e-4


def build_cnn(width: float = 1.0, name: str = "cnn", n_outputs: int = 1) -> keras.Model:
    """The reference lab's detector: four stride-2 conv + BN blocks, dense 512, ``n_outputs`` logits.

    ``width`` scales the filter counts; ``n_outputs`` > 1 turns the same body into the DB-VAE encoder.
    """
    inputs = keras.Input(shape=(64, 64, 3), name="image")
    x = inputs
    for i, (filters, kernel) in enumerate(zip(CNN_FILTERS, CNN_KERNELS)):
        x = layers.Conv2D(max(1, round(filters * width)), kernel, strides=2, padding="same",
                          activation="relu", name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    outputs = layers.Dense(n_outputs, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _check_latent_dim(latent_dim: int) -> int:
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}.")
    return int(latent_dim)


def build_encoder(latent_dim: int, n_extra: int = 0) -> keras.Model:
    """The CNN body with ``n_extra + 2 * latent_dim`` outputs: extra logits first, then means, then
    log-variances, the reference lab's layout (the DB-VAE uses ``n_extra=1`` for the face logit)."""
    latent_dim = _check_latent_dim(latent_dim)
    if isinstance(n_extra, bool) or not isinstance(n_extra, (int, np.integer)) or n_extra < 0:
        raise ValueError(f"n_extra must be an integer >= 0, got {n_extra!r}.")
    return build_cnn(name="encoder", n_outputs=int(n_extra) + 2 * latent_dim)


def build_decoder(latent_dim: int) -> keras.Model:
    """Mirror of the encoder: dense -> 4x4x72 -> four stride-2 transposed convs -> 64x64x3 in (0, 1).

    The last layer is a sigmoid (the lab's is a ReLU) so reconstructions live in the images' [0, 1] range.
    """
    latent_dim = _check_latent_dim(latent_dim)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(4 * 4 * 6 * CNN_FILTERS[0], activation="relu", name="dense")(inputs)
    x = layers.Reshape((4, 4, 6 * CNN_FILTERS[0]), name="reshape")(x)
    for i, (filters, kernel) in enumerate(zip(DECODER_FILTERS, DECODER_KERNELS)):
        last = i == len(DECODER_FILTERS) - 1
        x = layers.Conv2DTranspose(filters, kernel, strides=2, padding="same",
                                   activation="sigmoid" if last else "relu", name=f"deconv{i + 1}")(x)
    return keras.Model(inputs, x, name="decoder")


@keras.saving.register_keras_serializable(package="lab_utils")
class Sampling(layers.Layer):
    """Reparameterisation ``z = mu + exp(0.5 * logvar) * eps``: sampling stays differentiable in mu and
    logvar. Seeded, so a training run is reproducible."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        mu, logvar = inputs
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + ops.exp(0.5 * logvar) * eps

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def _check_loss_options(kl_weight: float, recon: str) -> None:
    if not (isinstance(kl_weight, (int, float, np.floating)) and np.isfinite(kl_weight) and kl_weight >= 0):
        raise ValueError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}.")
    if recon not in RECONSTRUCTION_KINDS:
        raise ValueError(f"recon must be one of {RECONSTRUCTION_KINDS}, got {recon!r}.")


def predict_batch(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One NumPy batch through Keras' compiled predict path (about 2x faster than an eager call).

    Under a multi-replica ``tf.distribute`` strategy Keras 3.15's ``predict_on_batch`` hands every replica the
    whole batch and concatenates the copies, so there the model is called directly instead.
    """
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return ops.convert_to_numpy(model(x, training=False))
    return np.asarray(model.predict_on_batch(x))


def _replica_mean(per_sample: Any) -> Any:
    """The batch mean as this replica's share of the global mean: under ``tf.distribute`` each replica sees
    1/n of the batch and the gradients are summed, so an unscaled mean would take n-times-too-large steps."""
    return ops.mean(per_sample) / tf.distribute.get_strategy().num_replicas_in_sync


def _apply_gradients(model: keras.Model, tape: tf.GradientTape, loss: Any) -> None:
    """One optimiser step on an already ``scale_loss``-ed loss; ``apply`` unscales under mixed precision."""
    grads = tape.gradient(loss, model.trainable_weights)
    model.optimizer.apply(grads, model.trainable_weights)


class _LatentModel(keras.Model):
    """What the VAE and DB-VAE share: encoder (``n_extra`` leading logits), decoder, Sampling, config."""

    n_extra = 0

    def __init__(self, latent_dim: int = 32, kl_weight: float = LAB_KL_WEIGHT, recon: str = "l1",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_loss_options(kl_weight, recon)
        self.latent_dim = _check_latent_dim(latent_dim)
        self.kl_weight = float(kl_weight)
        self.recon = recon
        self.seed = seed
        self.encoder = build_encoder(self.latent_dim, n_extra=self.n_extra)
        self.decoder = build_decoder(self.latent_dim)
        self.sampling = Sampling(seed, name="sampling")

    def build(self, input_shape: Any = None) -> None:
        # All weights exist once the functional encoder/decoder do, so subclasses build at the end of
        # __init__ (a custom train_step never calls the model, and saving an "unbuilt" model would warn).
        self.sampling.build(None)
        self.built = True

    def _split(self, out: Any) -> tuple[Any, Any, Any]:
        """Encoder output -> (extra logits, means, log-variances)."""
        n, k = self.n_extra, self.latent_dim
        return out[:, :n], out[:, n: n + k], out[:, n + k:]

    def encode(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """Latent means and log-variances, each (B, latent_dim): what the resampler reads.

        A NumPy batch at inference goes through :func:`predict_batch` (fast, which matters when re-encoding
        every face each epoch) and comes back as NumPy.
        """
        if isinstance(x, np.ndarray) and not training:
            out = predict_batch(self.encoder, x)
        else:
            out = self.encoder(x, training=training)
        _, mu, logvar = self._split(out)
        return mu, logvar

    def _latent(self, mu: Any, logvar: Any, training: bool) -> Any:
        """A sample while training; the mean at inference, so predictions and evaluation are deterministic."""
        return self.sampling((mu, logvar)) if training else mu

    def get_config(self) -> dict:
        return {**super().get_config(), "latent_dim": self.latent_dim, "kl_weight": self.kl_weight,
                "recon": self.recon, "seed": self.seed}


@keras.saving.register_keras_serializable(package="lab_utils")
class VAE(_LatentModel):
    """Faces-only VAE: loss = reconstruction + ``kl_weight`` * KL. ``call`` returns reconstructions.

    Labels in the data are ignored (train it on faces only).
    """

    def __init__(self, latent_dim: int = 32, kl_weight: float = LAB_KL_WEIGHT, recon: str = "l1",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(latent_dim, kl_weight, recon, seed, **kwargs)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.build(None)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.recon_loss_tracker, self.kl_loss_tracker]

    def call(self, x: Any, training: bool = False) -> Any:
        mu, logvar = self.encode(x, training=training)
        return self.decoder(self._latent(mu, logvar, training), training=training)

    def _loss_terms(self, x: Any, training: bool) -> dict[str, Any]:
        mu, logvar = self.encode(x, training=training)
        x_hat = self.decoder(self._latent(mu, logvar, training), training=training)
        recon = reconstruction_loss(x, x_hat, self.recon)
        kl = kl_divergence(mu, logvar)
        return {"total": recon + self.kl_weight * kl, "reconstruction": recon, "kl": kl}

    def _update_metrics(self, terms: dict[str, Any]) -> dict[str, Any]:
        self.total_loss_tracker.update_state(terms["total"])
        self.recon_loss_tracker.update_state(terms["reconstruction"])
        self.kl_loss_tracker.update_state(terms["kl"])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self._loss_terms(x, training=True)
            loss = self.optimizer.scale_loss(_replica_mean(terms["total"]))
        _apply_gradients(self, tape, loss)
        return self._update_metrics(terms)

    def test_step(self, data: Any) -> dict[str, Any]:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(self._loss_terms(x, training=False))


@keras.saving.register_keras_serializable(package="lab_utils")
class DBVAE(_LatentModel):
    """Debiasing VAE (Amini et al., AIES 2019): a face classifier whose encoder is also a VAE on faces.

    Encoder outputs are ``[face logit, k means, k log-variances]``. Per sample, loss =
    sigmoid_xent(face) + 1[face] * (reconstruction + ``kl_weight`` * KL), averaged over the batch, so
    non-faces train only the classifier. ``call`` returns the face logit, shape (B, 1) like the CNN's.
    """

    n_extra = 1

    def __init__(self, latent_dim: int = 32, kl_weight: float = LAB_KL_WEIGHT, recon: str = "l1",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(latent_dim, kl_weight, recon, seed, **kwargs)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.classification_loss_tracker = keras.metrics.Mean(name="classification_loss")
        self.recon_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.accuracy_tracker = keras.metrics.BinaryAccuracy(name="accuracy")
        self.build(None)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.classification_loss_tracker, self.recon_loss_tracker,
                self.kl_loss_tracker, self.accuracy_tracker]

    def call(self, x: Any, training: bool = False) -> Any:
        logit, _, _ = self._split(self.encoder(x, training=training))
        return logit

    def predict_face_prob(self, x: Any) -> np.ndarray:
        """Face probability per image, (B,); for large sets use ``lab_utils.training.predict_face_probs``."""
        return ops.convert_to_numpy(ops.sigmoid(self(x, training=False)))[:, 0]

    def _loss_terms(self, x: Any, y: Any, training: bool) -> dict[str, Any]:
        if y is None:
            raise ValueError("DBVAE needs face labels: fit/evaluate it on (x, y) with y = 1 for faces, 0 otherwise.")
        logit, mu, logvar = self._split(self.encoder(x, training=training))
        x_hat = self.decoder(self._latent(mu, logvar, training), training=training)
        terms = dbvae_loss(x, x_hat, y, logit, mu, logvar, self.kl_weight, self.recon)
        terms["logit"] = ops.reshape(logit, (-1,))
        return terms

    def _update_metrics(self, terms: dict[str, Any], y: Any) -> dict[str, Any]:
        y = ops.reshape(ops.cast(y, "float32"), (-1,))
        self.total_loss_tracker.update_state(terms["total"])
        self.classification_loss_tracker.update_state(terms["classification"])
        # VAE terms are averaged over the faces only: that is where they apply.
        self.recon_loss_tracker.update_state(terms["reconstruction"], sample_weight=y)
        self.kl_loss_tracker.update_state(terms["kl"], sample_weight=y)
        self.accuracy_tracker.update_state(y, ops.sigmoid(terms["logit"]))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self._loss_terms(x, y, training=True)
            loss = self.optimizer.scale_loss(_replica_mean(terms["total"]))
        _apply_gradients(self, tape, loss)
        return self._update_metrics(terms, y)

    def test_step(self, data: Any) -> dict[str, Any]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(self._loss_terms(x, y, training=False), y)


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save to a ``.keras`` file atomically (temporary file in the same folder, then ``os.replace``), so an
    interrupted save never leaves a half-written model where a notebook expects a good one."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Model path must end in '.keras' (the Keras 3 format), got {str(path)!r}.")
    with atomic_path(path, suffix=".tmp.keras") as tmp:  # Keras insists on the .keras ending
        model.save(tmp)
    return path


def load_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """Load a model saved by :func:`save_model`; the lab's custom classes are registered on import.

    ``compile=False`` by default: notebooks load models to predict, and the optimiser state is not needed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No model file at {str(path)!r}. Train and save one first (lab_utils.models.save_model) "
            "or check the path."
        )
    return keras.saving.load_model(path, compile=compile)
