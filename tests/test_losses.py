"""Per-sample losses: each equals a NumPy reference of its formula, every term is (B,), shapes are validated."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from lab_utils.nn import losses
from lab_utils.nn.losses import classification_loss, kl_divergence, reconstruction_loss, vae_loss
from lab_utils.training.debiasing import dbvae_loss

B, K = 6, 3


@pytest.fixture
def batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.uniform(size=(B, 8, 8, 3)).astype(np.float32),
        "x_hat": rng.uniform(size=(B, 8, 8, 3)).astype(np.float32),
        "mu": rng.normal(size=(B, K)).astype(np.float32),
        "logvar": rng.normal(scale=0.5, size=(B, K)).astype(np.float32),
        "y": np.array([1, 0, 1, 1, 0, 0], np.float32),
        "logit": rng.normal(scale=3.0, size=B).astype(np.float32),
    }


def np_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    return 0.5 * np.sum(np.exp(logvar) + mu**2 - 1.0 - logvar, axis=1)


def np_recon(x: np.ndarray, x_hat: np.ndarray, kind: str) -> np.ndarray:
    d = (x - x_hat).reshape(len(x), -1)
    return np.mean(np.abs(d) if kind == "l1" else d**2, axis=1)


def np_xent(y: np.ndarray, logit: np.ndarray) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_kl_matches_formula_and_is_zero_at_standard_normal(batch):
    got = ops.convert_to_numpy(kl_divergence(batch["mu"], batch["logvar"]))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, np_kl(batch["mu"], batch["logvar"]), rtol=1e-5)
    zero = ops.convert_to_numpy(kl_divergence(np.zeros((B, K)), np.zeros((B, K))))
    np.testing.assert_array_equal(zero, np.zeros(B))


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_reconstruction_matches_formula(batch, kind):
    got = ops.convert_to_numpy(reconstruction_loss(batch["x"], batch["x_hat"], kind))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, np_recon(batch["x"], batch["x_hat"], kind), rtol=1e-5)


def test_vae_loss_matches_formula(batch):
    got = ops.convert_to_numpy(vae_loss(batch["x"], batch["x_hat"], batch["mu"], batch["logvar"], 0.1, "l2"))
    want = np_recon(batch["x"], batch["x_hat"], "l2") + 0.1 * np_kl(batch["mu"], batch["logvar"])
    assert got.shape == (B,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_classification_matches_formula_and_flattens_column_inputs(batch):
    want = np_xent(batch["y"], batch["logit"])
    for y, logit in [(batch["y"], batch["logit"]), (batch["y"][:, None], batch["logit"]),
                     (batch["y"], batch["logit"][:, None]), (batch["y"][:, None], batch["logit"][:, None])]:
        got = ops.convert_to_numpy(classification_loss(y, logit))
        assert got.shape == (B,)
        np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("label_shape", [(B,), (B, 1)])
def test_dbvae_loss_is_per_sample_and_masks_non_faces(batch, label_shape):
    y = batch["y"].reshape(label_shape)
    total = ops.convert_to_numpy(dbvae_loss(batch["x"], batch["x_hat"], y, batch["logit"][:, None], batch["mu"],
                                            batch["logvar"], 0.5, "l1"))
    assert total.shape == (B,)  # a (B, 1) label must never broadcast to B x B
    face = batch["y"]
    vae = np_recon(batch["x"], batch["x_hat"], "l1") + 0.5 * np_kl(batch["mu"], batch["logvar"])
    xent = np_xent(face, batch["logit"])
    np.testing.assert_allclose(total, xent + face * vae, rtol=1e-5)
    np.testing.assert_allclose(total[face == 0], xent[face == 0], rtol=1e-6)


def _good(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
    return dbvae_loss(x, x_hat, y, logit, mu, logvar, kl_weight, recon)


BAD_LOSSES = {
    "scalar": (lambda *a, **k: ops.mean(_good(*a, **k)), "one number for the whole batch"),
    "column": (lambda *a, **k: ops.reshape(_good(*a, **k), (-1, 1)), "drop the trailing axis"),
    "broadcast": (lambda x, x_hat, y, logit, mu, logvar, kl_weight, recon:
                  logit + losses.vae_loss(x, x_hat, mu, logvar, kl_weight, recon), "broadcasting mistake"),
    "nan": (lambda *a, **k: _good(*a, **k) * np.nan, "non-finite"),
    "raises": (lambda x, x_hat, y, logit, mu, logvar, kl_weight, recon: {}["missing"], "failed on a test batch"),
    "returns None": (lambda *args: None, "returned None; is the `return` statement missing"),
    "not callable": ("dbvae_loss", "must be a function"),
}


@pytest.mark.parametrize("name", BAD_LOSSES)
def test_a_loss_that_would_not_train_is_refused_with_the_likely_mistake(name):
    fn, message = BAD_LOSSES[name]
    with pytest.raises(ValueError, match=message) as err:
        losses.refuse_untrainable_loss(fn, "dbvae", latent_dim=3, kl_weight=0.1, recon="l1")
    if name in ("scalar", "column", "broadcast"):
        assert "shape (B,) = (4,)" in str(err.value)
    losses.refuse_untrainable_loss(_good, "dbvae", latent_dim=3, kl_weight=0.1, recon="l1")
    losses.refuse_untrainable_loss(losses.vae_loss, "vae", latent_dim=3, kl_weight=0.1, recon="l2")


def test_shape_errors_are_clear(batch):
    with pytest.raises(ValueError, match="Batch sizes differ"):
        classification_loss(batch["y"][:4], batch["logit"])
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        classification_loss(np.ones((B, 2)), batch["logit"])
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_loss(batch["x"], batch["x_hat"][:, :4])
    with pytest.raises(ValueError, match="same rank"):
        kl_divergence(batch["mu"], batch["logvar"][:, 0])
    with pytest.raises(ValueError, match="Batch sizes differ"):
        dbvae_loss(batch["x"], batch["x_hat"], batch["y"], batch["logit"], batch["mu"][:3], batch["logvar"][:3],
                   0.1)
    with pytest.raises(ValueError, match="Unknown reconstruction"):
        reconstruction_loss(batch["x"], batch["x_hat"], "l3")
    with pytest.raises(ValueError, match="kl_weight"):
        vae_loss(batch["x"], batch["x_hat"], batch["mu"], batch["logvar"], -1.0)


def test_a_loss_returning_something_that_is_not_a_tensor_is_named():
    with pytest.raises(ValueError, match="returned dict, not one loss per sample"):
        losses.refuse_untrainable_loss(lambda *args: {"total": 1.0}, "vae", latent_dim=3, kl_weight=0.1, recon="l1")


def test_the_face_centred_reconstruction_weighs_the_centre_over_the_background():
    w = losses.centre_weights()
    assert w.shape == (64, 64, 1) and np.isclose(w.mean(), 1.0)
    x = np.zeros((2, 64, 64, 3), np.float32)
    x_hat = x.copy()
    x_hat[0, 28:36, 28:36] = 1.0  # the same error, at the centre ...
    x_hat[1, :8, :8] = 1.0        # ... and in a corner
    centre = np.asarray(reconstruction_loss(x, x_hat, "l1_centre"))
    plain = np.asarray(reconstruction_loss(x, x_hat, "l1"))
    assert np.isclose(plain[0], plain[1]) and centre[0] > 10 * centre[1]
    with pytest.raises(ValueError, match="weights 64x64 images"):
        reconstruction_loss(np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 3)), "l1_centre")
