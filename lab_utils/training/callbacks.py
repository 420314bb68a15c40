"""The DB-VAE's adaptive resampling inside ``fit()``: a Keras callback that re-weights the training faces from the
model's own latent space at the start of an epoch, and logs who was drawn."""

from __future__ import annotations

import warnings
from typing import Any

import keras

from lab_utils.training.resampling import ResamplingOptions, check_options, compute_sampling_probs, rule_name
from lab_utils.training.sampler import FaceBatchSampler
from lab_utils.core.validation import integer

LOW_ESS_FRACTION = 0.01
"""Warn when the resampling weights are worth fewer than this share of the training faces: a detector that
sees the same few faces over and over stops finding faces at all (README "What they found")."""


class ResamplingCallback(keras.callbacks.Callback):
    """At the start of an epoch, re-weight the sampler's faces from the model's current latent means.

    The weights are first computed at ``options.start_epoch`` (default 1): before any training the latent space is
    random, and the product rule on random latents puts almost all weight on one face, so the first epoch samples
    uniformly. They are kept from then on, or recomputed every ``options.every`` epochs.

    ``log`` gets one entry per epoch: ``epoch``, ``recomputed`` (bool), ``diagnostics`` (ESS, max/mean
    weight; None when not recomputed), ``sampling_probs`` in use and ``drawn_face_counts`` (how often each
    face, in ``face_idx`` order, was drawn that epoch), so a lab can compute, from attributes it holds
    outside the resampler, e.g. the darker share of drawn faces. With ``resample=False`` it only records
    (the uniform-sampling control).
    """

    def __init__(
        self,
        sampler: FaceBatchSampler,
        options: ResamplingOptions = ResamplingOptions(),
        *,
        resample: bool = True,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.options = check_options(options)
        self.resample = bool(resample)
        self.batch_size = integer("batch_size", batch_size)
        self.log: list[dict[str, Any]] = []
        self._diagnostics: dict[str, float] | None = None

    def _due(self, epoch: int) -> bool:
        start, every = self.options.start_epoch, self.options.every
        due = epoch == start if every is None else epoch >= start and (epoch - start) % every == 0
        return self.resample and due

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._diagnostics = None
        if self._due(epoch):
            probs, self._diagnostics = compute_sampling_probs(self.model, self.sampler.dataset, self.options,
                                                              batch_size=self.batch_size)
            self.sampler.set_sampling_probs(probs)
            self._warn_if_concentrated(epoch)
        self.sampler.reset_counts()

    def _warn_if_concentrated(self, epoch: int) -> None:
        ess, n = self._diagnostics["ess"], self._diagnostics["n_faces"]
        if ess < LOW_ESS_FRACTION * n:
            name = rule_name(self.options.rule)
            advice = ("Raise alpha" + ("" if name == "principal_max" else ", histogram fewer dims")
                      + (", or use rule='principal_max'" if name == "product" else ""))
            warnings.warn(
                f"Epoch {epoch}: the resampling weights are worth only {ess:.1f} of {n:.0f} faces (effective "
                f"sample size), so the detector sees the same few faces over and over (rule={name!r}, "
                f"alpha={self.options.alpha:g}). {advice}.",
                RuntimeWarning, stacklevel=2,
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.log.append({
            "epoch": epoch,
            "recomputed": self._diagnostics is not None,
            "diagnostics": self._diagnostics,
            "sampling_probs": self.sampler.sampling_probs,
            "drawn_face_counts": self.sampler.drawn_face_counts,
        })
