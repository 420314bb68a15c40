"""Which data a lab runs on: the embedded benchmark (default, offline) or real photographs ("reference").

``"reference"`` trains on the reference lab's ``train_face.h5`` (CelebA faces and ImageNet non-faces),
sub-sampled to the profile's size, and tests on real, labelled faces: a PPB-layout folder or a CSV table named by
``$LAB_TEST_FACES``, else the reference lab's own 20 test faces (5 per group), plus non-faces held out from the
training file. Real data records no skin tone for the training faces and no exposure or pose at all; the cells
that need them ask :func:`has_attributes` first and say what they cannot show.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lab_utils import GROUPS
from lab_utils.data import loaders
from lab_utils.data.dataset import FaceDataset
from lab_utils.data.download import download, file_sha256
from lab_utils.core import validation
from lab_utils.core.env import data_dir
from lab_utils.core.profiles import Profile

DATASET_ENV = "LAB_DATASET"
TEST_FACES_ENV = "LAB_TEST_FACES"
REFERENCE_TRAIN_ENV = "LAB_REFERENCE_TRAIN"
REFERENCE_FACES_ENV = "LAB_REFERENCE_FACES_URL"
DATASETS = ("embedded", "reference")
REFERENCE_FACES_URL = ("https://raw.githubusercontent.com/aamini/introtodeeplearning/"
                       "fd8023c7804bd352fc7212ac3aa587bd90912653/mitdeeplearning/data/faces")
"""Where the reference lab keeps its test faces, ``<url>/<group>/<file>``, pinned to one commit of its repository."""
REFERENCE_FACES: dict[str, dict[str, str]] = {
    "LF": {"1.png": "9385151c31c7f954bad430b8aba87ecaf5126a9a51ef8c236e371bbd16fba7ec",
           "11.png": "f8ede813b2159cefa381d97dc392d0dc59e3f16a3c7f43354b448a2801d197b1",
           "2.png": "d176d6f516b2f3ef5580026594e0e0b9726abb9e48c8be8684c837672db2f7a0",
           "4.png": "c741c2cea2176a603baf16d2cd3b46957781f1911be54690325280f4404ca541",
           "8.png": "9554d450d26450cab62b0701cd91a197f2fd45a88e3d5f5069100e2d0770bcb2"},
    "LM": {"1.png": "2439a704d2c7bccd4b4011a96484345e7c4f3ad94dd95af78e25f55cccd4af02",
           "11.png": "5f4bd4d79cd025641189901f31c99795c655d73f4e7328db4b89f8dad5df32c6",
           "5.png": "4e5572b2f3aa549836827d75c2b3126cf12492256550861ae9c602845ddbc6f6",
           "8.png": "ed813af66881eba66dbba28dfdedb8fc066ae0e3d044ef236aa849060ce2774f",
           "9.png": "45bd43803c26609abd7589bb16f0ee511db265d92d2513356b4f60ca5797b57f"},
    "DF": {"10.png": "f573ea5038f2c81612ebd82a9640950895a8fdef48488926e86625bf49f6250b",
           "19.png": "2cce0eab19082d43ffdc8da7d68347dfdee51319e19c0b5d47450495e415e856",
           "6.png": "bcb202d263cd6dc380636ec0427b685037be054a937ff312283f9fd4020c9135",
           "7.png": "aba3b1fb0f660a25173c038fa89e4e78464f63cbc435b62ce2fe9735806ff0f6",
           "9.png": "a77cd11f2f9ec816dc066d5254ac1b5592afda151f712b5557ca13037ffb547b"},
    "DM": {"20.png": "5964abe033c1475a7799d1a462eefa8881c4da1b983b7c87a8aaf0762b93d02f",
           "3.png": "4b41a0707e112c7070651b2a1bf77cc92624dbac6404cf3cd05eef66d76cffc0",
           "5.png": "7d9fb55e021cb68b37ffa7672caacbf36868c74e7fc8f2034012143baae8ef0a",
           "8.png": "f93aca0f830ee987426c3ee8b427f8300a84f562e897e37fb1c778be69731928",
           "9.png": "82fb3a34bdf72914f2136637f322e37972cd80fa86e58e531cbbb305d624658e"},
}
"""The 20 test faces (5 per group) and their SHA-256, read from that commit."""
CSV_COLUMNS = {"image": "path of the image, relative to the CSV's folder", "group": "LF, LM, DF or DM"}


def dataset_name(name: str | None = None) -> str:
    """``name``, else ``$LAB_DATASET``, else ``"embedded"``; refuses anything but :data:`DATASETS`."""
    chosen = (name or os.environ.get(DATASET_ENV) or "embedded").strip().lower()
    if chosen not in DATASETS:
        raise ValueError(f"Unknown dataset {chosen!r} (from the argument or ${DATASET_ENV}); choose one of {DATASETS}: "
                         "'embedded' (generated here, offline) or 'reference' (real photographs, downloaded once).")
    return chosen


def load_lab_data(dataset: str | None, profile: Profile, *, seed: int = 0, cache_dir: str | os.PathLike | None = None,
                  progress: bool = True) -> tuple[FaceDataset, FaceDataset]:
    """The (train, test) pair a lab runs on, with a line saying which."""
    from lab_utils.data import benchmark  # here: the embedded benchmark renders with OpenCV, real data needs none

    name = dataset_name(dataset)
    cache = Path(cache_dir) if cache_dir is not None else data_dir()
    if name == "embedded":
        return benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), cache_dir=cache,
                                        progress=progress)
    train, test = load_reference_data(profile, seed=seed, cache_dir=cache)
    print(f"Dataset 'reference': {len(train.face_idx)} training faces and {len(train.nonface_idx)} non-faces from "
          f"{train.name}, {len(test.face_idx)} test faces from {test.name} and {len(test.nonface_idx)} held-out "
          "non-faces. The training faces have no skin-tone labels; cells that need them say so and carry on.")
    return train, test


def load_reference_data(profile: Profile, *, seed: int = 0, train_source: str | os.PathLike | None = None,
                        test_faces: str | os.PathLike | None = None,
                        cache_dir: str | os.PathLike | None = None) -> tuple[FaceDataset, FaceDataset]:
    """Real photographs at the profile's scale; see the module docstring. ``train_source`` (a path or URL;
    default ``$LAB_REFERENCE_TRAIN``, else the reference lab's URL) and ``test_faces`` (a folder or a ``.csv``;
    default ``$LAB_TEST_FACES``, else the reference lab's 20 faces) choose the files."""
    cache = Path(cache_dir) if cache_dir is not None else data_dir()
    source = train_source or _env_path(REFERENCE_TRAIN_ENV) or loaders.REFERENCE_TRAIN_URL
    full = loaders.load_reference_training_file(source, cache_dir=cache)
    rng = np.random.default_rng(validation.seed(seed))
    nonfaces = rng.permutation(full.nonface_idx)
    n_test_nonfaces = min(profile.n_test_nonfaces, len(nonfaces) // 2)
    held_out, train_nonfaces = nonfaces[:n_test_nonfaces], nonfaces[n_test_nonfaces:]
    faces = rng.permutation(full.face_idx)[:profile.n_train_faces]
    train_idx = np.sort(np.concatenate([faces, train_nonfaces[:profile.n_train_nonfaces]]))
    if len(faces) == 0 or len(nonfaces) < 2:  # one non-face held out for the test, at least one to train on
        raise ValueError(f"{source}: the training file needs faces and at least two non-faces (label 0), got "
                         f"{len(full.face_idx)} faces and {len(full.nonface_idx)} non-faces.")
    train = full.subset(train_idx, name=full.name)
    test_source = test_faces or _env_path(TEST_FACES_ENV)
    faces_ds = load_test_faces(test_source, cache_dir=cache)
    test = faces_ds.extended(full.images[held_out], np.zeros(len(held_out), np.float32),
                             name=f"{faces_ds.name} + {len(held_out)} held-out non-faces")
    return train, test


def _env_path(variable: str) -> str | None:
    """``$variable`` with ``~`` expanded (a quoted ``~`` reaches Python as is); URLs unchanged; None when unset."""
    raw = os.environ.get(variable, "").strip()
    return (raw if "://" in raw else os.path.expanduser(raw)) or None


def load_test_faces(source: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None) -> FaceDataset:
    """Labelled real faces: a PPB-layout folder (``LF/ LM/ DF/ DM/``), a CSV table with columns ``image`` and
    ``group``, or (``None``) the reference lab's 20 test faces, fetched once into ``cache_dir``."""
    if source is None:
            return loaders.load_ppb_folders(fetch_reference_faces(Path(cache_dir) if cache_dir is not None else data_dir()))
    path = Path(source)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such CSV file (from the argument or ${TEST_FACES_ENV}). It needs the "
                                    f"columns {CSV_COLUMNS}.")
        return loaders.load_image_table(path, image_column="image", group_column="group")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} (from the argument or ${TEST_FACES_ENV}) is neither a folder with LF/ LM/ DF/ "
                                f"DM/ sub-folders nor a .csv table with the columns {CSV_COLUMNS}.")
    return loaders.load_ppb_folders(path)


def fetch_reference_faces(cache_dir: Path) -> Path:
    """The reference lab's test faces in ``cache_dir/reference_test_faces/<group>/<file>``, downloaded once and
    checked against their SHA-256 (``$LAB_REFERENCE_FACES_URL`` points elsewhere, e.g. a mirror with the same files)."""
    base = (os.environ.get(REFERENCE_FACES_ENV) or REFERENCE_FACES_URL).rstrip("/")
    root = cache_dir / "reference_test_faces"
    for group in GROUPS:
        for name, sha256 in REFERENCE_FACES[group].items():
            target = root / group / name
            if not target.is_file() or file_sha256(target) != sha256:
                download(f"{base}/{group}/{name}", target, sha256=sha256, progress=False)
    return root


def has_attributes(dataset: FaceDataset, names: list[str] | tuple[str, ...], *, what: str, faces_only: bool = True) -> bool:
    """Whether ``dataset`` records every attribute in ``names`` (for its faces); if not, prints one line saying
    that ``what`` cannot be shown on this dataset, so the cell can skip that part and carry on."""
    idx = dataset.face_idx if faces_only else np.arange(len(dataset))
    missing = []
    for name in names:
        values = dataset.attributes.get(name)
        if values is None or len(idx) == 0:
            missing.append(name)
            continue
        values = np.asarray(values)[idx]
        known = ~np.isnan(values) if np.issubdtype(values.dtype, np.floating) else (values != -1)
        if not known.any():
            missing.append(name)
    if missing:
        print(f"{dataset.name} records no {', '.join(missing)} for its {'faces' if faces_only else 'images'}, so "
              f"this cell cannot show {what}; carrying on.")
    return not missing
