"""The threshold-free metrics agree with scikit-learn (the metrics students meet everywhere else), ties included,
and nothing between a model and a metric manufactures ties: saturated logits stay apart."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from lab_utils.evaluation.threshold_free import (
    average_precision, per_group_ap, per_group_auc, rank_auc, recall_at_fpr,
)
from lab_utils.training import trainers


def scores(rng, n_pos, n_neg, levels):
    """Scores on a coarse grid (``levels`` distinct values) so that ties are everywhere, or continuous (None)."""
    if levels is None:
        return rng.random(n_pos) * 0.8 + 0.2, rng.random(n_neg) * 0.8
    return rng.integers(0, levels, n_pos) / levels + 0.1, rng.integers(0, levels, n_neg) / levels


@pytest.mark.parametrize("levels", [None, 2, 3, 5, 20])
def test_ap_and_auc_match_scikit_learn_on_random_scores_with_and_without_ties(levels):
    rng = np.random.default_rng(levels or 0)
    for _ in range(60):
        pos, neg = scores(rng, int(rng.integers(1, 40)), int(rng.integers(1, 40)), levels)
        y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
        s = np.r_[pos, neg]
        assert average_precision(pos, neg) == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert rank_auc(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_the_issues_tie_case():
    """200 faces and 2 non-faces all at 1.0: the old rule ranked both non-faces above every face (95.6%)."""
    rng = np.random.default_rng(0)
    pos, neg = np.r_[np.ones(200)], np.r_[np.ones(2), rng.random(998) * 0.5]
    y, s = np.r_[np.ones(200), np.zeros(1000)], np.r_[pos, neg]
    assert average_precision(pos, neg) == pytest.approx(average_precision_score(y, s))
    assert average_precision(pos, neg) == pytest.approx(200 / 202)


def test_per_group_metrics_match_scikit_learn_per_group():
    rng = np.random.default_rng(3)
    groups = np.r_[np.repeat(np.arange(4), 50), np.full(200, -1)]
    labels = (groups >= 0).astype(int)
    probs = np.round(np.clip(rng.normal(0.3 + 0.5 * labels - 0.1 * (groups == 2), 0.2), 0, 1), 1)  # many ties
    ap, auc = per_group_ap(probs, labels, groups), per_group_auc(probs, labels, groups)
    for code, name in enumerate(("LF", "LM", "DF", "DM")):
        keep = (groups == code) | (labels == 0)
        assert ap[name] == pytest.approx(average_precision_score(labels[keep], probs[keep]))
        assert auc[name] == pytest.approx(roc_auc_score(labels[keep], probs[keep]))


def test_logits_rank_like_their_probabilities_where_those_are_distinct():
    rng = np.random.default_rng(5)
    groups = np.r_[np.repeat(np.arange(4), 100), np.full(500, -1)]
    labels = (groups >= 0).astype(int)
    z = rng.normal(2.0 * labels - 1.0, 1.5)
    p = trainers.sigmoid(z)
    assert per_group_ap(z, labels, groups, logits=True) == pytest.approx(per_group_ap(p, labels, groups))
    assert per_group_auc(z, labels, groups, logits=True) == pytest.approx(per_group_auc(p, labels, groups))
    a, b = recall_at_fpr(z, labels, groups, logits=True), recall_at_fpr(p, labels, groups)
    assert a.recall == b.recall and a.scores == "logit" and b.scores == "probability"
    assert trainers.sigmoid(a.threshold) == pytest.approx(b.threshold, rel=1e-9)
    with pytest.raises(ValueError, match="infinite"):
        per_group_ap(np.r_[z[:-1], np.inf], labels, groups, logits=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        per_group_ap(z, labels, groups)  # logits passed as probabilities are refused, as before


def brightness_model(scale: float, offset: float) -> keras.Model:
    """A 'detector' whose logit is ``scale * mean pixel + offset``: any logit we like, from the image."""
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(scale / 3.0),
                           bias_initializer=keras.initializers.Constant(offset))(x)
    return keras.Model(inputs, x, name="brightness")


def images_at(levels: np.ndarray) -> np.ndarray:
    return np.broadcast_to(levels[:, None, None, None], (len(levels), 64, 64, 3)).astype(np.float32).copy()


@pytest.mark.parametrize("low, high", [(20.0, 21.0), (40.0, 44.0)])
def test_saturated_logits_are_not_made_into_ties(low, high):
    """Logits 20 and 21 used to be one float32 probability (1.0); 40 and 44 are one float64 probability too,
    so the ranking metrics rank the logits that predict_face_logits returns."""
    model = brightness_model(scale=10.0 * (high - low), offset=low)  # brightness 0 -> low, 0.1 -> high
    faces = images_at(np.linspace(0.05, 0.1, 40))
    nonfaces = images_at(np.r_[np.zeros(3), np.linspace(0.0, 0.02, 97)])
    z = trainers.predict_face_logits(model, np.concatenate([faces, nonfaces]))
    assert z.dtype == np.float64 and np.unique(z[:40]).size == 40 and z.min() >= low - 1e-3
    labels = np.r_[np.ones(40), np.zeros(100)].astype(int)
    groups = np.r_[np.zeros(40), np.full(100, -1)].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the three other groups are empty
        ap = per_group_ap(z, labels, groups, logits=True)["LF"]
        auc = per_group_auc(z, labels, groups, logits=True)["LF"]
        matched = recall_at_fpr(z, labels, groups, fpr=0.01, logits=True)
    assert ap == 1.0 and auc == 1.0  # every face is above every non-face, as the logits say
    assert matched.recall["LF"] == 1.0 and matched.achieved_fpr <= 0.01
    probs = trainers.predict_face_probs(model, np.concatenate([faces, nonfaces]))
    assert probs.dtype == np.float64
    if high <= 30:  # float64 keeps these apart (float32 made them all exactly 1.0)
        assert np.unique(probs[:40]).size == 40
        assert np.unique(np.float32(probs[:40])).size == 1  # what the float32 return value used to do
