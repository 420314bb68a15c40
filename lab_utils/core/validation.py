"""Checking arguments once, the same way everywhere: an integer is an integer (not a bool, not a float), a number
is finite, and the message names the argument, the value given and what is allowed."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any


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
    import numpy as np

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
