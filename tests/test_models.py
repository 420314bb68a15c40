"""Models: shapes, the seeded Sampling layer, the DB-VAE's gradient mask, and .keras save/load round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lab_utils.nn import losses
from lab_utils.nn.models import (
    VAE,
    Sampling,
    build_cnn,
    build_decoder,
    build_encoder,
    load_model,
    predict_logits,
    save_model,
)
from lab_utils.training.debiasing import DBVAE
from lab_utils.training.trainers import one_step_changes

K = 3


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 64, 64, 3)).astype(np.float32)


def test_encoder_and_decoder_shapes():
    enc, dec = build_encoder(K, n_extra=1), build_decoder(K)
    assert (enc.name, dec.name) == ("encoder", "decoder")
    assert enc(images(2)).shape == (2, 1 + 2 * K)
    out = keras.ops.convert_to_numpy(dec(np.random.default_rng(0).normal(size=(2, K)).astype(np.float32)))
    assert out.shape == (2, 64, 64, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="latent_dim"):
            build_decoder(bad)
    with pytest.raises(ValueError, match="n_extra"):
        build_encoder(K, n_extra=-1)


def test_sampling_is_seeded_and_reparameterised():
    mu = np.full((4000, 2), 3.0, np.float32)
    logvar = np.log(np.full((4000, 2), 0.25, np.float32))
    a = keras.ops.convert_to_numpy(Sampling(seed=7)((mu, logvar)))
    b = keras.ops.convert_to_numpy(Sampling(seed=7)((mu, logvar)))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 3.0) < 0.05 and abs(a.std() - 0.5) < 0.05  # z = mu + exp(logvar / 2) * eps


def test_vae_and_dbvae_outputs():
    x = images(3)
    vae, dbvae = VAE(latent_dim=K, seed=0), DBVAE(latent_dim=K, seed=0)
    out = vae(x)
    assert set(out) == {"x_hat", "mu", "logvar"} and out["x_hat"].shape == (3, 64, 64, 3)
    out = dbvae(x)
    assert set(out) == {"logit", "x_hat", "mu", "logvar"} and out["logit"].shape == (3, 1)
    np.testing.assert_allclose(predict_logits(dbvae, x), keras.ops.convert_to_numpy(out["logit"]),
                               rtol=1e-4, atol=1e-5)
    for model in (vae, dbvae):
        mu, logvar = model.encode(x)
        assert isinstance(mu, np.ndarray) and mu.shape == logvar.shape == (3, K)
        eager_mu, eager_logvar = model.encode(keras.ops.convert_to_tensor(x))  # tensors: the eager/graph path
        np.testing.assert_allclose(mu, keras.ops.convert_to_numpy(eager_mu), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(logvar, keras.ops.convert_to_numpy(eager_logvar), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="kl_weight"):
        DBVAE(latent_dim=K, kl_weight=-1.0)
    with pytest.raises(ValueError, match="recon"):
        VAE(latent_dim=K, recon="l3")


def classification_only(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
    return losses.classification_loss(y, logit)


def initial_head() -> np.ndarray:
    keras.utils.set_random_seed(0)
    return DBVAE(latent_dim=K, kl_weight=0.5, seed=0).encoder.get_layer("logits").kernel.numpy()


def step(loss_fn, y: np.ndarray) -> tuple[DBVAE, dict]:
    """One SGD step from the same initial weights (seed 0); returns the model and the largest changes."""
    keras.utils.set_random_seed(0)
    model = DBVAE(latent_dim=K, kl_weight=0.5, seed=0, loss_fn=loss_fn)
    return model, one_step_changes(model, images(8), y)


def test_non_faces_send_no_gradient_through_vae_terms():
    """The gradient mask, seen through one plain SGD step on non-faces (the same on every backend): the decoder does
    not move at all, and the encoder moves exactly as under the classification loss alone."""
    model, changes = step(None, np.zeros(8, np.float32))
    reference, _ = step(classification_only, np.zeros(8, np.float32))
    assert changes["decoder"] == 0.0 and changes["encoder"] > 0.0
    for w, c in zip(model.trainable_weights, reference.trainable_weights):
        np.testing.assert_allclose(w.numpy(), c.numpy(), rtol=0, atol=1e-6, err_msg=w.path)
    moved = np.abs(model.encoder.get_layer("logits").kernel.numpy() - initial_head())
    assert moved[:, 0].max() > 0 and moved[:, 1:].max() == 0.0  # means / log-variances get nothing from non-faces


def test_faces_train_decoder_and_latent_heads():
    model, changes = step(None, np.ones(8, np.float32))
    assert changes["decoder"] > 0.0
    moved = np.abs(model.encoder.get_layer("logits").kernel.numpy() - initial_head())
    assert moved[:, 1:].max() > 0.0


def test_column_labels_give_the_same_loss():
    model = DBVAE(latent_dim=K, seed=0)
    model.compile(optimizer="adam")
    x, y = images(8), np.array([1, 0] * 4, np.float32)
    flat = model.evaluate(x, y, verbose=0, return_dict=True)
    column = model.evaluate(x, y[:, None], verbose=0, return_dict=True)
    assert flat.keys() == {"loss", "classification_loss", "reconstruction_loss", "kl_loss", "accuracy"}
    for key in flat:
        assert flat[key] == pytest.approx(column[key], rel=1e-6), key


def test_dbvae_requires_labels():
    model = DBVAE(latent_dim=K)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="needs face labels"):
        model.train_on_batch(images(4))


def as_dict(outputs) -> dict:
    return outputs if isinstance(outputs, dict) else {"output": outputs}


@pytest.mark.parametrize("kind", ["cnn", "vae", "dbvae", "dbvae_vgg"])
def test_save_load_round_trip(tmp_path, kind):
    model = {"cnn": lambda: build_cnn(width=0.5),
             "vae": lambda: VAE(latent_dim=K, kl_weight=0.01, recon="l2", seed=3),
             "dbvae": lambda: DBVAE(latent_dim=K, kl_weight=0.02, seed=3),
             "dbvae_vgg": lambda: DBVAE(latent_dim=K, seed=3, encoder_body="vgg")}[kind]()
    x, y = images(8), np.array([1, 0] * 4, np.float32)
    model.compile(optimizer="adam", **({"loss": keras.losses.BinaryCrossentropy(from_logits=True)}
                                       if kind == "cnn" else {}))
    model.train_on_batch(x, y)  # moves BN statistics and weights away from their initial values
    path = save_model(model, tmp_path / "sub" / f"{kind}.keras")
    loaded = load_model(path)
    assert type(loaded) is type(model)
    for key, value in as_dict(model.predict(x, verbose=0)).items():
        np.testing.assert_array_equal(as_dict(loaded.predict(x, verbose=0))[key], value, err_msg=key)
    if kind != "cnn":
        assert (loaded.latent_dim, loaded.kl_weight, loaded.recon, loaded.seed, loaded.encoder_body) == \
            (model.latent_dim, model.kl_weight, model.recon, model.seed, model.encoder_body)
        np.testing.assert_array_equal(loaded.encode(x)[0], model.encode(x)[0])
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{kind}.keras"]  # no temporary files left


def test_the_encoder_body_is_a_choice_of_named_bodies():
    vgg = DBVAE(latent_dim=K, seed=0, encoder_body="vgg")
    assert vgg.encoder.get_layer("stage1_conv1") is not None and vgg.encoder.output.shape[-1] == 1 + 2 * K
    assert DBVAE(latent_dim=K, seed=0).encoder.count_params() != vgg.encoder.count_params()
    with pytest.raises(ValueError, match="encoder_body must be one of"):
        VAE(latent_dim=K, encoder_body="resnet")


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    model = build_cnn(width=0.25)
    path = save_model(model, tmp_path / "m.keras")
    original = path.read_bytes()

    def broken_save(filepath, overwrite=True):
        with open(filepath, "wb") as f:
            f.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_save_load_errors(tmp_path):
    with pytest.raises(ValueError, match=".keras"):
        save_model(build_cnn(width=0.25), tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="No model file"):
        load_model(tmp_path / "missing.keras")


@pytest.mark.parametrize("cls", [VAE, DBVAE])
def test_trains_under_mixed_precision(cls):
    """The optional GPU speed-up: under mixed_float16 compile() wraps Adam in a LossScaleOptimizer, and the custom
    compute_loss (float16 activations, float32 losses and variables) still trains with finite losses."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = cls(latent_dim=3, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        rng = np.random.default_rng(0)
        x = rng.random((8, 64, 64, 3), dtype=np.float32)
        y = np.r_[np.ones(4), np.zeros(4)].astype(np.float32)
        before = [w.numpy().copy() for w in model.trainable_weights]
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        assert all(np.isfinite(v).all() for v in history.history.values())
        assert all(w.dtype == "float32" for w in model.trainable_weights)
        assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_sampling_uses_the_reparameterize_function_given():
    mu, logvar = np.ones((4, 2), np.float32), np.zeros((4, 2), np.float32)
    calls = []

    def mine(mu, logvar, eps):
        calls.append(tuple(mu.shape))
        return mu + 0.0 * eps

    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Sampling(0, mine)((mu, logvar))), mu)
    vae = VAE(latent_dim=K, seed=0, reparameterize_fn=mine)
    calls.clear()
    vae.compile(optimizer="adam")
    vae.train_on_batch(images(4), np.ones(4, np.float32))
    assert calls  # traced or called while training


@pytest.mark.parametrize("damage", ["truncated", "no config.json", "not a zip"])
def test_a_damaged_model_file_is_reported_as_damaged_not_missing(tmp_path, damage):
    import zipfile

    path = save_model(build_cnn(width=0.25), tmp_path / "m.keras")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "no config.json":
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist() if n != "config.json"}
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    else:
        path.write_text("hello")
    with pytest.raises(ValueError, match="exists but is not a readable Keras model.*Delete it and train"):
        load_model(path)
