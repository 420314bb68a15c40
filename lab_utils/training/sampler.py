"""Training batches with a controllable chance for each face to be drawn: the lever DB-VAE pulls.

DB-VAE debiases by re-weighting which faces the classifier sees, not by changing the loss, so the sampler
owns those weights. Batches are drawn with replacement (as in the paper): a batch is ``round(B *
face_fraction)`` faces by the current probabilities plus uniformly drawn non-faces. The draw counts it
keeps let a lab show *who* was actually sampled, which is the effect the method claims.
"""

from __future__ import annotations

from numbers import Real

import keras
import numpy as np

from lab_utils.data.dataset import FaceDataset
from lab_utils.core.validation import integer
from lab_utils.core import validation


class FaceBatchSampler:
    """Reproducible (``seed``) random batches from a :class:`FaceDataset`; see the module docstring."""

    def __init__(
        self,
        dataset: FaceDataset,
        batch_size: int = 32,
        *,
        face_fraction: float = 0.5,
        sampling_probs: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        batch_size = integer("batch_size", batch_size)
        if not (isinstance(face_fraction, Real) and 0.0 <= face_fraction <= 1.0):
            raise ValueError(
                f"face_fraction must be a number in [0, 1] (share of faces per batch), got {face_fraction!r}."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.face_fraction = float(face_fraction)
        self.n_faces_per_batch = round(self.batch_size * self.face_fraction)
        if 0.0 < self.face_fraction < 1.0 and not 0 < self.n_faces_per_batch < self.batch_size:
            raise ValueError(f"batch_size={self.batch_size} with face_fraction={self.face_fraction} leaves "
                             f"{self.n_faces_per_batch} faces per batch: every batch needs both faces and non-faces "
                             "(a detector that never sees one class learns nothing). Use a batch_size of at least 2.")
        self._face_idx = dataset.face_idx
        self._nonface_idx = dataset.nonface_idx
        if len(self._face_idx) == 0:
            raise ValueError(
                f"{dataset.name}: the dataset has no faces (label 1); a face sampler needs some. "
                "Check the labels or load a training file that contains faces."
            )
        if self.n_faces_per_batch < self.batch_size and len(self._nonface_idx) == 0:
            raise ValueError(
                f"{dataset.name}: the dataset has no non-faces (label 0) but face_fraction={face_fraction} "
                "asks for some in every batch. Use face_fraction=1.0 or add non-face images."
            )
        self._rng = np.random.default_rng(validation.seed(seed))
        self._labels = np.concatenate([
            np.ones(self.n_faces_per_batch, np.float32),
            np.zeros(self.batch_size - self.n_faces_per_batch, np.float32),
        ])
        self._counts = np.zeros(self.n_faces, np.int64)
        self.last_face_indices = np.empty(0, np.int64)
        self.set_sampling_probs(np.ones(self.n_faces) if sampling_probs is None else sampling_probs)

    @property
    def n_faces(self) -> int:
        return len(self._face_idx)

    @property
    def sampling_probs(self) -> np.ndarray:
        """Normalised draw probability of each face, in ``dataset.face_idx`` order (a copy)."""
        return self._probs.copy()

    @property
    def drawn_face_counts(self) -> np.ndarray:
        """How often each face (``dataset.face_idx`` order) was drawn since the last :meth:`reset_counts`."""
        return self._counts.copy()

    def reset_counts(self) -> None:
        self._counts[:] = 0

    def set_sampling_probs(self, p: np.ndarray) -> None:
        """Replace the face weights (any non-negative scale; normalised here). Takes effect on the next batch."""
        try:
            probs = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"sampling_probs must be numeric, got {type(p).__name__} ({err}).") from err
        if probs.ndim != 1:
            raise ValueError(f"sampling_probs must be 1-D (one weight per face), got shape {probs.shape}.")
        if len(probs) != self.n_faces:
            raise ValueError(
                f"sampling_probs has {len(probs)} entries but the dataset has {self.n_faces} faces; "
                "give one weight per face in dataset.face_idx order."
            )
        bad = ~np.isfinite(probs)
        if bad.any():
            raise ValueError(
                f"sampling_probs has {int(bad.sum())} non-finite values (NaN or inf), first at face position "
                f"{int(np.flatnonzero(bad)[0])}; check the density estimate that produced them."
            )
        if (probs < 0).any():
            raise ValueError(
                f"sampling_probs has {int((probs < 0).sum())} negative values (min {probs.min():.3g}); "
                "weights must be >= 0."
            )
        if probs.max() > 0:
            probs = probs / probs.max()  # weights of 1e308 must not overflow the sum into inf (and the draw to face 0)
        total = probs.sum()
        if not total > 0:
            raise ValueError("sampling_probs sums to 0; at least one face needs a positive weight.")
        self._probs = probs / total
        cdf = np.cumsum(self._probs)
        self._cdf = cdf / cdf[-1]  # last entry exactly 1, so a uniform draw in [0, 1) always lands on a face

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch ``(x, y)``: x float32 (B, 64, 64, 3) RGB in [0, 1], y float32 (B,), faces first."""
        n_faces = self.n_faces_per_batch
        # side="right" never lands on a zero-weight face: its cdf step has zero width.
        positions = np.searchsorted(self._cdf, self._rng.random(n_faces), side="right")
        n_nonfaces = self.batch_size - n_faces
        nonfaces = self._nonface_idx[self._rng.integers(len(self._nonface_idx), size=n_nonfaces)] \
            if n_nonfaces else self._nonface_idx[:0]
        self.last_face_indices = self._face_idx[positions]
        self._counts += np.bincount(positions, minlength=self.n_faces)
        x = self.dataset.images[np.concatenate([self.last_face_indices, nonfaces])].astype(np.float32)
        x /= 255.0
        return x, self._labels.copy()

    def as_keras_dataset(self, steps_per_epoch: int) -> keras.utils.PyDataset:
        """For ``model.fit``: each epoch is ``steps_per_epoch`` fresh batches drawn with the probabilities
        current at that time, so ``set_sampling_probs`` from a callback applies from the next epoch on.

        Keras draws two extra batches once, before training, to learn the batch shapes.
        """
        return _SamplerDataset(self, steps_per_epoch)


class _SamplerDataset(keras.utils.PyDataset):
    """Keras view of a sampler; single-worker because the sampler's RNG and counts are shared state."""

    def __init__(self, sampler: FaceBatchSampler, steps_per_epoch: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        steps_per_epoch = integer("steps_per_epoch", steps_per_epoch)
        self.sampler = sampler
        self.steps_per_epoch = int(steps_per_epoch)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # Batches are random draws with replacement, so the index only bounds the epoch.
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch index {index} out of range for {self.steps_per_epoch} steps per epoch.")
        return self.sampler.sample()
