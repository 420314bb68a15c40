"""Named model variants, trained the same way by the notebooks and the multi-seed benchmark.

One definition of "the CNN of Lab 1" and "the DB-VAE of Lab 3" keeps Lab 4 (which retrains missing models) and
``benchmarks/debias.py`` honest: they compare exactly what the students trained.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from lab_utils.core.env import seed_everything
from lab_utils.core.profiles import Profile
from lab_utils.data.dataset import FaceDataset
from lab_utils.nn import models
from lab_utils.nn.backbones import BACKBONES, build_backbone
from lab_utils.nn.losses import DBVAE_KL_WEIGHT, DBVAE_RECON, RECONSTRUCTION_KINDS, VAE_KL_WEIGHT, VAE_RECON
from lab_utils.training import trainers
from lab_utils.training.config import TrainingConfig
from lab_utils.training.remedies import REMEDIES, train_with_remedy
from lab_utils.training.debiasing import DBVAE, DEFAULT_ALPHA, DEFAULT_RULE, RECOMPUTE_EVERY, ResamplingOptions

KINDS = ("cnn", "vae", "dbvae")


@dataclass(frozen=True)
class Variant:
    """A trainable configuration: the architecture and how training faces are drawn."""

    name: str
    kind: str = "dbvae"  # one of KINDS
    resample: bool = False
    rule: str = DEFAULT_RULE
    alpha: float = DEFAULT_ALPHA
    recompute_every: int | None = RECOMPUTE_EVERY  # None: the weights are computed once, after the first epoch
    kl_weight: float = DBVAE_KL_WEIGHT
    recon: str = DBVAE_RECON  # the reconstruction term (lab_utils.nn.losses.RECONSTRUCTION_KINDS)
    oracle_darker_share: float | None = None  # label-aware sampling: share of darker faces per batch
    backbone: str = "cnn"  # the body: for kind "cnn" a name in BACKBONES, else the encoder's (models.ENCODER_BODIES)
    remedy: str | None = None  # for kind "cnn": a name in lab_utils.training.remedies.REMEDIES
    options: dict[str, Any] = field(default_factory=dict)  # the remedy's settings, over its defaults

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Variant {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}.")
        if self.recon not in RECONSTRUCTION_KINDS:
            raise ValueError(f"Variant {self.name!r}: recon must be one of {RECONSTRUCTION_KINDS}, got {self.recon!r}.")
        if self.kind == "vae" and (self.resample or self.oracle_darker_share is not None):
            raise ValueError(f"Variant {self.name!r}: a VAE trains on all faces alike (no resampling or oracle).")
        if self.oracle_darker_share is not None and not 0 < self.oracle_darker_share < 1:
            raise ValueError(f"Variant {self.name!r}: oracle_darker_share must be in (0, 1).")
        if self.resample and self.oracle_darker_share is not None:
            raise ValueError(f"Variant {self.name!r}: choose adaptive resampling or the oracle, not both.")
        bodies = sorted(BACKBONES) if self.kind == "cnn" else list(models.ENCODER_BODIES)
        if self.backbone not in bodies:
            raise ValueError(f"Variant {self.name!r}: backbone must be one of {bodies} for kind {self.kind!r}, "
                             f"got {self.backbone!r}.")
        if self.remedy is not None:
            if self.remedy not in REMEDIES or self.kind != "cnn":
                raise ValueError(f"Variant {self.name!r}: remedy must be one of {tuple(REMEDIES)}, for kind 'cnn'.")
            if self.oracle_darker_share is not None:
                raise ValueError(f"Variant {self.name!r}: choose a remedy or the oracle's sampling, not both.")
            unknown = set(self.options) - set(REMEDIES[self.remedy].defaults)
            if unknown:
                raise ValueError(f"Variant {self.name!r}: unknown options {sorted(unknown)} for {self.remedy}; "
                                 f"it takes {sorted(REMEDIES[self.remedy].defaults)}.")
        elif self.options:
            raise ValueError(f"Variant {self.name!r}: options are the settings of a remedy; none is chosen.")

    @property
    def settings(self) -> dict[str, Any]:
        """The remedy's settings: its defaults, overridden by ``options``."""
        return {**REMEDIES[self.remedy].defaults, **self.options} if self.remedy else {}

    @property
    def reads_attributes(self) -> bool:
        """Whether training reads a demographic attribute (the oracles), not just images and face labels."""
        return self.oracle_darker_share is not None or (self.remedy is not None and REMEDIES[self.remedy].reads_attributes)

    def to_dict(self) -> dict:
        return asdict(self)


LAB_VARIANTS: dict[str, Variant] = {
    "cnn": Variant("cnn", kind="cnn"),
    "vae": Variant("vae", kind="vae", kl_weight=VAE_KL_WEIGHT, recon=VAE_RECON),
    "dbvae": Variant("dbvae", resample=True),
}


def oracle_sampling_probs(train: FaceDataset, darker_share: float) -> np.ndarray:
    """Per-face probabilities that make ``darker_share`` of drawn faces darker-skinned.

    This *reads the skin-tone attribute*: it is the label-aware upper bound the DB-VAE tries to approach without
    labels, never a training method of the labs.
    """
    if "darker" not in train.attributes:
        raise ValueError("The oracle needs the 'darker' attribute (the embedded benchmark records it).")
    darker = np.asarray(train.attributes["darker"])[train.face_idx] == 1
    if darker.all() or not darker.any():
        raise ValueError("The oracle needs both lighter and darker training faces.")
    return np.where(darker, darker_share / darker.sum(), (1 - darker_share) / (~darker).sum())


def train_variant(variant: Variant, train: FaceDataset, profile: Profile, *, seed: int = 0,
                  epochs: int | None = None, callbacks: Sequence[Any] = (),
                  verbose: Any = "auto", strategy: Any = None, generator: Any = None,
                  error_weights_fn: Any = None) -> tuple[Any, dict]:
    """Build and train one variant; returns the model and a record (history, resampling log, time).

    ``callbacks`` (Keras callbacks) run after the variant's own, e.g. to look at the latent space each epoch.
    ``strategy`` (a ``tf.distribute.Strategy``, e.g. ``MirroredStrategy()`` for several GPUs) builds the model in
    its scope, which is where Keras takes the strategy to train with; the profile's batch size is then split
    across the replicas. ``generator`` (a trained DB-VAE or VAE) decodes the faces of the latent remedies; without
    one they train the labs' DB-VAE first and count its time in ``record["remedy"]["generator_seconds"]``.
    ``error_weights_fn(face_probs, upweight)`` (default :func:`~lab_utils.training.upweighting.error_weights`)
    turns JTT's first-stage probabilities into sampling weights: Lab 5 passes the student's.
    """
    seed_everything(seed)
    start = time.perf_counter()
    sampling_probs = (oracle_sampling_probs(train, variant.oracle_darker_share)
                      if variant.oracle_darker_share is not None else None)
    record: dict[str, Any] = {"variant": variant.to_dict(), "seed": seed, "profile": profile.name}
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = (build_backbone(variant.backbone) if variant.kind == "cnn" else
                 models.VAE(latent_dim=profile.latent_dim, kl_weight=variant.kl_weight, recon=variant.recon,
                            seed=seed, encoder_body=variant.backbone)
                 if variant.kind == "vae" else
                 DBVAE(latent_dim=profile.latent_dim, kl_weight=variant.kl_weight, recon=variant.recon,
                              seed=seed, encoder_body=variant.backbone))
    log: list = []
    config = TrainingConfig.for_profile(profile, resampling=ResamplingOptions(
        rule=variant.rule, alpha=variant.alpha, every=variant.recompute_every))
    common = {"config": config, "seed": seed, "callbacks": callbacks, "verbose": verbose}
    if variant.kind == "cnn" and variant.remedy is not None:
        def train_generator(kl_weight: float) -> Any:
            return train_variant(generator_variant(kl_weight), train, profile, seed=seed, verbose=verbose)[0]

        history, record["remedy"] = train_with_remedy(model, variant, train, seed=seed,
                                                      epochs=epochs or profile.cnn_epochs, common=common, scope=scope,
                                                      generator=generator, train_generator=train_generator,
                                                      error_weights_fn=error_weights_fn)
    elif variant.kind == "cnn":
        history = trainers.train_classifier(model, train, epochs=epochs or profile.cnn_epochs,
                                            sampling_probs=sampling_probs, **common)
    elif variant.kind == "vae":
        history = trainers.train_vae(model, train, epochs=epochs or profile.vae_epochs, **common)
    else:
        history, log = trainers.train_dbvae(
            model, train, epochs=epochs or profile.dbvae_epochs, resample=variant.resample,
            sampling_probs=sampling_probs, **common)
    record["train_seconds"] = time.perf_counter() - start
    record["history"] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    record["resampling_log"] = log
    return model, record


def generator_variant(kl_weight: float) -> Variant:
    """The DB-VAE a latent remedy decodes with: the labs' DB-VAE, at ``kl_weight``."""
    return replace(LAB_VARIANTS["dbvae"], name=f"generator_kl{kl_weight:g}", kl_weight=kl_weight)
