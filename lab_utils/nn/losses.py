"""Per-sample loss terms of the VAE and the DB-VAE (whose loss, built from them, is in ``training/debiasing.py``),
as pure ``keras.ops`` functions.

Every function returns one value per sample, shape ``(B,)``, and reduces over the batch nowhere: the
DB-VAE multiplies the VAE term by the face indicator per sample, and that only works when no term has
been averaged or broadcast yet. The reference lab fed ``(B, 1)`` labels against a ``(B,)`` VAE loss, which
broadcast to ``B x B`` and leaked the VAE loss onto non-faces; the shape checks here make that an error
(or, for a trailing singleton axis or a label of unknown rank, an explicit reshape to ``(B,)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from lab_utils.core.validation import shape_mistake

RECONSTRUCTION_KINDS = ("l1", "l2", "l1_centre")
CENTRE_SIGMA = 12.0
"""``"l1_centre"``: each pixel's L1 error weighted by a Gaussian of this many pixels around the image centre (weights
of mean 1, so a KL weight means the same as with ``"l1"``). The face fills the centre of every crop; with the
background weighted down the latent space spends its code on the face, where skin tone is
(benchmarks/results/face_focus_*.md)."""


def centre_weights(sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """(64, 64, 1) float32 pixel weights of ``"l1_centre"``: a Gaussian centred on the image, mean 1."""
    r = np.arange(64) - 31.5
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma ** 2))
    return (w / w.mean()).astype(np.float32)[..., None]

VAE_KL_WEIGHT = 5e-4
"""Lab 2's VAE's KL weight (``models.VAE``'s default; the reference lab's value). With the reconstruction term a mean
over pixels, a much larger weight makes encoding nothing the optimum: the VAE collapses to one average face.
Evidence: benchmarks/results/latent_search_*.md."""
VAE_RECON = "l1"
"""Lab 2's VAE's reconstruction term: it already encodes faces (and skin tone) with the whole image weighted alike."""
DBVAE_KL_WEIGHT = 5e-4
"""Lab 3's DB-VAE's KL weight (``debiasing.DBVAE``'s default and the labs' variant), with :data:`DBVAE_RECON`: a latent
space that encodes faces, in which the resampling rule finds the darker faces (benchmarks/FINDINGS.md)."""
DBVAE_RECON = "l1_centre"
"""Lab 3's DB-VAE's reconstruction term. The DB-VAE's encoder is also the detector; weighting the face in the centre
over the background moves skin tone onto the leading directions of its latent space, where
``debiasing.DEFAULT_RULE`` looks (benchmarks/results/face_focus_*.md, rule_in_training_centre12_*.md)."""
STRONG_KL_WEIGHT = 0.05
"""100x the reference lab's weight, the labs' DB-VAE setting before :data:`DBVAE_KL_WEIGHT`: a regulariser that made
the detector fairer and collapsed the latent space (no active dimension). Kept for the labs' questions and the
benchmark's pinned variants."""
REFERENCE_LAB_KL_WEIGHT = 5e-4
"""The reference lab's KL weight, kept for the labs' questions and the benchmark's pinned variants."""


def _tensor(value: Any) -> Any:
    """float32 tensor: the losses are always computed in float32, also under mixed precision."""
    return ops.cast(ops.convert_to_tensor(value), "float32")


def static_shape(t: Any) -> tuple | None:
    """Static shape, or None when even the rank is unknown (Keras relaxes shapes when it retraces)."""
    try:
        return tuple(t.shape)
    except ValueError:
        return None


def _check_batch(names: tuple[str, ...], tensors: tuple[Any, ...]) -> None:
    """Raise if statically known batch sizes disagree (symbolic ``None`` sizes are checked at run time)."""
    shapes = {name: static_shape(t) for name, t in zip(names, tensors)}
    sizes = {name: shape[0] for name, shape in shapes.items() if shape and shape[0] is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"Batch sizes differ: {sizes}. Pass tensors for the same batch of samples.")


def as_vector(name: str, value: Any) -> Any:
    """``(B,)`` or ``(B, 1)`` -> ``(B,)``; anything else is an error rather than a silent broadcast."""
    t = _tensor(value)
    shape = static_shape(t)
    if shape is None or (len(shape) == 2 and shape[1] == 1):
        return ops.reshape(t, (-1,))
    if len(shape) != 1:
        raise ValueError(
            f"'{name}' must have shape (B,) or (B, 1), got {shape}. One value per sample is expected; "
            "reshape your labels/logits to (B,)."
        )
    return t


def _check_same_shape(a_name: str, a: Any, b_name: str, b: Any, min_rank: int) -> None:
    sa, sb = static_shape(a), static_shape(b)
    if sa is None or sb is None:
        return
    if len(sa) < min_rank or len(sa) != len(sb):
        raise ValueError(
            f"'{a_name}' {sa} and '{b_name}' {sb} must have the same rank (at least {min_rank}, batch first)."
        )
    if any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
        raise ValueError(f"'{a_name}' {sa} and '{b_name}' {sb} must have the same shape.")


def kl_divergence(mu: Any, logvar: Any) -> Any:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, shape (B,): the closed form, summed over latent dims (Lab 2's
    exercise)."""
    mu, logvar = _tensor(mu), _tensor(logvar)
    _check_same_shape("mu", mu, "logvar", logvar, min_rank=2)
    if static_shape(mu) is not None and len(mu.shape) != 2:
        raise ValueError(f"'mu' and 'logvar' must be (B, latent_dim), got {tuple(mu.shape)}.")
    return 0.5 * ops.sum(ops.exp(logvar) + ops.square(mu) - 1.0 - logvar, axis=-1)


def reconstruction_loss(x: Any, x_hat: Any, recon: str = "l1") -> Any:
    """Mean absolute (``"l1"``, the lab's choice), squared (``"l2"``, the paper's) or face-centred absolute
    (``"l1_centre"``, see :data:`CENTRE_SIGMA`) pixel error per sample.

    A mean rather than a sum keeps the loss on the scale of one pixel, the scale the KL weights
    (:data:`VAE_KL_WEIGHT`, :data:`DBVAE_KL_WEIGHT`) are set against.
    """
    if recon not in RECONSTRUCTION_KINDS:
        raise ValueError(f"Unknown reconstruction {recon!r}; use one of {RECONSTRUCTION_KINDS}.")
    x, x_hat = _tensor(x), _tensor(x_hat)
    _check_same_shape("x", x, "x_hat", x_hat, min_rank=2)
    diff = x - x_hat
    err = ops.square(diff) if recon == "l2" else ops.abs(diff)
    if recon == "l1_centre":
        if static_shape(err) is not None and tuple(err.shape[1:3]) != (64, 64):
            raise ValueError(f"recon='l1_centre' weights 64x64 images; got x of shape {tuple(err.shape)}.")
        # As a tensor: PyTorch will not multiply a tensor that needs gradients by a NumPy array.
        err = err * ops.convert_to_tensor(centre_weights(), dtype=err.dtype)
    return ops.mean(ops.reshape(err, (ops.shape(err)[0], -1)), axis=-1)


def vae_loss(x: Any, x_hat: Any, mu: Any, logvar: Any, kl_weight: float, recon: str = "l1") -> Any:
    """Reconstruction + ``kl_weight`` * KL per sample, shape (B,): Lab 2's exercise, and the VAE's loss."""
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight}.")
    reconstruction = reconstruction_loss(x, x_hat, recon)
    kl = kl_divergence(mu, logvar)
    _check_batch(("x", "mu"), (reconstruction, kl))
    return reconstruction + kl_weight * kl


def classification_loss(y: Any, logit: Any) -> Any:
    """Sigmoid cross-entropy from logits per sample, shape (B,); ``(B, 1)`` inputs are flattened, not broadcast."""
    y, logit = as_vector("y", y), as_vector("logit", logit)
    _check_batch(("y", "logit"), (y, logit))
    return ops.binary_crossentropy(y, logit, from_logits=True)


LOSS_ARGUMENTS = {
    "vae": "loss_fn(x, x_hat, mu, logvar, kl_weight, recon)",
    "dbvae": "loss_fn(x, x_hat, y, logit, mu, logvar, kl_weight, recon)",
}


def probe_loss_inputs(kind: str, latent_dim: int, batch: int = 4, seed: int = 0) -> dict[str, Any]:
    """A small batch shaped like what the model hands its loss in ``compute_loss``: 64x64 images, latents of the
    model's size, and for the DB-VAE labels of shape (B,) with faces and non-faces next to (B, 1) logits."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (batch, 64, 64, 3)).astype(np.float32)
    inputs = {"x": x, "x_hat": np.clip(x + rng.normal(0.0, 0.1, x.shape), 0, 1).astype(np.float32),
              "mu": rng.normal(0.0, 1.0, (batch, latent_dim)).astype(np.float32),
              "logvar": rng.uniform(-1.0, 0.5, (batch, latent_dim)).astype(np.float32)}
    if kind == "dbvae":
        inputs["y"] = (np.arange(batch) % 2).astype(np.float32)
        inputs["logit"] = rng.normal(0.0, 1.0, (batch, 1)).astype(np.float32)
    return inputs


def refuse_untrainable_loss(loss_fn: Any, kind: str, *, latent_dim: int, kl_weight: float, recon: str) -> None:
    """Refuse a loss before training starts when it would not train: not callable, raising, not one finite
    value per sample. The message names the shape expected and the usual mistake behind a wrong one."""
    signature = LOSS_ARGUMENTS[kind]
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function {signature} -> one loss per sample (B,), got "
                         f"{type(loss_fn).__name__}.")
    inputs = probe_loss_inputs(kind, latent_dim)
    batch = inputs["x"].shape[0]
    name = getattr(loss_fn, "__name__", "loss_fn")
    order = ("x", "x_hat", "y", "logit", "mu", "logvar") if kind == "dbvae" else ("x", "x_hat", "mu", "logvar")
    try:
        out = loss_fn(*(ops.convert_to_tensor(inputs[k]) for k in order), kl_weight, recon)  # as the model calls it
    except Exception as err:  # noqa: BLE001 - any failure is reported with the call it came from
        raise ValueError(f"loss_fn {name!r} failed on a test batch of {batch} images, called as {signature}: "
                         f"{type(err).__name__}: {err}") from err
    if out is None:
        raise ValueError(f"loss_fn {name!r} returned None; is the `return` statement missing? It must return one "
                         f"loss per sample, shape (B,), called as {signature}.")
    try:
        value = np.asarray(ops.convert_to_numpy(out))
    except Exception:  # noqa: BLE001 - e.g. a string where a tensor belongs
        value = np.asarray(None)
    if value.dtype.kind not in "biuf":  # a dict of terms, a string, ...: not numbers
        raise ValueError(f"loss_fn {name!r} returned {type(out).__name__}, not one loss per sample, shape (B,), "
                         f"called as {signature}.")
    if value.shape != (batch,):
        raise ValueError(f"loss_fn {name!r} must return one loss per sample, shape (B,) = ({batch},), called as "
                         f"{signature}; it {shape_mistake((batch,), value.shape)}.")
    if not np.isfinite(value).all():
        raise ValueError(f"loss_fn {name!r} returned non-finite values {value} on a test batch of valid inputs; "
                         "look for log or sqrt of a negative number, or a division by zero.")
