"""One person, read top to bottom: skin, hair, head and body, then the facial features in a face's layout (or,
for a head-like distractor, scrambled, partial or missing), glasses, beard and hat."""

from __future__ import annotations

import numpy as np

from lab_utils.data.attributes import skin_rgb
from lab_utils.data.dataset import IMAGE_SHAPE
from lab_utils.data.drawing import SHIFT, ellipse, hair_colour, poly, pt, random_colour
from lab_utils.data.opencv import cv2

HEAD_CENTRE = (32.0, 27.0)
IRIS = np.array([(56, 36, 22), (92, 64, 36), (70, 100, 130), (80, 110, 70)], dtype=np.float32)


def _draw_feature(img: np.ndarray, name: str, x: float, y: float, angle: float, c: dict) -> None:
    """One facial feature at (x, y); faces place them in layout, distractors anywhere."""
    rad = np.deg2rad(angle)
    if name == "eye":
        ellipse(img, (x, y), (3.6, 2.5), angle, c["socket"])  # the socket is in the brow's shadow
        ellipse(img, (x, y), (2.4, 1.3), angle, c["sclera"])
        ellipse(img, (x, y), (1.2, 1.2), 0, c["iris"])
        ellipse(img, (x, y), (0.5, 0.5), 0, c["pupil"])
    elif name == "brow":
        ellipse(img, (x, y), (3.2, c["brow_width"]), angle, c["brow"])
    elif name == "nose":
        dx, dy = -np.sin(rad), np.cos(rad)
        ellipse(img, (x - 2.5 * dx, y - 2.5 * dy), (0.8, 3.2), angle, c["nose"])
        for side in (-1, 1):
            ellipse(img, (x + side * 1.6 * np.cos(rad), y + side * 1.6 * np.sin(rad)), (0.9, 0.6), angle,
                     c["nostril"])
    else:
        ellipse(img, (x, y), (4.2, 1.6), angle, c["lip"])
        ellipse(img, (x, y), (3.9, 0.45), angle, c["mouth_line"])


def _feature_colours(rng: np.random.Generator, skin: np.ndarray, hair: np.ndarray, tone: float, male: bool):
    lip = skin * np.array([0.84, 0.6, 0.62])
    if not male and rng.random() < 0.4:  # lipstick
        lip = 0.5 * lip + 0.5 * np.array([168.0, 40.0, 62.0])
    iris = IRIS[rng.integers(len(IRIS))] if tone < 0.35 else IRIS[rng.integers(2)]
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


def draw_person(rng: np.random.Generator, tone: float, male: bool, hair_length: float, beard: bool,
                 glasses: bool, hat: bool, layout: str, body: bool = True):
    """Head and shoulders in the canonical pose; returns sRGB albedo, alpha mask, skin and brow colours."""
    img = np.zeros(IMAGE_SHAPE, np.uint8)
    mask = np.zeros(IMAGE_SHAPE[:2], np.uint8)
    skin = np.clip(skin_rgb(tone) * (1.0 + rng.normal(0.0, 0.03, 3)), 0, 255)
    hair = hair_colour(rng, tone)
    cx, cy = HEAD_CENTRE
    a = rng.uniform(11.0, 13.0) * (1.05 if male else 0.97)
    b = a * rng.uniform(1.22, 1.38)
    if body:
        ellipse(img, (cx + rng.uniform(-2, 2), 70), (rng.uniform(24, 30), 20), 0, random_colour(rng), mask)
        ellipse(img, (cx, cy + b * 0.95), (a * 0.5, 8), 0, skin * 0.8, mask)  # neck, shaded by the chin
    if hair_length > 0.45:  # long hair falls behind the head onto the shoulders
        length = hair_length * rng.uniform(12, 18)
        poly(img, [(cx - a - 2.5, cy - 2), (cx + a + 2.5, cy - 2), (cx + a + 3.5, cy + b * 0.3 + length),
                    (cx - a - 3.5, cy + b * 0.3 + length)], hair, mask)
    for side in (-1, 1):
        ellipse(img, (cx + side * a * 0.98, cy + 1.0), (2.2, 3.6), 0, skin * 0.9, mask)
    ellipse(img, (cx, cy), (a, b), 0, skin, mask)
    if hair_length > 0.02:  # cap of hair down to the hairline
        hairline = cy - b * rng.uniform(0.4, 0.6)
        ellipse(img, (cx, hairline), (a + 1.2, hairline - (cy - b) + 1.0 + 3.0 * hair_length), 0, hair, mask,
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
        ellipse(img, (cx, top), (a * 0.97, cy + b - top + 0.5), 0, hair * 0.95 + skin * 0.05, mask, arc=(0, 180))
        ellipse(img, (cx, pos["mouth"][1] - 2.2), (4.6, 1.3), 0, hair, mask)  # moustache
    for key, (x, y) in pos.items():
        _draw_feature(img, key.split("_")[0], x, y, angles[key], colours)
    if glasses and layout == "face":
        frame = tuple(map(float, rng.choice([(25, 25, 28), (150, 150, 155), (90, 50, 30)])))
        for side in ("eye_l", "eye_r"):
            cv2.circle(img, pt(*pos[side]), int(3.7 * 16), frame, 1, cv2.LINE_AA, SHIFT)
        cv2.line(img, pt(cx - eye_dx + 3.7, eye_y), pt(cx + eye_dx - 3.7, eye_y), frame, 1, cv2.LINE_AA,
                 SHIFT)
    if hat:
        colour = random_colour(rng, skin_share=0.1)
        brim_y = cy - b * rng.uniform(0.45, 0.6)
        ellipse(img, (cx, brim_y), (a + 1.5, brim_y - (cy - b) + 5.0), 0, colour, mask, arc=(180, 360))
        ellipse(img, (cx + rng.uniform(-2, 2), brim_y), (a + rng.uniform(3, 7), 1.8), 0, colour * 0.85, mask)
    return img, mask, skin, colours["brow"]
