"""Lab 5's remedies: latent-space augmentation, Just Train Twice, other backbones and per-group AP.

Each label-free remedy must read no attribute: the same dataset with and without its attributes gives the same
choices. The oracle reads the skin-tone attribute and says so when it is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation import probes
from lab_utils.evaluation.latents import encode_posteriors
from lab_utils.evaluation.threshold_free import average_precision, per_group_ap
from lab_utils.nn.backbones import BACKBONES, build_backbone
from lab_utils.core.profiles import get_profile
from lab_utils.training import augmentation, remedies, variants
from lab_utils.training.debiasing import DBVAE
from lab_utils.training.variants import Variant
from lab_utils.training.upweighting import error_weights

SMOKE = get_profile("smoke").with_overrides(batch_size=16, latent_dim=4)


def dataset(with_attributes: bool = True, n_faces: int = 48, n_nonfaces: int = 48, seed: int = 0) -> FaceDataset:
    """Faces: a bright disc; every 6th face 'darker' (a dark disc). Non-faces: noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    darker = (np.arange(n_faces) % 6 == 0).astype(np.int8)
    faces = np.zeros((n_faces, 64, 64, 3), np.uint8)
    for img, d in zip(faces, darker):
        cy, cx = rng.uniform(26, 38, 2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 15 ** 2] = rng.integers(30, 80, 3) if d else rng.integers(170, 250, 3)
    nonfaces = rng.integers(0, 256, (n_nonfaces, 64, 64, 3), dtype=np.uint8)
    attributes = {"darker": np.r_[darker, -np.ones(n_nonfaces, np.int8)],
                  "group": np.r_[2 * darker, -np.ones(n_nonfaces, np.int8)].astype(np.int8),
                  "skin_tone": np.r_[np.where(darker, 0.8, 0.2), np.full(n_nonfaces, np.nan)]}
    return FaceDataset(np.concatenate([faces, nonfaces]), np.r_[np.ones(n_faces), np.zeros(n_nonfaces)],
                       attributes if with_attributes else {}, name="remedy-test")


class MeanColourModel:
    """An encoder whose latent means are the images' mean colours, and a decoder that paints them back."""

    def encode(self, x):
        mu = np.asarray(x).mean(axis=(1, 2))
        return mu, np.full_like(mu, -4.0)


# --- metrics ------------------------------------------------------------------------------------------------

def test_average_precision_matches_its_definition():
    rng = np.random.default_rng(0)
    pos, neg = rng.uniform(size=20), rng.uniform(size=30)
    order = np.argsort(-np.r_[pos, neg], kind="stable")
    is_pos = np.r_[np.ones(20), np.zeros(30)][order]
    precision_at_k = np.cumsum(is_pos) / np.arange(1, 51)
    assert average_precision(pos, neg) == pytest.approx(precision_at_k[is_pos == 1].mean())
    assert average_precision(np.array([0.9, 0.8]), np.array([0.1])) == 1.0
    assert average_precision(np.array([0.5]), np.array([0.5])) == 0.5  # tied scores are one threshold
    with pytest.raises(ValueError, match="both sides"):
        average_precision(np.array([]), np.array([0.1]))


def test_per_group_ap_is_lower_for_the_group_scored_lower():
    groups = np.r_[np.repeat([0, 1, 2, 3], 10), -np.ones(20)].astype(np.int8)
    labels = (groups >= 0).astype(np.float32)
    rng = np.random.default_rng(1)
    probs = np.where(groups == 2, 0.45, 0.9) + rng.uniform(-0.05, 0.05, groups.size)
    probs[groups < 0] = rng.uniform(0.3, 0.6, 20)
    ap = per_group_ap(probs, labels, groups)
    assert ap["LF"] == 1.0 and ap["DF"] < 0.7


# --- backbones ----------------------------------------------------------------------------------------------

def test_every_backbone_gives_one_logit_and_a_different_size():
    x = np.zeros((2, 64, 64, 3), np.float32)
    sizes = {}
    for name in BACKBONES:
        model = build_backbone(name)
        assert model(x).shape == (2, 1)
        sizes[name] = model.count_params()
    assert len(set(sizes.values())) == len(sizes) and sizes["wide_cnn"] > sizes["cnn"]
    with pytest.raises(ValueError, match="Unknown backbone 'alexnet'"):
        build_backbone("alexnet")


# --- latent-space augmentation ------------------------------------------------------------------------------

def test_rare_codes_start_from_rare_faces_and_read_no_attribute():
    with_attrs, without = dataset(True, n_faces=240), dataset(False, n_faces=240)
    mu, logvar = encode_posteriors(MeanColourModel(), with_attrs)
    mu2, _ = encode_posteriors(MeanColourModel(), without)
    np.testing.assert_array_equal(mu, mu2)
    # the per-dimension rule: in this 3-dimensional mean-colour space the dark discs are rare along every dimension
    codes, anchors = augmentation.rare_codes(mu, logvar, 600, seed=0, bins=5, rule="max")
    darker = with_attrs.attributes["darker"][with_attrs.face_idx] == 1
    assert darker[anchors].mean() > 2 * darker.mean()  # rare in latent space = the dark discs here
    _, uniform = augmentation.uniform_codes(mu, logvar, 600, seed=0)
    assert abs(darker[uniform].mean() - darker.mean()) < 0.06
    assert codes.shape == (600, mu.shape[1])
    # each code lies between its anchor and a partner, plus a little posterior noise
    assert np.all(np.abs(codes - mu[anchors]).max(axis=1) <= np.ptp(mu, axis=0).max() * 0.5 + 0.2)
    with pytest.raises(ValueError, match="mix"):
        augmentation.rare_codes(mu, logvar, 5, mix=1.5)


def test_mirrored_codes_cross_the_probe_boundary_and_keep_the_rest():
    rng = np.random.default_rng(0)
    darker = (rng.random(400) < 0.2).astype(int)
    mu = rng.normal(size=(400, 3))
    mu[:, 0] += np.where(darker, 2.0, -2.0)
    w, b = probes.fit_linear_probe(mu, darker)
    assert abs(w[0]) > 5 * max(abs(w[1]), abs(w[2]))
    codes, anchors, score = augmentation.complementary_codes(mu, darker, 50, seed=1)
    assert score.auc > 0.99 and score.balanced_accuracy > 0.95 and score.folds == 5
    assert (darker[anchors] == 0).all()
    assert ((mu[anchors] @ w + b) < 0).all() and ((codes @ w + b) > 0).all()  # lighter side -> darker side
    along = w / np.linalg.norm(w)
    residual = (codes - mu[anchors]) - np.outer((codes - mu[anchors]) @ along, along)
    np.testing.assert_allclose(residual, 0.0, atol=1e-9)  # only the probe's direction changed
    with pytest.raises(ValueError, match="both classes"):
        probes.fit_linear_probe(mu, np.zeros(400))


def test_generated_faces_join_the_training_set_with_unknown_attributes():
    train = dataset()
    images = np.full((5, 64, 64, 3), 7, np.uint8)
    augmented = augmentation.with_generated_faces(train, images)
    assert len(augmented) == len(train) + 5 and (augmented.labels[-5:] == 1).all()
    assert (augmented.attributes["darker"][-5:] == -1).all() and np.isnan(augmented.attributes["skin_tone"][-5:]).all()
    assert augmented.attributes[augmentation.GENERATED].sum() == 5
    decoded = augmentation.decode_images(DBVAE(latent_dim=4, seed=0), np.zeros((3, 4)))
    assert decoded.shape == (3, 64, 64, 3) and decoded.dtype == np.uint8


def test_latent_remedies_read_no_attribute_and_the_oracle_needs_one():
    generator = DBVAE(latent_dim=4, seed=0)
    rare = Variant("r", kind="cnn", remedy="latent_rare", options={"n_generated": 20})
    a, info_a = remedies.generated_faces(rare, generator, dataset(True), seed=3)
    b, info_b = remedies.generated_faces(rare, generator, dataset(False), seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(info_a["anchors"], info_b["anchors"])
    oracle = Variant("o", kind="cnn", remedy="latent_oracle", options={"n_generated": 4})
    assert oracle.reads_attributes and not rare.reads_attributes
    with pytest.raises(ValueError, match="latent_oracle reads the 'darker' attribute"):
        remedies.generated_faces(oracle, generator, dataset(False))


# --- Just Train Twice ---------------------------------------------------------------------------------------

def test_error_weights():
    np.testing.assert_array_equal(error_weights(np.array([0.1, 0.5, 0.9, 0.49]), 20), [20, 1, 1, 20])
    with pytest.raises(ValueError, match="upweight"):
        error_weights(np.array([0.1]), 0.5)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        error_weights(np.array([1.5]), 5)


def test_jtt_trains_with_the_weights_function_given_and_reads_no_attribute():
    calls = []

    def weights_fn(face_probs, upweight):
        calls.append(len(face_probs))
        return error_weights(face_probs, upweight)

    jtt = Variant("jtt", kind="cnn", remedy="jtt", options={"first_epochs": 1, "upweight": 5.0})
    records = []
    for with_attributes in (True, False):
        _, record = variants.train_variant(jtt, dataset(with_attributes), SMOKE, seed=0, epochs=1, verbose=0,
                                              error_weights_fn=weights_fn)
        records.append(record)
    assert calls == [48, 48]
    np.testing.assert_array_equal(records[0]["remedy"]["errors"], records[1]["remedy"]["errors"])
    assert records[0]["history"] == records[1]["history"]

    with pytest.raises(ValueError, match="one finite weight >= 0 per training face"):
        variants.train_variant(jtt, dataset(), SMOKE, epochs=1, verbose=0,
                                  error_weights_fn=lambda p, u: np.ones(3))


def test_a_latent_remedy_trains_at_the_plain_detectors_budget():
    rare = Variant("r", kind="cnn", remedy="latent_rare", options={"n_generated": 30})
    train = dataset(False)
    model, record = variants.train_variant(rare, train, SMOKE, seed=0, epochs=2, verbose=0,
                                              generator=DBVAE(latent_dim=4, seed=0))
    plain, _ = variants.train_variant(Variant("c", kind="cnn"), train, SMOKE, seed=0, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == int(plain.optimizer.iterations) == 2 * (len(train) // 16)
    assert record["remedy"]["n_generated"] == 30
    assert record["remedy"]["generator_seconds"] == 0.0  # the generator given was used, none trained


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "dbvae", "remedy": "jtt"}, "remedy must be one of"),
    ({"kind": "cnn", "remedy": "gan"}, "remedy must be one of"),
    ({"kind": "cnn", "remedy": "jtt", "options": {"n_generated": 5}}, "unknown options"),
    ({"kind": "cnn", "options": {"upweight": 5}}, "none is chosen"),
    ({"kind": "dbvae", "backbone": "resnet"}, "backbone must be one of"),
    ({"kind": "cnn", "remedy": "jtt", "oracle_darker_share": 0.5}, "not both"),
])
def test_remedy_variants_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Variant("x", **kwargs)
