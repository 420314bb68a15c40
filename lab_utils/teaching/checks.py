"""Self-checks that notebooks call right after a student writes an exercise function.

Each check prints one line, ``PASS <name>`` or ``FAIL <name>: <why>`` (or ``NOT DONE``), and returns the function
the rest of the notebook should use: the student's when it passed, otherwise the reference from ``lab_utils``. How a
check runs is in :mod:`~lab_utils.teaching.exercise`, how outputs are compared in
:mod:`~lab_utils.teaching.compare`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lab_utils import GROUPS
from lab_utils.teaching.compare import compare_mappings
from lab_utils.teaching.exercise import Case, LazyReference, check_function, reference_name


def origin(fn: Callable[..., Any] | str) -> str:
    """Whose function this is, for the one line a notebook prints before it trains with it (a name is one of the
    library's, e.g. a resampling rule's)."""
    if isinstance(fn, str):
        return f"the library's {fn!r}"
    name = reference_name(fn)
    return f"the reference {name}" if name else f"your {getattr(fn, '__name__', 'function')}"


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

    return check_function("reparameterize", fn, LazyReference("lab_utils.nn.models", "reparameterize"), make_inputs,
                          tensors=True)


def check_kl_divergence(fn: Any) -> Callable[..., Any]:
    """fn(mu, logvar) -> KL to N(0, I) per sample, shape (B,)."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        mu, logvar = _latents(rng)
        return [{"mu": mu, "logvar": logvar}]

    return check_function("kl_divergence", fn, LazyReference("lab_utils.nn.losses", "kl_divergence"),
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

    return check_function("vae_loss", fn, LazyReference("lab_utils.nn.losses", "vae_loss"), make_inputs, tensors=True)


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

    return check_function("dbvae_loss", fn, LazyReference("lab_utils.training.debiasing", "dbvae_loss"), make_inputs,
                          tensors=True,
                          hint="only faces (y = 1) get the VAE term; every sample gets the classification term")


def group_recall_reference(probs: Any, labels: Any, groups: Any, threshold: float = 0.5) -> dict[str, float]:
    """The reference for Lab 1's exercise: recall per group code as lab_utils.evaluation.metrics computes it (a face
    when prob >= threshold; NaN if empty)."""
    from lab_utils.evaluation.metrics import evaluate_detector  # lazily, as LazyReference: checks loads no Keras

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
    """fn(mu, bins, alpha) -> sampling probability per face (N,), as ``lab_utils.training.debiasing.RULES[rule]``.

    ``rule`` defaults to the library's and the labs' rule (``debiasing.DEFAULT_RULE``), the one Lab 3 trains
    with; the function is called with positional ``(mu, bins, alpha)``, as the trainer calls a rule.
    """
    from lab_utils.training.debiasing import DEFAULT_RULE  # lazily, as LazyReference: checks loads no Keras

    return _check_rule("resampling_probs", fn, rule or DEFAULT_RULE)


def check_max_rule_probs(fn: Any) -> Callable[..., Any]:
    """fn(mu, bins, alpha) -> sampling probability per face (N,): the reference lab's per-dimension max rule, the
    building block of Lab 3's rule."""
    return _check_rule("max_rule_probs", fn, "max")


_RULE_HINTS = {
    "max": "normalise each dimension's weights over faces and take the maximum",
    "product": "multiply the weights over dimensions",
}


def _check_rule(name: str, fn: Any, rule: str) -> Callable[..., Any]:
    from lab_utils.training.debiasing import PRINCIPAL_COMPONENTS, RULES  # lazily: checks loads no Keras

    if rule not in RULES:
        raise ValueError(f"check_{name}: rule must be one of {sorted(RULES)}, got {rule!r}.")

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for bins in (5, 10):
            # A dense majority and a small shifted minority, so the weights are far from uniform.
            mu = np.concatenate([rng.normal(0.0, 1.0, (32, 3)), rng.normal(2.5, 0.3, (8, 3))])
            cases.append({"mu": mu[rng.permutation(len(mu))].astype(np.float32), "bins": bins, "alpha": 1e-3})
        return cases

    histogram = ("Q = bin counts / number of faces in equal-width bins from min to max (not density=True, whose "
                 "scale depends on the bin width); weight 1 / (Q + alpha)")
    if rule == "principal_max":
        hint = (f"subtract the mean face code, project on the {PRINCIPAL_COMPONENTS} leading right singular vectors "
                "(np.linalg.svd(centred, full_matrices=False)), divide each projection by its standard deviation, "
                f"then the max rule on those columns ({histogram}; {_RULE_HINTS['max']})")
    else:
        hint = f"per dimension, {histogram}; {_RULE_HINTS[rule]}; normalise to sum to 1"
    return check_function(name, fn, LazyReference("lab_utils.training.debiasing", f"{rule}_rule"), make_inputs,
                          atol=1e-7, hint=hint)


def check_error_weights(fn: Any) -> Callable[..., Any]:
    """fn(face_probs, upweight, threshold) -> sampling weight per training face (N,): upweight where missed, else 1."""

    def make_inputs(rng: np.random.Generator) -> list[Case]:
        cases = []
        for upweight, threshold in ((5.0, 0.5), (20.0, 0.625)):
            probs = rng.uniform(0.0, 1.0, 40).astype(np.float32)
            probs[rng.choice(40, 3, replace=False)] = threshold  # ties: a face at the threshold was found
            cases.append({"face_probs": probs, "upweight": upweight, "threshold": threshold})
        return cases

    return check_function("error_weights", fn, LazyReference("lab_utils.training.upweighting", "error_weights"),
                          make_inputs, hint="a face the first detector missed has prob < threshold; it gets weight "
                                            "upweight, every other face weight 1")
