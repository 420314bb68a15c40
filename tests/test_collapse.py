"""Does the labs' VAE learn a latent space? A short training run at the default settings must leave latent
dimensions in use; the same run at the DB-VAE's larger KL weight shows what collapse looks like, so the
test can tell the two apart."""

from __future__ import annotations

import numpy as np
import pytest

from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation.latents import active_units
from lab_utils.nn import losses
from lab_utils.nn.models import VAE
from lab_utils.training.resampling import encode_faces
from lab_utils.training.trainers import train_vae

STEPS = 300


def discs(n: int, seed: int) -> FaceDataset:
    """Faces with known structure: one disc per image whose brightness, position and size vary independently."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    brightness = rng.uniform(60, 255, n)
    images = np.zeros((n, 64, 64, 3), np.uint8)
    for img, level in zip(images, brightness):
        cy, cx, r = rng.uniform(22, 42), rng.uniform(22, 42), rng.uniform(10, 18)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = int(level)
    return FaceDataset(images, np.ones(n, np.float32), name=f"discs{seed}")


def trained_means(kl_weight: float | None) -> np.ndarray:
    train = discs(512, seed=0)
    test = discs(256, seed=1)
    options = {} if kl_weight is None else {"kl_weight": kl_weight}
    vae = VAE(seed=0, **options)  # every other setting as the labs use it
    train_vae(vae, train, epochs=3, steps_per_epoch=STEPS // 3, batch_size=32, seed=0, verbose=0,
              ema_momentum=None)  # too few steps for the averaged weights to leave their initial values
    return encode_faces(vae, test)


@pytest.fixture(scope="module")
def default_run():
    return trained_means(None)


def test_the_default_vae_keeps_latent_dimensions_active(default_run):
    mu = default_run
    assert active_units(mu).sum() >= 2, f"only {active_units(mu).sum()} active latent dimensions: the VAE collapsed"


def test_the_dbvae_weight_collapses_the_same_vae():
    mu = trained_means(losses.DBVAE_KL_WEIGHT)
    assert active_units(mu).sum() == 0, "the collapse this file guards against did not happen at the large weight"
