"""Variant definitions and the label-aware oracle's sampling probabilities."""

import numpy as np
import pytest

from lab_utils.data import FaceDataset
from lab_utils.experiments import Variant, oracle_face_probs


def _dataset(darker):
    n = len(darker)
    labels = np.r_[np.ones(n), np.zeros(3)]
    attrs = {"darker": np.r_[np.asarray(darker, np.int8), -np.ones(3, np.int8)]}
    return FaceDataset(np.zeros((n + 3, 64, 64, 3), np.uint8), labels, attrs)


def test_oracle_gives_requested_darker_share():
    darker = np.r_[np.ones(5), np.zeros(95)]
    p = oracle_face_probs(_dataset(darker), 0.5)
    assert p.shape == (100,) and np.isclose(p.sum(), 1.0)
    assert np.isclose(p[darker == 1].sum(), 0.5)
    assert np.allclose(p[darker == 1], 0.1) and np.allclose(p[darker == 0], 0.5 / 95)


def test_oracle_needs_both_groups_and_the_attribute():
    with pytest.raises(ValueError, match="both lighter and darker"):
        oracle_face_probs(_dataset(np.zeros(10)), 0.5)
    ds = FaceDataset(np.zeros((2, 64, 64, 3), np.uint8), np.array([1, 0]))
    with pytest.raises(ValueError, match="'darker' attribute"):
        oracle_face_probs(ds, 0.5)


def test_variant_validation():
    with pytest.raises(ValueError, match="kind"):
        Variant("x", kind="resnet")
    with pytest.raises(ValueError, match="not both"):
        Variant("x", resample=True, oracle_darker_share=0.5)
    with pytest.raises(ValueError, match="oracle_darker_share"):
        Variant("x", oracle_darker_share=1.5)
