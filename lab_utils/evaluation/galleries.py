"""Image galleries: look at the data (per group, and the non-faces) before trusting any number about it.

Like ``lab_utils.evaluation.plots``, every function returns a pyplot-managed ``Figure`` and never calls ``show``; save
with ``save_figure`` (the same atomic writer as the charts) and ``plt.close`` figures in long scripts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from lab_utils import GROUP_NAMES, GROUPS
from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.plots import save_figure
from lab_utils.core.validation import integer
from lab_utils.core import validation

__all__ = ["save_figure", "show_gallery", "show_images"]


def _rows(dataset: FaceDataset, per_group: int, include_nonfaces: bool,
          rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(label, indices) per row: one per group when the dataset has groups, else all faces in one row."""
    def pick(idx: np.ndarray) -> np.ndarray:
        return np.sort(rng.choice(idx, size=min(per_group, len(idx)), replace=False)) if len(idx) else idx

    if (dataset.group[dataset.face_idx] >= 0).any():
        rows = []
        for code in GROUPS:
            idx = dataset.group_idx(code)
            rows.append((f"{code}: {GROUP_NAMES[code]}\n({len(idx)} faces)", pick(idx)))
    else:
        rows = [(f"faces\n({len(dataset.face_idx)})", pick(dataset.face_idx))]
    if include_nonfaces:
        rows.append((f"non-faces\n({len(dataset.nonface_idx)})", pick(dataset.nonface_idx)))
    return rows


def show_gallery(dataset: FaceDataset, *, per_group: int = 8, include_nonfaces: bool = True, seed: int = 0,
                 title: str | None = None, ax_size: float = 1.2) -> Figure:
    """A random sample per group (LF, LM, DF, DM) and of non-faces, one labelled row each, with group sizes."""
    if not isinstance(dataset, FaceDataset):
        raise ValueError(f"show_gallery expects a FaceDataset, got {type(dataset).__name__}; "
                         "use show_images for plain arrays.")
    rng = np.random.default_rng(validation.seed(seed))
    rows = _rows(dataset, integer("per_group", per_group), include_nonfaces, rng)
    fig = plt.figure(figsize=(ax_size * per_group + 1.5, ax_size * len(rows) + (0.4 if title else 0.05)))
    axes = fig.subplots(len(rows), per_group, squeeze=False)
    for (label, idx), ax_row in zip(rows, axes):
        for j, ax in enumerate(ax_row):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(idx):
                ax.imshow(dataset.images[idx[j]], interpolation="nearest")
            else:
                ax.set_axis_off()  # group smaller than per_group
        ax_row[0].set_axis_on()
        ax_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        for spine in ax_row[0].spines.values():
            spine.set_visible(len(idx) > 0)
    if title:
        fig.suptitle(title)
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=1.5 / width, right=0.99, bottom=0.05 / height,
                        top=1 - (0.4 if title else 0.05) / height, wspace=0.05, hspace=0.05)
    return fig


def show_images(images: np.ndarray | Sequence[np.ndarray], titles: Sequence[str] | None = None,
                ncols: int = 8) -> Figure:
    """Any stack of RGB images (uint8, or float in [0, 1]) in a grid, e.g. VAE reconstructions or samples."""
    arr = np.asarray(images)
    arr, _ = validation.images("images", arr[None] if arr.ndim == 3 else arr, any_size=True)
    if titles is not None and len(titles) != len(arr):
        raise ValueError(f"got {len(titles)} titles for {len(arr)} images; pass one per image or None.")
    ncols = integer("ncols", ncols)
    n = max(len(arr), 1)
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig = plt.figure(figsize=(1.2 * ncols, (1.45 if titles is not None else 1.2) * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(arr):
            ax.imshow(arr[i].squeeze(-1) if arr.shape[-1] == 1 else arr[i], cmap="gray", vmin=0,
                      vmax=255 if arr.dtype == np.uint8 else 1, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92 if titles is not None else 0.99,
                        wspace=0.05, hspace=0.25 if titles is not None else 0.05)
    return fig

