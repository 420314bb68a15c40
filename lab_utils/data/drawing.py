"""Drawing primitives and the scenery: anti-aliased shapes at sub-pixel precision, colours, textures,
backgrounds, clutter and the abstract shapes that make some of the non-faces."""

from __future__ import annotations

import colorsys

import numpy as np

from lab_utils.data.attributes import BACKGROUND_KINDS, skin_rgb
from lab_utils.data.dataset import IMAGE_SHAPE
from lab_utils.data.opencv import cv2

SIZE = IMAGE_SHAPE[0]
SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn at 1/16 pixel
YY, XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
HAIR_DARK = np.array([(18, 14, 12), (34, 24, 18), (52, 36, 24), (70, 48, 30)], dtype=np.float32)
HAIR_LIGHT = np.array([(112, 76, 42), (168, 128, 72), (212, 178, 112), (146, 62, 32), (176, 172, 166)],
                      dtype=np.float32)


def pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * 16)), int(round(y * 16))


def ellipse(img: np.ndarray, centre, axes, angle: float, colour, mask: np.ndarray | None = None,
             arc: tuple[float, float] = (0, 360), thickness: int = -1) -> None:
    args = (pt(*centre), pt(max(axes[0], 0.1), max(axes[1], 0.1)), angle, arc[0], arc[1])
    cv2.ellipse(img, *args, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, SHIFT)
    if mask is not None:
        cv2.ellipse(mask, *args, 255, thickness, cv2.LINE_AA, SHIFT)


def poly(img: np.ndarray, points, colour, mask: np.ndarray | None = None) -> None:
    pts = [np.round(np.asarray(points, np.float64) * 16).astype(np.int32)]
    cv2.fillPoly(img, pts, tuple(float(c) for c in colour), cv2.LINE_AA, SHIFT)
    if mask is not None:
        cv2.fillPoly(mask, pts, 255, cv2.LINE_AA, SHIFT)


def random_colour(rng: np.random.Generator, skin_share: float = 0.35) -> np.ndarray:
    """Scene colours; a share drawn from the skin palette so that colour alone cannot mean 'face'."""
    if rng.random() < skin_share:
        return np.clip(skin_rgb(rng.random()) * rng.uniform(0.8, 1.2, 3), 0, 255)
    h, s, v = rng.random(), rng.uniform(0.05, 0.9), rng.uniform(0.08, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255.0


def hair_colour(rng: np.random.Generator, tone: float) -> np.ndarray:
    """Hair colour correlates with skin tone: light hair is common only among the lightest skins."""
    if rng.random() < max(0.0, 0.55 - 1.1 * tone):
        return HAIR_LIGHT[rng.integers(len(HAIR_LIGHT))] * rng.uniform(0.85, 1.1)
    return HAIR_DARK[rng.integers(len(HAIR_DARK))] * rng.uniform(0.8, 1.2)


def blend(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c0 * (1.0 - t[..., None]) + c1 * t[..., None]


def projection(rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] ramp across the image in a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    p = ((XX - 31.5) * np.cos(theta) + (YY - 31.5) * np.sin(theta)) / 45.0
    return np.clip(0.5 + 0.5 * p, 0.0, 1.0)


def texture(rng: np.random.Generator, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    if rng.random() < 0.5:
        k = int(rng.integers(3, 17))
        field = cv2.resize(rng.random((k, k)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        t = np.clip(field, 0.0, 1.0)
    else:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (projection(rng) * rng.uniform(1.5, 8.0)) + rng.uniform(0, 6.3))
    return blend(c0, c1, t)


def draw_clutter(rng: np.random.Generator, img: np.ndarray, n: int, size: tuple[float, float]) -> None:
    for _ in range(n):
        colour = random_colour(rng)
        x, y = rng.uniform(-4, 68, 2)
        r = rng.uniform(*size)
        shape = rng.integers(4)
        if shape == 0:
            ellipse(img, (x, y), (r, r * rng.uniform(0.4, 1.6)), rng.uniform(0, 180), colour)
        elif shape == 1:
            w, h = r * rng.uniform(0.5, 2, 2)
            cv2.rectangle(img, pt(x - w, y - h), pt(x + w, y + h), tuple(map(float, colour)), -1,
                          cv2.LINE_AA, SHIFT)
        elif shape == 2:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            radii = r * rng.uniform(0.5, 1.3, len(angles))
            poly(img, np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], 1), colour)
        else:
            x2, y2 = rng.uniform(-4, 68, 2)
            cv2.line(img, pt(x, y), pt(x2, y2), tuple(map(float, colour)), int(rng.integers(1, 4)),
                     cv2.LINE_AA, SHIFT)


def background(rng: np.random.Generator, kind: int) -> np.ndarray:
    """Shared by faces and non-faces, so the scene behind an object says nothing about its label."""
    c0, c1 = random_colour(rng), random_colour(rng)
    name = BACKGROUND_KINDS[kind]
    if name == "texture":
        img = texture(rng, c0, c1)
    else:
        img = blend(c0, c1, projection(rng))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if name == "clutter":
        draw_clutter(rng, img, int(rng.integers(4, 14)), (2.0, 12.0))
    elif name == "indoor":
        floor = rng.uniform(38, 60)
        cv2.rectangle(img, pt(-1, floor), pt(65, 65), tuple(map(float, random_colour(rng))), -1,
                      cv2.LINE_AA, SHIFT)
        for _ in range(int(rng.integers(1, 4))):  # windows, doors, frames
            x, y, w, h = rng.uniform(-5, 60), rng.uniform(-5, 40), rng.uniform(6, 24), rng.uniform(6, 30)
            cv2.rectangle(img, pt(x, y), pt(x + w, y + h), tuple(map(float, random_colour(rng))),
                          int(rng.choice([-1, 1, 2])), cv2.LINE_AA, SHIFT)
    elif name == "outdoor":
        horizon = rng.uniform(30, 56)
        ground = random_colour(rng, skin_share=0.5)
        poly(img, [(-1, horizon + rng.uniform(-6, 6)), (65, horizon + rng.uniform(-6, 6)), (65, 65), (-1, 65)],
              ground)
        for _ in range(int(rng.integers(0, 4))):  # hills, trees, sun
            x, r = rng.uniform(0, 64), rng.uniform(3, 20)
            ellipse(img, (x, horizon), (r, r * rng.uniform(0.3, 1.2)), 0, random_colour(rng), arc=(180, 360))
    return img


def draw_shapes(rng: np.random.Generator, img: np.ndarray) -> None:
    """Large objects: round skin-toned things with stray marks, boxes, polygons, rings."""
    for _ in range(int(rng.integers(2, 6))):
        x, y, r = rng.uniform(8, 56), rng.uniform(8, 56), rng.uniform(5, 20)
        colour = random_colour(rng, skin_share=0.5)
        if rng.random() < 0.5:
            ellipse(img, (x, y), (r, r * rng.uniform(0.6, 1.5)), rng.uniform(0, 180), colour)
            for _ in range(int(rng.integers(0, 3))):
                ellipse(img, (x + rng.uniform(-r, r) * 0.6, y + rng.uniform(-r, r) * 0.6),
                         rng.uniform(0.6, 3.0, 2), rng.uniform(0, 180), random_colour(rng))
        else:
            draw_clutter(rng, img, 1, (r * 0.6, r))
