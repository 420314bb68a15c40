"""A dataset's faces in latent space: their posterior means and log-variances, and whether the space is in use (the
active-unit count, the usual test for a collapsed VAE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from lab_utils.core import validation
from lab_utils.core.validation import integer
from lab_utils.data.dataset import FaceDataset
from lab_utils.nn.models import pad_batch

PROGRESS_MIN_IMAGES = 10_000
"""Loops over at least this many images show a progress bar."""

ACTIVE_VARIANCE = 0.01
"""A latent dimension is active when its posterior mean varies across faces by more than this (variance)."""


def active_units(mu: np.ndarray, threshold: float = ACTIVE_VARIANCE) -> np.ndarray:
    """Which latent dimensions are active, one bool per column of the faces' latent means ``mu`` (n, k).

    An inactive dimension says the same for every face, so the decoder cannot use it: with none active every
    reconstruction is one average face (the KL term won over the reconstruction term).
    """
    mu = validation.latent_means(mu)
    if mu.shape[0] < 2:
        raise ValueError(f"mu must be the latent means of at least two faces, shape (n, k); got {mu.shape}.")
    return mu.var(axis=0) > threshold


def encode_posteriors(model: Any, dataset: FaceDataset, *, batch_size: int = 256,
                      progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and log-variances (each n_faces x k) of the dataset's faces, in ``dataset.face_idx`` order.

    Reads only ``dataset.images`` and ``dataset.face_idx`` (labels), never ``dataset.attributes``.
    ``model`` is anything with ``encode(x) -> (mu, logvar)`` (a VAE or DB-VAE).
    """
    if not callable(getattr(model, "encode", None)):
        raise ValueError(f"model must have an encode(x) -> (mu, logvar) method (a DBVAE or VAE), got "
                         f"{type(model).__name__}.")
    batch_size = integer("batch_size", batch_size)
    face_idx = dataset.face_idx
    if len(face_idx) == 0:
        raise ValueError(f"{dataset.name}: no faces (label 1) to encode.")
    if progress is None:
        progress = len(face_idx) >= PROGRESS_MIN_IMAGES
    means, logvars = [], []
    for start in tqdm(range(0, len(face_idx), batch_size), desc="encode faces", unit="batch",
                      disable=not progress, leave=False):
        rows = face_idx[start: start + batch_size]
        x = dataset.images[rows].astype(np.float32) / 255.0
        mu, logvar = model.encode(pad_batch(x, batch_size))
        means.append(ops.convert_to_numpy(mu)[: len(rows)])
        logvars.append(ops.convert_to_numpy(logvar)[: len(rows)])
    return np.concatenate(means, axis=0), np.concatenate(logvars, axis=0)


def encode_faces(model: Any, dataset: FaceDataset, *, batch_size: int = 256,
                 progress: bool | None = None) -> np.ndarray:
    """Latent means (n_faces, k) of the dataset's faces, in ``dataset.face_idx`` order: what the resampler reads
    (see :func:`encode_posteriors`)."""
    return encode_posteriors(model, dataset, batch_size=batch_size, progress=progress)[0]
