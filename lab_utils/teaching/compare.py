"""Comparing a student's output with the reference's, and saying in one line what is wrong: the shape (naming
the (B, 1) + (B,) -> B x B broadcasting mistake), a NaN, a wrong value with the sample behind it, a constant
factor (a sum where a mean is needed, a lost minus sign)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from lab_utils.core.validation import shape_mistake

RTOL = 1e-4


class Mismatch(NamedTuple):
    """Why an output is wrong. ``index`` (a sample) lets the message show that sample's inputs; ``kind`` is
    "value" for wrong numbers (where a check's hint applies), else "shape", "nan" or "type"."""

    reason: str
    index: int | None = None
    kind: str = "value"


Compare = Callable[[Any, Any, float], "Mismatch | None"]


def to_numpy(value: Any) -> Any:
    """numpy for numbers, arrays and backend tensors alike; dicts keep their keys."""
    if isinstance(value, Mapping):
        return {key: to_numpy(item) for key, item in value.items()}
    if value is None or isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return value if value is None else np.asarray(value)
    import keras  # only for tensors, so checks on numpy outputs do not pay for importing the backend

    return keras.ops.convert_to_numpy(value)


def fmt(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return np.array2string(value, precision=4, threshold=8, edgeitems=2, separator=", ").replace("\n", "")
    if isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
        return f"{float(value):.6g}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _at(where: tuple) -> str:
    return f" at [{', '.join(str(int(i)) for i in where)}]" if where else ""


def _as_float_array(got: Any, expected_shape: tuple[int, ...]) -> np.ndarray | Mismatch:
    if got is None:
        return Mismatch("returned None - is the `return` statement missing?", kind="type")
    if isinstance(got, Mapping):
        return Mismatch(f"returned a dict with keys {sorted(map(str, got))}; expected an array of shape "
                        f"{expected_shape}", kind="type")
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return Mismatch(f"returned {type(got).__name__}, which is not an array of numbers; expected shape "
                        f"{expected_shape}", kind="type")


def _factor_hint(expected: np.ndarray, got: np.ndarray) -> str:
    """Name a constant factor (a sum where a mean is needed, a lost minus sign) when there is one."""
    nonzero = np.abs(expected) > 1e-6
    if nonzero.sum() < 2:
        return ""
    ratios = got[nonzero] / expected[nonzero]
    factor = float(np.median(ratios))
    if np.allclose(ratios, factor, rtol=1e-3) and not math.isclose(factor, 1.0, rel_tol=1e-3):
        if math.isclose(factor, -1.0, rel_tol=1e-3):
            return " (every value has the wrong sign)"
        return (f" (every value is {factor:.4g} times the expected one: a sum where a mean is needed, or the "
                "other way round, or a missing constant?)")
    return ""


def compare_arrays(expected: Any, got: Any, atol: float) -> Mismatch | None:
    """Same shape, no NaN/inf where the reference is finite, and values within ``atol`` + ``RTOL``."""
    expected = np.asarray(expected, dtype=np.float64)
    got = _as_float_array(got, expected.shape)
    if isinstance(got, Mismatch):
        return got
    if got.shape != expected.shape:
        return Mismatch(shape_mistake(expected.shape, got.shape), kind="shape")
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if bad.any():
        where = np.unravel_index(int(np.flatnonzero(bad)[0]), got.shape)
        return Mismatch(f"the output contains {fmt(got[where])}{_at(where)} where {fmt(expected[where])} "
                        f"was expected ({int(bad.sum())} non-finite value(s) in all; look for log/sqrt of a "
                        "negative number or a division by zero)", int(where[0]) if where else None, "nan")
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=atol, equal_nan=True)
    if wrong.any():
        error = np.where(wrong, np.abs(got - expected), -1.0)
        where = np.unravel_index(int(np.argmax(error)), got.shape)
        count = f" ({int(wrong.sum())} of {wrong.size} values differ)" if wrong.size > 1 else ""
        return Mismatch(f"wrong value{_at(where)}: expected {fmt(expected[where])}, got {fmt(got[where])}"
                        f"{count}{_factor_hint(expected, got)}", int(where[0]) if where else None)
    return None


def compare_mappings(expected: Mapping[Any, Any], got: Any, atol: float) -> Mismatch | None:
    """Same keys and, key by key, the same number (NaN matches NaN: an empty group has no recall)."""
    if not isinstance(got, Mapping):
        return Mismatch(f"returned {type(got).__name__}; expected a dict with keys {list(expected)}", kind="type")
    if set(got) != set(expected):
        return Mismatch(f"returned a dict with keys {list(got)}; expected the keys {list(expected)}", kind="type")
    for key, value in expected.items():
        mismatch = compare_arrays(value, got[key], atol)
        if mismatch:
            return mismatch._replace(reason=f"[{key!r}] {mismatch.reason}", index=None)
    return None
