"""Per-sample losses of the VAE and the DB-VAE, as pure ``keras.ops`` functions.

Every function returns one value per sample, shape ``(B,)``, and reduces over the batch nowhere: the
DB-VAE multiplies the VAE term by the face indicator per sample, and that only works when no term has
been averaged or broadcast yet. The reference lab fed ``(B, 1)`` labels against a ``(B,)`` VAE loss, which
broadcast to ``B x B`` and leaked the VAE loss onto non-faces; the shape checks here make that an error
(or, for a trailing singleton axis or a label of unknown rank, an explicit reshape to ``(B,)``).
"""

from __future__ import annotations

from typing import Any

from keras import ops

RECONSTRUCTION_KINDS = ("l1", "l2")


def _tensor(value: Any) -> Any:
    """float32 tensor: the losses are always computed in float32, also under mixed precision."""
    return ops.cast(ops.convert_to_tensor(value), "float32")


def _shape(t: Any) -> tuple | None:
    """Static shape, or None when even the rank is unknown (Keras relaxes shapes when it retraces)."""
    try:
        return tuple(t.shape)
    except ValueError:
        return None


def _check_batch(names: tuple[str, ...], tensors: tuple[Any, ...]) -> None:
    """Raise if statically known batch sizes disagree (symbolic ``None`` sizes are checked at run time)."""
    shapes = {name: _shape(t) for name, t in zip(names, tensors)}
    sizes = {name: shape[0] for name, shape in shapes.items() if shape and shape[0] is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"Batch sizes differ: {sizes}. Pass tensors for the same batch of samples.")


def _as_vector(name: str, value: Any) -> Any:
    """``(B,)`` or ``(B, 1)`` -> ``(B,)``; anything else is an error rather than a silent broadcast."""
    t = _tensor(value)
    shape = _shape(t)
    if shape is None or (len(shape) == 2 and shape[1] == 1):
        return ops.reshape(t, (-1,))
    if len(shape) != 1:
        raise ValueError(
            f"'{name}' must have shape (B,) or (B, 1), got {shape}. One value per sample is expected; "
            "reshape your labels/logits to (B,)."
        )
    return t


def _check_same_shape(a_name: str, a: Any, b_name: str, b: Any, min_rank: int) -> None:
    sa, sb = _shape(a), _shape(b)
    if sa is None or sb is None:
        return
    if len(sa) < min_rank or len(sa) != len(sb):
        raise ValueError(
            f"'{a_name}' {sa} and '{b_name}' {sb} must have the same rank (at least {min_rank}, batch first)."
        )
    if any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
        raise ValueError(f"'{a_name}' {sa} and '{b_name}' {sb} must have the same shape.")


def kl_divergence(mu: Any, logvar: Any) -> Any:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, shape (B,): the closed form, summed over latent dims."""
    mu, logvar = _tensor(mu), _tensor(logvar)
    _check_same_shape("mu", mu, "logvar", logvar, min_rank=2)
    if _shape(mu) is not None and len(mu.shape) != 2:
        raise ValueError(f"'mu' and 'logvar' must be (B, latent_dim), got {tuple(mu.shape)}.")
    return 0.5 * ops.sum(ops.exp(logvar) + ops.square(mu) - 1.0 - logvar, axis=-1)


def reconstruction_loss(x: Any, x_hat: Any, kind: str = "l1") -> Any:
    """Mean absolute (``"l1"``, the lab's choice) or squared (``"l2"``, the paper's) pixel error per sample.

    A mean rather than a sum keeps the loss on the scale of one pixel, which is what the lab's
    ``kl_weight`` (5e-4) was tuned against.
    """
    if kind not in RECONSTRUCTION_KINDS:
        raise ValueError(f"Unknown reconstruction kind {kind!r}; use one of {RECONSTRUCTION_KINDS}.")
    x, x_hat = _tensor(x), _tensor(x_hat)
    _check_same_shape("x", x, "x_hat", x_hat, min_rank=2)
    diff = x - x_hat
    err = ops.abs(diff) if kind == "l1" else ops.square(diff)
    return ops.mean(ops.reshape(err, (ops.shape(err)[0], -1)), axis=-1)


def vae_loss(x: Any, x_hat: Any, mu: Any, logvar: Any, kl_weight: float, kind: str = "l1") -> Any:
    """Reconstruction + ``kl_weight`` * KL per sample, shape (B,)."""
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight}.")
    recon = reconstruction_loss(x, x_hat, kind)
    kl = kl_divergence(mu, logvar)
    _check_batch(("x", "mu"), (recon, kl))
    return recon + kl_weight * kl


def classification_loss(y: Any, logit: Any) -> Any:
    """Sigmoid cross-entropy from logits per sample, shape (B,); ``(B, 1)`` inputs are flattened, not broadcast."""
    y, logit = _as_vector("y", y), _as_vector("logit", logit)
    _check_batch(("y", "logit"), (y, logit))
    return ops.binary_crossentropy(y, logit, from_logits=True)


def dbvae_loss(
    x: Any, x_hat: Any, y: Any, logit: Any, mu: Any, logvar: Any, kl_weight: float, kind: str = "l1"
) -> dict[str, Any]:
    """DB-VAE loss terms per sample, each shape (B,).

    ``total = classification + vae`` where ``vae = 1[face] * (reconstruction + kl_weight * KL)``: the
    indicator is the gradient mask, so a non-face sends exactly zero gradient through the VAE terms.
    ``reconstruction`` and ``kl`` are returned unmasked, for logging over faces.
    """
    y = _as_vector("y", y)
    classification = classification_loss(y, logit)
    recon = reconstruction_loss(x, x_hat, kind)
    kl = kl_divergence(mu, logvar)
    _check_batch(("y", "x", "mu"), (y, recon, kl))
    vae = y * (recon + kl_weight * kl)
    total = classification + vae
    for name, term in (("total", total), ("classification", classification), ("vae", vae)):
        if _shape(term) is not None and len(term.shape) != 1:
            raise ValueError(f"DB-VAE loss term {name!r} has shape {tuple(term.shape)}, expected (B,).")
    return {"total": total, "classification": classification, "vae": vae, "reconstruction": recon, "kl": kl}
