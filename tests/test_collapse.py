"""Do the labs' VAE and DB-VAE learn a latent space? A short training run at the default settings must leave latent
dimensions in use; the same run at the labs' former DB-VAE weight (``losses.STRONG_KL_WEIGHT``) shows what collapse
looks like, so the test can tell the two apart."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.latents import active_units, encode_faces
from lab_utils.nn import losses
from lab_utils.nn.models import VAE
from lab_utils.core.env import seed_everything
from lab_utils.training.config import TrainingConfig
from lab_utils.training.debiasing import DBVAE
from lab_utils.training.trainers import train_dbvae, train_vae

STEPS = 300


def discs(n: int, seed: int) -> FaceDataset:
    """Images with known structure and enough pixels in it that encoding pays: a disc on a plain background, whose
    background level, disc brightness, position and size vary independently. (Small discs on black were not
    enough: a properly seeded VAE at the default weight collapsed on them too, given 600 steps.)"""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    images = np.empty((n, 64, 64, 3), np.uint8)
    for img in images:
        img[:] = int(rng.uniform(0, 110))
        cy, cx, r = rng.uniform(24, 40), rng.uniform(24, 40), rng.uniform(14, 24)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = int(rng.uniform(140, 255))
    return FaceDataset(images, np.ones(n, np.float32), name=f"discs{seed}")


def trained_means(kl_weight: float | None, seed: int = 0) -> np.ndarray:
    train = discs(512, seed=100)
    test = discs(256, seed=101)
    options = {} if kl_weight is None else {"kl_weight": kl_weight}
    seed_everything(seed)  # before the model is built: its initial weights must not depend on earlier tests
    vae = VAE(seed=seed, **options)  # every other setting as the labs use it
    train_vae(vae, train, epochs=3, steps_per_epoch=STEPS // 3, seed=seed, verbose=0,
              config=TrainingConfig(ema_momentum=None))  # too few steps for the averaged weights to leave their initial values
    return encode_faces(vae, test)


@pytest.fixture(scope="module")
def default_run():
    return trained_means(None)


def test_the_default_vae_keeps_latent_dimensions_active(default_run):
    mu = default_run
    assert active_units(mu).sum() >= 8, f"only {active_units(mu).sum()} active latent dimensions: the VAE collapsed"


def test_the_former_dbvae_weight_collapses_the_same_vae(default_run):
    collapsed = trained_means(losses.STRONG_KL_WEIGHT)
    assert active_units(collapsed).sum() <= 4, "the collapse this file guards against did not happen"
    # what is left is noise next to a live latent space: the means vary 20 times less in total
    assert collapsed.var(axis=0).sum() < 0.05 * default_run.var(axis=0).sum()


def test_the_default_dbvae_keeps_latent_dimensions_active():
    """The DB-VAE at its own defaults (KL weight, face-centred reconstruction), faces and non-faces mixed as in Lab 3;
    the former default (``STRONG_KL_WEIGHT``) left 0 of 32 active on the labs' faces."""
    faces = discs(384, seed=100)
    blank = np.full((128, 64, 64, 3), 0, np.uint8) + np.random.default_rng(102).integers(0, 255, (128, 1, 1, 3),
                                                                                          dtype=np.uint8)
    train = FaceDataset(np.concatenate([faces.images, blank]), np.r_[np.ones(384), np.zeros(128)].astype(np.float32),
                        name="discs-and-blanks")
    seed_everything(0)
    dbvae = DBVAE(seed=0)
    train_dbvae(dbvae, train, epochs=3, steps_per_epoch=STEPS // 3, seed=0, verbose=0,
                config=TrainingConfig(ema_momentum=None), resample=False)
    mu = encode_faces(dbvae, discs(256, seed=101))
    assert active_units(mu).sum() >= 8, f"only {active_units(mu).sum()} active latent dimensions: the DB-VAE collapsed"
