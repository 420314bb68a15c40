"""Who is in each picture: every attribute of every image, drawn before any pixel, from the split's own random
stream (so the number of rendering processes cannot change them).

Attributes (``FaceDataset.attributes``, one value per image; -1 or NaN where they do not apply):
``skin_tone`` in [0, 1], ``fitzpatrick`` 1..6, ``darker`` (type >= 4, i.e. tone >= 0.5), ``male``,
``group`` = 2 * darker + male (indexes GROUPS), ``beard``, ``glasses``; for faces and head distractors
``hair_length`` in [0, 1] (> 0.45 falls to the shoulders), ``hat`` and the pose ``dx``, ``dy`` (pixels),
``scale``, ``rotation`` (degrees); for every image ``exposure`` (stops relative to metering for lighter
skin), ``blur`` (pixels) and ``background`` (index into BACKGROUND_KINDS); for faces ``feature_contrast``,
the noise-free luma difference between skin and brows in 8-bit sRGB units / 255 where the face is lit; for
non-faces ``nonface_kind`` (NONFACE_KINDS) and, for head distractors, ``object_tone`` and
``distractor_layout`` (DISTRACTOR_LAYOUTS).
"""

from __future__ import annotations

import numpy as np

from lab_utils.data.config import ATTRIBUTE_STREAM, DIFFICULTY, SPLIT_IDS, BenchmarkConfig

NONFACE_KINDS: tuple[str, ...] = ("head", "shapes", "texture", "scene")
"""``nonface_kind`` codes; ``head`` is the head-like distractor."""
BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "texture", "clutter", "indoor", "outdoor")
DISTRACTOR_LAYOUTS: tuple[str, ...] = ("blank", "scrambled", "partial")
"""``distractor_layout`` codes: no features, features at random places, one or two lone features."""

FITZPATRICK_RGB = np.array(
    [(246, 217, 193), (232, 190, 158), (208, 160, 122), (168, 117, 82), (124, 82, 56), (82, 54, 38)],
    dtype=np.float32,
)
"""sRGB albedo at the centre of Fitzpatrick-like types I..VI; skin tone t in [0, 1] falls in type 1 + 6t."""

BEARD_RATE = 0.3
"""Share of male-presenting faces with a beard."""

FLOAT_ATTRIBUTES = ("skin_tone", "hair_length", "exposure", "feature_contrast", "dx", "dy", "scale",
                    "rotation", "object_tone", "blur")
INT_ATTRIBUTES = ("fitzpatrick", "darker", "male", "group", "beard", "glasses", "hat", "nonface_kind",
                  "distractor_layout", "background")


def skin_rgb(tone: float) -> np.ndarray:
    """sRGB skin albedo (0..255) for a continuous tone in [0, 1], interpolated between type centres."""
    position = min(max(tone * 6.0 - 0.5, 0.0), 5.0)
    low = int(position)
    high = min(low + 1, 5)
    w = position - low
    return FITZPATRICK_RGB[low] * (1.0 - w) + FITZPATRICK_RGB[high] * w


def fitzpatrick_type(tone: np.ndarray) -> np.ndarray:
    """Types 1..6 from tone; darker (types 4..6) is exactly tone >= 0.5."""
    return (1 + np.minimum(5, np.floor(np.asarray(tone) * 6.0))).astype(np.int8)


def _split_layout(cfg: BenchmarkConfig, split: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and darker flags of the faces, in image order."""
    if split == "train":
        n_faces, n_nonfaces = cfg.n_train_faces, cfg.n_train_nonfaces
        n_darker = int(round(cfg.train_darker_fraction * n_faces))
        darker = rng.permutation(np.repeat(np.array([1, 0], np.int8), [n_darker, n_faces - n_darker]))
        male = (rng.random(n_faces) < 0.5).astype(np.int8)
    else:
        n = cfg.n_test_per_group
        n_faces, n_nonfaces = 4 * n, cfg.n_test_nonfaces
        group = rng.permutation(np.repeat(np.arange(4, dtype=np.int8), n))
        darker, male = (group // 2).astype(np.int8), (group % 2).astype(np.int8)
    labels = rng.permutation(np.repeat(np.array([1.0, 0.0], np.float32), [n_faces, n_nonfaces]))
    return labels, np.stack([darker, male])


def draw_attributes(cfg: BenchmarkConfig, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All per-image attributes, vectorised from the split's own stream so rendering order cannot change them."""
    rng = np.random.default_rng([cfg.seed, SPLIT_IDS[split], ATTRIBUTE_STREAM])
    labels, (darker, male) = _split_layout(cfg, split, rng)
    n, face = len(labels), labels == 1.0
    n_faces, nonface = int(face.sum()), labels == 0.0
    attrs = {k: np.full(n, np.nan, np.float32) for k in FLOAT_ATTRIBUTES}
    attrs |= {k: np.full(n, -1, np.int8) for k in INT_ATTRIBUTES}

    tone = np.where(darker == 1, rng.uniform(0.5, 1.0, n_faces), rng.uniform(0.0, 0.5, n_faces))
    long_hair = np.where(male == 1, rng.random(n_faces) < 0.1, rng.random(n_faces) < 0.85)
    attrs["skin_tone"][face] = tone
    attrs["fitzpatrick"][face] = fitzpatrick_type(tone)
    attrs["darker"][face] = darker
    attrs["male"][face] = male
    attrs["group"][face] = 2 * darker + male
    attrs["hair_length"][face] = np.where(long_hair, rng.uniform(0.5, 1.0, n_faces),
                                          rng.uniform(0.0, 0.4, n_faces))
    attrs["beard"][face] = (male == 1) & (rng.random(n_faces) < BEARD_RATE)
    attrs["glasses"][face] = rng.random(n_faces) < cfg.glasses_rate

    n_nonfaces = int(nonface.sum())
    kind = np.where(rng.random(n_nonfaces) < DIFFICULTY["head_distractor_share"], 0,
                    rng.integers(1, len(NONFACE_KINDS), n_nonfaces)).astype(np.int8)
    attrs["nonface_kind"][nonface] = kind
    head = np.zeros(n, bool)
    head[np.flatnonzero(nonface)[kind == 0]] = True
    n_heads = int(head.sum())
    attrs["object_tone"][head] = rng.uniform(0.0, 1.0, n_heads)
    attrs["distractor_layout"][head] = rng.integers(0, len(DISTRACTOR_LAYOUTS), n_heads)
    attrs["hair_length"][head] = np.where(rng.random(n_heads) < 0.5, rng.uniform(0.0, 1.0, n_heads), 0.0)

    person = face | head
    n_person = int(person.sum())
    attrs["hat"][person] = rng.random(n_person) < cfg.hat_rate
    attrs["dx"][person] = rng.uniform(-4.0, 4.0, n_person)
    attrs["dy"][person] = rng.uniform(-4.0, 4.0, n_person)
    attrs["scale"][person] = rng.uniform(0.85, 1.15, n_person)
    attrs["rotation"][person] = rng.uniform(-15.0, 15.0, n_person)

    attrs["exposure"][:] = rng.normal(DIFFICULTY["exposure_ev"], DIFFICULTY["exposure_ev_jitter"], n)
    attrs["background"][:] = rng.integers(0, len(BACKGROUND_KINDS), n)
    attrs["blur"][:] = rng.uniform(0.2, max(0.2, DIFFICULTY["blur_sigma_max"]), n)
    return labels, attrs
