"""Training on tiny synthetic data (faces = bright discs, non-faces = noise): each model's loss drops, the
model holds EMA weights after fit, resampling is logged per epoch, and seeds make runs repeat exactly."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.nn import losses
from lab_utils.nn.losses import reconstruction_loss
from lab_utils.nn.models import VAE, build_cnn
from lab_utils.core.env import seed_everything
from lab_utils.core.profiles import get_profile
from lab_utils.evaluation.sampling import resampling_diagnostics
from lab_utils.training import debiasing
from lab_utils.training.config import TrainingConfig
from lab_utils.training.debiasing import DBVAE, FaceBatchSampler, ResamplingCallback, ResamplingOptions
from lab_utils.training.trainers import (
    predict_face_probs,
    train_classifier,
    train_dbvae,
    train_vae,
)

BATCH = 16
NO_EMA = TrainingConfig(batch_size=BATCH, ema_momentum=None)  # a few steps: the average would barely move


def synthetic(n_faces: int, n_nonfaces: int, seed: int) -> FaceDataset:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    faces = np.zeros((n_faces, 64, 64, 3), np.uint8)
    for img in faces:
        cy, cx, r = rng.uniform(22, 42), rng.uniform(22, 42), rng.uniform(10, 18)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(120, 256, 3)
    nonfaces = rng.integers(0, 256, (n_nonfaces, 64, 64, 3), dtype=np.uint8)
    labels = np.r_[np.ones(n_faces), np.zeros(n_nonfaces)].astype(np.float32)
    return FaceDataset(np.concatenate([faces, nonfaces]), labels, name=f"synthetic{seed}")


@pytest.fixture(scope="module")
def train() -> FaceDataset:
    return synthetic(96, 96, seed=0)


@pytest.fixture(scope="module")
def test() -> FaceDataset:
    return synthetic(32, 32, seed=1)


def xent(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


class WeightAverager(keras.callbacks.Callback):
    """Our own EMA of the weights after every step, and the raw weights of the last step."""

    def __init__(self, momentum: float) -> None:
        super().__init__()
        self.momentum, self.ema, self.last = momentum, None, None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.last = [w.numpy().copy() for w in self.model.trainable_weights]
        if self.ema is None:
            self.ema = self.last
        else:
            self.ema = [self.momentum * e + (1 - self.momentum) * w for e, w in zip(self.ema, self.last)]


def test_classifier_learns_and_holds_ema_weights(train, test):
    seed_everything(0)
    model = build_cnn(width=0.5)
    before = xent(test.labels, predict_face_probs(model, test))
    averager = WeightAverager(0.9)
    # 300 steps: BatchNorm's moving statistics (momentum 0.99) need a few hundred steps before inference-mode
    # predictions match training (after 150 steps the held-out loss was still 0.45).
    history = train_classifier(model, train, epochs=3, config=TrainingConfig(batch_size=BATCH, ema_momentum=0.9), steps_per_epoch=100,
                               callbacks=[averager], verbose=0)
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 3
    after = xent(test.labels, predict_face_probs(model, test))
    assert after < 0.25 < before  # measured: 0.69 before, 0.03 after
    # After fit the model holds the EMA (= what we averaged ourselves), not the last step's weights.
    for w, ema, last in zip(model.trainable_weights, averager.ema, averager.last):
        np.testing.assert_allclose(w.numpy(), ema, rtol=1e-4, atol=1e-6, err_msg=w.path)
    assert any(not np.allclose(w.numpy(), last) for w, last in zip(model.trainable_weights, averager.last))
    # The compiled loss is the per-sample mean for (B,) labels against (B, 1) logits, not a B x B broadcast.
    loss = model.evaluate(test.as_float(), test.labels, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(after, rel=1e-3, abs=1e-5)


def test_vae_learns_to_reconstruct_faces(train, test):
    seed_everything(0)
    vae = VAE(latent_dim=4, seed=0)
    faces = test.as_float(test.face_idx)

    def recon() -> float:
        return float(np.mean(keras.ops.convert_to_numpy(reconstruction_loss(faces, vae(faces)["x_hat"]))))

    before = recon()
    history = train_vae(vae, train, epochs=2, config=TrainingConfig(batch_size=BATCH, ema_momentum=0.9), steps_per_epoch=60,
                        verbose=0)
    assert set(history.history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert recon() < 0.7 * before  # measured: ~0.4 -> ~0.1


def test_dbvae_learns_and_logs_resampling(train, test):
    seed_everything(0)
    model = DBVAE(latent_dim=4, seed=0)
    model.compile(optimizer="adam")
    before = model.evaluate(test.as_float(), test.labels, verbose=0, return_dict=True)
    epochs, steps = 3, 80  # epoch 0 samples uniformly, so two resampled epochs follow it
    history, log = train_dbvae(model, train, epochs=epochs, steps_per_epoch=steps,
                               config=TrainingConfig(batch_size=BATCH, ema_momentum=0.9), verbose=0)
    after = model.evaluate(test.as_float(), test.labels, verbose=0, return_dict=True)
    # Held-out, inference mode: the reconstruction improves a lot (0.46 -> 0.11 on TensorFlow and JAX). The held-out
    # classification term lags while BatchNorm's moving statistics catch up (see the CNN test), by an amount that
    # depends on each backend's random streams, so the classifier's progress is read from the training log.
    assert after["reconstruction_loss"] < 0.5 * before["reconstruction_loss"]
    assert history.history["classification_loss"][-1] < 0.5 * history.history["classification_loss"][0]
    assert set(history.history) == {"loss", "classification_loss", "reconstruction_loss", "kl_loss", "accuracy"}
    assert [entry["epoch"] for entry in log] == list(range(epochs))
    n_faces = len(train.face_idx)
    # Epoch 0 samples uniformly (the latent space is still random); the weights are computed at the start of epoch 1
    # and kept (debiasing.RECOMPUTE_EVERY is None: once).
    assert [entry["recomputed"] for entry in log] == [False, True, False]
    np.testing.assert_array_equal(log[2]["sampling_probs"], log[1]["sampling_probs"])
    np.testing.assert_allclose(log[0]["sampling_probs"], 1 / n_faces)
    assert 1.0 <= log[1]["diagnostics"]["ess"] <= n_faces
    for entry in log:
        assert entry["sampling_probs"].shape == (n_faces,) and entry["sampling_probs"].sum() == pytest.approx(1.0)
        # Counts cover exactly this epoch's batches: nothing drawn early for the next epoch, or late.
        assert entry["drawn_face_counts"].sum() == steps * BATCH // 2
    # Draws follow the probabilities in use: the top tenth of faces by probability gets its expected share.
    probs, counts = log[-1]["sampling_probs"], log[-1]["drawn_face_counts"]
    top = np.argsort(probs)[-n_faces // 10:]
    expected, observed = probs[top].sum(), counts[top].sum() / counts.sum()
    assert expected > 0.15  # the weights are not uniform (uniform would be 0.09)
    assert abs(observed - expected) < 0.1


def run_callback_epochs(callback: ResamplingCallback, sampler: FaceBatchSampler, epochs: int) -> None:
    """Drive the callback as fit() would (begin, a few batches, end) without the cost of training."""
    callback.set_model(DBVAE(latent_dim=2, seed=0))
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for _ in range(3):
            sampler.sample()
        callback.on_epoch_end(epoch)


def test_uniform_control_and_delayed_start(train):
    sampler = FaceBatchSampler(train, BATCH)
    control = ResamplingCallback(sampler, resample=False)
    run_callback_epochs(control, sampler, 2)
    assert [entry["recomputed"] for entry in control.log] == [False, False]
    np.testing.assert_allclose(control.log[1]["sampling_probs"], 1 / len(train.face_idx))
    assert all(entry["drawn_face_counts"].sum() == 3 * BATCH // 2 for entry in control.log)  # reset per epoch

    sampler = FaceBatchSampler(train, BATCH)
    delayed = ResamplingCallback(sampler, ResamplingOptions(start_epoch=1, every=2, rule="max"))
    run_callback_epochs(delayed, sampler, 4)
    assert [entry["recomputed"] for entry in delayed.log] == [False, True, False, True]
    assert delayed.log[0]["diagnostics"] is None and delayed.log[1]["diagnostics"]["ess"] > 1
    assert not np.allclose(delayed.log[1]["sampling_probs"], delayed.log[0]["sampling_probs"])
    np.testing.assert_array_equal(delayed.log[2]["sampling_probs"], delayed.log[1]["sampling_probs"])


def test_concentrated_weights_warn(monkeypatch):
    train = synthetic(300, 20, seed=2)  # enough faces that one face is under 1% of them
    n = len(train.face_idx)
    one_face = np.r_[1.0, np.zeros(n - 1)]
    monkeypatch.setattr(debiasing, "compute_sampling_probs",
                        lambda *a, **k: (one_face, resampling_diagnostics(one_face)))
    sampler = FaceBatchSampler(train, BATCH)
    with pytest.warns(RuntimeWarning, match=rf"worth only 1.0 of {n} faces.*rule='principal_max'.*Raise alpha\."):
        run_callback_epochs(ResamplingCallback(sampler), sampler, 2)
    with pytest.warns(RuntimeWarning, match="rule='max'.*Raise alpha, histogram fewer dims\\."):
        run_callback_epochs(ResamplingCallback(sampler, ResamplingOptions(rule="max")), sampler, 2)
    with pytest.warns(RuntimeWarning, match="rule='product'.*or use rule='principal_max'"):
        run_callback_epochs(ResamplingCallback(sampler, ResamplingOptions(rule="product")), sampler, 2)

    healthy = np.full(n, 1.0 / n)
    monkeypatch.setattr(debiasing, "compute_sampling_probs",
                        lambda *a, **k: (healthy, resampling_diagnostics(healthy)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_callback_epochs(ResamplingCallback(sampler), sampler, 2)


def test_dbvae_with_fixed_sampling_probs(train):
    weights = np.where(np.arange(len(train.face_idx)) < 10, 1.0, 0.0)  # e.g. an oracle's fixed weights
    _, log = train_dbvae(DBVAE(latent_dim=2, seed=0), train, epochs=1, resample=False, sampling_probs=weights,
                         config=NO_EMA, steps_per_epoch=3, verbose=0)
    np.testing.assert_allclose(log[0]["sampling_probs"], weights / weights.sum())
    assert log[0]["drawn_face_counts"][10:].sum() == 0 and log[0]["drawn_face_counts"].sum() == 3 * BATCH // 2


def test_same_seed_same_weights(train):
    def run(seed: int) -> list[np.ndarray]:
        seed_everything(seed)
        model = build_cnn(width=0.25)
        train_classifier(model, train, epochs=1, config=NO_EMA, steps_per_epoch=8,
                         seed=seed, verbose=0)
        return [w.numpy() for w in model.weights]

    seed_everything(1)
    initial = [w.numpy() for w in build_cnn(width=0.25).weights]
    first, again = run(1), run(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, initial))  # it did train


class StopBeforeTraining(keras.callbacks.Callback):
    def on_train_begin(self, logs: dict | None = None) -> None:
        raise InterruptedError("stopped before the first step")


def test_short_training_warns_about_ema(train):
    with pytest.warns(UserWarning, match="EMA time constants"), pytest.raises(InterruptedError):
        train_classifier(build_cnn(width=0.25), train, epochs=1, config=TrainingConfig(batch_size=BATCH),
                         steps_per_epoch=4, callbacks=[StopBeforeTraining()], verbose=0)


def test_predict_face_probs_inputs_and_errors(test):
    model = build_cnn(width=0.25)
    from_dataset = predict_face_probs(model, test, batch_size=24)
    assert from_dataset.shape == (len(test),) and ((from_dataset > 0) & (from_dataset < 1)).all()
    np.testing.assert_allclose(predict_face_probs(model, test.images), from_dataset, rtol=1e-6)
    np.testing.assert_allclose(predict_face_probs(model, test.as_float()), from_dataset, rtol=1e-6)
    logits = keras.ops.convert_to_numpy(model(test.as_float(), training=False))[:, 0]
    np.testing.assert_allclose(from_dataset, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict_face_probs(model, test.images.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        predict_face_probs(model, test.images[:, :32])
    with pytest.raises(ValueError, match="no face classifier"):
        predict_face_probs(VAE(latent_dim=2), test)
    nan_images = test.as_float()
    nan_images[3] = np.nan  # an all-NaN image used to score exactly 0.5, like a real one
    with pytest.raises(ValueError, match="1 image\\(s\\) contain NaN or infinite pixels \\(first at index 3\\)"):
        predict_face_probs(model, nan_images)


def test_trainers_reject_the_wrong_model(train):
    with pytest.raises(ValueError, match="train_vae/train_dbvae"):
        train_classifier(DBVAE(latent_dim=2), train, epochs=1)
    with pytest.raises(ValueError, match="DBVAE"):
        train_dbvae(build_cnn(width=0.25), train, epochs=1)
    with pytest.raises(ValueError, match="VAE"):
        train_vae(build_cnn(width=0.25), train, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(build_cnn(width=0.25), train, epochs=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        train_vae(VAE(latent_dim=2), train, epochs=1, steps_per_epoch=0)
    with pytest.raises(ValueError, match="ema_momentum"):
        TrainingConfig(ema_momentum=1.0)
    with pytest.raises(ValueError, match="rule must be one of"):  # before any model is built or trained
        ResamplingOptions(rule="mean")
    with pytest.raises(ValueError, match="every"):
        ResamplingOptions(every=0)
    with pytest.raises(ValueError, match="must be a ResamplingOptions"):
        TrainingConfig(resampling={"rule": "max"})


def weights_after(train, loss_fn, kind: str) -> list[np.ndarray]:
    seed_everything(0)
    model = (VAE if kind == "vae" else DBVAE)(latent_dim=4, seed=0, loss_fn=loss_fn)
    if kind == "vae":
        train_vae(model, train, epochs=1, config=NO_EMA, steps_per_epoch=5, verbose=0)
    else:
        train_dbvae(model, train, epochs=1, config=NO_EMA, steps_per_epoch=5, verbose=0)
    return [np.array(w.numpy()) for w in model.trainable_weights]


@pytest.mark.parametrize("kind", ["vae", "dbvae"])
def test_the_loss_function_given_is_the_one_that_trains(train, kind):
    """What the labs rely on: a student's loss that equals the reference trains the same weights, and a different
    but valid loss (L2 instead of L1 reconstruction, whatever ``recon`` says) trains different ones."""
    if kind == "vae":
        def same(x, x_hat, mu, logvar, kl_weight, recon):
            return losses.vae_loss(x, x_hat, mu, logvar, kl_weight, recon)

        def other(x, x_hat, mu, logvar, kl_weight, recon):
            return losses.vae_loss(x, x_hat, mu, logvar, kl_weight, "l2")
    else:
        def same(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
            return debiasing.dbvae_loss(x, x_hat, y, logit, mu, logvar, kl_weight, recon)

        def other(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
            return debiasing.dbvae_loss(x, x_hat, y, logit, mu, logvar, kl_weight, "l2")

    reference = weights_after(train, None, kind)
    for a, b in zip(reference, weights_after(train, same, kind)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(reference, weights_after(train, other, kind)))


def test_a_resampling_rule_function_is_what_draws_the_faces(train):
    """Lab 3 trains with the student's rule: the trainer calls it as rule(mu, bins, alpha) and samples by it."""
    calls = []

    def first_face_only(mu, bins, alpha):
        calls.append((mu.shape, bins, alpha))
        return np.r_[1.0, np.zeros(len(mu) - 1)]

    seed_everything(0)
    model = DBVAE(latent_dim=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one face is a collapsed ESS, by design here
        _, log = train_dbvae(model, train, epochs=2, steps_per_epoch=3, verbose=0,
                             config=NO_EMA.replace(resampling=ResamplingOptions(rule=first_face_only, bins=7, alpha=0.5)))
    assert calls == [((len(train.face_idx), 4), 7, 0.5)]
    assert log[1]["drawn_face_counts"][0] == log[1]["drawn_face_counts"].sum() > 0

    def wrong_length(mu, bins, alpha):
        return np.ones(len(mu) + 1)

    with pytest.raises(ValueError, match="rule 'wrong_length' returned shape"):
        train_dbvae(DBVAE(latent_dim=4, seed=0), train, epochs=2, steps_per_epoch=2, verbose=0,
                    config=NO_EMA.replace(resampling=ResamplingOptions(rule=wrong_length)))


@pytest.mark.parametrize("rate", [float("nan"), -1e-3, 0.0, "fast"])
def test_a_learning_rate_that_cannot_train_is_refused(train, rate):
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        TrainingConfig(learning_rate=rate)


def test_a_trained_model_can_be_predicted_with_and_then_saved(train, tmp_path):
    """On JAX, Keras' EMA write-back shared buffers with the optimizer and a predict then deleted them."""
    from lab_utils.nn.models import load_model, save_model

    model = build_cnn(width=0.25)
    train_classifier(model, train, epochs=1, config=TrainingConfig(batch_size=BATCH, ema_momentum=0.5), steps_per_epoch=4,
                     verbose=0)
    probs = predict_face_probs(model, train)
    path = save_model(model, tmp_path / "cnn.keras")
    np.testing.assert_allclose(predict_face_probs(load_model(path), train), probs, rtol=1e-5, atol=1e-6)


def test_one_training_config_reaches_the_optimiser_and_is_checked_when_made(train):
    config = TrainingConfig.for_profile(get_profile("smoke"), learning_rate=1e-3, ema_momentum=None)
    assert config.batch_size == get_profile("smoke").batch_size
    model = build_cnn(width=0.25)
    train_classifier(model, train, epochs=1, steps_per_epoch=1, config=config.replace(batch_size=BATCH), verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3) and not model.optimizer.use_ema
    with pytest.raises(ValueError, match="config must be a TrainingConfig"):
        train_classifier(model, train, epochs=1, config={"batch_size": BATCH})
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        config.replace(batch_size=0)  # a copy is checked again
