"""Named model variants, trained the same way by the notebooks and the multi-seed benchmark.

One definition of "the CNN of Lab 1" and "the DB-VAE of Lab 3" keeps Lab 4 (which retrains missing models) and
``benchmarks/debias.py`` honest: they compare exactly what the students trained.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lab_utils.data.dataset import FaceDataset
from lab_utils.nn.losses import DEFAULT_KL_WEIGHT
from lab_utils.running.env import seed_everything
from lab_utils.running.profiles import Profile
from lab_utils.training.resampling import DEFAULT_ALPHA, DEFAULT_RULE

KINDS = ("cnn", "vae", "dbvae")


@dataclass(frozen=True)
class Variant:
    """A trainable configuration: the architecture and how training faces are drawn."""

    name: str
    kind: str = "dbvae"  # one of KINDS
    resample: bool = False
    rule: str = DEFAULT_RULE
    alpha: float = DEFAULT_ALPHA
    kl_weight: float = DEFAULT_KL_WEIGHT
    oracle_darker_share: float | None = None  # label-aware sampling: share of darker faces per batch
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Variant {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}.")
        if self.kind == "vae" and (self.resample or self.oracle_darker_share is not None):
            raise ValueError(f"Variant {self.name!r}: a VAE trains on all faces alike (no resampling or oracle).")
        if self.oracle_darker_share is not None and not 0 < self.oracle_darker_share < 1:
            raise ValueError(f"Variant {self.name!r}: oracle_darker_share must be in (0, 1).")
        if self.resample and self.oracle_darker_share is not None:
            raise ValueError(f"Variant {self.name!r}: choose adaptive resampling or the oracle, not both.")

    def to_dict(self) -> dict:
        return asdict(self)


LAB_VARIANTS: dict[str, Variant] = {
    "cnn": Variant("cnn", kind="cnn"),
    "vae": Variant("vae", kind="vae"),
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
    from lab_utils.training.resampling import resampling_diagnostics

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
                  verbose: Any = "auto", strategy: Any = None) -> tuple[Any, dict]:
    """Build and train one variant; returns the model and a record (history, resampling log, time).

    ``callbacks`` (Keras callbacks) run after the variant's own, e.g. to look at the latent space each epoch.
    ``strategy`` (a ``tf.distribute.Strategy``, e.g. ``MirroredStrategy()`` for several GPUs) builds the model in
    its scope, which is where Keras takes the strategy to train with; the profile's batch size is then split
    across the replicas.
    """
    from lab_utils.nn import models
    from lab_utils.training import trainers

    seed_everything(seed)
    start = time.perf_counter()
    sampling_probs = (oracle_sampling_probs(train, variant.oracle_darker_share)
                      if variant.oracle_darker_share is not None else None)
    record: dict[str, Any] = {"variant": variant.to_dict(), "seed": seed, "profile": profile.name}
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = (models.build_cnn() if variant.kind == "cnn" else
                 models.VAE(latent_dim=profile.latent_dim, kl_weight=variant.kl_weight, seed=seed)
                 if variant.kind == "vae" else
                 models.DBVAE(latent_dim=profile.latent_dim, kl_weight=variant.kl_weight, seed=seed))
    log: list = []
    common = {"batch_size": profile.batch_size, "seed": seed, "callbacks": callbacks, "verbose": verbose}
    if variant.kind == "cnn":
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


def model_path(kind: str, profile: Profile, seed: int) -> Path:
    """Where the notebooks save and look for a trained model of this kind, profile and seed."""
    from lab_utils.running.env import output_dir

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    return output_dir("models") / f"{kind}-{profile.name}-seed{seed}.keras"


def load_or_train(kind: str, train: FaceDataset, profile: Profile, *, seed: int = 0) -> Any:
    """The model an earlier notebook saved for this profile and seed, else the same model trained now."""
    from lab_utils.nn import models

    path = model_path(kind, profile, seed)
    if path.is_file():
        try:
            model = models.load_model(path)
            print(f"Loaded {kind} from {path}")
            return model
        except ValueError as err:
            print(f"The saved {kind} could not be read ({err}); training it again.")
    else:
        print(f"No saved {kind} at {path}: training it now with the settings of the earlier lab.")
    model, _ = train_variant(LAB_VARIANTS[kind], train, profile, seed=seed)
    models.save_model(model, path)
    return model
