"""How the labs train, in one object: the batch, the optimiser, its weight average and the DB-VAE's resampling.

The notebooks, :mod:`lab_utils.training.variants` and the benchmarks make one :class:`TrainingConfig` and hand it
to the trainers, so each default is written once (here) and each setting is checked once (when the object is
made, before any training starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Any

from lab_utils.core.profiles import Profile
from lab_utils.core.validation import instance, integer, number
from lab_utils.training.debiasing import ResamplingOptions, check_options


@dataclass(frozen=True)
class TrainingConfig:
    """Everything about *how* a model trains except how long (the profile's epochs) and its seed.

    ``ema_momentum``: the labs evaluate exponentially averaged weights (Adam's ``use_ema``), steadier from seed to
    seed than the last step's on 2-4 epochs; ``None`` keeps the last step's. ``resampling`` is read by
    :func:`~lab_utils.training.trainers.train_dbvae` only.
    """

    batch_size: int = 32
    learning_rate: float = 5e-4  # Adam's, the reference lab's
    ema_momentum: float | None = 0.995
    resampling: ResamplingOptions = field(default_factory=ResamplingOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_size", integer("batch_size", self.batch_size))
        object.__setattr__(self, "learning_rate", number("learning_rate", self.learning_rate, low=0.0,
                                                         low_open=True, hint=" (the labs use 5e-4)"))
        momentum = self.ema_momentum
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, Real)
                                     or not 0.0 <= momentum < 1.0):
            raise ValueError(f"ema_momentum must be in [0, 1) or None (no averaging), got {momentum!r}.")
        check_options(self.resampling)

    @classmethod
    def for_profile(cls, profile: Profile, **changes: Any) -> TrainingConfig:
        """The labs' settings at ``profile``'s batch size, with ``changes`` (any field) on top."""
        return cls(**{"batch_size": profile.batch_size, **changes})

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with ``changes``, checked again."""
        return replace(self, **changes)


def check_config(config: Any) -> TrainingConfig:
    """``config`` if it is a :class:`TrainingConfig` (already checked when made), else a ValueError saying how to
    make one."""
    return instance("config", config, TrainingConfig, "TrainingConfig(batch_size=32)")
