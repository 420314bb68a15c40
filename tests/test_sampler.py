"""FaceBatchSampler: batch contents, that draws follow the given probabilities, validation, Keras epochs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import stats

from lab_utils.data.dataset import FaceDataset
from lab_utils.training.debiasing import FaceBatchSampler

N_FACES, N_NONFACES = 10, 6


def make_dataset(n_faces: int = N_FACES, n_nonfaces: int = N_NONFACES) -> FaceDataset:
    """Image i is filled with the value i, so a batch can be traced back to dataset indices.

    Faces and non-faces are interleaved so that face positions differ from dataset indices.
    """
    n = n_faces + n_nonfaces
    labels = np.zeros(n, np.float32)
    labels[np.random.default_rng(1).permutation(n)[:n_faces]] = 1.0
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 64, 64, 3)).copy()
    return FaceDataset(images, labels, name="traceable")


def batch_indices(x: np.ndarray) -> np.ndarray:
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def test_batch_format_and_face_split():
    ds = make_dataset()
    sampler = FaceBatchSampler(ds, batch_size=8, face_fraction=0.25, seed=0)
    x, y = sampler.sample()
    assert x.dtype == np.float32 and x.shape == (8, 64, 64, 3)
    assert y.dtype == np.float32 and y.shape == (8,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y, [1, 1, 0, 0, 0, 0, 0, 0])
    idx = batch_indices(x)
    np.testing.assert_array_equal(ds.labels[idx], y)  # every "face" slot holds a face, and vice versa
    np.testing.assert_array_equal(idx[:2], sampler.last_face_indices)
    np.testing.assert_array_equal(x, ds.as_float(idx))


def test_faces_only_batches_and_dataset_without_nonfaces():
    ds = make_dataset(n_nonfaces=0)
    x, y = FaceBatchSampler(ds, batch_size=5, face_fraction=1.0).sample()
    assert y.tolist() == [1.0] * 5 and (ds.labels[batch_indices(x)] == 1).all()
    with pytest.raises(ValueError, match="no non-faces.*face_fraction=1.0"):
        FaceBatchSampler(ds, face_fraction=0.5)


def test_dataset_without_faces_is_refused():
    with pytest.raises(ValueError, match="no faces"):
        FaceBatchSampler(make_dataset(n_faces=0), face_fraction=0.0)


def test_draws_follow_probabilities():
    ds = make_dataset()
    weights = np.array([0, 1, 2, 3, 4, 0, 5, 1, 1, 3], dtype=float)
    sampler = FaceBatchSampler(ds, batch_size=64, face_fraction=1.0, sampling_probs=weights * 7, seed=3)
    np.testing.assert_allclose(sampler.sampling_probs, weights / weights.sum())

    traced = np.zeros(len(ds), int)
    for _ in range(500):
        x, _ = sampler.sample()
        np.add.at(traced, batch_indices(x), 1)
    counts = sampler.drawn_face_counts
    assert counts.sum() == 500 * 64
    np.testing.assert_array_equal(counts, traced[ds.face_idx])  # counts describe what was really served
    assert counts[weights == 0].sum() == 0
    positive = weights > 0
    expected = counts.sum() * weights[positive] / weights.sum()
    assert stats.chisquare(counts[positive], expected).pvalue > 1e-3
    # The same counts are nowhere near uniform: the test can tell the difference.
    assert stats.chisquare(counts, np.full(N_FACES, counts.sum() / N_FACES)).pvalue < 1e-12


def test_uniform_by_default_and_nonfaces_uniform():
    ds = make_dataset()
    sampler = FaceBatchSampler(ds, batch_size=32, seed=0)
    np.testing.assert_allclose(sampler.sampling_probs, np.full(N_FACES, 1 / N_FACES))
    nonface_counts = np.zeros(len(ds), int)
    for _ in range(300):
        np.add.at(nonface_counts, batch_indices(sampler.sample()[0][16:]), 1)
    assert stats.chisquare(sampler.drawn_face_counts).pvalue > 1e-3
    assert stats.chisquare(nonface_counts[ds.nonface_idx]).pvalue > 1e-3
    assert nonface_counts[ds.face_idx].sum() == 0


def test_reset_counts_and_set_sampling_probs_take_effect_next_batch():
    sampler = FaceBatchSampler(make_dataset(), batch_size=16, seed=0)
    sampler.sample()
    sampler.reset_counts()
    assert sampler.drawn_face_counts.sum() == 0
    sampler.set_sampling_probs(np.eye(N_FACES)[4])
    sampler.sample()
    assert sampler.drawn_face_counts[4] == 8 and sampler.drawn_face_counts.sum() == 8
    assert (sampler.last_face_indices == sampler.dataset.face_idx[4]).all()


@pytest.mark.parametrize(
    "probs, message",
    [
        (np.ones((2, 5)), r"1-D.*\(2, 5\)"),
        (np.ones(N_FACES - 1), f"9 entries but the dataset has {N_FACES} faces"),
        (np.r_[np.ones(N_FACES - 1), np.nan], "non-finite.*position 9"),
        (np.r_[np.inf, np.ones(N_FACES - 1)], "non-finite.*position 0"),
        (np.r_[-0.1, np.ones(N_FACES - 1)], "negative"),
        (np.zeros(N_FACES), "sums to 0"),
        (["a"] * N_FACES, "numeric"),
    ],
)
def test_invalid_probabilities(probs, message):
    sampler = FaceBatchSampler(make_dataset(), seed=0)
    before = sampler.sampling_probs
    with pytest.raises(ValueError, match=message):
        sampler.set_sampling_probs(probs)
    np.testing.assert_array_equal(sampler.sampling_probs, before)  # a rejected update changes nothing
    with pytest.raises(ValueError, match=message):
        FaceBatchSampler(make_dataset(), sampling_probs=probs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"face_fraction": -0.1}, "face_fraction"),
        ({"face_fraction": 1.5}, "face_fraction"),
        ({"face_fraction": float("nan")}, "face_fraction"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceBatchSampler(make_dataset(), **kwargs)


def test_determinism_by_seed():
    ds = make_dataset()
    a, b, c = (FaceBatchSampler(ds, batch_size=12, seed=seed) for seed in (7, 7, 8))
    for _ in range(3):
        xa, xb, xc = a.sample()[0], b.sample()[0], c.sample()[0]
        np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(batch_indices(xa), batch_indices(xc))


def test_keras_dataset_shape_and_validation():
    sampler = FaceBatchSampler(make_dataset(), batch_size=4, seed=0)
    pyds = sampler.as_keras_dataset(3)
    assert len(pyds) == 3
    x, y = pyds[0]
    assert x.shape == (4, 64, 64, 3) and y.shape == (4,)
    with pytest.raises(IndexError):
        pyds[3]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        sampler.as_keras_dataset(0)


def test_set_sampling_probs_between_keras_epochs_takes_effect():
    ds = make_dataset()
    sampler = FaceBatchSampler(ds, batch_size=8, seed=0)
    per_epoch: list[np.ndarray] = []

    class Reweight(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                sampler.set_sampling_probs(np.eye(N_FACES)[2])
            sampler.reset_counts()

        def on_epoch_end(self, epoch, logs=None):
            per_epoch.append(sampler.drawn_face_counts)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1),
    ])
    model.compile("sgd", keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(sampler.as_keras_dataset(5), epochs=2, callbacks=[Reweight()], verbose=0)

    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert per_epoch[0].sum() == 5 * 4 and (per_epoch[0] > 0).sum() > 1
    np.testing.assert_array_equal(per_epoch[1], np.eye(N_FACES, dtype=int)[2] * 5 * 4)
