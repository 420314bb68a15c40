"""Variant definitions and the label-aware oracle's sampling probabilities."""

import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.sampling import resampling_summary
from lab_utils.training.variants import Variant, oracle_sampling_probs


def _dataset(darker):
    n = len(darker)
    labels = np.r_[np.ones(n), np.zeros(3)]
    attrs = {"darker": np.r_[np.asarray(darker, np.int8), -np.ones(3, np.int8)]}
    return FaceDataset(np.zeros((n + 3, 64, 64, 3), np.uint8), labels, attrs)


def test_oracle_gives_requested_darker_share():
    darker = np.r_[np.ones(5), np.zeros(95)]
    p = oracle_sampling_probs(_dataset(darker), 0.5)
    assert p.shape == (100,) and np.isclose(p.sum(), 1.0)
    assert np.isclose(p[darker == 1].sum(), 0.5)
    assert np.allclose(p[darker == 1], 0.1) and np.allclose(p[darker == 0], 0.5 / 95)


def test_oracle_needs_both_groups_and_the_attribute():
    with pytest.raises(ValueError, match="both lighter and darker"):
        oracle_sampling_probs(_dataset(np.zeros(10)), 0.5)
    ds = FaceDataset(np.zeros((2, 64, 64, 3), np.uint8), np.array([1, 0]))
    with pytest.raises(ValueError, match="'darker' attribute"):
        oracle_sampling_probs(ds, 0.5)


def test_variant_validation():
    with pytest.raises(ValueError, match="kind"):
        Variant("x", kind="resnet")
    with pytest.raises(ValueError, match="not both"):
        Variant("x", resample=True, oracle_darker_share=0.5)
    with pytest.raises(ValueError, match="oracle_darker_share"):
        Variant("x", oracle_darker_share=1.5)


def test_resampling_summary_shares_ess_and_base_rate():
    darker = np.r_[np.ones(2), np.zeros(8)]
    ds = _dataset(darker)
    uniform = np.full(10, 0.1)
    tilted = np.where(darker == 1, 0.25, 0.0625)
    log = [{"epoch": 0, "sampling_probs": uniform, "drawn_face_counts": np.r_[1, 1, np.full(8, 2)]},
           {"epoch": 1, "sampling_probs": tilted, "drawn_face_counts": np.r_[5, 5, np.full(8, 1)]}]
    s = resampling_summary(ds, log)
    assert s["epochs"] == [1, 2] and s["base_rate"] == pytest.approx(0.2)
    assert s["shares"] == pytest.approx([2 / 18, 10 / 18])
    assert s["ess"] == pytest.approx([10.0, 1 / (2 * 0.25**2 + 8 * 0.0625**2)])


def test_resampling_summary_rejects_a_log_from_another_dataset():
    ds = _dataset(np.r_[np.ones(2), np.zeros(8)])
    with pytest.raises(ValueError, match="counts 3 faces but the training set has 10"):
        resampling_summary(ds, [{"epoch": 0, "sampling_probs": np.full(3, 1 / 3), "drawn_face_counts": np.ones(3)}])
    with pytest.raises(ValueError, match="no 'hat' attribute"):
        resampling_summary(ds, [], attribute="hat")


def test_load_or_train_retrains_when_the_saved_model_is_damaged(tmp_path, monkeypatch, capsys):
    from lab_utils.data.dataset import FaceDataset
    from lab_utils.nn import models
    from lab_utils.core import profiles
    from lab_utils.training import model_cache

    monkeypatch.setenv("LAB_OUTPUT_DIR", str(tmp_path))
    profile = profiles.PROFILES["smoke"].with_overrides(cnn_epochs=1, batch_size=8)
    rng = np.random.default_rng(0)
    train = FaceDataset(rng.integers(0, 256, (32, 64, 64, 3), dtype=np.uint8),
                        np.r_[np.ones(16), np.zeros(16)].astype(np.float32), name="tiny")
    path = model_cache.model_path("cnn", profile, 0)
    path.write_bytes(b"PK\x03\x04 half a model")
    model = model_cache.load_or_train("cnn", train, profile, seed=0)
    assert "could not be read" in capsys.readouterr().out
    assert isinstance(models.load_model(path), type(model))  # replaced by a good file
