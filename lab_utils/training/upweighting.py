"""Error-based upweighting, "Just Train Twice" (Liu et al., ICML 2021): a label-free remedy for Lab 5.

A first detector, trained briefly, misses the faces that are hard for it, and the under-represented faces are
likely among them; a second detector, trained from scratch, draws those faces ``upweight`` times more often.
Reads the face labels (which every detector trains on), never an attribute.
"""

from __future__ import annotations

import numpy as np

from lab_utils.core.validation import number


def error_weights(face_probs: np.ndarray, upweight: float, threshold: float = 0.5) -> np.ndarray:
    """Sampling weight per training face: ``upweight`` where the first detector missed it (p < threshold), 1
    elsewhere. Any positive scale; the sampler normalises. Lab 5's exercise."""
    p = np.asarray(face_probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("face_probs must be a non-empty 1-D array of probabilities in [0, 1], one per training "
                         "face (trainers.predict_face_probs(model, train.images[train.face_idx])).")
    number("upweight", upweight, low=1.0, hint=" (1 = no upweighting; JTT uses 5 to 100)")
    number("threshold", threshold, low=0.0, high=1.0, low_open=True, high_open=True)
    return np.where(p < threshold, float(upweight), 1.0)
