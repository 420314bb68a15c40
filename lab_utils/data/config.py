"""What one embedded benchmark is: its sizes, seed and rates, the frozen rendering difficulty, and the cache key
that changes whenever any of them (or the renderer) does."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from lab_utils.core import validation
from lab_utils.core.validation import integer, number

GENERATOR_VERSION = "1"
"""Bump whenever rendering changes: it is part of the cache key, so stale caches are regenerated."""

DIFFICULTY: dict[str, float] = {
    "exposure_ev": -0.25,          # mean exposure in stops, relative to metering for mid-lighter skin
    "exposure_ev_jitter": 0.35,    # per-photo spread of exposure (stops, standard deviation)
    "read_noise": 0.008,           # sensor read-noise sigma in linear light, same for every image
    "shot_noise": 0.0004,          # photon-noise variance per unit of linear signal
    "head_distractor_share": 0.5,  # share of non-faces that are head-like skin-toned shapes
    "blur_sigma_max": 0.8,         # upper end of the optical blur sigma in pixels
}
"""Rendering difficulty, frozen once benchmarks/difficulty.py passes its criterion; part of the cache key."""

SPLITS: tuple[str, ...] = ("train", "test")
SPLIT_IDS = {"train": 1, "test": 2}
ATTRIBUTE_STREAM, IMAGE_STREAM = 7, 11  # distinct tags: SeedSequence([a, b]) == SeedSequence([a, b, 0])


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes, seed and attribute rates of one benchmark; the rendering difficulty is fixed in DIFFICULTY."""

    seed: int = 0
    n_train_faces: int = 10_000
    n_train_nonfaces: int = 10_000
    train_darker_fraction: float = 0.05
    n_test_per_group: int = 250
    n_test_nonfaces: int = 1_000
    hat_rate: float = 0.05
    glasses_rate: float = 0.08

    def __post_init__(self) -> None:
        validation.seed(self.seed, "BenchmarkConfig.seed")
        for name in ("n_train_faces", "n_train_nonfaces", "n_test_per_group", "n_test_nonfaces"):
            value = getattr(self, name)
            integer(f"BenchmarkConfig.{name}", value, minimum=0)
        if self.n_train_faces + self.n_train_nonfaces == 0:
            raise ValueError("BenchmarkConfig: the training split is empty; set n_train_faces or "
                             "n_train_nonfaces above 0.")
        if self.n_test_per_group + self.n_test_nonfaces == 0:
            raise ValueError("BenchmarkConfig: the test split is empty; set n_test_per_group or "
                             "n_test_nonfaces above 0.")
        for name in ("train_darker_fraction", "hat_rate", "glasses_rate"):
            value = getattr(self, name)
            number(f"BenchmarkConfig.{name}", value, low=0.0, high=1.0, hint=" (0.05 is CelebA-like, 0.5 balanced)")

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v))
                for k, v in dataclasses.asdict(self).items()}


def cache_key(cfg: BenchmarkConfig) -> str:
    """Short hash of everything that changes the pixels: config, DIFFICULTY and GENERATOR_VERSION."""
    blob = json.dumps({"config": cfg.to_dict(), "difficulty": DIFFICULTY, "version": GENERATOR_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
