"""Lab 5's remedies for a plain detector, beyond resampling: one registry, read by the labs' variants and the
benchmark.

A latent remedy adds faces decoded by a generator (the labs' DB-VAE) from chosen latent codes; Just Train Twice
retrains on the faces a first detector missed, drawn more often. Their settings live in a variant's ``options``, over
each remedy's ``defaults``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lab_utils.data.dataset import FaceDataset
from lab_utils.nn.backbones import build_backbone
from lab_utils.evaluation.latents import encode_posteriors
from lab_utils.nn.losses import DBVAE_KL_WEIGHT
from lab_utils.training import augmentation, trainers, upweighting
from lab_utils.training.debiasing import DEFAULT_ALPHA, DEFAULT_RULE


@dataclass(frozen=True)
class Remedy:
    """One remedy: its default settings, whether it decodes faces from a generator, whether it reads an attribute."""

    name: str
    summary: str
    defaults: dict[str, Any]
    latent: bool
    reads_attributes: bool = False


_LATENT = {"n_generated": 1000, "mix": 0.5, "noise": 0.5, "generator_kl_weight": DBVAE_KL_WEIGHT}
REMEDIES: dict[str, Remedy] = {r.name: r for r in [
    Remedy("latent_rare", "decoded faces from rare latent codes (label-free)", _LATENT, latent=True),
    Remedy("latent_uniform", "decoded faces from uniformly drawn codes (the control)", _LATENT, latent=True),
    Remedy("latent_oracle", "decoded codes mirrored across the skin-tone boundary (label-aware oracle)",
           {"n_generated": 1000, "generator_kl_weight": DBVAE_KL_WEIGHT}, latent=True, reads_attributes=True),
    Remedy("jtt", "Just Train Twice: the first detector's misses drawn more often (label-free)",
           {"upweight": 20.0, "first_epochs": 1}, latent=False),
]}
LATENT_REMEDIES = tuple(name for name, r in REMEDIES.items() if r.latent)


def generated_faces(variant: Any, generator: Any, train: FaceDataset, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """The faces a latent remedy adds (uint8 images) and where they came from (``anchors``: positions in
    ``train.face_idx`` of the faces each code started from; ``probe``: the oracle's held-out probe score).
    ``variant`` is a :class:`~lab_utils.training.variants.Variant` whose ``remedy`` is a latent one."""
    settings = variant.settings
    mu, logvar = (np.asarray(a, dtype=np.float64) for a in encode_posteriors(generator, train, progress=False))
    info: dict[str, Any] = {"n_generated": settings["n_generated"]}
    if variant.remedy == "latent_rare":
        codes, anchors = augmentation.rare_codes(mu, logvar, settings["n_generated"], seed=seed, mix=settings["mix"],
                                                 noise=settings["noise"], rule=DEFAULT_RULE, alpha=DEFAULT_ALPHA)
    elif variant.remedy == "latent_uniform":
        codes, anchors = augmentation.uniform_codes(mu, logvar, settings["n_generated"], seed=seed,
                                                    mix=settings["mix"], noise=settings["noise"])
    elif variant.remedy == "latent_oracle":
        if "darker" not in train.attributes:
            raise ValueError("latent_oracle reads the 'darker' attribute of the training faces; this training set "
                             "has none (the embedded benchmark records it).")
        darker = np.asarray(train.attributes["darker"])[train.face_idx]  # the oracle reads the attribute
        codes, anchors, probe = augmentation.complementary_codes(mu, darker, settings["n_generated"], seed=seed)
        info["probe"] = probe.to_dict()
    else:
        raise ValueError(f"{variant.name}: {variant.remedy!r} is not a latent remedy.")
    info["anchors"] = anchors
    return augmentation.decode_images(generator, codes), info


def train_with_remedy(model: Any, variant: Any, train: FaceDataset, *, seed: int, epochs: int,
                      common: dict, scope: Any, generator: Any = None,
                      train_generator: Callable[[float], Any] | None = None,
                      error_weights_fn: Any = None) -> tuple[Any, dict]:
    """The detector's training under ``variant.remedy``, at the plain detector's budget: ``epochs`` passes' worth of
    steps over the *original* training set, however many faces are added. A latent remedy decodes with
    ``generator``, or with ``train_generator(kl_weight)`` trained now (its time counted in the record)."""
    steps = max(1, len(train) // common["config"].batch_size)
    settings = variant.settings
    if variant.remedy == "jtt":
        t0 = time.perf_counter()
        with scope:
            first = build_backbone(variant.backbone)
        trainers.train_classifier(first, train, epochs=settings["first_epochs"], **common)
        probs = trainers.predict_face_probs(first, train.images[train.face_idx])
        weights = np.asarray((error_weights_fn or upweighting.error_weights)(probs, settings["upweight"]),
                             dtype=np.float64)
        if weights.shape != probs.shape or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"error_weights_fn returned shape {weights.shape}; it must return one finite weight >= 0 "
                             f"per training face, shape {probs.shape}.")
        info = {"n_errors": int((weights > 1).sum()), "errors": np.flatnonzero(weights > 1),
                "first_stage_seconds": time.perf_counter() - t0}
        history = trainers.train_classifier(model, train, epochs=epochs, steps_per_epoch=steps,
                                            sampling_probs=weights, **common)
        return history, info
    generator_seconds = 0.0
    if generator is None:
        t0 = time.perf_counter()
        if train_generator is None:
            raise ValueError(f"{variant.remedy} decodes faces: pass a trained generator or train_generator.")
        generator = train_generator(settings["generator_kl_weight"])
        generator_seconds = time.perf_counter() - t0
    images, info = generated_faces(variant, generator, train, seed=seed)
    info["generator_seconds"] = generator_seconds
    augmented = augmentation.with_generated_faces(train, images)
    history = trainers.train_classifier(model, augmented, epochs=epochs, steps_per_epoch=steps, **common)
    return history, info
