"""Run-scale profiles shared by notebooks, benchmarks and tests.

One place decides how big a run is, so a notebook's ``parameters`` cell reads one line and CI, a laptop and
a GPU get the scale that suits them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

PROFILE_ENV = "LAB_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes and training lengths for one scale of run."""

    name: str
    n_train_faces: int
    n_train_nonfaces: int
    n_test_per_group: int
    n_test_nonfaces: int
    cnn_epochs: int
    vae_epochs: int
    dbvae_epochs: int
    batch_size: int = 32
    latent_dim: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kwargs) -> "Profile":
        return replace(self, **kwargs)


PROFILES: dict[str, Profile] = {
    # Seconds per notebook: proves every cell runs, not that the method works. Two DB-VAE epochs, so the
    # resampling recompute (from the second epoch on) runs in CI too.
    "smoke": Profile("smoke", 256, 256, 16, 64, cnn_epochs=2, vae_epochs=1, dbvae_epochs=2,
                     latent_dim=8),
    # A few minutes per notebook on a 2-core laptop CPU; large enough for the bias to show. The CNN and the
    # DB-VAE train for the same number of epochs, so Lab 4 compares them at equal training budgets. Twice as many
    # epochs made both fairer alike (README: "Longer training helps both models alike"), so 4 it stays.
    "cpu": Profile("cpu", 10_000, 10_000, 250, 1_000, cnn_epochs=4, vae_epochs=3, dbvae_epochs=4),
    # A Colab / CUDA GPU: more data and epochs, tighter confidence intervals.
    "full": Profile("full", 40_000, 40_000, 1_000, 4_000, cnn_epochs=10, vae_epochs=10, dbvae_epochs=10,
                    batch_size=64),
}


def get_profile(name: str | None = None) -> Profile:
    """Profile by name; default from the ``LAB_PROFILE`` environment variable, else ``cpu``."""
    name = (name or os.environ.get(PROFILE_ENV) or "cpu").strip().lower()
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown profile {name!r} (from argument or ${PROFILE_ENV}); choose one of {sorted(PROFILES)}."
        ) from None
