"""Checking arguments once, the same way everywhere: an integer is an integer (not a bool, not a float), a number
is finite, and the message names the argument, the value given and what is allowed."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np


def integer(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as an int in [``minimum``, ``maximum``], else a ``ValueError`` that names the argument and range."""
    if (isinstance(value, bool) or not isinstance(value, Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}{hint}.")
    return int(value)


SEED_MAX = 2**32 - 1
"""NumPy's legacy seeding (and so Keras') takes seeds up to this."""


def seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer in [0, 2**32 - 1], the range every generator the labs seed accepts."""
    return integer(name, value, minimum=0, maximum=SEED_MAX)


def instance(name: str, value: Any, cls: type, example: str) -> Any:
    """``value`` if it is a ``cls`` (a settings object checks itself when made), else a ``ValueError`` that shows how
    to make one, e.g. ``example``."""
    if not isinstance(value, cls):
        raise ValueError(f"{name} must be a {cls.__name__}, e.g. {example}, got {type(value).__name__}.")
    return value


def number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           high_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite float in the given range, else a ``ValueError`` that states the range."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a finite number {_describe(low, high, low_open, high_open)}, "
                         f"got {value!r}{hint}.")
    return float(value)


def _describe(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "(not NaN or infinite)"
    if math.isinf(high):
        return f"{'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


IMAGE_SHAPE = (64, 64, 3)


def images(name: str, value: Any, *, any_size: bool = False) -> tuple[Any, bool]:
    """``value`` as a NumPy batch of 64x64 RGB images (``any_size``: N x H x W x 1 or 3, for figures) and whether it
    is uint8: the one check at every entry that takes images. uint8 must use the 0-255 range (a batch holding only
    0 and 1 is floats cast without scaling); floats must be finite and in [0, 1] (floats in 0-255 are uint8 values
    not divided by 255)."""
    x = np.asarray(value)
    if any_size:
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"{name} must have shape (N, H, W, 3) or (N, H, W, 1), got {x.shape}.")
    elif x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name} must have shape (N, 64, 64, 3), got {x.shape}; pass 64x64 RGB images.")
    if x.dtype == np.uint8:
        if x.size and x.max() == 1:  # (all-zero batches stay allowed: padding, placeholders)
            raise ValueError(f"{name} are uint8 but hold only 0 and 1: floats in [0, 1] were cast with "
                             ".astype('uint8') instead of scaled. Use (x * 255).round().astype('uint8'), or pass the "
                             "floats themselves.")
        return x, True
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 in [0, 255] or float in [0, 1], got dtype {x.dtype}.")
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{name}: {bad.size} image(s) contain NaN or infinite pixels (first at index {int(bad[0])}); "
                         "a model scores such an image as if it were real. Check how the images were loaded or "
                         "scaled.")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        hint = " (they look like 0-255 values: divide by 255)" if x.max() > 1.0 else ""
        raise ValueError(f"{name}: float images must be in [0, 1] (the models' input range), got "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]{hint}.")
    return x, False


def shape_mistake(expected: tuple[int, ...], got: tuple[int, ...]) -> str:
    """What a wrong output shape usually means (a broadcast (B, 1) against (B,), a reduced batch axis), said so a
    student can fix it; shared by the loss checks before training and the exercises' self-checks."""
    head = f"returned shape {got}, expected {expected}"
    if len(expected) == 1:
        b = expected[0]
        if got == (b, b):
            return (f"{head}: a broadcasting mistake - an array of shape ({b}, 1) combined with one of shape "
                    f"({b},) gives {b}x{b}; reshape the (B, 1) array to (B,) (e.g. keras.ops.reshape(y, (-1,))) "
                    "before combining")
        if got == (b, 1):
            return f"{head}: return one value per sample, shape (B,) - drop the trailing axis of size 1"
        if got == ():
            return (f"{head}: one number for the whole batch - return one value per sample, shape (B,), "
                    "and do not average or sum over the batch")
        if len(got) == 1:
            return f"{head}: one value per sample is needed; check which axis you reduced over"
    if len(got) == len(expected) + 1 and any(got[:i] + got[i + 1:] == expected for i in range(len(got))):
        return (f"{head}: a broadcasting mistake - an extra axis appeared, as when a (B, 1) array meets a (B,) "
                "array; make the shapes of the arrays you combine match")
    return head


def latent_means(mu: Any) -> np.ndarray:
    """Latent means as a float64 (n_faces, latent_dim) array, else a ``ValueError`` saying what went wrong upstream."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"mu must be a non-empty (n_faces, latent_dim) array of latent means, got {mu.shape}.")
    if not np.isfinite(mu).all():
        raise ValueError(
            f"mu has {int((~np.isfinite(mu)).sum())} non-finite values; the encoder diverged "
            "(check the learning rate / KL weight) or the input images are not in [0, 1]."
        )
    return mu


def dimension_indices(name: str, dims: Sequence[int] | None, k: int) -> np.ndarray:
    """Distinct indices into ``k`` latent dimensions (negative ones count from the end); ``None`` means all."""
    if dims is None:
        return np.arange(k)
    sel = np.asarray(dims)
    if sel.ndim != 1 or sel.size == 0 or not np.issubdtype(sel.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty sequence of latent dimension indices, got {dims!r}.")
    if sel.min() < -k or sel.max() >= k or len(np.unique(sel % k)) != sel.size:
        raise ValueError(f"{name} must be distinct indices in [0, {k}) for {k} latent dimensions, got {dims!r}.")
    return sel % k


def rule_output(name: str, value: Any, n_faces: int) -> np.ndarray:
    """What a resampling rule returned, as probabilities that sum to 1, else a ``ValueError`` naming the rule."""
    probs = np.asarray(value, dtype=np.float64)
    if probs.shape != (n_faces,):
        raise ValueError(f"The resampling rule {name!r} returned shape {probs.shape}; it must return one "
                         f"probability per face, shape ({n_faces},).")
    if not np.isfinite(probs).all() or (probs < 0).any() or not probs.max() > 0:
        raise ValueError(f"The resampling rule {name!r} returned weights that are negative, non-finite or all "
                         "zero; every face needs a finite weight >= 0 and at least one a positive one.")
    probs = probs / probs.max()  # weights near the float64 limit must not overflow the sum
    return probs / probs.sum()


def sampling_probs(value: Any, n_faces: int) -> np.ndarray:
    """One non-negative weight per face (any scale) as probabilities that sum to 1, else a ``ValueError``."""
    try:
        probs = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"sampling_probs must be numeric, got {type(value).__name__} ({err}).") from err
    if probs.ndim != 1:
        raise ValueError(f"sampling_probs must be 1-D (one weight per face), got shape {probs.shape}.")
    if len(probs) != n_faces:
        raise ValueError(f"sampling_probs has {len(probs)} entries but the dataset has {n_faces} faces; "
                         "give one weight per face in dataset.face_idx order.")
    bad = ~np.isfinite(probs)
    if bad.any():
        raise ValueError(f"sampling_probs has {int(bad.sum())} non-finite values (NaN or inf), first at face position "
                         f"{int(np.flatnonzero(bad)[0])}; check the density estimate that produced them.")
    if (probs < 0).any():
        raise ValueError(f"sampling_probs has {int((probs < 0).sum())} negative values (min {probs.min():.3g}); "
                         "weights must be >= 0.")
    if probs.max() > 0:
        probs = probs / probs.max()  # weights of 1e308 must not overflow the sum into inf (and the draw to face 0)
    total = probs.sum()
    if not total > 0:
        raise ValueError("sampling_probs sums to 0; at least one face needs a positive weight.")
    return probs / total


def batch_composition(dataset: str, batch_size: int, face_fraction: float, n_faces_per_batch: int, n_faces: int,
                      n_nonfaces: int) -> None:
    """Refuse batches a detector cannot learn from: no faces to draw, or a class that never appears."""
    if 0.0 < face_fraction < 1.0 and not 0 < n_faces_per_batch < batch_size:
        raise ValueError(f"batch_size={batch_size} with face_fraction={face_fraction} leaves {n_faces_per_batch} "
                         "faces per batch: every batch needs both faces and non-faces (a detector that never sees "
                         "one class learns nothing). Use a batch_size of at least 2.")
    if n_faces == 0:
        raise ValueError(f"{dataset}: the dataset has no faces (label 1); a face sampler needs some. Check the labels "
                         "or load a training file that contains faces.")
    if n_faces_per_batch < batch_size and n_nonfaces == 0:
        raise ValueError(f"{dataset}: the dataset has no non-faces (label 0) but face_fraction={face_fraction} asks "
                         "for some in every batch. Use face_fraction=1.0 or add non-face images.")
