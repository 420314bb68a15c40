"""Self-checks that notebooks call right after a student writes an exercise function.

Each check runs the student's function and the reference on the same freshly generated random inputs and
prints one line, ``PASS <name>`` or ``FAIL <name>: <why>``, where *why* is meant to get the student unstuck:
the wrong shape (naming the (B, 1) + (B,) -> B x B broadcasting mistake), a wrong value with the input that
produced it, a NaN, the exception raised, or ``NOT DONE`` while the exercise still raises NotImplementedError.

A check never raises. It returns the function the rest of the notebook should use: the student's when it
passed, otherwise the reference, so that later cells (training, evaluation) still run and still teach. The
inputs come from a fixed seed, so a notebook is graded the same way every time it runs.

When ``$LAB_CHECKS_FILE`` is set (``lab_utils.grading`` sets it), every outcome and every ``record_metric`` call
is appended to that file as one JSON line. Appending one short line in a single write is what lets several
cells add to the file without rewriting it; the grader skips a line cut short by a killed kernel.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from lab_utils import GROUPS

CHECKS_FILE_ENV = "LAB_CHECKS_FILE"
RTOL = 1e-4
DEFAULT_SEED = 0

Case = dict[str, Any]
"""One call's keyword arguments; student and reference functions are both called as ``fn(**case)``."""


class Mismatch(NamedTuple):
    """Why an output is wrong. ``index`` (a sample) lets the message show that sample's inputs; ``kind`` is
    "value" for wrong numbers (where a check's hint applies), else "shape", "nan" or "type"."""

    reason: str
    index: int | None = None
    kind: str = "value"


Compare = Callable[[Any, Any, float], "Mismatch | None"]


# ---------------------------------------------------------------------------------------------- recording


def _append_record(record: dict[str, Any]) -> None:
    path = os.environ.get(CHECKS_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as err:
        print(f"(could not record to ${CHECKS_FILE_ENV}={path}: {err})", file=sys.stderr)


def _number(value: Any, name: str) -> float | str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return float(_to_numpy(value))
    except (TypeError, ValueError):
        raise ValueError(
            f"record_metric({name!r}, ...): the value must be a number, string or None (or a dict of them), "
            f"got {type(value).__name__}."
        ) from None


def record_metric(name: str, value: Any) -> None:
    """Log a figure the notebook reached (e.g. darker-female recall) for the grader's table.

    A mapping is logged as one metric per key, ``name.key``, so a dict of per-group recalls can be passed whole.
    Without ``$LAB_CHECKS_FILE`` this does nothing, so notebooks call it unconditionally.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"record_metric needs a non-empty metric name, got {name!r}.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            record_metric(f"{name}.{key}", item)
        return
    _append_record({"kind": "metric", "name": name, "value": _number(value, name)})


# ---------------------------------------------------------------------------------------------- comparing


def _to_numpy(value: Any) -> Any:
    """numpy for numbers, arrays and backend tensors alike; dicts keep their keys."""
    if isinstance(value, Mapping):
        return {key: _to_numpy(item) for key, item in value.items()}
    if value is None or isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return value if value is None else np.asarray(value)
    import keras  # only for tensors, so checks on numpy outputs do not pay for importing the backend

    return keras.ops.convert_to_numpy(value)


def _fmt(value: Any) -> str:
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


def shape_mistake(expected: tuple[int, ...], got: tuple[int, ...]) -> str:
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
        return Mismatch(f"the output contains {_fmt(got[where])}{_at(where)} where {_fmt(expected[where])} "
                        f"was expected ({int(bad.sum())} non-finite value(s) in all; look for log/sqrt of a "
                        "negative number or a division by zero)", int(where[0]) if where else None, "nan")
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=atol, equal_nan=True)
    if wrong.any():
        error = np.where(wrong, np.abs(got - expected), -1.0)
        where = np.unravel_index(int(np.argmax(error)), got.shape)
        count = f" ({int(wrong.sum())} of {wrong.size} values differ)" if wrong.size > 1 else ""
        return Mismatch(f"wrong value{_at(where)}: expected {_fmt(expected[where])}, got {_fmt(got[where])}"
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


# ---------------------------------------------------------------------------------------------- the core


def _describe_inputs(case: Case, index: int | None, batch: int | None) -> str:
    """The inputs behind a failure: that sample's rows when it is known, else every input's shape."""
    parts = []
    for key, value in case.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if index is not None and value.shape[0] == batch and value[index].size <= 8:
                parts.append(f"{key}[{index}]={_fmt(value[index])}")
            else:
                parts.append(f"{key} of shape {value.shape}")
        else:
            parts.append(f"{key}={_fmt(value)}")
    return ", ".join(parts)


class _LazyReference:
    """A lab_utils function imported at its first call, so a missing or broken reference module is reported by
    the check (as its own failure) instead of stopping the notebook at import."""

    def __init__(self, module: str, name: str) -> None:
        self.qualified_name = f"{module}.{name}"
        self._module, self._name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def resolve(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self._module), self._name)


def _fallback(reference: Callable[..., Any]) -> Callable[..., Any]:
    """The function later cells get when the student's is not used: the reference itself where it imports, so
    training code sees ``lab_utils``' own function (its name in logs, its identity in tests)."""
    if isinstance(reference, _LazyReference):
        try:
            return reference.resolve()
        except Exception:  # noqa: BLE001 - the check has already reported the broken reference
            return reference
    return reference


def _reference_name(fn: Callable) -> str:
    if isinstance(fn, _LazyReference):
        return fn.qualified_name
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("lab_utils."):
        return f"{module}.{getattr(fn, '__qualname__', 'reference')}"
    return "the reference implementation"


def origin(fn: Callable[..., Any]) -> str:
    """Whose function this is, for the one line a notebook prints before it trains with it."""
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("lab_utils"):
        return f"the reference {module}.{getattr(fn, '__qualname__', 'function')}"
    return f"your {getattr(fn, '__name__', 'function')}"


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
        line += f" -> using {_reference_name(fallback)} for the rest of the notebook."
    print(" ".join(line.split()))
    _append_record({"kind": "check", "name": name, "status": status, "message": message})


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
        expected = [_to_numpy(reference(**_copy(case, tensors))) for case in cases]
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
                got = _to_numpy(student_fn(**_copy(case, tensors)))
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


# ---------------------------------------------------------------------------------------------- inputs


def _latents(rng: np.random.Generator, batch: int = 6, dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    mu = rng.normal(0.0, 1.0, (batch, dim)).astype(np.float32)
    logvar = rng.uniform(-2.0, 1.0, (batch, dim)).astype(np.float32)
    return mu, logvar


def _images(rng: np.random.Generator, batch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(0.0, 1.0, (batch, 4, 4, 3)).astype(np.float32)
    return x, np.clip(x + rng.normal(0.0, 0.2, x.shape), 0.0, 1.0).astype(np.float32)


def _labels(rng: np.random.Generator, batch: int = 6) -> np.ndarray:
    y = np.zeros(batch, dtype=np.float32)
    y[rng.permutation(batch)[: batch // 2]] = 1.0  # faces and non-faces in every batch
    return y


# ---------------------------------------------------------------------------------------------- the checks


def check_reparameterize(fn: Any) -> Callable[..., Any]:
    """fn(mu, logvar, eps) -> z, shape (B, latent_dim)."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        mu, logvar = _latents(rng)
        return [{"mu": mu, "logvar": logvar, "eps": rng.normal(size=mu.shape).astype(np.float32)}]

    return check_function("reparameterize", fn, _LazyReference("lab_utils.models", "reparameterize"), make_inputs,
                          tensors=True)


def check_kl_divergence(fn: Any) -> Callable[..., Any]:
    """fn(mu, logvar) -> KL to N(0, I) per sample, shape (B,)."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        mu, logvar = _latents(rng)
        return [{"mu": mu, "logvar": logvar}]

    return check_function("kl_divergence", fn, _LazyReference("lab_utils.losses", "kl_divergence"),
                          make_inputs, tensors=True)


def check_vae_loss(fn: Any) -> Callable[..., Any]:
    """fn(x, x_hat, mu, logvar, kl_weight, recon) -> per-sample loss (B,), for both reconstruction kinds."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for recon in ("l1", "l2"):
            x, x_hat = _images(rng)
            mu, logvar = _latents(rng)
            # A large weight, so a mistake in the KL term is visible next to the reconstruction term.
            cases.append({"x": x, "x_hat": x_hat, "mu": mu, "logvar": logvar,
                          "kl_weight": round(float(rng.uniform(0.2, 1.0)), 3), "recon": recon})
        return cases

    return check_function("vae_loss", fn, _LazyReference("lab_utils.losses", "vae_loss"), make_inputs, tensors=True)


def check_dbvae_loss(fn: Any) -> Callable[..., Any]:
    """fn(x, x_hat, y, logit, mu, logvar, kl_weight, recon) -> total loss per sample (B,), also for (B, 1) y/logit."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for y_shape, logit_shape in (((6,), (6,)), ((6, 1), (6, 1)), ((6, 1), (6,))):
            x, x_hat = _images(rng)
            mu, logvar = _latents(rng)
            cases.append({"x": x, "x_hat": x_hat, "y": _labels(rng).reshape(y_shape),
                          "logit": rng.normal(0.0, 2.0, logit_shape).astype(np.float32),
                          "mu": mu, "logvar": logvar,
                          "kl_weight": round(float(rng.uniform(0.2, 1.0)), 3), "recon": "l1"})
        return cases

    return check_function("dbvae_loss", fn, _LazyReference("lab_utils.losses", "dbvae_loss"), make_inputs,
                          tensors=True,
                          hint="only faces (y = 1) get the VAE term; every sample gets the classification term")


def group_recall_reference(probs: Any, labels: Any, groups: Any, threshold: float = 0.5) -> dict[str, float]:
    """Recall per group code as lab_utils.metrics computes it (a face when prob >= threshold; NaN if empty)."""
    from lab_utils.metrics import evaluate_detector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty group is reported as NaN, not warned about
        evaluation = evaluate_detector(probs, labels, groups, threshold=threshold, n_boot=2)
    return {code: estimate.value for code, estimate in evaluation.recall.items()}


def check_group_recall(fn: Any) -> Callable[..., Any]:
    """fn(probs, labels, groups, threshold) -> {"LF": recall, "LM": ..., "DF": ..., "DM": ...}."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for threshold in (0.5, float(rng.choice([0.375, 0.4375, 0.5625, 0.625]))):  # exact in float32
            n_faces, n_nonfaces = 24, 12
            groups = np.concatenate([np.repeat(np.arange(len(GROUPS)), n_faces // len(GROUPS)),
                                     np.full(n_nonfaces, -1)]).astype(np.int8)
            labels = (groups >= 0).astype(np.float32)
            probs = rng.uniform(0.0, 1.0, groups.size).astype(np.float32)
            probs[rng.choice(groups.size, 4, replace=False)] = threshold  # ties: is prob == threshold a face?
            order = rng.permutation(groups.size)
            cases.append({"probs": probs[order], "labels": labels[order], "groups": groups[order],
                          "threshold": threshold})
        return cases

    return check_function("group_recall", fn, group_recall_reference, make_inputs, compare=compare_mappings,
                          hint="recall = share of a group's faces with prob >= threshold; "
                               "non-faces (label 0, group -1) do not count")


def check_resampling_probs(fn: Any, *, rule: str | None = None) -> Callable[..., Any]:
    """fn(mu, bins, alpha) -> sampling probability per face (N,), as ``lab_utils.resampling.RULES[rule]``.

    ``rule`` defaults to the library's and the labs' rule (``resampling.DEFAULT_RULE``), the one Lab 3 trains
    with; the function is called with positional ``(mu, bins, alpha)``, as the trainer calls a rule.
    """
    from lab_utils.resampling import DEFAULT_RULE, RULES

    rule = rule or DEFAULT_RULE
    if rule not in RULES:
        raise ValueError(f"check_resampling_probs: rule must be one of {sorted(RULES)}, got {rule!r}.")

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for bins in (5, 10):
            # A dense majority and a small shifted minority, so the weights are far from uniform.
            mu = np.concatenate([rng.normal(0.0, 1.0, (32, 3)), rng.normal(2.5, 0.3, (8, 3))])
            cases.append({"mu": mu[rng.permutation(len(mu))].astype(np.float32), "bins": bins, "alpha": 1e-3})
        return cases

    combine = ("normalise each dimension's weights over faces and take the maximum" if rule == "max"
               else "multiply the weights over dimensions")
    return check_function(
        "resampling_probs", fn, _LazyReference("lab_utils.resampling", f"{rule}_rule"), make_inputs, atol=1e-7,
        hint=f"per dimension, Q = bin counts / number of faces in equal-width bins from min to max (not "
             f"density=True, whose scale depends on the bin width); weight 1 / (Q + alpha); {combine}; "
             "normalise to sum to 1")
