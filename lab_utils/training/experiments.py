"""Named model variants, trained the same way by the notebooks and the multi-seed benchmark.

One definition of "the CNN of Lab 1" and "the DB-VAE of Lab 3" keeps Lab 4 (which retrains missing models) and
``benchmarks/debias.py`` honest: they compare exactly what the students trained.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lab_utils.core.env import output_dir, seed_everything
from lab_utils.core.profiles import Profile
from lab_utils.data.dataset import FaceDataset
from lab_utils.data.sources import dataset_name
from lab_utils.nn import models
from lab_utils.nn.backbones import BACKBONES, build_backbone
from lab_utils.nn.losses import DBVAE_KL_WEIGHT, DBVAE_RECON, RECONSTRUCTION_KINDS, VAE_KL_WEIGHT, VAE_RECON
from lab_utils.training import augmentation, trainers, upweighting
from lab_utils.training.resampling import DEFAULT_ALPHA, DEFAULT_RULE, encode_posteriors, resampling_diagnostics

KINDS = ("cnn", "vae", "dbvae")
REMEDIES = ("latent_rare", "latent_uniform", "latent_oracle", "jtt")
"""Lab 5's remedies for a plain detector (``kind="cnn"``): decoded faces from rare latent codes, from uniformly
drawn codes (the control), from codes mirrored across the skin-tone boundary (an oracle: reads the attribute),
and Just Train Twice. Their settings live in ``Variant.options`` (see :data:`REMEDY_DEFAULTS`)."""
REMEDY_DEFAULTS: dict[str, dict[str, Any]] = {
    "latent_rare": {"n_generated": 1000, "mix": 0.5, "noise": 0.5, "generator_kl_weight": DBVAE_KL_WEIGHT},
    "latent_uniform": {"n_generated": 1000, "mix": 0.5, "noise": 0.5, "generator_kl_weight": DBVAE_KL_WEIGHT},
    "latent_oracle": {"n_generated": 1000, "generator_kl_weight": DBVAE_KL_WEIGHT},
    "jtt": {"upweight": 20.0, "first_epochs": 1},
}
ORACLE_REMEDIES = ("latent_oracle",)


@dataclass(frozen=True)
class Variant:
    """A trainable configuration: the architecture and how training faces are drawn."""

    name: str
    kind: str = "dbvae"  # one of KINDS
    resample: bool = False
    rule: str = DEFAULT_RULE
    alpha: float = DEFAULT_ALPHA
    kl_weight: float = DBVAE_KL_WEIGHT
    recon: str = DBVAE_RECON  # the reconstruction term (lab_utils.nn.losses.RECONSTRUCTION_KINDS)
    oracle_darker_share: float | None = None  # label-aware sampling: share of darker faces per batch
    extra: dict[str, Any] = field(default_factory=dict)
    backbone: str = "cnn"  # for kind "cnn": a name in lab_utils.nn.backbones.BACKBONES
    remedy: str | None = None  # for kind "cnn": one of REMEDIES
    options: dict[str, Any] = field(default_factory=dict)  # the remedy's settings, over REMEDY_DEFAULTS

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
        if self.backbone not in BACKBONES or (self.kind != "cnn" and self.backbone != "cnn"):
            raise ValueError(f"Variant {self.name!r}: backbone must be one of {sorted(BACKBONES)} and is chosen only "
                             f"for kind 'cnn', got {self.backbone!r} for kind {self.kind!r}.")
        if self.remedy is not None:
            if self.remedy not in REMEDIES or self.kind != "cnn":
                raise ValueError(f"Variant {self.name!r}: remedy must be one of {REMEDIES}, for kind 'cnn'.")
            if self.oracle_darker_share is not None:
                raise ValueError(f"Variant {self.name!r}: choose a remedy or the oracle's sampling, not both.")
            unknown = set(self.options) - set(REMEDY_DEFAULTS[self.remedy])
            if unknown:
                raise ValueError(f"Variant {self.name!r}: unknown options {sorted(unknown)} for {self.remedy}; "
                                 f"it takes {sorted(REMEDY_DEFAULTS[self.remedy])}.")
        elif self.options:
            raise ValueError(f"Variant {self.name!r}: options are the settings of a remedy; none is chosen.")

    @property
    def settings(self) -> dict[str, Any]:
        """The remedy's settings: its defaults, overridden by ``options``."""
        return {**REMEDY_DEFAULTS.get(self.remedy, {}), **self.options} if self.remedy else {}

    @property
    def reads_attributes(self) -> bool:
        """Whether training reads a demographic attribute (the oracles), not just images and face labels."""
        return self.oracle_darker_share is not None or self.remedy in ORACLE_REMEDIES

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


def resampling_summary(train: FaceDataset, log: list[dict[str, Any]], attribute: str = "darker") -> dict[str, Any]:
    """Per epoch of a resampling log: the share of drawn faces with ``attribute`` == 1 and the ESS of the weights
    in use, plus the attribute's base rate among training faces; what ``plots.plot_resampling`` takes.

    This *reads an attribute*, after training, to measure what the attribute-free resampler did.
    """
    if attribute not in train.attributes:
        raise ValueError(f"The training set has no {attribute!r} attribute (the embedded benchmark records "
                         f"{sorted(train.attributes) or 'none'}).")
    flag = np.asarray(train.attributes[attribute])[train.face_idx] == 1
    shares, ess = [], []
    for entry in log:
        counts = np.asarray(entry["drawn_face_counts"], dtype=np.float64)
        if counts.shape != flag.shape:
            raise ValueError(f"Log entry for epoch {entry.get('epoch')} counts {counts.size} faces but the "
                             f"training set has {flag.size}; pass the dataset the model was trained on.")
        shares.append(float(counts[flag].sum() / counts.sum()) if counts.sum() else float("nan"))
        ess.append(resampling_diagnostics(np.asarray(entry["sampling_probs"], dtype=np.float64))["ess"])
    return {"epochs": list(range(1, len(log) + 1)), "shares": shares, "ess": ess,
            "base_rate": float(flag.mean())}


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
                            seed=seed)
                 if variant.kind == "vae" else
                 models.DBVAE(latent_dim=profile.latent_dim, kl_weight=variant.kl_weight, recon=variant.recon,
                              seed=seed))
    log: list = []
    common = {"batch_size": profile.batch_size, "seed": seed, "callbacks": callbacks, "verbose": verbose}
    if variant.kind == "cnn" and variant.remedy is not None:
        history, record["remedy"] = _train_with_remedy(model, variant, train, profile, seed=seed,
                                                       epochs=epochs or profile.cnn_epochs, common=common,
                                                       generator=generator, scope=scope,
                                                       error_weights_fn=error_weights_fn)
    elif variant.kind == "cnn":
        history = trainers.train_classifier(model, train, epochs=epochs or profile.cnn_epochs,
                                            sampling_probs=sampling_probs, **common)
    elif variant.kind == "vae":
        history = trainers.train_vae(model, train, epochs=epochs or profile.vae_epochs, **common)
    else:
        history, log = trainers.train_dbvae(
            model, train, epochs=epochs or profile.dbvae_epochs, resample=variant.resample, rule=variant.rule,
            alpha=variant.alpha, sampling_probs=sampling_probs, **common, **variant.extra)
    record["train_seconds"] = time.perf_counter() - start
    record["history"] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    record["resampling_log"] = log
    return model, record


def generator_variant(kl_weight: float) -> Variant:
    """The DB-VAE a latent remedy decodes with: the labs' DB-VAE, at ``kl_weight``."""
    return replace(LAB_VARIANTS["dbvae"], name=f"generator_kl{kl_weight:g}", kl_weight=kl_weight)


def generated_faces(variant: Variant, generator: Any, train: FaceDataset, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """The faces a latent remedy adds (uint8 images) and where they came from (``anchors``: positions in
    ``train.face_idx`` of the faces each code started from; ``probe``: the oracle's held-out probe score)."""
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


def _train_with_remedy(model: Any, variant: Variant, train: FaceDataset, profile: Profile, *, seed: int,
                       epochs: int, common: dict, generator: Any, scope: Any,
                       error_weights_fn: Any = None) -> tuple[Any, dict]:
    """The detector's training under a remedy, at the plain detector's budget: ``epochs`` passes' worth of steps
    over the *original* training set, however many faces are added."""
    steps = max(1, len(train) // profile.batch_size)
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
        generator, _ = train_variant(generator_variant(settings["generator_kl_weight"]), train, profile, seed=seed,
                                     verbose=common["verbose"])
        generator_seconds = time.perf_counter() - t0
    images, info = generated_faces(variant, generator, train, seed=seed)
    info["generator_seconds"] = generator_seconds
    augmented = augmentation.with_generated_faces(train, images)
    history = trainers.train_classifier(model, augmented, epochs=epochs, steps_per_epoch=steps, **common)
    return history, info


def model_path(kind: str, profile: Profile, seed: int, dataset: str = "embedded") -> Path:
    """Where the notebooks save and look for a trained model of this kind, profile, seed and dataset."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    data = "" if dataset_name(dataset) == "embedded" else f"{dataset_name(dataset)}-"
    return output_dir("models") / f"{kind}-{data}{profile.name}-seed{seed}.keras"


def load_or_train(kind: str, train: FaceDataset, profile: Profile, *, seed: int = 0, dataset: str = "embedded") -> Any:
    """The model an earlier notebook saved for this profile, seed and dataset, else the same model trained now."""
    path = model_path(kind, profile, seed, dataset)
    if path.is_file():
        try:
            model = models.load_model(path)
            expected = {"vae": models.VAE, "dbvae": models.DBVAE}.get(kind)
            if (type(model) is not expected) if expected else isinstance(model, (models.VAE, models.DBVAE)):
                raise ValueError(f"it holds a {type(model).__name__}, not a {kind} (a copied or renamed file?)")
            print(f"Loaded {kind} from {path}")
            return model
        except ValueError as err:
            print(f"The saved {kind} could not be read ({err}); training it again.")
    else:
        print(f"No saved {kind} at {path}: training it now with the settings of the earlier lab.")
    model, _ = train_variant(LAB_VARIANTS[kind], train, profile, seed=seed)
    models.save_model(model, path)
    return model
