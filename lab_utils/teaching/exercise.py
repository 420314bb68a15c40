"""Running one exercise's self-check: the student's function and the reference on the same seeded inputs, one
line printed and recorded, and the function the rest of the notebook should use returned.

A check never raises. It returns the student's function when it passed, otherwise the reference, so that later
cells (training, evaluation) still run and still teach. The inputs come from a fixed seed, so a notebook is graded
the same way every time it runs.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lab_utils.teaching.compare import Compare, Mismatch, compare_arrays, fmt, to_numpy
from lab_utils.teaching.records import append_record

DEFAULT_SEED = 0

Case = dict[str, Any]
"""One call's keyword arguments; student and reference functions are both called as ``fn(**case)``."""


def _describe_inputs(case: Case, index: int | None, batch: int | None) -> str:
    """The inputs behind a failure: that sample's rows when it is known, else every input's shape."""
    parts = []
    for key, value in case.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if index is not None and value.shape[0] == batch and value[index].size <= 8:
                parts.append(f"{key}[{index}]={fmt(value[index])}")
            else:
                parts.append(f"{key} of shape {value.shape}")
        else:
            parts.append(f"{key}={fmt(value)}")
    return ", ".join(parts)


class LazyReference:
    """A lab_utils function imported at its first call, so a missing or broken reference module is reported by
    the check (as its own failure) instead of stopping the notebook at import."""

    def __init__(self, module: str, name: str) -> None:
        self.qualified_name = f"{module}.{name}"
        self._module, self._name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def resolve(self) -> Callable[..., Any]:
        fn = getattr(importlib.import_module(self._module), self._name)
        if getattr(fn, "__module__", None) != self._module:  # e.g. `losses.kl_divergence = my_kl` in a notebook
            raise RuntimeError(f"{self.qualified_name} was replaced by a function from {fn.__module__!r}, so there is "
                               "no reference left to check against. Do not assign to lab_utils' functions: restart "
                               "the kernel and pass your function to the check instead.")
        return fn


def _fallback(reference: Callable[..., Any]) -> Callable[..., Any]:
    """The function later cells get when the student's is not used: the reference itself where it imports, so
    training code sees ``lab_utils``' own function (its name in logs, its identity in tests)."""
    if isinstance(reference, LazyReference):
        try:
            return reference.resolve()
        except Exception:  # noqa: BLE001 - the check has already reported the broken reference
            return reference
    return reference


def reference_name(fn: Callable) -> str | None:
    """``lab_utils.<module>.<name>`` for a function of this package (or a lazy reference to one), else None."""
    if isinstance(fn, LazyReference):
        return fn.qualified_name
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("lab_utils."):
        return f"{module}.{getattr(fn, '__qualname__', 'reference')}"
    return None


def _copy(case: Case, tensors: bool = False) -> Case:
    """A fresh copy of the inputs; as backend tensors for exercises written with ``keras.ops`` (that is what
    the models hand them, and on PyTorch NumPy arrays do not mix with tensors)."""
    if tensors:
        from keras import ops

        return {key: ops.convert_to_tensor(value) if isinstance(value, np.ndarray) else value
                for key, value in case.items()}
    return {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in case.items()}


def _report(name: str, status: str, message: str, fallback: Callable | None) -> None:
    line = f"PASS {name}" if status == "pass" else f"FAIL {name}: {message}"
    if fallback is not None:
        used = reference_name(fallback) or "the reference implementation"
        line += f" -> using {used} for the rest of the notebook."
    print(" ".join(line.split()))
    append_record({"kind": "check", "name": name, "status": status, "message": message})


def check_function(
    name: str,
    student_fn: Any,
    reference_fn: Callable[..., Any],
    make_inputs: Callable[[np.random.Generator], Sequence[Case]],
    *,
    compare: Compare = compare_arrays,
    atol: float = 1e-4,
    seed: int = DEFAULT_SEED,
    hint: str = "",
    tensors: bool = False,
) -> Callable[..., Any]:
    """Run ``student_fn`` and ``reference_fn`` on every case of ``make_inputs(rng)``; print and record one outcome.

    Returns ``student_fn`` if it matched on every case, else ``reference_fn``. ``hint`` is added to wrong-value
    failures (a convention the student may have missed). Never raises.
    """
    reference = reference_fn
    try:
        cases = list(make_inputs(np.random.default_rng(seed)))
        expected = [to_numpy(reference(**_copy(case, tensors))) for case in cases]
    except Exception as err:  # noqa: BLE001 - a broken reference must not stop the student's notebook
        _report(name, "error", f"the check itself failed ({type(err).__name__}: {err}); keeping your function "
                "unverified - please tell the course staff", None)
        return student_fn
    if not callable(student_fn):
        _report(name, "fail", f"expected a function, got {type(student_fn).__name__}", reference)
        return _fallback(reference)
    for case, want in zip(cases, expected):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NaN/overflow are reported in the one line
                got = to_numpy(student_fn(**_copy(case, tensors)))
        except NotImplementedError:
            _report(name, "not_done", "NOT DONE (the exercise still raises NotImplementedError)", reference)
            return _fallback(reference)
        except Exception as err:  # noqa: BLE001 - report any student error as one line
            message = str(err).strip().splitlines()[0] if str(err).strip() else ""
            _report(name, "error", f"raised {type(err).__name__}: {message} (inputs: "
                    f"{_describe_inputs(case, None, None)})", reference)
            return _fallback(reference)
        try:
            mismatch = compare(want, got, atol)
        except Exception as err:  # noqa: BLE001 - an output too odd to compare is still a failure
            mismatch = Mismatch(f"returned an output that could not be compared ({type(err).__name__}: {err})")
        if mismatch:
            batch = next((v.shape[0] for v in case.values() if isinstance(v, np.ndarray) and v.ndim), None)
            extra = f"; {hint}" if hint and mismatch.kind == "value" else ""
            _report(name, "fail", f"{mismatch.reason}{extra} (inputs: "
                    f"{_describe_inputs(case, mismatch.index, batch)})", reference)
            return _fallback(reference)
    _report(name, "pass", "", None)
    return student_fn
