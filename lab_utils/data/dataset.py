"""The one in-memory dataset type every loader returns and every trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lab_utils import GROUPS
from lab_utils.core import validation

IMAGE_SHAPE = validation.IMAGE_SHAPE


@dataclass
class FaceDataset:
    """Images (uint8, N x 64 x 64 x 3, **RGB**), face labels (float32, N; 1 = face) and optional
    per-image attributes (arrays of length N).

    Attributes are for analysis and evaluation only; training code must not read them (see
    ``lab_utils.training.debiasing``). Conventions: ``group`` is int8 with 0..3 indexing ``lab_utils.GROUPS``
    (LF, LM, DF, DM) and -1 for non-faces or unknown; other integer attributes use -1 and float
    attributes NaN where they do not apply (e.g. skin tone of a non-face).
    """

    images: np.ndarray
    labels: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "dataset"

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"{self.name}: 'images' must have shape (N, 64, 64, 3), got {images.shape}. "
                "Resize images to 64x64 RGB first (lab_utils.data.loaders does this for image folders)."
            )
        if images.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: 'images' must be uint8 in [0, 255], got dtype {images.dtype}. "
                "Convert with (x * 255).round().astype('uint8') if you have floats in [0, 1]."
            )
        validation.images(f"{self.name}: 'images'", images)  # e.g. uint8 holding only 0 and 1
        labels = np.asarray(self.labels, dtype=np.float32).reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{self.name}: 'labels' has {labels.shape[0]} entries but 'images' has {images.shape[0]}; "
                "they must match one-to-one."
            )
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError(f"{self.name}: 'labels' must be 0 (non-face) or 1 (face).")
        for key, values in self.attributes.items():
            if len(values) != images.shape[0]:
                raise ValueError(
                    f"{self.name}: attribute {key!r} has {len(values)} entries, expected {images.shape[0]}."
                )
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @cached_property
    def face_idx(self) -> np.ndarray:
        return np.flatnonzero(self.labels == 1.0)

    @cached_property
    def nonface_idx(self) -> np.ndarray:
        return np.flatnonzero(self.labels == 0.0)

    @property
    def group(self) -> np.ndarray:
        """int8 group code per image (-1 where unknown); all -1 when the dataset has no groups."""
        if "group" in self.attributes:
            return np.asarray(self.attributes["group"], dtype=np.int8)
        return np.full(len(self), -1, dtype=np.int8)

    def group_idx(self, code: str) -> np.ndarray:
        """Indices of the faces in one group, by code (``"DF"``) from ``lab_utils.GROUPS``."""
        if code not in GROUPS:
            raise ValueError(f"Unknown group {code!r}; expected one of {GROUPS}.")
        return np.flatnonzero(self.group == GROUPS.index(code))

    def subset(self, idx: np.ndarray, name: str | None = None) -> "FaceDataset":
        idx = np.asarray(idx)
        return FaceDataset(
            self.images[idx], self.labels[idx],
            {k: np.asarray(v)[idx] for k, v in self.attributes.items()},
            name=name or self.name,
        )

    def extended(self, images: np.ndarray, labels: np.ndarray, name: str | None = None) -> "FaceDataset":
        """This dataset followed by ``images`` (labels ``labels``), whose attributes are unknown: NaN for float
        attributes, -1 for integer ones (the conventions above), -1 in an object array for any other kind."""
        n = len(images)
        attributes = {}
        for key, values in self.attributes.items():
            values = np.asarray(values)
            fill = np.nan if np.issubdtype(values.dtype, np.floating) else -1
            pad = np.full(n, fill, dtype=values.dtype if values.dtype.kind in "iuf" else object)
            attributes[key] = np.concatenate([values, pad])
        return FaceDataset(np.concatenate([self.images, np.asarray(images)]),
                           np.concatenate([self.labels, np.asarray(labels, np.float32).reshape(-1)]), attributes,
                           name=name or self.name)

    def as_float(self, idx: np.ndarray | None = None) -> np.ndarray:
        """float32 RGB in [0, 1], the models' input format."""
        images = self.images if idx is None else self.images[idx]
        return images.astype(np.float32) / 255.0

    def summary(self) -> str:
        n_faces = len(self.face_idx)
        lines = [f"{self.name}: {len(self)} images, {n_faces} faces, {len(self) - n_faces} non-faces"]
        if (self.group >= 0).any():
            counts = {code: int((self.group == i).sum()) for i, code in enumerate(GROUPS)}
            lines.append("  faces per group: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        return "\n".join(lines)
