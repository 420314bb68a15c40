"""New training faces decoded from a VAE's latent space: Lab 5's "generate instead of resample" remedies.

Resampling can only show the rare faces it has more often; a decoder can make new ones. Three ways to choose
the latent codes to decode, all with the same decoder:

* :func:`rare_codes` (label-free): codes near the faces the DB-VAE's resampler weights most, by interpolating
  between two such faces and adding some of their posterior noise. Reads no attribute.
* :func:`uniform_codes` (label-free control): codes of faces drawn uniformly, decoded the same way, so a
  comparison can tell "more rare faces" from "any decoded image" (decoded faces are blurrier than photographs,
  and a detector may learn that artefact instead).
* :func:`complementary_codes` (**reads the skin-tone attribute**, an oracle like label-aware oversampling):
  a linear probe finds the lighter/darker boundary in latent space, and each chosen lighter face's code is
  mirrored across it, keeping everything the probe does not see (Ramaswamy et al., CVPR 2021).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.probes import ProbeScore, cross_validated_probe, fit_linear_probe
from lab_utils.nn.models import pad_batch, predict_batch
from lab_utils.training.debiasing import DEFAULT_ALPHA, DEFAULT_BINS, DEFAULT_RULE, Rule, histogram_weights
from lab_utils.core.validation import integer, number
from lab_utils.core import validation

GENERATED = "generated"
"""Attribute marking decoded faces (1) in an augmented dataset, so evaluation can tell them apart."""


def _interpolate(mu: np.ndarray, logvar: np.ndarray, anchors: np.ndarray, partners: np.ndarray,
                 rng: np.random.Generator, mix: float, noise: float) -> np.ndarray:
    t = rng.uniform(0.0, mix, size=(len(anchors), 1))
    z = (1 - t) * mu[anchors] + t * mu[partners]
    return z + noise * np.exp(0.5 * logvar[anchors]) * rng.standard_normal(z.shape)


def _check_draw(n: int, mix: float, noise: float) -> int:
    number("mix", mix, low=0.0, high=1.0)
    number("noise", noise, low=0.0)
    return integer("n", n)


def _finite_codes(name: str, value: np.ndarray, n_faces: int | None = None) -> np.ndarray:
    """A (faces, latent_dim) float64 array with no NaN or inf: a NaN code decodes to a black "face"."""
    codes = np.asarray(value, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] == 0 or (n_faces is not None and codes.shape[0] != n_faces):
        raise ValueError(f"{name} must be a (faces, latent_dim) array{'' if n_faces is None else f' of {n_faces} rows'}"
                         f", got shape {codes.shape}.")
    bad = ~np.isfinite(codes)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite values (first in row "
                         f"{int(np.argwhere(bad)[0][0])}); the encoder diverged or the input images were not in "
                         "[0, 1]. Decoded, such a code is a black image, not a face.")
    return codes


def rare_codes(mu: np.ndarray, logvar: np.ndarray, n: int, *, seed: int = 0, mix: float = 0.5,
               noise: float = 0.5, rule: str | Rule = DEFAULT_RULE, alpha: float = DEFAULT_ALPHA,
               bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """``n`` latent codes where faces are rare, and the index of the face each started from.

    Anchor and partner faces are drawn with the resampler's weights (``rule``, ``alpha``, ``bins``, as in
    training); each code lies a fraction ``U(0, mix)`` of the way from the anchor to the partner, plus ``noise``
    times the anchor's posterior standard deviation of Gaussian noise.
    """
    n = _check_draw(n, mix, noise)
    mu = _finite_codes("mu", mu)
    logvar = _finite_codes("logvar", logvar, len(mu))
    weights = histogram_weights(mu, bins=bins, alpha=alpha, rule=rule)
    rng = np.random.default_rng(validation.seed(seed))
    anchors = rng.choice(len(weights), size=n, p=weights)
    partners = rng.choice(len(weights), size=n, p=weights)
    return _interpolate(mu, logvar, anchors, partners, rng, mix, noise), anchors


def uniform_codes(mu: np.ndarray, logvar: np.ndarray, n: int, *, seed: int = 0, mix: float = 0.5,
                  noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`rare_codes` with every face equally likely: the control for decoding as such."""
    n = _check_draw(n, mix, noise)
    mu = _finite_codes("mu", mu)
    logvar = _finite_codes("logvar", logvar, len(mu))
    rng = np.random.default_rng(validation.seed(seed))
    anchors = rng.integers(0, len(mu), size=n)
    partners = rng.integers(0, len(mu), size=n)
    return _interpolate(mu, logvar, anchors, partners, rng, mix, noise), anchors


def complementary_codes(mu: np.ndarray, darker: np.ndarray, n: int, *,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, ProbeScore]:
    """**Reads the skin-tone attribute.** Mirror ``n`` lighter faces' codes across the probe's boundary.

    Returns the new codes, the lighter faces they came from, and the probe's held-out score (how well the
    boundary the codes are mirrored across separates faces it was not fitted on). Mirroring puts each code as far
    on the darker side as it was on the lighter side and changes nothing the probe's direction does not touch.
    """
    n = integer("n", n)
    mu = _finite_codes("mu", mu)
    if np.ptp(mu, axis=0).max() == 0:
        raise ValueError("mu: every face has the same code, so there is no boundary to mirror across; the latent "
                         "space has collapsed (see Lab 2's active units).")
    darker = np.asarray(darker).reshape(-1)
    score = cross_validated_probe(mu, darker == 1, seed=seed)
    w, b = fit_linear_probe(mu, darker == 1)
    lighter = np.flatnonzero(darker == 0)
    rng = np.random.default_rng(validation.seed(seed))
    anchors = rng.choice(lighter, size=n, replace=n > len(lighter))
    logit = mu[anchors] @ w + b
    return mu[anchors] - 2 * (logit / (w @ w))[:, None] * w, anchors, score


def decode_images(model: Any, codes: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 RGB images decoded from latent codes by ``model.decoder``."""
    decoder = getattr(model, "decoder", None)
    if decoder is None:
        raise ValueError(f"model must have a decoder (a DBVAE or VAE), got {type(model).__name__}.")
    codes = _finite_codes("codes", codes).astype(np.float32)
    out = [np.asarray(predict_batch(decoder, pad_batch(codes[s: s + batch_size], batch_size)))[: len(codes) - s]
           for s in range(0, len(codes), batch_size)]
    images = np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.float32)
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def with_generated_faces(train: FaceDataset, images: np.ndarray, name: str | None = None) -> FaceDataset:
    """``train`` plus ``images`` as extra faces. Their attributes are unknown (-1 / NaN) except ``generated``."""
    n = len(images)
    augmented = train.extended(images, np.ones(n, np.float32), name=name or f"{train.name}+{n} generated")
    augmented.attributes[GENERATED] = np.concatenate([np.zeros(len(train), np.int8), np.ones(n, np.int8)])
    return augmented
