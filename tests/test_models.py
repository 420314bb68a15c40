"""Models: shapes, the seeded Sampling layer, the DB-VAE's gradient mask, and .keras save/load round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lab_utils.models import (
    DBVAE,
    VAE,
    Sampling,
    build_cnn,
    build_decoder,
    build_encoder,
    load_model,
    save_model,
)

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
    assert vae(x).shape == (3, 64, 64, 3)
    assert dbvae(x).shape == (3, 1)
    for model in (vae, dbvae):
        mu, logvar = model.encode(x)
        assert isinstance(mu, np.ndarray) and mu.shape == logvar.shape == (3, K)
        eager_mu, eager_logvar = model.encode(keras.ops.convert_to_tensor(x))  # tensors: the eager/graph path
        np.testing.assert_allclose(mu, eager_mu, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(logvar, eager_logvar, rtol=1e-4, atol=1e-6)
    probs = dbvae.predict_face_prob(x)
    assert probs.shape == (3,) and ((probs > 0) & (probs < 1)).all()
    with pytest.raises(ValueError, match="kl_weight"):
        DBVAE(latent_dim=K, kl_weight=-1.0)
    with pytest.raises(ValueError, match="recon"):
        VAE(latent_dim=K, recon="l3")


def loss_grads(model: DBVAE, x: np.ndarray, y: np.ndarray) -> tuple[list, list, dict]:
    """Gradients of the total and of the classification-only loss from one forward pass of the model's
    own training loss (same Sampling noise for both)."""
    with tf.GradientTape(persistent=True) as tape:
        terms = model._loss_terms(x, y, training=True)
        total = keras.ops.mean(terms["total"])
        classification = keras.ops.mean(terms["classification"])
    weights = model.trainable_weights

    def dense(grads: list) -> list[np.ndarray]:  # unconnected -> zeros
        return [np.zeros(w.shape, np.float32) if g is None else g.numpy() for w, g in zip(weights, grads)]

    return dense(tape.gradient(total, weights)), dense(tape.gradient(classification, weights)), terms


def test_non_faces_send_no_gradient_through_vae_terms():
    model = DBVAE(latent_dim=K, kl_weight=0.5, seed=0)
    g_total, g_class, terms = loss_grads(model, images(8), np.zeros((8, 1), np.float32))
    for name in ("total", "classification", "vae"):
        assert terms[name].shape == (8,)
    decoder_ids = {id(w) for w in model.decoder.trainable_weights}
    for w, gt, gc in zip(model.trainable_weights, g_total, g_class):
        if id(w) in decoder_ids:
            assert np.all(gt == 0.0), w.path  # exactly zero, not merely small
        else:
            np.testing.assert_allclose(gt, gc, rtol=0, atol=1e-7, err_msg=w.path)
    head = model.encoder.get_layer("logits").kernel
    head_grad = g_total[[id(w) for w in model.trainable_weights].index(id(head))]
    assert np.all(head_grad[:, 1:] == 0.0)  # latent means / log-variances get nothing from non-faces


def test_faces_train_decoder_and_latent_heads():
    model = DBVAE(latent_dim=K, kl_weight=0.5, seed=0)
    g_total, g_class, _ = loss_grads(model, images(8), np.ones(8, np.float32))
    weights = model.trainable_weights
    decoder_ids = {id(w) for w in model.decoder.trainable_weights}
    assert all(np.abs(g).sum() > 0 for w, g in zip(weights, g_total) if id(w) in decoder_ids)
    head = [id(w) for w in weights].index(id(model.encoder.get_layer("logits").kernel))
    assert np.abs(g_total[head][:, 1:]).sum() > 0
    assert np.all(g_class[head][:, 1:] == 0.0)


def test_train_step_on_non_faces_leaves_decoder_unchanged():
    model = DBVAE(latent_dim=K, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in model.decoder.weights]
    encoder_before = model.encoder.get_layer("dense").kernel.numpy().copy()
    model.train_on_batch(images(8), np.zeros(8, np.float32))
    for w, b in zip(model.decoder.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    assert not np.array_equal(model.encoder.get_layer("dense").kernel.numpy(), encoder_before)


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


@pytest.mark.parametrize("kind", ["cnn", "vae", "dbvae"])
def test_save_load_round_trip(tmp_path, kind):
    model = {"cnn": lambda: build_cnn(width=0.5),
             "vae": lambda: VAE(latent_dim=K, kl_weight=0.01, recon="l2", seed=3),
             "dbvae": lambda: DBVAE(latent_dim=K, kl_weight=0.02, seed=3)}[kind]()
    x, y = images(8), np.array([1, 0] * 4, np.float32)
    model.compile(optimizer="adam", **({"loss": keras.losses.BinaryCrossentropy(from_logits=True)}
                                       if kind == "cnn" else {}))
    model.train_on_batch(x, y)  # moves BN statistics and weights away from their initial values
    path = save_model(model, tmp_path / "sub" / f"{kind}.keras")
    loaded = load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    if kind != "cnn":
        assert (loaded.latent_dim, loaded.kl_weight, loaded.recon, loaded.seed) == \
            (model.latent_dim, model.kl_weight, model.recon, model.seed)
        np.testing.assert_array_equal(loaded.encode(x)[0], model.encode(x)[0])
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{kind}.keras"]  # no temporary files left


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
    train_steps (float16 activations, float32 losses and variables) still train with finite losses."""
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
