"""Self-checks: one line per check, helpful failures, never raising, the reference returned on failure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from keras import ops

from lab_utils.nn import losses
from lab_utils.nn.models import reparameterize as reparameterize_reference
from lab_utils.teaching import checks, exercise, records
from lab_utils.training import debiasing


def _one_line(capsys) -> str:
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, out
    return lines[0]


def _not_done(*args, **kwargs):
    raise NotImplementedError("Exercise not finished: complete this part")


# Student versions of each exercise: (B,) outputs built from the reference losses so that each one has
# exactly the bug its name says.


def _kl_sum_over_batch(mu, logvar):
    return ops.sum(losses.kl_divergence(mu, logvar))


def _kl_half(mu, logvar):
    return 0.5 * losses.kl_divergence(mu, logvar)


def _kl_keepdims(mu, logvar):
    return 0.5 * ops.sum(ops.exp(logvar) + mu**2 - 1.0 - logvar, axis=-1, keepdims=True)


def _kl_broadcast(mu, logvar):
    return 0.5 * (ops.sum(ops.exp(logvar) + mu**2, axis=-1, keepdims=True) - ops.sum(1.0 + logvar, axis=-1))


def _kl_nan(mu, logvar):
    return 0.5 * ops.sum(ops.exp(logvar) + mu**2 - 1.0 - ops.log(ops.exp(logvar) - 1.0), axis=-1)


def _vae_no_kl_weight(x, x_hat, mu, logvar, kl_weight, recon):
    return losses.reconstruction_loss(x, x_hat, recon) + losses.kl_divergence(mu, logvar)


def _vae_broadcast(x, x_hat, mu, logvar, kl_weight, recon):
    kl = ops.reshape(losses.kl_divergence(mu, logvar), (-1, 1))
    return losses.reconstruction_loss(x, x_hat, recon) + kl_weight * kl


def _vae_nan(x, x_hat, mu, logvar, kl_weight, recon):
    return losses.vae_loss(x, x_hat, mu, logvar, kl_weight, recon) + ops.sqrt(mu[:, 0])


def _dbvae_vae_on_all(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
    return losses.classification_loss(y, logit) + losses.vae_loss(x, x_hat, mu, logvar, kl_weight, recon)


def _dbvae_broadcast(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
    vae = losses.vae_loss(x, x_hat, mu, logvar, kl_weight, recon)  # (B,) times a (B, 1) y -> B x B
    return losses.classification_loss(y, logit) + y * vae


def _dbvae_nan(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
    total = debiasing.dbvae_loss(x, x_hat, y, logit, mu, logvar, kl_weight, recon)
    return total + ops.sqrt(ops.reshape(logit, (-1,)))  # NaN wherever the logit is negative


def _reparam_wrong(mu, logvar, eps):
    return mu + ops.exp(logvar) * eps


def _reparam_broadcast(mu, logvar, eps):
    return mu + ops.exp(0.5 * logvar)[:, None, :] * eps


def _reparam_nan(mu, logvar, eps):
    return mu + ops.sqrt(logvar) * eps


def _probs_density(mu, bins, alpha, rule="max"):
    """The reference lab's density=True histogram, i.e. a different smoothing than the reference."""
    weights = []
    for column in np.asarray(mu, dtype=np.float64).T:
        hist, edges = np.histogram(column, bins=bins, density=True)
        weights.append(1.0 / (hist[np.clip(np.digitize(column, edges) - 1, 0, bins - 1)] + alpha))
    w = np.prod(weights, axis=0) if rule == "product" else np.max([w / w.sum() for w in weights], axis=0)
    return w / w.sum()


def _probs_broadcast(mu, bins, alpha, rule="max"):
    p = debiasing.histogram_weights(mu, bins=bins, alpha=alpha, rule=rule)
    return p[:, None] * np.ones_like(p)


def _probs_nan(mu, bins, alpha, rule="max"):
    p = debiasing.histogram_weights(mu, bins=bins, alpha=alpha, rule=rule)
    return p + np.sqrt(p - np.median(p))


def _principal(rule):
    """The same mistake in Lab 3's rule, which applies the max rule along the leading principal directions."""
    return lambda mu, bins, alpha: rule(debiasing.principal_directions(mu), bins, alpha)


def _recall_strict(probs, labels, groups, threshold):
    """Uses > where the labs count prob == threshold as a face."""
    return {g: float(np.mean(probs[(labels == 1) & (groups == i)] > threshold))
            for i, g in enumerate(("LF", "LM", "DF", "DM"))}


def _recall_nan(probs, labels, groups, threshold):
    out = checks.group_recall_reference(probs, labels, groups, threshold)
    return {**out, "DF": float("nan")}


CHECKS = {
    "reparameterize": (checks.check_reparameterize, reparameterize_reference, _reparam_wrong, _reparam_broadcast,
                       _reparam_nan),
    "kl_divergence": (checks.check_kl_divergence, losses.kl_divergence, _kl_half, _kl_broadcast, _kl_nan),
    "vae_loss": (checks.check_vae_loss, losses.vae_loss, _vae_no_kl_weight, _vae_broadcast, _vae_nan),
    "dbvae_loss": (checks.check_dbvae_loss, debiasing.dbvae_loss, _dbvae_vae_on_all, _dbvae_broadcast, _dbvae_nan),
    "max_rule_probs": (checks.check_max_rule_probs, debiasing.max_rule, _probs_density, _probs_broadcast, _probs_nan),
    "resampling_probs": (checks.check_resampling_probs, debiasing.principal_max_rule, _principal(_probs_density),
                         _principal(_probs_broadcast), _principal(_probs_nan)),
    "group_recall": (checks.check_group_recall, checks.group_recall_reference, _recall_strict, None, _recall_nan),
}


@pytest.mark.parametrize("name", CHECKS)
def test_reference_passes_and_is_kept(name, capsys):
    check, reference = CHECKS[name][:2]
    assert check(reference) is reference
    assert _one_line(capsys) == f"PASS {name}"


@pytest.mark.parametrize("name", CHECKS)
def test_wrong_value_fails_with_an_example(name, capsys):
    check, reference, wrong = CHECKS[name][:3]
    returned = check(wrong)
    line = _one_line(capsys)
    assert line.startswith(f"FAIL {name}: ") and "wrong value" in line
    assert "expected" in line and "got" in line and "(inputs: " in line
    assert "for the rest of the notebook" in line
    assert returned is not wrong


@pytest.mark.parametrize("name", [n for n, c in CHECKS.items() if c[3] is not None])
def test_broadcasting_mistake_is_named(name, capsys):
    check, _, _, broadcast, _ = CHECKS[name]
    check(broadcast)
    line = _one_line(capsys)
    assert line.startswith(f"FAIL {name}: ") and "broadcasting mistake" in line


@pytest.mark.parametrize("name", CHECKS)
def test_not_implemented_is_not_done_and_returns_the_reference(name, capsys):
    check, reference = CHECKS[name][:2]
    returned = check(_not_done)
    line = _one_line(capsys)
    assert line.startswith(f"FAIL {name}: NOT DONE")
    if name == "group_recall":  # the reference is a plain function: it is returned itself
        assert returned is reference
    else:
        mu = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
        args = {"reparameterize": (mu, mu, mu), "kl_divergence": (mu, mu)}.get(name)
        if args:
            np.testing.assert_allclose(ops.convert_to_numpy(returned(*args)),
                                       ops.convert_to_numpy(reference(*args)), rtol=1e-6)
        else:
            assert callable(returned) and returned is not _not_done


@pytest.mark.parametrize("name", CHECKS)
def test_nan_is_detected(name, capsys):
    check, _, _, _, nan = CHECKS[name]
    check(nan)
    line = _one_line(capsys)
    assert line.startswith(f"FAIL {name}: ") and "nan" in line.lower()


def test_dbvae_broadcast_names_the_b1_input(capsys):
    checks.check_dbvae_loss(_dbvae_broadcast)
    line = _one_line(capsys)
    assert "returned shape (6, 6), expected (6,)" in line and "y of shape (6, 1)" in line


def test_dbvae_example_shows_the_failing_sample(capsys):
    checks.check_dbvae_loss(_dbvae_vae_on_all)
    line = _one_line(capsys)
    assert "y[" in line and "]=0" in line  # the VAE term leaked onto a non-face
    assert "only faces (y = 1) get the VAE term" in line


def test_factor_hint_and_reduction_messages(capsys):
    checks.check_kl_divergence(_kl_half)
    assert "0.5 times the expected one" in _one_line(capsys)
    checks.check_kl_divergence(_kl_sum_over_batch)
    assert "one number for the whole batch" in _one_line(capsys)
    checks.check_kl_divergence(_kl_keepdims)
    assert "drop the trailing axis of size 1" in _one_line(capsys)


def test_raised_exception_missing_return_and_non_function(capsys):
    def raises(mu, logvar):
        raise ValueError("shapes do not match\nsecond line")

    assert checks.check_kl_divergence(raises) is not raises
    assert "raised ValueError: shapes do not match (inputs: mu of shape (6, 4)" in _one_line(capsys)
    checks.check_kl_divergence(lambda mu, logvar: None)
    assert "returned None" in _one_line(capsys)
    checks.check_kl_divergence(None)
    assert "expected a function, got NoneType" in _one_line(capsys)


def test_check_function_never_raises_even_when_the_reference_is_broken(capsys):
    def broken_reference(a):
        raise RuntimeError("reference bug")

    def student(a):
        return a

    assert exercise.check_function("custom", student, broken_reference, lambda rng: [{"a": rng.normal(size=3)}]) \
        is student
    line = _one_line(capsys)
    assert line.startswith("FAIL custom: the check itself failed (RuntimeError: reference bug)")


def test_outcomes_and_metrics_are_recorded_as_json_lines(tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(records.CHECKS_FILE_ENV, str(log))
    checks.check_kl_divergence(losses.kl_divergence)
    checks.check_kl_divergence(_not_done)
    checks.check_kl_divergence(_kl_half)
    records.record_metric("gap", np.float32(0.125))
    records.record_metric("recall", {"LF": 0.9, "DF": ops.convert_to_tensor(0.5)})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["kind"], r["name"], r.get("status")) for r in lines] == [
        ("check", "kl_divergence", "pass"), ("check", "kl_divergence", "not_done"),
        ("check", "kl_divergence", "fail"), ("metric", "gap", None), ("metric", "recall.LF", None),
        ("metric", "recall.DF", None)]
    assert lines[2]["message"].startswith("wrong value")
    assert [r["value"] for r in lines[3:]] == [0.125, 0.9, 0.5]
    capsys.readouterr()


def test_record_metric_without_file_is_silent_and_rejects_bad_values(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(records.CHECKS_FILE_ENV, raising=False)
    records.record_metric("gap", 0.1)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="must be a number"):
        records.record_metric("gap", object())
    with pytest.raises(ValueError, match="non-empty metric name"):
        records.record_metric("", 1.0)


def test_reference_reparameterize_works_on_tensors():
    mu = ops.zeros((2, 3))
    z = reparameterize_reference(mu, ops.zeros((2, 3)), ops.ones((2, 3)))
    np.testing.assert_allclose(ops.convert_to_numpy(z), np.ones((2, 3)))


def test_resampling_check_defaults_to_the_rule_the_lab_trains_with(capsys):
    assert debiasing.DEFAULT_RULE == "principal_max"
    assert checks.check_resampling_probs(debiasing.principal_max_rule) is debiasing.principal_max_rule
    assert _one_line(capsys) == "PASS resampling_probs"
    checks.check_resampling_probs(debiasing.max_rule)  # the reference lab's rule is the building block, not the rule
    line = _one_line(capsys)
    assert "wrong value" in line and "leading right singular vectors" in line
    assert "lab_utils.training.debiasing.principal_max_rule" in line
    assert checks.check_resampling_probs(debiasing.product_rule, rule="product") is debiasing.product_rule
    assert _one_line(capsys) == "PASS resampling_probs"
    with pytest.raises(ValueError, match="rule must be one of"):
        checks.check_resampling_probs(debiasing.max_rule, rule="median")


def test_max_rule_check_wants_the_reference_labs_rule(capsys):
    assert checks.check_max_rule_probs(debiasing.max_rule) is debiasing.max_rule
    assert _one_line(capsys) == "PASS max_rule_probs"
    checks.check_max_rule_probs(debiasing.product_rule)
    line = _one_line(capsys)
    assert line.startswith("FAIL max_rule_probs") and "take the maximum" in line


def test_a_principal_max_rule_written_with_numpy_passes(capsys):
    """The route Lab 3's solution takes (np.linalg.svd on the centred means, then the max rule) matches the library's
    scaled SVD, whatever sign the singular vectors come out with."""
    def written(mu, bins=10, alpha=1e-3):
        centred = np.asarray(mu, dtype=np.float64) - np.mean(mu, axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        z = centred @ vt[:2].T
        return debiasing.max_rule(-z / z.std(axis=0), bins, alpha)

    assert checks.check_resampling_probs(written) is written
    assert _one_line(capsys) == "PASS resampling_probs"


def test_fallbacks_accept_the_notebooks_call_forms(capsys):
    """Later cells call the returned function the way the exercise's signature allows (defaults, positions)."""
    recall = checks.check_group_recall(_not_done)
    probs = np.array([0.2, 0.7, 0.9], "float32")
    assert recall(probs, np.array([1, 1, 0], "float32"), np.array([0, 0, -1]))["LF"] == 0.5
    probs_fn = checks.check_resampling_probs(_not_done)
    mu = np.random.default_rng(0).normal(size=(20, 2))
    np.testing.assert_allclose(probs_fn(mu, 5, 1e-3), debiasing.histogram_weights(mu, bins=5, alpha=1e-3))
    assert probs_fn is debiasing.principal_max_rule
    capsys.readouterr()


def test_origin_names_whose_function_trains(capsys):
    def vae_loss(*args):
        raise NotImplementedError

    assert checks.origin(vae_loss) == "your vae_loss"
    assert checks.origin(checks.check_vae_loss(vae_loss)) == "the reference lab_utils.nn.losses.vae_loss"
    assert checks.origin("product") == "the library's 'product'"
    capsys.readouterr()
