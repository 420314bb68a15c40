"""One probe protocol: scores are held out, so a probe cannot report structure that is only noise."""

import json

import numpy as np
import pytest

from lab_utils.evaluation import probes


def test_noise_scores_chance_held_out_although_a_fitted_probe_separates_it():
    rng = np.random.default_rng(0)
    codes, target = rng.normal(size=(120, 32)), rng.random(120) < 0.3
    w, b = probes.fit_linear_probe(codes, target)
    called = codes @ w + b > 0
    in_sample = 0.5 * (called[target].mean() + (~called[~target]).mean())
    held_out = probes.cross_validated_probe(codes, target)
    assert in_sample > 0.65  # what printing the training accuracy used to overstate
    assert abs(held_out.auc - 0.5) < 0.15 and abs(held_out.balanced_accuracy - 0.5) < 0.15


def test_a_linear_attribute_scores_high_and_the_score_round_trips():
    rng = np.random.default_rng(1)
    target = rng.random(600) < 0.05  # as rare as darker faces in the training split
    codes = rng.normal(size=(600, 8))
    codes[:, 3] += np.where(target, 3.0, 0.0)
    score = probes.cross_validated_probe(codes, target, folds=5, seed=2)
    assert score.auc > 0.95 and score.balanced_accuracy > 0.85 and (score.folds, score.n) == (5, 600)
    d = json.loads(json.dumps(score.to_dict()))
    assert "cross-validated" in d["protocol"] and probes.ProbeScore.from_dict(d) == score
    again = probes.cross_validated_probe(codes, target, folds=5, seed=2)
    assert again == score  # the folds are seeded


def test_every_row_is_scored_by_a_probe_that_did_not_see_it():
    rng = np.random.default_rng(3)
    codes, target = rng.normal(size=(50, 2)), np.r_[np.ones(10), np.zeros(40)]
    logits = probes.out_of_fold_logits(codes, target, folds=5)
    w, b = probes.fit_linear_probe(codes, target)
    assert logits.shape == (50,) and not np.allclose(logits, codes @ w + b)


@pytest.mark.parametrize("codes, target, kwargs, match", [
    (np.full((20, 2), np.nan), np.r_[np.ones(10), np.zeros(10)], {}, "NaN or infinite"),
    (np.zeros((20, 2)), np.zeros(20), {}, "both classes"),
    (np.zeros((20, 2)), np.r_[np.ones(3), np.zeros(17)], {}, "at least 5 rows of each class"),
    (np.zeros((20, 2)), np.ones(19), {}, "one target per row"),
    (np.zeros((20, 2)), np.r_[np.ones(10), np.zeros(10)], {"folds": 1}, "folds must be an integer >= 2"),
])
def test_bad_input_is_named(codes, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        probes.cross_validated_probe(codes, target, **kwargs)
