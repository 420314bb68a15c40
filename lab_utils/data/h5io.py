"""HDF5 files in the reference lab's schema (MIT 6.S191 Lab 2 ``train_face.h5``), plus what our labs add.

Schema: ``images`` uint8 (N, 64, 64, 3) and ``labels`` float (N, 1), 1 = face. The reference file stores
BGR and carries no channel attribute, so a file without one is read as BGR. Files written here store RGB,
say so in ``images.attrs["channel_order"]``, and add ``attributes/<name>`` arrays and a JSON ``metadata``
file attribute, so a generated benchmark travels with the facts needed to reproduce it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lab_utils.data.dataset import IMAGE_SHAPE, FaceDataset
from lab_utils.core.files import atomic_path

CHANNEL_ORDERS = ("RGB", "BGR")
REFERENCE_CHANNEL_ORDER = "BGR"
METADATA_ATTR = "metadata"
CHANNEL_ATTR = "channel_order"
ATTRIBUTES_GROUP = "attributes"
COMPRESSIONS = (None, "lzf", "gzip")

_EXPECTED = {
    "images": "uint8 array of shape (N, 64, 64, 3)",
    "labels": "numeric array of shape (N,) or (N, 1) with values in {0, 1}",
}
_REGENERATE = "Delete the file and regenerate or re-download it."


def save_dataset(
    ds: FaceDataset,
    path: str | os.PathLike,
    *,
    channel_order: str = "RGB",
    metadata: dict | None = None,
    compression: str | None = None,
) -> None:
    """Write ``ds`` atomically: readers never see a half-written file, even if this process dies.

    ``channel_order="BGR"`` writes reference-lab-compatible pixels. ``compression`` ("lzf" or "gzip") trades
    load speed for disk space; uncompressed loads fastest (gzip was >10x slower to read on 64x64 images),
    which is why it is the default.
    """
    order = _check_channel_order(channel_order)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}.")
    metadata_json = _metadata_to_json(metadata)
    attributes = {key: _attribute_for_hdf5(key, values) for key, values in ds.attributes.items()}
    images = ds.images if order == "RGB" else ds.images[..., ::-1]

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        chunks = (min(len(ds), 256), *IMAGE_SHAPE) if compression and len(ds) else None
        dset = f.create_dataset("images", data=images, chunks=chunks, compression=compression)
        dset.attrs[CHANNEL_ATTR] = order
        f.create_dataset("labels", data=ds.labels.reshape(-1, 1).astype(np.float32))
        group = f.create_group(ATTRIBUTES_GROUP)
        for key, values in attributes.items():
            group.create_dataset(key, data=values)
        if metadata_json is not None:
            f.attrs[METADATA_ATTR] = metadata_json


def load_dataset(
    path: str | os.PathLike, *, channel_order: str | None = None, name: str | None = None
) -> FaceDataset:
    """Read a file written here or by the reference lab; always returns RGB images.

    Channel order comes from ``channel_order``, else the file's attribute, else BGR (the reference file).
    """
    path = _existing_file(path)
    override = None if channel_order is None else _check_channel_order(channel_order)
    with _open(path) as f:
        try:
            # Shapes and dtypes are checked before reading, so a wrong file fails fast however big it is.
            images_dset = _check_images(_required(f, "images", path), path)
            labels_dset = _check_labels(_required(f, "labels", path), images_dset.shape[0], path)
            images, labels = images_dset[()], labels_dset[()].reshape(-1).astype(np.float32)
            stored_order = images_dset.attrs.get(CHANNEL_ATTR, REFERENCE_CHANNEL_ORDER)
            attributes = {}
            if ATTRIBUTES_GROUP in f:
                for key, dset in f[ATTRIBUTES_GROUP].items():
                    attributes[key] = (np.asarray(dset.asstr()[()], dtype=str) if h5py.check_string_dtype(dset.dtype)
                                       else dset[()])
        except OSError as err:
            raise ValueError(f"{path}: the file is truncated or corrupt ({err}). {_REGENERATE}") from err

    if not np.isin(labels, (0.0, 1.0)).all():
        bad = np.unique(labels[~np.isin(labels, (0.0, 1.0))])[:5]
        raise ValueError(f"{path}: dataset 'labels' has values {bad.tolist()}; expected only 0 and 1.")
    order = override or _check_channel_order(_as_str(stored_order), source=f"{path}: images.attrs")
    if order == "BGR":  # swap in place: the reference file is large, a flipped copy would double the peak
        blue = images[..., 0].copy()
        images[..., 0] = images[..., 2]
        images[..., 2] = blue
    return FaceDataset(images, labels, attributes, name=name or path.stem)


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata saved with the file (generator settings, seeds); ``{}`` when there is none."""
    path = _existing_file(path)
    with _open(path) as f:
        raw = f.attrs.get(METADATA_ATTR)
    if raw is None:
        return {}
    try:
        metadata = json.loads(_as_str(raw))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the '{METADATA_ATTR}' attribute is not valid JSON ({err}). {_REGENERATE}") from err
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: the '{METADATA_ATTR}' attribute holds {type(metadata).__name__}, not a JSON object.")
    return metadata


def _check_channel_order(order: Any, source: str = "channel_order") -> str:
    normalised = str(order).upper()
    if normalised not in CHANNEL_ORDERS:
        raise ValueError(f"{source}: channel order must be one of {CHANNEL_ORDERS}, got {order!r}.")
    return normalised


def _metadata_to_json(metadata: dict | None) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}.")
    try:
        return json.dumps(metadata, sort_keys=True)
    except TypeError as err:
        raise ValueError(
            f"metadata must be JSON-serialisable ({err}); convert numpy values with .item() or .tolist()."
        ) from err


def _attribute_for_hdf5(key: str, values: Any) -> np.ndarray:
    """Numbers and booleans are stored as they are, text as UTF-8; anything else is refused up front."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind in "UO" and all(isinstance(v, str) for v in array.ravel()):
        return array.astype(h5py.string_dtype())
    raise ValueError(
        f"attribute {key!r} has dtype {array.dtype}, which cannot be saved; use numbers, booleans or strings."
    )


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file. Generate it (lab_utils) or download it, then pass its path."
        )
    return path


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err}). {_REGENERATE}") from err


def _required(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise ValueError(
            f"{path}: missing dataset {key!r} (expected a {_EXPECTED[key]}); found keys {sorted(f.keys())}. "
            f"{_REGENERATE}"
        )
    return f[key]


def _check_images(images: h5py.Dataset, path: Path) -> h5py.Dataset:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{path}: dataset 'images' is {images.dtype} with shape {images.shape}; expected a "
            f"{_EXPECTED['images']}. {_REGENERATE}"
        )
    return images


def _check_labels(labels: h5py.Dataset, n_images: int, path: Path) -> h5py.Dataset:
    if labels.dtype.kind not in "biuf" or labels.shape not in ((n_images,), (n_images, 1)):
        raise ValueError(
            f"{path}: dataset 'labels' is {labels.dtype} with shape {labels.shape}; expected a "
            f"{_EXPECTED['labels']} where N = {n_images} images. {_REGENERATE}"
        )
    return labels


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
