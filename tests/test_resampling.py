"""Adaptive resampling: the weights follow the formula, up-weight rare latent regions, stay valid in edge
cases, and the entry points never read dataset attributes."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation import sampling
from lab_utils.evaluation.latents import encode_faces
from lab_utils.evaluation.sampling import resampling_diagnostics
from lab_utils.training import debiasing
from lab_utils.training.debiasing import DBVAE, ResamplingOptions, compute_sampling_probs, histogram_weights

RULES = ("product", "max")


def reference_weights(mu: np.ndarray, bins: int, alpha: float, rule: str) -> np.ndarray:
    """The formula spelled out with np.histogram, one dimension at a time."""
    per_dim = []
    for z in mu.T:
        density, edges = np.histogram(z, bins=bins, density=True)
        mass = density * np.diff(edges)  # normalised: bin masses sum to 1
        idx = np.clip(np.digitize(z, edges) - 1, 0, bins - 1)
        per_dim.append(1.0 / (mass[idx] + alpha))
    w = np.stack(per_dim, axis=1)
    if rule == "product":
        combined = np.prod(w, axis=1)
    else:
        combined = np.max(w / w.sum(axis=0), axis=1)
    return combined / combined.sum()


def clustered_latents(n: int = 2000, k: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal latents except a 5% cluster far out on dimension 0."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, k))
    minority = rng.permutation(n) < n // 20
    mu[minority, 0] = rng.normal(5.0, 0.3, minority.sum())
    return mu, minority


@pytest.mark.parametrize("rule", RULES)
def test_matches_reference_formula(rule):
    mu = np.random.default_rng(1).normal(size=(300, 3))
    np.testing.assert_allclose(histogram_weights(mu, bins=7, alpha=0.01, rule=rule),
                               reference_weights(mu, 7, 0.01, rule), rtol=1e-10)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rare_cluster_is_upweighted(rule, seed):
    mu, minority = clustered_latents(k=1, seed=seed)
    p = histogram_weights(mu, rule=rule)
    ratio = p[minority].mean() / p[~minority].mean()
    # One informative dimension: the 5% cluster's faces get >= 3x the majority's mean weight (measured
    # 4.9-6.3x), so the cluster's share of draws rises from 5% to > 13%.
    assert ratio >= 3.0 and p[minority].sum() > 0.13
    # With 3 extra noise dimensions the typical (median) cluster face still gets >= 1.8x the typical
    # majority face (measured 2.0-9.0x over 6 seeds). The *mean* is not asserted: under the product rule a
    # few majority faces in the noise dimensions' tails can take most of the mass (seed 2: cluster share
    # 4.6%), the degeneracy the prototype saw. Selecting the informative dimension recovers the 1-D answer.
    mu4, minority4 = clustered_latents(k=4, seed=seed)
    p4 = histogram_weights(mu4, rule=rule)
    assert np.median(p4[minority4]) / np.median(p4[~minority4]) >= 1.8
    np.testing.assert_allclose(histogram_weights(mu4, rule=rule, dims=[0]),
                               histogram_weights(mu4[:, :1], rule=rule), rtol=1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_valid_probability_vector_and_large_alpha_tends_to_uniform(rule):
    mu, _ = clustered_latents(n=500, k=5)
    p = histogram_weights(mu, rule=rule)
    assert p.dtype == np.float64 and p.shape == (500,)
    assert np.isfinite(p).all() and (p > 0).all() and p.sum() == pytest.approx(1.0, abs=1e-12)
    spreads = [np.ptp(histogram_weights(mu, rule=rule, alpha=a)) * 500 for a in (1e-3, 1.0, 1e6)]
    assert spreads[0] > spreads[1] > spreads[2]
    assert spreads[2] < 1e-5  # (max - min) / mean weight: uniform up to 1e-5


@pytest.mark.parametrize("rule", RULES)
def test_hundred_dimensions_do_not_underflow(rule):
    mu = np.random.default_rng(3).normal(size=(400, 50))
    p50 = histogram_weights(mu, rule=rule, alpha=1e-6)
    p100 = histogram_weights(np.hstack([mu, mu]), rule=rule, alpha=1e-6)
    assert np.isfinite(p100).all() and (p100 > 0).all() and p100.sum() == pytest.approx(1.0, abs=1e-12)
    # Repeating every dimension squares the product weights (whose raw values now reach 400^100 and beyond
    # float64) and leaves the per-dimension maximum unchanged.
    want = p50**2 / np.sum(p50**2) if rule == "product" else p50
    np.testing.assert_allclose(p100, want, rtol=1e-9)


@pytest.mark.parametrize("rule", RULES)
def test_degenerate_inputs_give_uniform_probabilities(rule):
    np.testing.assert_array_equal(histogram_weights(np.zeros((1, 4)), rule=rule), [1.0])
    np.testing.assert_allclose(histogram_weights(np.full((7, 3), 2.5), rule=rule), np.full(7, 1 / 7))
    mu = np.random.default_rng(0).normal(size=(50, 2))
    with_constant = np.column_stack([mu, np.full(50, -1.0)])  # a zero-width dimension carries no information
    np.testing.assert_allclose(histogram_weights(with_constant, rule="product"),
                               histogram_weights(mu, rule="product"), rtol=1e-12)


def test_invalid_arguments_raise():
    mu = np.zeros((5, 2))
    for kwargs, match in [({"bins": 0}, "bins"), ({"bins": 2.5}, "bins"), ({"alpha": -1.0}, "alpha"),
                          ({"alpha": np.nan}, "alpha"), ({"rule": "mean"}, "rule"), ({"dims": [2]}, "dims"),
                          ({"dims": [0, 0]}, "dims"), ({"dims": []}, "dims")]:
        with pytest.raises(ValueError, match=match):
            histogram_weights(mu, **kwargs)
    with pytest.raises(ValueError, match="non-empty"):
        histogram_weights(np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        histogram_weights(np.array([[0.0], [np.nan]]))


def test_diagnostics():
    uniform = resampling_diagnostics(np.full(200, 1 / 200))
    assert uniform["ess"] == pytest.approx(200) and uniform["ess_fraction"] == pytest.approx(1.0)
    assert uniform["max_over_mean"] == pytest.approx(1.0) and uniform["top1pct_mass"] == pytest.approx(0.01)
    one_hot = resampling_diagnostics(np.eye(1, 200)[0])
    assert one_hot["ess"] == pytest.approx(1.0) and one_hot["max_over_mean"] == pytest.approx(200)
    with pytest.raises(ValueError, match="sum to 1"):
        resampling_diagnostics(np.full(10, 0.5))


class AttributeTrap(dict):
    """Stands in for ``dataset.attributes``: any read fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("the resampler read dataset.attributes")

    __getitem__ = __iter__ = __contains__ = __len__ = get = keys = values = items = _fail


class MeanColourModel:
    """A stand-in encoder whose latent means are the images' mean colours."""

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = x.mean(axis=(1, 2))
        return mu, np.zeros_like(mu)


@pytest.fixture
def trapped_dataset() -> FaceDataset:
    rng = np.random.default_rng(0)
    n = 40
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    labels = (rng.permutation(n) < 25).astype(np.float32)
    ds = FaceDataset(images, labels, {"group": np.where(labels == 1, 2, -1).astype(np.int8)}, name="trap")
    ds.attributes = AttributeTrap()
    with pytest.raises(AssertionError):  # the trap is armed
        ds.group
    return ds


def test_entry_points_read_only_face_images(trapped_dataset):
    ds = trapped_dataset
    mu = encode_faces(MeanColourModel(), ds, batch_size=7)
    np.testing.assert_allclose(mu, ds.images[ds.face_idx].astype(np.float32).mean(axis=(1, 2)) / 255, rtol=1e-5)
    probs, diag = compute_sampling_probs(MeanColourModel(), ds, ResamplingOptions(rule="max", bins=4), batch_size=7)
    np.testing.assert_allclose(probs, histogram_weights(mu, rule="max", bins=4))
    assert diag == resampling_diagnostics(probs)


def test_compute_sampling_probs_with_a_dbvae(trapped_dataset):
    probs, diag = compute_sampling_probs(DBVAE(latent_dim=3, seed=0), trapped_dataset, batch_size=16)
    assert probs.shape == (len(trapped_dataset.face_idx),) and probs.sum() == pytest.approx(1.0)
    assert 1.0 <= diag["ess"] <= len(probs)


def test_model_without_encode_is_rejected(trapped_dataset):
    with pytest.raises(ValueError, match="encode"):
        encode_faces(object(), trapped_dataset)


def _rare_group_along_a_main_axis(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """32 latent dimensions; a 5% group offset along the direction of largest variance, as skin tone is with the
    face-centred reconstruction; 31 dimensions of unrelated variation (background, pose, lighting)."""
    rng = np.random.default_rng(seed)
    rare = rng.random(n) < 0.05
    mu = rng.normal(size=(n, 32)) * np.r_[1.0, np.full(31, 0.8)]
    mu[:, 0] += np.where(rare, 3.0, 0.0)
    rotation, _ = np.linalg.qr(rng.normal(size=(32, 32)))  # not aligned with any latent dimension
    return mu @ rotation, rare


def test_principal_max_finds_a_rare_group_the_per_dimension_max_rule_dilutes():
    mu, rare = _rare_group_along_a_main_axis()
    principal = debiasing.histogram_weights(mu, rule="principal_max")
    per_dimension = debiasing.histogram_weights(mu, rule="max")
    assert principal[rare].sum() >= 3 * rare.mean()
    assert per_dimension[rare].sum() < 2 * rare.mean()
    assert sampling.resampling_diagnostics(principal)["ess_fraction"] >= 0.1


def test_principal_max_is_the_max_rule_on_the_standardised_leading_directions():
    mu, _ = _rare_group_along_a_main_axis(500)
    z = debiasing.principal_directions(mu, 3)
    assert z.shape == (500, 3) and np.allclose(z.std(axis=0), 1.0) and np.allclose(z.mean(axis=0), 0.0)
    assert np.allclose(debiasing.principal_max_rule(mu, components=3), debiasing.max_rule(z))
    assert np.allclose(debiasing.principal_max_rule(mu * 1e-4), debiasing.principal_max_rule(mu))  # scale-free


@pytest.mark.parametrize("mu, alpha, words", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [0.5, 0.1]]), 1e-3, "non-finite"),
    (np.zeros((1, 4)), 1e-3, "at least 2 faces"),
    (np.full((6, 4), 0.25), 1e-3, "same latent code"),
    (np.random.default_rng(0).normal(size=(20, 4)), 0.0, "alpha must be a finite number > 0"),
    (np.random.default_rng(0).normal(size=(20, 4)), -1.0, "alpha must be a finite number > 0"),
])
def test_principal_max_bad_input_names_the_argument(mu, alpha, words):
    with pytest.raises(ValueError, match=words):
        debiasing.histogram_weights(mu, rule="principal_max", alpha=alpha)
