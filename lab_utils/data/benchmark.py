"""The embedded face-detection benchmark: procedurally rendered faces and non-faces with a known, physical bias,
rendered once per configuration and cached as HDF5.

Why a generator: the labs must run offline on a laptop CPU, and a renderer records every attribute of every
image, so the source of the bias is known instead of guessed. The bias comes from two physical effects, not
from any marker in the pixels (the measurements behind them are in the README and benchmarks/results/difficulty.md):

* **Exposure is metered for the scene and lighter skin.** Darker skin reflects less light, so its signal sits
  closer to the sensor's noise floor, and eyes, brows, mouth and the hair line have less contrast against it.
* **Head-like distractors.** A share of the non-faces are skin-toned head shapes of *every* tone (mannequins,
  eggs, scrambled features) without a coherent face layout. A detector must find the layout, which is harder to
  learn from the few low-contrast darker faces of a CelebA-like training split.

Training splits are skewed like CelebA (few darker faces); test splits are balanced over LF, LM, DF, DM.

The parts, in the order a picture is made: :mod:`~lab_utils.data.config` (what a benchmark is),
:mod:`~lab_utils.data.attributes` (who is in each picture), :mod:`~lab_utils.data.drawing` and
:mod:`~lab_utils.data.faces` (the drawn scene), :mod:`~lab_utils.data.render` (the photograph), and this module
(the cache).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from lab_utils import GROUPS
from lab_utils.data.config import DIFFICULTY, GENERATOR_VERSION, SPLITS, BenchmarkConfig, cache_key
from lab_utils.data.dataset import FaceDataset
from lab_utils.data.h5io import load_dataset, read_metadata, save_dataset
from lab_utils.data.render import generate_split, split_name
from lab_utils.core.files import remove_stale_temporaries
from lab_utils.core.env import data_dir
from lab_utils.core.profiles import Profile, get_profile


def config_from_profile(profile: Profile, seed: int = 0, **overrides) -> BenchmarkConfig:
    """Benchmark sizes of a run profile, so notebooks and benchmarks agree on what 'cpu' scale means."""
    fields = {f.name for f in dataclasses.fields(BenchmarkConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown BenchmarkConfig field(s) {unknown}; valid fields are {sorted(fields)}.")
    values = dict(seed=seed, n_train_faces=profile.n_train_faces, n_train_nonfaces=profile.n_train_nonfaces,
                  n_test_per_group=profile.n_test_per_group, n_test_nonfaces=profile.n_test_nonfaces)
    return BenchmarkConfig(**{**values, **overrides})


def _expected_size(cfg: BenchmarkConfig, split: str) -> int:
    if split == "train":
        return cfg.n_train_faces + cfg.n_train_nonfaces
    return 4 * cfg.n_test_per_group + cfg.n_test_nonfaces


def content_digest(dataset: FaceDataset) -> str:
    """SHA-256 of the pixels and labels: stored with the cache, checked when it is read back."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(dataset.images).data)
    digest.update(np.ascontiguousarray(dataset.labels, np.float32).data)
    return digest.hexdigest()


def _load_cached(path: Path, cfg: BenchmarkConfig, split: str) -> FaceDataset | None:
    """The cached split, or None when it is missing, stale or unreadable (then it is regenerated)."""
    if not path.exists():
        return None
    try:
        metadata = read_metadata(path)
        if metadata.get("cache_key") != cache_key(cfg):
            return None
        dataset = load_dataset(path, name=split_name(cfg, split))
    except (OSError, KeyError, ValueError) as err:
        warnings.warn(f"Cached benchmark {path} is unreadable ({err}); regenerating it.", RuntimeWarning,
                      stacklevel=3)
        return None
    if len(dataset) != _expected_size(cfg, split) or "group" not in dataset.attributes:
        warnings.warn(f"Cached benchmark {path} is incomplete; regenerating it.", RuntimeWarning, stacklevel=3)
        return None
    if "sha256" not in metadata:  # written before caches carried a checksum: render it anew, once
        return None
    if metadata["sha256"] != content_digest(dataset):
        warnings.warn(f"Cached benchmark {path} does not match its checksum (corrupted pixels or labels); "
                      "regenerating it.", RuntimeWarning, stacklevel=3)
        return None
    return dataset


def load_benchmark(cfg: BenchmarkConfig | None = None, *, cache_dir: str | os.PathLike | None = None,
                   progress: bool = True) -> tuple[FaceDataset, FaceDataset]:
    """(train, test) for ``cfg`` (default: the active profile's sizes), rendered once and cached as HDF5.

    ``cache_dir`` defaults to the checkout's ``data/`` (``lab_utils.core.env.data_dir``), so notebooks running in
    ``labs/`` and scripts running at the root share one cache.
    """
    cfg = cfg if cfg is not None else config_from_profile(get_profile())
    if not isinstance(cfg, BenchmarkConfig):
        raise ValueError(f"cfg must be a BenchmarkConfig (see config_from_profile), got {type(cfg).__name__}.")
    key = cache_key(cfg)
    cache = Path(cache_dir) if cache_dir is not None else data_dir()
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"The benchmark cache {cache} is a file, not a folder; pass cache_dir= a folder (or set "
                         f"$LAB_DATA_DIR to one).")
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache)  # what writes killed mid-way left behind
    splits = []
    for split in SPLITS:
        path = cache / f"benchmark-{key}-{split}.h5"
        if path.is_dir():  # refuse now, not after minutes of rendering
            raise ValueError(f"{path} is a folder where the benchmark's cache file belongs; delete or rename it.")
        dataset = _load_cached(path, cfg, split)
        if dataset is None:
            dataset = generate_split(cfg, split, progress=progress)
            metadata = {"cache_key": key, "split": split, "config": cfg.to_dict(), "difficulty": DIFFICULTY,
                        "generator_version": GENERATOR_VERSION, "groups": list(GROUPS),
                        "sha256": content_digest(dataset)}
            save_dataset(dataset, path, metadata=metadata)
        splits.append(dataset)
    return splits[0], splits[1]
