"""Opt-in loaders for real face data: the reference lab's training file, PPB-style folders, CSV tables.

Nothing on the labs' default path calls these; the labs run offline on generated data. They exist so a
student with the real files can rerun the same analysis, and every one returns the same ``FaceDataset``
(64x64 RGB uint8) as the generator.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from tqdm.auto import tqdm

from lab_utils import GROUPS
from lab_utils.data import h5io
from lab_utils.data.dataset import IMAGE_SHAPE, FaceDataset
from lab_utils.data.download import download, file_sha256
from lab_utils.core.files import write_text_atomic
from lab_utils.core.env import data_dir

REFERENCE_TRAIN_URL = "https://www.dropbox.com/s/hlz8atheyozp1yx/train_face.h5?dl=1"
"""Where MIT 6.S191 Lab 2 publishes ``train_face.h5`` (CelebA faces + ImageNet non-faces, BGR)."""

IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras",
})
"""Files the folder loader treats as images; anything else (README, CSV, .DS_Store) is skipped."""

URL_SCHEMES = ("http", "https", "ftp", "file")
GROUP_DERIVED = ("group", "darker", "male")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def load_reference_training_file(
    path_or_url: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    sha256: str | None = None,
) -> FaceDataset:
    """The reference lab's training set, from a local file or a URL (downloaded once into ``cache_dir``,
    by default the checkout's ``data/`` like the generated benchmark: ``lab_utils.core.env.data_dir``).

    A download only takes the final name after it has passed the optional SHA-256 check and loaded as a
    valid file, so an interrupted or wrong download can never be mistaken for the real file later.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else data_dir()
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}.")
    if path_or_url is None:
        raise FileNotFoundError(
            "No reference training file given. Download train_face.h5 from "
            f"{REFERENCE_TRAIN_URL} and pass its path, or pass that URL to download it into "
            f"{cache_dir!s}/, e.g. load_reference_training_file(loaders.REFERENCE_TRAIN_URL)."
        )
    source = str(path_or_url)
    if urlsplit(source).scheme.lower() in URL_SCHEMES:
        return _download_reference_file(source, cache_dir, sha256)

    path = Path(source)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the path of the training file itself (e.g. {path}/train_face.h5).")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file. Download train_face.h5 from {REFERENCE_TRAIN_URL} and pass its path, "
            "or pass the URL itself to download it."
        )
    if sha256 is not None and (actual := file_sha256(path)) != sha256.lower():
        raise ValueError(
            f"{path}: SHA-256 {actual} does not match the expected {sha256.lower()}; the file is "
            "incomplete or a different version. Delete it and download it again."
        )
    return h5io.load_dataset(path, name="reference_train")


def load_ppb_folders(root: str | os.PathLike, *, size: int = 64) -> FaceDataset:
    """Faces sorted into ``root/LF``, ``root/LM``, ``root/DF``, ``root/DM`` (the Pilot Parliaments
    Benchmark's groups), for evaluating on real faces. Missing group folders are allowed, not all of them.
    """
    _check_size(size)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such folder. Expected {root}/{{{','.join(GROUPS)}}}/<images>, one folder per group."
        )
    files: list[Path] = []
    codes: list[int] = []
    found = [code for code in GROUPS if (root / code).is_dir()]
    near = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.upper() in GROUPS and p.name not in GROUPS)
    if near:
        raise ValueError(f"{root}: group folder(s) {near} differ from {list(GROUPS)} only in case; rename them exactly "
                         "LF, LM, DF and DM (on a case-sensitive disk they would be skipped).")
    if not found:
        raise ValueError(
            f"{root}: none of the group folders {GROUPS} exist (found {sorted(p.name for p in root.iterdir())}). "
            "Sort the images into one sub-folder per group, named exactly LF, LM, DF and DM."
        )
    for code in found:
        broken = sorted(p.name for p in (root / code).iterdir() if p.is_symlink() and not p.exists())
        if broken:
            raise FileNotFoundError(
                f"{root / code}: {len(broken)} broken symbolic link(s), e.g. {broken[:3]}: their targets are missing. "
                "Restore the target files or delete the links, then load again."
            )
        images = sorted(p for p in (root / code).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        nested = sorted(p.name for p in (root / code).iterdir() if p.is_dir())
        if nested:
            raise ValueError(f"{root / code}: sub-folder(s) {nested[:3]} inside a group folder; images must sit "
                             f"directly in {code}/ (sub-folders are not read). Move their images up a level.")
        files += images
        codes += [GROUPS.index(code)] * len(images)
    if not files:
        raise ValueError(f"{root}: the group folders {found} hold no images (looked for {sorted(IMAGE_SUFFIXES)}).")
    group = np.array(codes, dtype=np.int8)
    return FaceDataset(_read_images(files, size, desc="PPB images"), np.ones(len(files), np.float32),
                       _group_attributes(group), name=root.name or "ppb")


def load_image_table(
    csv_path: str | os.PathLike,
    *,
    image_column: str = "image",
    image_root: str | os.PathLike | None = None,
    group_column: str | None = None,
    group_map: dict[str, str] | None = None,
    label_column: str | None = None,
    attribute_columns: list[str] | None = None,
    size: int = 64,
) -> FaceDataset:
    """Any labelled image folder described by a CSV (UTKFace, FairFace or PPB metadata converted to one).

    Image paths are relative to ``image_root`` (default: the CSV's folder). ``group_column`` values must be
    in ``GROUPS`` after ``group_map`` (e.g. ``{"darker_female": "DF"}``); blank means unknown (-1), and the
    ``group``, ``darker`` and ``male`` attributes follow from it. ``label_column`` holds 1 (face) / 0; by
    default every row is a face. ``attribute_columns`` (default: all other columns) are kept as float32
    when every non-blank value is a number (blank -> NaN), otherwise as strings.
    """
    _check_size(size)
    csv_path = Path(csv_path)
    columns, rows = _read_csv(csv_path)
    if not rows:
        raise ValueError(f"{csv_path}: no data rows (a header line and at least one image row are needed).")

    def need(column: str, role: str) -> None:
        if column not in columns:
            raise ValueError(f"{csv_path}: no column {column!r} ({role}); available columns: {columns}.")

    need(image_column, "image_column")
    for column, role in ((group_column, "group_column"), (label_column, "label_column")):
        if column is not None:
            need(column, role)
    used = {image_column, group_column, label_column}
    if attribute_columns is None:
        attribute_columns = [c for c in columns if c not in used]
    for column in attribute_columns:
        need(column, "attribute_columns")
        if column in GROUP_DERIVED:
            raise ValueError(
                f"{csv_path}: column {column!r} clashes with the {GROUP_DERIVED} attributes derived from the "
                f"group; pass group_column={column!r} if it holds groups, or leave it out of attribute_columns."
            )

    root = Path(image_root) if image_root is not None else csv_path.parent
    files = [Path(row[image_column]) if Path(row[image_column]).is_absolute() else root / row[image_column]
             for row in rows]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{csv_path}: {len(missing)} of {len(files)} images not found, e.g. {missing[:3]}. Image paths are "
            f"read relative to {root}; pass image_root= if they live elsewhere."
        )

    attributes = {c: _column_array([row[c] for row in rows]) for c in attribute_columns}
    if group_column is not None:
        attributes |= _group_attributes(_group_codes([row[group_column] for row in rows], group_map, csv_path))
    labels = (np.ones(len(rows), np.float32) if label_column is None
              else _labels([row[label_column] for row in rows], label_column, csv_path))
    images = _read_images(files, size, desc=f"{csv_path.name} images")
    return FaceDataset(images, labels, attributes, name=csv_path.stem)


def _read_csv(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a UTF-8 CSV, refusing what ``csv.DictReader`` would silently get wrong: a repeated
    column name (the last one would win) and a row with more or fewer fields than the header."""
    if csv_path.is_dir():
        raise ValueError(f"{csv_path} is a folder; pass the path of the CSV file itself.")
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: no such CSV file.")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise ValueError(f"{csv_path}: not UTF-8 text (byte {err.start} cannot be decoded); save the table as "
                         "UTF-8 CSV (e.g. 'CSV UTF-8' in a spreadsheet's Save As) and load it again.") from None
    except csv.Error as err:
        raise ValueError(f"{csv_path}: not a readable CSV table ({err}).") from None
    if not table:
        return [], []
    header = [name.strip() for name in table[0]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{csv_path}: column name(s) {repeated} appear more than once in the header; rename them "
                         "so every column has its own name.")
    rows = []
    for line, values in enumerate(table[1:], start=2):
        if not values:  # a blank line
            continue
        if len(values) != len(header):
            raise ValueError(f"{csv_path}, line {line}: {len(values)} fields but the header has {len(header)} "
                             f"({header}); check for an unquoted comma or a missing value.")
        rows.append(dict(zip(header, values)))
    return header, rows


def _read_image(path: Path, size: int) -> np.ndarray:
    """One image as ``size`` x ``size`` RGB uint8: centre crop to a square (no distortion), area resize."""
    from lab_utils.data.opencv import cv2  # here, so that reading HDF5 files works without OpenCV
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file.")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(
            f"{path}: OpenCV cannot read this image (corrupt or an unsupported format); fix or remove it."
        )
    height, width = bgr.shape[:2]
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise ValueError(f"{path}: {width}x{height} pixels is not a photo of a face (more than {MAX_ASPECT}:1); a "
                         "centre crop would keep a sliver of it. Crop it to the face, or remove it.")
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = bgr[top:top + side, left:left + side]
    if side != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(square, cv2.COLOR_BGR2RGB)


MAX_ASPECT = 4
"""Width / height (or the inverse) beyond which an image is refused rather than centre-cropped."""


def _read_images(files: list[Path], size: int, desc: str) -> np.ndarray:
    images = np.empty((len(files), size, size, 3), np.uint8)
    for i, path in enumerate(tqdm(files, desc=desc, leave=False)):
        images[i] = _read_image(path, size)
    return images


def _check_size(size: int) -> None:
    if size != IMAGE_SHAPE[0]:
        raise ValueError(f"size must be {IMAGE_SHAPE[0]}: FaceDataset and the lab models use 64x64 images; got {size}.")


def _group_attributes(group: np.ndarray) -> dict[str, np.ndarray]:
    """``group`` codes plus the two axes the labs report on; -1 where the group is unknown."""
    known = group >= 0
    darker = np.where(known, np.isin(group, [GROUPS.index("DF"), GROUPS.index("DM")]), -1).astype(np.int8)
    male = np.where(known, np.isin(group, [GROUPS.index("LM"), GROUPS.index("DM")]), -1).astype(np.int8)
    return {"group": group.astype(np.int8), "darker": darker, "male": male}


def _group_codes(values: list[str], group_map: dict[str, str] | None, csv_path: Path) -> np.ndarray:
    mapped = [(group_map or {}).get(v.strip(), v.strip()) for v in values]
    unknown = sorted({v for v in mapped if v and v not in GROUPS})
    if unknown:
        raise ValueError(
            f"{csv_path}: unknown group values {unknown[:10]}; expected one of {GROUPS} (or blank for unknown). "
            "Pass group_map={'your value': 'DF', ...} to translate them."
        )
    return np.array([GROUPS.index(v) if v else -1 for v in mapped], dtype=np.int8)


def _labels(values: list[str], column: str, csv_path: Path) -> np.ndarray:
    try:
        labels = np.array([float(v) for v in values], dtype=np.float32)
    except ValueError:
        labels = np.full(len(values), np.nan, np.float32)
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{csv_path}: column {column!r} must hold 1 (face) or 0 (non-face); data row {row + 1} has "
            f"{values[row]!r}."
        )
    return labels


def _column_array(values: list[str]) -> np.ndarray:
    stripped = [v.strip() for v in values]
    try:
        return np.array([float(v) if v else np.nan for v in stripped], dtype=np.float32)
    except ValueError:
        return np.array(stripped, dtype=str)


def _download_reference_file(url: str, cache_dir: Path, sha256: str | None) -> FaceDataset:
    """Download once; the SHA-256 of the first complete download is kept beside the file (``<name>.sha256``) and
    checked on every later use, so a file damaged or swapped since is noticed even without a published checksum."""
    fname = Path(urlsplit(url).path).name or "train_face.h5"
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(cache_dir, os.W_OK):
        raise ValueError(f"cache_dir {cache_dir} is not writable; pass cache_dir= a folder you can write to.")
    target = cache_dir / fname
    recorded = target.with_name(target.name + ".sha256")
    expected = sha256.lower() if sha256 else (recorded.read_text().strip() if recorded.is_file() else None)
    if target.is_file():
        actual = file_sha256(target)
        if expected is None or actual == expected:
            if not recorded.is_file():
                write_text_atomic(recorded, actual + "\n")
            return h5io.load_dataset(target, name="reference_train")
        print(f"{target} has SHA-256 {actual}, not the {expected} recorded when it was downloaded: downloading "
              "it again.")
        target.unlink()

    try:
        download(url, target, sha256=sha256)
        dataset = h5io.load_dataset(target, name="reference_train")
    except ValueError as err:
        target.unlink(missing_ok=True)
        raise ValueError(
            f"The file downloaded from {url} is not a valid training file and was deleted: {err} "
            "Check the URL (Dropbox links need ?dl=1) and the sha256, then try again."
        ) from err
    write_text_atomic(recorded, file_sha256(target) + "\n")
    return dataset
