"""Keras 3 models: the baseline CNN face detector, a faces-only VAE and what it shares with the DB-VAE (whose own
class is in ``training/debiasing.py``, beside the rest of the method), plus .keras save/load.

The VAE and DB-VAE follow keras-io's newer VAE examples: a seeded ``Sampling`` layer, named functional
``encoder``/``decoder`` models, ``call`` returning everything the loss needs, and the loss in a
``compute_loss`` override built from ``keras.ops``, so ``compile()``/``fit()`` train them on TensorFlow, JAX
and PyTorch alike. The loss itself is an argument (``loss_fn``): the function a student writes in Lab 2 or 3 is
the one that trains.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
from keras import layers, ops

from lab_utils.core.files import atomic_path
from lab_utils.nn import backend
from lab_utils.nn.backbones import CNN_FILTERS, build_cnn, build_vgg
from lab_utils.nn.losses import (
    RECONSTRUCTION_KINDS,
    VAE_KL_WEIGHT,
    VAE_RECON,
    kl_divergence,
    reconstruction_loss,
    refuse_untrainable_loss,
    vae_loss,
)
from lab_utils.core import validation
from lab_utils.core.validation import integer, number

DECODER_FILTERS = (48, 24, 12, 3)
DECODER_KERNELS = (3, 3, 5, 5)
ENCODER_BODIES = ("cnn", "vgg")
"""The encoder bodies a VAE or DB-VAE can have: the labs' CNN (default) or the VGG-style body of Lab 5."""


def build_encoder(latent_dim: int, n_extra: int = 0, body: str = "cnn") -> keras.Model:
    """A detector body (one of :data:`ENCODER_BODIES`) with ``n_extra + 2 * latent_dim`` outputs: extra logits
    first, then means, then log-variances, the reference lab's layout (the DB-VAE uses ``n_extra=1`` for the face
    logit)."""
    latent_dim = integer("latent_dim", latent_dim)
    n_extra = integer("n_extra", n_extra, minimum=0)
    if body not in ENCODER_BODIES:
        raise ValueError(f"encoder_body must be one of {ENCODER_BODIES}, got {body!r}.")
    build = build_cnn if body == "cnn" else build_vgg
    return build(name="encoder", n_outputs=n_extra + 2 * latent_dim)


def build_decoder(latent_dim: int) -> keras.Model:
    """Mirror of the encoder: dense -> 4x4x72 -> four stride-2 transposed convs -> 64x64x3 in (0, 1).

    The last layer is a sigmoid (the lab's is a ReLU) so reconstructions live in the images' [0, 1] range.
    """
    latent_dim = integer("latent_dim", latent_dim)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(4 * 4 * 6 * CNN_FILTERS[0], activation="relu", name="dense")(inputs)
    x = layers.Reshape((4, 4, 6 * CNN_FILTERS[0]), name="reshape")(x)
    for i, (filters, kernel) in enumerate(zip(DECODER_FILTERS, DECODER_KERNELS)):
        last = i == len(DECODER_FILTERS) - 1
        x = layers.Conv2DTranspose(filters, kernel, strides=2, padding="same",
                                   activation="sigmoid" if last else "relu", name=f"deconv{i + 1}")(x)
    return keras.Model(inputs, x, name="decoder")


def reparameterize(mu: Any, logvar: Any, eps: Any) -> Any:
    """``z = mu + exp(0.5 * logvar) * eps``: the noise moves into ``eps``, so gradients reach mu and logvar.
    Lab 2's exercise, and what :class:`Sampling` does unless given the student's version."""
    mu, logvar, eps = (ops.convert_to_tensor(t) for t in (mu, logvar, eps))
    return mu + ops.exp(0.5 * logvar) * eps


@keras.saving.register_keras_serializable(package="lab_utils")
class Sampling(layers.Layer):
    """Draws ``z`` with ``reparameterize(mu, logvar, eps)`` and seeded noise, so a training run is reproducible.

    ``reparameterize`` (default :func:`reparameterize`) is not saved: a loaded layer uses the reference.
    """

    def __init__(self, seed: int | None = None, reparameterize_fn: Callable[..., Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reparameterize_fn = reparameterize_fn or reparameterize

    def call(self, inputs: tuple[Any, Any]) -> Any:
        mu, logvar = inputs
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return self.reparameterize_fn(mu, logvar, eps)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def _check_loss_options(kl_weight: float, recon: str) -> None:
    number("kl_weight", kl_weight, low=0.0)
    if recon not in RECONSTRUCTION_KINDS:
        raise ValueError(f"recon must be one of {RECONSTRUCTION_KINDS}, got {recon!r}.")


def predict_batch(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One NumPy batch through Keras' compiled predict path (about 2x faster than an eager call).

    Under a multi-replica ``tf.distribute`` strategy Keras' ``predict_on_batch`` hands every replica the whole
    batch and concatenates the copies, so there the model is called directly instead.
    """
    if backend.replicas(model) > 1:
        return ops.convert_to_numpy(model(x, training=False))
    return np.asarray(model.predict_on_batch(x))


def pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    """``x`` with zero rows up to ``size``: every batch of a loop gets one shape, so a compiled predict is traced
    once (a short last batch would trace it again). Rows are computed independently; slice the padding off."""
    return x if len(x) == size else np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)])


def predict_logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Face logits (B, 1) of a CNN or a DB-VAE; the DB-VAE's come from its encoder alone (no decoding)."""
    if isinstance(model, LatentModel) and model.n_extra:  # a DB-VAE: the face logit leads its encoder's outputs
        return predict_batch(model.encoder, x)[:, :1]
    return predict_batch(model, x)


class LatentModel(keras.Model):
    """What the VAE and DB-VAE share: encoder (``n_extra`` leading logits), decoder, Sampling, loss, config.

    ``loss_fn`` and ``reparameterize_fn`` (the labs pass the student's) are not saved with the model: a loaded
    model trains on the references again (it predicts the same either way).
    """

    n_extra = 0
    kind = ""
    reference_loss: Callable[..., Any]

    def __init__(self, latent_dim: int, kl_weight: float, recon: str, seed: int | None,
                 loss_fn: Callable[..., Any] | None, reparameterize_fn: Callable[..., Any] | None,
                 encoder_body: str, **kwargs: Any) -> None:  # no defaults: the VAE and the DB-VAE name their own
        super().__init__(**kwargs)
        _check_loss_options(kl_weight, recon)
        self.latent_dim = integer("latent_dim", latent_dim)
        self.kl_weight = float(kl_weight)
        self.recon = recon
        self.seed = seed
        if loss_fn is not None:
            refuse_untrainable_loss(loss_fn, self.kind, latent_dim=self.latent_dim, kl_weight=self.kl_weight,
                                    recon=recon)
        self.loss_fn = loss_fn or type(self).reference_loss
        self.encoder_body = encoder_body
        self.encoder = build_encoder(self.latent_dim, n_extra=self.n_extra, body=encoder_body)
        self.decoder = build_decoder(self.latent_dim)
        self.sampling = Sampling(seed, reparameterize_fn, name="sampling")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def build(self, input_shape: Any = None) -> None:
        # All weights exist once the functional encoder/decoder do, so subclasses build at the end of __init__
        # (saving an "unbuilt" model would warn).
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
            x, is_uint8 = validation.images("encode's images", x)
            out = predict_batch(self.encoder, x.astype(np.float32) / 255.0 if is_uint8 else x)
        else:
            out = self.encoder(x, training=training)
        _, mu, logvar = self._split(out)
        return mu, logvar

    def call(self, x: Any, training: bool = False) -> dict[str, Any]:
        """Everything the loss needs. The code is a sample while training and the mean at inference, so
        predictions and evaluation are deterministic."""
        extra, mu, logvar = self._split(self.encoder(x, training=training))
        z = self.sampling((mu, logvar)) if training else mu
        out = {"x_hat": self.decoder(z, training=training), "mu": mu, "logvar": logvar}
        if self.n_extra:
            out["logit"] = extra
        return out

    def track_vae_terms(self, x: Any, out: dict[str, Any], faces: Any = None) -> None:
        """Log reconstruction and KL with the reference terms (whatever loss trains), over faces only."""
        self.reconstruction_tracker.update_state(reconstruction_loss(x, out["x_hat"], self.recon), sample_weight=faces)
        self.kl_tracker.update_state(kl_divergence(out["mu"], out["logvar"]), sample_weight=faces)

    def get_config(self) -> dict:
        return {**super().get_config(), "latent_dim": self.latent_dim, "kl_weight": self.kl_weight,
                "recon": self.recon, "seed": self.seed, "encoder_body": self.encoder_body}


@keras.saving.register_keras_serializable(package="lab_utils")
class VAE(LatentModel):
    """Faces-only VAE trained on ``loss_fn(x, x_hat, mu, logvar, kl_weight, recon)`` per sample (default
    :func:`lab_utils.nn.losses.vae_loss`). Labels in the data are ignored (train it on faces only)."""

    kind = "vae"
    reference_loss = staticmethod(vae_loss)

    def __init__(self, latent_dim: int = 32, kl_weight: float = VAE_KL_WEIGHT, recon: str = VAE_RECON,
                 seed: int | None = None, loss_fn: Callable[..., Any] | None = None,
                 reparameterize_fn: Callable[..., Any] | None = None, encoder_body: str = "cnn",
                 **kwargs: Any) -> None:
        super().__init__(latent_dim, kl_weight, recon, seed, loss_fn, reparameterize_fn, encoder_body, **kwargs)
        self.build(None)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        per_sample = self.loss_fn(x, y_pred["x_hat"], y_pred["mu"], y_pred["logvar"], self.kl_weight, self.recon)
        self.track_vae_terms(x, y_pred)
        return backend.replica_mean(per_sample)


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
    """Load a model saved by :func:`save_model`; the lab's custom classes are registered on import. A file that
    exists but cannot be read is a ``ValueError`` that says so (``FileNotFoundError`` only when it is missing).

    ``compile=False`` by default: notebooks load models to predict, and the optimiser state is not needed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No model file at {str(path)!r}. Train and save one first (lab_utils.nn.models.save_model) "
            "or check the path."
        )
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as err:  # noqa: BLE001 - Keras reports a truncated zip as "not found", a bare KeyError, ...
        raise ValueError(
            f"{path} exists but is not a readable Keras model ({type(err).__name__}: {str(err)[:200]}); it is "
            "truncated, corrupt or from another program. Delete it and train (or save) the model again."
        ) from err
