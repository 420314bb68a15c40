"""Checking arguments once, the same way everywhere: an integer is an integer (not a bool, not a float), a number
is finite, and the message names the argument, the value given and what is allowed."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any


def integer(name: str, value: Any, *, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an int >= ``minimum``, else ``ValueError("<name> must be an integer >= <minimum>, got ...")``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}{hint}.")
    return int(value)


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
