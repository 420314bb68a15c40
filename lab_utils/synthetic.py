"""The embedded face-detection benchmark: procedurally rendered faces and non-faces with a known, physical bias.

Why a generator: the labs must run offline on a laptop CPU, and a renderer records every attribute of every
image, so the source of the bias is known instead of guessed. The bias comes from two physical effects, not
from any marker in the pixels (see /work/shared/prototype-findings.md for the measurements behind them):

* **Exposure is metered for the scene and lighter skin.** Darker skin reflects less light, so its signal sits
  closer to the sensor's noise floor, and eyes, brows, mouth and the hair line have less contrast against it.
* **Head-like distractors.** A share of the non-faces are skin-toned head shapes of *every* tone (mannequins,
  eggs, scrambled features) without a coherent face layout. A detector must find the layout, which is harder to
  learn from the few low-contrast darker faces of a CelebA-like training split.

Training splits are skewed like CelebA (few darker faces); test splits are balanced over LF, LM, DF, DM.

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

import colorsys
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from lab_utils import GROUPS
from lab_utils.config import Profile, get_profile
from lab_utils.data import IMAGE_SHAPE, FaceDataset
from lab_utils.env import data_dir
from lab_utils.files import remove_stale_temporaries
from lab_utils.h5io import load_dataset, read_metadata, save_dataset

GENERATOR_VERSION = "1"
"""Bump whenever rendering changes: it is part of the cache key, so stale caches are regenerated."""

DIFFICULTY: dict[str, float] = {
    "exposure_ev": -0.25,          # mean exposure in stops, relative to metering for mid-lighter skin
    "exposure_ev_jitter": 0.35,    # per-photo spread of exposure (stops, standard deviation)
    "read_noise": 0.008,           # sensor read-noise sigma in linear light, same for every image
    "shot_noise": 0.0004,          # photon-noise variance per unit of linear signal
    "head_distractor_share": 0.5,  # share of non-faces that are head-like skin-toned shapes
    "blur_sigma_max": 0.8,         # upper end of the optical blur sigma in pixels
}
"""Rendering difficulty, frozen once benchmarks/difficulty.py passes its criterion; part of the cache key."""

SPLITS: tuple[str, ...] = ("train", "test")
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

_SPLIT_IDS = {"train": 1, "test": 2}
_ATTRIBUTE_STREAM, _IMAGE_STREAM = 7, 11  # distinct tags: SeedSequence([a, b]) == SeedSequence([a, b, 0])
_SIZE = IMAGE_SHAPE[0]
_SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn at 1/16 pixel
_GAMMA = 2.2
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_SRGB_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** _GAMMA).astype(np.float32)
_YY, _XX = np.mgrid[0:_SIZE, 0:_SIZE].astype(np.float32)
_HEAD_CENTRE = (32.0, 27.0)
_HAIR_DARK = np.array([(18, 14, 12), (34, 24, 18), (52, 36, 24), (70, 48, 30)], dtype=np.float32)
_HAIR_LIGHT = np.array([(112, 76, 42), (168, 128, 72), (212, 178, 112), (146, 62, 32), (176, 172, 166)],
                       dtype=np.float32)
_IRIS = np.array([(56, 36, 22), (92, 64, 36), (70, 100, 130), (80, 110, 70)], dtype=np.float32)


# --------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes, seed and attribute rates of one benchmark; the rendering difficulty is fixed in DIFFICULTY."""

    seed: int = 0
    n_train_faces: int = 10_000
    n_train_nonfaces: int = 10_000
    train_darker_fraction: float = 0.05
    n_test_per_group: int = 250
    n_test_nonfaces: int = 1_000
    hat_rate: float = 0.05
    glasses_rate: float = 0.08

    def __post_init__(self) -> None:
        for name in ("seed", "n_train_faces", "n_train_nonfaces", "n_test_per_group", "n_test_nonfaces"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"BenchmarkConfig.{name} must be a non-negative integer, got {value!r}.")
        if self.n_train_faces + self.n_train_nonfaces == 0:
            raise ValueError("BenchmarkConfig: the training split is empty; set n_train_faces or "
                             "n_train_nonfaces above 0.")
        if self.n_test_per_group + self.n_test_nonfaces == 0:
            raise ValueError("BenchmarkConfig: the test split is empty; set n_test_per_group or "
                             "n_test_nonfaces above 0.")
        for name in ("train_darker_fraction", "hat_rate", "glasses_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"BenchmarkConfig.{name} must be a number in [0, 1], got {value!r} "
                                 "(0.05 is CelebA-like, 0.5 balanced).")

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v))
                for k, v in dataclasses.asdict(self).items()}


def config_from_profile(profile: Profile, seed: int = 0, **overrides) -> BenchmarkConfig:
    """Benchmark sizes of a run profile, so notebooks and benchmarks agree on what 'cpu' scale means."""
    fields = {f.name for f in dataclasses.fields(BenchmarkConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown BenchmarkConfig field(s) {unknown}; valid fields are {sorted(fields)}.")
    values = dict(seed=seed, n_train_faces=profile.n_train_faces, n_train_nonfaces=profile.n_train_nonfaces,
                  n_test_per_group=profile.n_test_per_group, n_test_nonfaces=profile.n_test_nonfaces)
    return BenchmarkConfig(**{**values, **overrides})


def cache_key(cfg: BenchmarkConfig) -> str:
    """Short hash of everything that changes the pixels: config, DIFFICULTY and GENERATOR_VERSION."""
    blob = json.dumps({"config": cfg.to_dict(), "difficulty": DIFFICULTY, "version": GENERATOR_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ attributes
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


def _draw_attributes(cfg: BenchmarkConfig, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All per-image attributes, vectorised from the split's own stream so rendering order cannot change them."""
    rng = np.random.default_rng([cfg.seed, _SPLIT_IDS[split], _ATTRIBUTE_STREAM])
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


# ------------------------------------------------------------------------------------------------- drawing
def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * 16)), int(round(y * 16))


def _ellipse(img: np.ndarray, centre, axes, angle: float, colour, mask: np.ndarray | None = None,
             arc: tuple[float, float] = (0, 360), thickness: int = -1) -> None:
    args = (_pt(*centre), _pt(max(axes[0], 0.1), max(axes[1], 0.1)), angle, arc[0], arc[1])
    cv2.ellipse(img, *args, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, _SHIFT)
    if mask is not None:
        cv2.ellipse(mask, *args, 255, thickness, cv2.LINE_AA, _SHIFT)


def _poly(img: np.ndarray, points, colour, mask: np.ndarray | None = None) -> None:
    pts = [np.round(np.asarray(points, np.float64) * 16).astype(np.int32)]
    cv2.fillPoly(img, pts, tuple(float(c) for c in colour), cv2.LINE_AA, _SHIFT)
    if mask is not None:
        cv2.fillPoly(mask, pts, 255, cv2.LINE_AA, _SHIFT)


def _random_colour(rng: np.random.Generator, skin_share: float = 0.35) -> np.ndarray:
    """Scene colours; a share drawn from the skin palette so that colour alone cannot mean 'face'."""
    if rng.random() < skin_share:
        return np.clip(skin_rgb(rng.random()) * rng.uniform(0.8, 1.2, 3), 0, 255)
    h, s, v = rng.random(), rng.uniform(0.05, 0.9), rng.uniform(0.08, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255.0


def _hair_colour(rng: np.random.Generator, tone: float) -> np.ndarray:
    """Hair colour correlates with skin tone: light hair is common only among the lightest skins."""
    if rng.random() < max(0.0, 0.55 - 1.1 * tone):
        return _HAIR_LIGHT[rng.integers(len(_HAIR_LIGHT))] * rng.uniform(0.85, 1.1)
    return _HAIR_DARK[rng.integers(len(_HAIR_DARK))] * rng.uniform(0.8, 1.2)


def _blend(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c0 * (1.0 - t[..., None]) + c1 * t[..., None]


def _projection(rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] ramp across the image in a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    p = ((_XX - 31.5) * np.cos(theta) + (_YY - 31.5) * np.sin(theta)) / 45.0
    return np.clip(0.5 + 0.5 * p, 0.0, 1.0)


def _texture(rng: np.random.Generator, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    if rng.random() < 0.5:
        k = int(rng.integers(3, 17))
        field = cv2.resize(rng.random((k, k)).astype(np.float32), (_SIZE, _SIZE), interpolation=cv2.INTER_CUBIC)
        t = np.clip(field, 0.0, 1.0)
    else:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (_projection(rng) * rng.uniform(1.5, 8.0)) + rng.uniform(0, 6.3))
    return _blend(c0, c1, t)


def _draw_clutter(rng: np.random.Generator, img: np.ndarray, n: int, size: tuple[float, float]) -> None:
    for _ in range(n):
        colour = _random_colour(rng)
        x, y = rng.uniform(-4, 68, 2)
        r = rng.uniform(*size)
        shape = rng.integers(4)
        if shape == 0:
            _ellipse(img, (x, y), (r, r * rng.uniform(0.4, 1.6)), rng.uniform(0, 180), colour)
        elif shape == 1:
            w, h = r * rng.uniform(0.5, 2, 2)
            cv2.rectangle(img, _pt(x - w, y - h), _pt(x + w, y + h), tuple(map(float, colour)), -1,
                          cv2.LINE_AA, _SHIFT)
        elif shape == 2:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            radii = r * rng.uniform(0.5, 1.3, len(angles))
            _poly(img, np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], 1), colour)
        else:
            x2, y2 = rng.uniform(-4, 68, 2)
            cv2.line(img, _pt(x, y), _pt(x2, y2), tuple(map(float, colour)), int(rng.integers(1, 4)),
                     cv2.LINE_AA, _SHIFT)


def _background(rng: np.random.Generator, kind: int) -> np.ndarray:
    """Shared by faces and non-faces, so the scene behind an object says nothing about its label."""
    c0, c1 = _random_colour(rng), _random_colour(rng)
    name = BACKGROUND_KINDS[kind]
    if name == "texture":
        img = _texture(rng, c0, c1)
    else:
        img = _blend(c0, c1, _projection(rng))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if name == "clutter":
        _draw_clutter(rng, img, int(rng.integers(4, 14)), (2.0, 12.0))
    elif name == "indoor":
        floor = rng.uniform(38, 60)
        cv2.rectangle(img, _pt(-1, floor), _pt(65, 65), tuple(map(float, _random_colour(rng))), -1,
                      cv2.LINE_AA, _SHIFT)
        for _ in range(int(rng.integers(1, 4))):  # windows, doors, frames
            x, y, w, h = rng.uniform(-5, 60), rng.uniform(-5, 40), rng.uniform(6, 24), rng.uniform(6, 30)
            cv2.rectangle(img, _pt(x, y), _pt(x + w, y + h), tuple(map(float, _random_colour(rng))),
                          int(rng.choice([-1, 1, 2])), cv2.LINE_AA, _SHIFT)
    elif name == "outdoor":
        horizon = rng.uniform(30, 56)
        ground = _random_colour(rng, skin_share=0.5)
        _poly(img, [(-1, horizon + rng.uniform(-6, 6)), (65, horizon + rng.uniform(-6, 6)), (65, 65), (-1, 65)],
              ground)
        for _ in range(int(rng.integers(0, 4))):  # hills, trees, sun
            x, r = rng.uniform(0, 64), rng.uniform(3, 20)
            _ellipse(img, (x, horizon), (r, r * rng.uniform(0.3, 1.2)), 0, _random_colour(rng), arc=(180, 360))
    return img


def _draw_feature(img: np.ndarray, name: str, x: float, y: float, angle: float, c: dict) -> None:
    """One facial feature at (x, y); faces place them in layout, distractors anywhere."""
    rad = np.deg2rad(angle)
    if name == "eye":
        _ellipse(img, (x, y), (3.6, 2.5), angle, c["socket"])  # the socket is in the brow's shadow
        _ellipse(img, (x, y), (2.4, 1.3), angle, c["sclera"])
        _ellipse(img, (x, y), (1.2, 1.2), 0, c["iris"])
        _ellipse(img, (x, y), (0.5, 0.5), 0, c["pupil"])
    elif name == "brow":
        _ellipse(img, (x, y), (3.2, c["brow_width"]), angle, c["brow"])
    elif name == "nose":
        dx, dy = -np.sin(rad), np.cos(rad)
        _ellipse(img, (x - 2.5 * dx, y - 2.5 * dy), (0.8, 3.2), angle, c["nose"])
        for side in (-1, 1):
            _ellipse(img, (x + side * 1.6 * np.cos(rad), y + side * 1.6 * np.sin(rad)), (0.9, 0.6), angle,
                     c["nostril"])
    else:
        _ellipse(img, (x, y), (4.2, 1.6), angle, c["lip"])
        _ellipse(img, (x, y), (3.9, 0.45), angle, c["mouth_line"])


def _feature_colours(rng: np.random.Generator, skin: np.ndarray, hair: np.ndarray, tone: float, male: bool):
    lip = skin * np.array([0.84, 0.6, 0.62])
    if not male and rng.random() < 0.4:  # lipstick
        lip = 0.5 * lip + 0.5 * np.array([168.0, 40.0, 62.0])
    iris = _IRIS[rng.integers(len(_IRIS))] if tone < 0.35 else _IRIS[rng.integers(2)]
    return {
        "socket": skin * 0.86, "sclera": np.array([206.0, 200.0, 194.0]) * 0.85, "iris": iris,
        "pupil": np.array([12.0, 10.0, 10.0]), "brow": hair * 0.92 + skin * 0.08,
        "brow_width": rng.uniform(0.9, 1.2) if male else rng.uniform(0.6, 0.9),
        "nose": skin * 0.74, "nostril": skin * 0.45, "lip": lip, "mouth_line": skin * 0.3,
    }


def _is_face_like(pos: dict[str, tuple[float, float]]) -> bool:
    """True when scrambled features landed in a plausible eyes-above-mouth layout (then they are redrawn)."""
    (x1, y1), (x2, y2), (xm, ym) = pos["eye_l"], pos["eye_r"], pos["mouth"]
    return (abs(y1 - y2) < 3.5 and 4.0 < abs(x1 - x2) < 16.0
            and 4.0 < ym - (y1 + y2) / 2 < 16.0 and abs(xm - (x1 + x2) / 2) < 4.0)


def _draw_person(rng: np.random.Generator, tone: float, male: bool, hair_length: float, beard: bool,
                 glasses: bool, hat: bool, layout: str, body: bool = True):
    """Head and shoulders in the canonical pose; returns sRGB albedo, alpha mask, skin and brow colours."""
    img = np.zeros(IMAGE_SHAPE, np.uint8)
    mask = np.zeros(IMAGE_SHAPE[:2], np.uint8)
    skin = np.clip(skin_rgb(tone) * (1.0 + rng.normal(0.0, 0.03, 3)), 0, 255)
    hair = _hair_colour(rng, tone)
    cx, cy = _HEAD_CENTRE
    a = rng.uniform(11.0, 13.0) * (1.05 if male else 0.97)
    b = a * rng.uniform(1.22, 1.38)
    if body:
        _ellipse(img, (cx + rng.uniform(-2, 2), 70), (rng.uniform(24, 30), 20), 0, _random_colour(rng), mask)
        _ellipse(img, (cx, cy + b * 0.95), (a * 0.5, 8), 0, skin * 0.8, mask)  # neck, shaded by the chin
    if hair_length > 0.45:  # long hair falls behind the head onto the shoulders
        length = hair_length * rng.uniform(12, 18)
        _poly(img, [(cx - a - 2.5, cy - 2), (cx + a + 2.5, cy - 2), (cx + a + 3.5, cy + b * 0.3 + length),
                    (cx - a - 3.5, cy + b * 0.3 + length)], hair, mask)
    for side in (-1, 1):
        _ellipse(img, (cx + side * a * 0.98, cy + 1.0), (2.2, 3.6), 0, skin * 0.9, mask)
    _ellipse(img, (cx, cy), (a, b), 0, skin, mask)
    if hair_length > 0.02:  # cap of hair down to the hairline
        hairline = cy - b * rng.uniform(0.4, 0.6)
        _ellipse(img, (cx, hairline), (a + 1.2, hairline - (cy - b) + 1.0 + 3.0 * hair_length), 0, hair, mask,
                 arc=(180, 360))

    colours = _feature_colours(rng, skin, hair, tone, male)
    eye_y, eye_dx = cy - 0.05 * b + rng.uniform(-1, 1), a * rng.uniform(0.38, 0.46)
    pos = {"eye_l": (cx - eye_dx, eye_y), "eye_r": (cx + eye_dx, eye_y),
           "brow_l": (cx - eye_dx, eye_y - 3.6), "brow_r": (cx + eye_dx, eye_y - 3.6),
           "nose": (cx, eye_y + 5.5), "mouth": (cx, cy + b * rng.uniform(0.5, 0.6))}
    angles = dict.fromkeys(pos, 0.0) | {"brow_l": rng.uniform(-8, 2), "brow_r": rng.uniform(-2, 8)}
    if layout == "scrambled":
        while True:
            r, phi = np.sqrt(rng.random(len(pos))) * 0.72, rng.uniform(0, 2 * np.pi, len(pos))
            pos = {k: (cx + a * ri * np.cos(p), cy + b * ri * np.sin(p)) for k, ri, p in zip(pos, r, phi)}
            if not _is_face_like(pos):
                break
        angles = {k: rng.uniform(-90, 90) for k in pos}
    elif layout == "partial":
        keep = rng.choice(list(pos), size=int(rng.integers(1, 3)), replace=False)
        pos = {k: (cx + rng.uniform(-0.6, 0.6) * a, cy + rng.uniform(-0.6, 0.6) * b) for k in keep}
        angles = {k: rng.uniform(-90, 90) for k in pos}
    elif layout == "blank":
        pos = {}
    if beard and layout == "face":
        top = pos["nose"][1] + 1.0
        _ellipse(img, (cx, top), (a * 0.97, cy + b - top + 0.5), 0, hair * 0.95 + skin * 0.05, mask, arc=(0, 180))
        _ellipse(img, (cx, pos["mouth"][1] - 2.2), (4.6, 1.3), 0, hair, mask)  # moustache
    for key, (x, y) in pos.items():
        _draw_feature(img, key.split("_")[0], x, y, angles[key], colours)
    if glasses and layout == "face":
        frame = tuple(map(float, rng.choice([(25, 25, 28), (150, 150, 155), (90, 50, 30)])))
        for side in ("eye_l", "eye_r"):
            cv2.circle(img, _pt(*pos[side]), int(3.7 * 16), frame, 1, cv2.LINE_AA, _SHIFT)
        cv2.line(img, _pt(cx - eye_dx + 3.7, eye_y), _pt(cx + eye_dx - 3.7, eye_y), frame, 1, cv2.LINE_AA,
                 _SHIFT)
    if hat:
        colour = _random_colour(rng, skin_share=0.1)
        brim_y = cy - b * rng.uniform(0.45, 0.6)
        _ellipse(img, (cx, brim_y), (a + 1.5, brim_y - (cy - b) + 5.0), 0, colour, mask, arc=(180, 360))
        _ellipse(img, (cx + rng.uniform(-2, 2), brim_y), (a + rng.uniform(3, 7), 1.8), 0, colour * 0.85, mask)
    return img, mask, skin, colours["brow"]


def _draw_shapes(rng: np.random.Generator, img: np.ndarray) -> None:
    """Large objects: round skin-toned things with stray marks, boxes, polygons, rings."""
    for _ in range(int(rng.integers(2, 6))):
        x, y, r = rng.uniform(8, 56), rng.uniform(8, 56), rng.uniform(5, 20)
        colour = _random_colour(rng, skin_share=0.5)
        if rng.random() < 0.5:
            _ellipse(img, (x, y), (r, r * rng.uniform(0.6, 1.5)), rng.uniform(0, 180), colour)
            for _ in range(int(rng.integers(0, 3))):
                _ellipse(img, (x + rng.uniform(-r, r) * 0.6, y + rng.uniform(-r, r) * 0.6),
                         rng.uniform(0.6, 3.0, 2), rng.uniform(0, 180), _random_colour(rng))
        else:
            _draw_clutter(rng, img, 1, (r * 0.6, r))


# ------------------------------------------------------------------------------------------------ rendering
def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0) ** (1.0 / _GAMMA)


def _render(rng: np.random.Generator, label: float, row: dict, difficulty: dict) -> tuple[np.ndarray, float]:
    """One photo: albedo scene -> directional light -> exposure -> optical blur -> sensor noise -> 8-bit sRGB."""
    albedo = _background(rng, int(row["background"]))
    person = None
    if label == 1.0:
        person = _draw_person(rng, float(row["skin_tone"]), bool(row["male"]), float(row["hair_length"]),
                              bool(row["beard"]), bool(row["glasses"]), bool(row["hat"]), "face")
    else:
        kind = NONFACE_KINDS[int(row["nonface_kind"])]
        if kind == "head":
            person = _draw_person(rng, float(row["object_tone"]), bool(rng.random() < 0.5),
                                  float(row["hair_length"]), False, False, bool(row["hat"]),
                                  DISTRACTOR_LAYOUTS[int(row["distractor_layout"])], body=bool(rng.random() < 0.6))
        elif kind == "shapes":
            _draw_shapes(rng, albedo)
        elif kind == "texture":
            albedo = np.clip(_texture(rng, _random_colour(rng, 0.5), _random_colour(rng, 0.5)), 0, 255)
            albedo = albedo.astype(np.uint8)
        else:
            _draw_clutter(rng, albedo, int(rng.integers(2, 6)), (4.0, 16.0))

    linear = _SRGB_TO_LINEAR[albedo]
    head_xy = (32.0, 32.0)
    if person is not None:
        canvas, mask, skin, brow = person
        matrix = cv2.getRotationMatrix2D((32.0, 32.0), float(row["rotation"]), float(row["scale"]))
        matrix[:, 2] += (float(row["dx"]), float(row["dy"]))
        canvas = cv2.warpAffine(canvas, matrix, (_SIZE, _SIZE), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, matrix, (_SIZE, _SIZE), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        linear = linear * (1.0 - alpha[..., None]) + _SRGB_TO_LINEAR[canvas] * alpha[..., None]
        head_xy = tuple(matrix @ np.array([*_HEAD_CENTRE, 1.0]))

    ambient, strength = rng.uniform(0.45, 0.8), rng.uniform(0.0, 0.6)
    light = ambient + (1.0 - ambient) * (1.0 + strength * (2.0 * _projection(rng) - 1.0))
    gain = 2.0 ** float(row["exposure"])
    linear = linear * (light[..., None] * gain)
    linear = cv2.GaussianBlur(linear, (0, 0), float(row["blur"]))
    sigma = np.sqrt(difficulty["read_noise"] ** 2 + difficulty["shot_noise"] * np.maximum(linear, 0.0))
    linear = linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)
    image = np.round(_linear_to_srgb(linear) * 255.0).astype(np.uint8)

    contrast = float("nan")
    if label == 1.0:  # noise-free luma difference of skin and brows where the face is lit
        x, y = (int(np.clip(round(v), 0, _SIZE - 1)) for v in head_xy)
        exposure = light[y, x] * gain
        skin_lin, brow_lin = (_SRGB_TO_LINEAR[np.round(c).astype(np.uint8)] * exposure for c in (skin, brow))
        contrast = float(_LUMA @ (_linear_to_srgb(skin_lin) - _linear_to_srgb(brow_lin)))
    return image, contrast


def _render_chunk(task: tuple) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker entry: image i always uses its own stream, so results do not depend on the number of workers."""
    seed, split_id, start, labels, rows, difficulty = task
    images = np.empty((len(labels), *IMAGE_SHAPE), np.uint8)
    contrast = np.full(len(labels), np.nan, np.float32)
    for j, label in enumerate(labels):
        rng = np.random.default_rng([seed, split_id, _IMAGE_STREAM, start + j])
        images[j], contrast[j] = _render(rng, float(label), {k: v[j] for k, v in rows.items()}, difficulty)
    return start, images, contrast


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; nested threads only contend


def _render_tasks(tasks: list[tuple], n_jobs: int, images: np.ndarray, contrast: np.ndarray, bar: tqdm) -> None:
    """Render every chunk into ``images``; in spawned workers (a pool that fails loudly if they die, rather
    than restarting them for ever) when ``n_jobs`` > 1."""
    if n_jobs == 1:
        results: Iterable = map(_render_chunk, tasks)
        pool = None
    else:
        # spawn, not fork: the parent may already run TensorFlow threads, which fork can deadlock
        pool = ProcessPoolExecutor(min(n_jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)
        results = pool.map(_render_chunk, tasks)
    try:
        for start, chunk_images, chunk_contrast in results:
            images[start:start + len(chunk_images)] = chunk_images
            contrast[start:start + len(chunk_images)] = chunk_contrast
            bar.update(len(chunk_images))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def generate_split(cfg: BenchmarkConfig, split: str, *, n_jobs: int | None = None,
                   progress: bool = True) -> FaceDataset:
    """Render one split. Deterministic in ``cfg`` and ``split`` and independent of ``n_jobs``.

    ``n_jobs`` > 1 renders in spawned worker processes (default: 2, or fewer cores); they re-import the calling
    script, so a script needs the usual ``if __name__ == "__main__":`` guard to use them (without it, rendering
    falls back to this process, with a warning). ``n_jobs=1`` renders in this process.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}.")
    if n_jobs is None:
        n_jobs = min(2, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer (or None for 2), got {n_jobs!r}.")
    labels, attrs = _draw_attributes(cfg, split)
    n = len(labels)
    chunk = max(1, min(256, math.ceil(n / (4 * n_jobs))))
    tasks = [(cfg.seed, _SPLIT_IDS[split], s, labels[s:s + chunk], {k: v[s:s + chunk] for k, v in attrs.items()},
              dict(DIFFICULTY))  # passed explicitly: spawned workers re-import the module's own copy
             for s in range(0, n, chunk)]
    images = np.empty((n, *IMAGE_SHAPE), np.uint8)
    with tqdm(total=n, desc=f"rendering {split}", unit="img", disable=not progress) as bar:
        try:
            _render_tasks(tasks, n_jobs, images, attrs["feature_contrast"], bar)
        except BrokenProcessPool:
            warnings.warn(
                "The renderer's worker processes died at start-up, most likely because they re-imported a script "
                "that calls load_benchmark without an `if __name__ == \"__main__\":` guard. Rendering in this "
                "process instead (slower); add the guard to use several cores.", RuntimeWarning, stacklevel=3)
            bar.reset()
            _render_tasks(tasks, 1, images, attrs["feature_contrast"], bar)
    return FaceDataset(images, labels, attrs, name=_split_name(cfg, split))


# ----------------------------------------------------------------------------------------------------- cache
def _split_name(cfg: BenchmarkConfig, split: str) -> str:
    if split == "train":
        return f"benchmark-train (seed {cfg.seed}, {cfg.train_darker_fraction:.0%} darker)"
    return f"benchmark-test (seed {cfg.seed}, balanced)"


def _expected_size(cfg: BenchmarkConfig, split: str) -> int:
    if split == "train":
        return cfg.n_train_faces + cfg.n_train_nonfaces
    return 4 * cfg.n_test_per_group + cfg.n_test_nonfaces


def content_digest(dataset: FaceDataset) -> str:
    """SHA-256 of the pixels and labels: stored with the cache, checked when it is read back."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(dataset.images).data)
    digest.update(np.ascontiguousarray(dataset.labels, np.float32).data)
    return digest.hexdigest()


def _load_cached(path: Path, cfg: BenchmarkConfig, split: str) -> FaceDataset | None:
    """The cached split, or None when it is missing, stale or unreadable (then it is regenerated)."""
    if not path.exists():
        return None
    try:
        metadata = read_metadata(path)
        if metadata.get("cache_key") != cache_key(cfg):
            return None
        dataset = load_dataset(path, name=_split_name(cfg, split))
    except (OSError, KeyError, ValueError) as err:
        warnings.warn(f"Cached benchmark {path} is unreadable ({err}); regenerating it.", RuntimeWarning,
                      stacklevel=3)
        return None
    if len(dataset) != _expected_size(cfg, split) or "group" not in dataset.attributes:
        warnings.warn(f"Cached benchmark {path} is incomplete; regenerating it.", RuntimeWarning, stacklevel=3)
        return None
    if "sha256" not in metadata:  # written before caches carried a checksum: render it anew, once
        return None
    if metadata["sha256"] != content_digest(dataset):
        warnings.warn(f"Cached benchmark {path} does not match its checksum (corrupted pixels or labels); "
                      "regenerating it.", RuntimeWarning, stacklevel=3)
        return None
    return dataset


def load_benchmark(cfg: BenchmarkConfig | None = None, *, cache_dir: str | os.PathLike | None = None,
                   progress: bool = True) -> tuple[FaceDataset, FaceDataset]:
    """(train, test) for ``cfg`` (default: the active profile's sizes), rendered once and cached as HDF5.

    ``cache_dir`` defaults to the checkout's ``data/`` (``lab_utils.env.data_dir``), so notebooks running in
    ``labs/`` and scripts running at the root share one cache.
    """
    cfg = cfg if cfg is not None else config_from_profile(get_profile())
    if not isinstance(cfg, BenchmarkConfig):
        raise ValueError(f"cfg must be a BenchmarkConfig (see config_from_profile), got {type(cfg).__name__}.")
    key = cache_key(cfg)
    cache = Path(cache_dir) if cache_dir is not None else data_dir()
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"The benchmark cache {cache} is a file, not a folder; pass cache_dir= a folder (or set "
                         f"$LAB_DATA_DIR to one).")
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache)  # what writes killed mid-way left behind
    splits = []
    for split in SPLITS:
        path = cache / f"benchmark-{key}-{split}.h5"
        dataset = _load_cached(path, cfg, split)
        if dataset is None:
            dataset = generate_split(cfg, split, progress=progress)
            metadata = {"cache_key": key, "split": split, "config": cfg.to_dict(), "difficulty": DIFFICULTY,
                        "generator_version": GENERATOR_VERSION, "groups": list(GROUPS),
                        "sha256": content_digest(dataset)}
            save_dataset(dataset, path, metadata=metadata)
        splits.append(dataset)
    return splits[0], splits[1]
