"""Small files in the formats of the real datasets, written by the tests themselves (no download).

A reference-schema ``train_face.h5`` (BGR pixels, labels (N, 1), nothing else), a PPB-layout folder
(``LF/ LM/ DF/ DM/`` of PNGs) and a CSV table (``image,group``). Faces are skin-toned ellipses with eyes and a
mouth, non-faces random rectangles, so a detector has something to learn at the smoke scale.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import h5py
import numpy as np

from lab_utils import GROUPS

TONES_BGR = {"L": (150, 190, 235), "D": (50, 80, 120)}


def face_bgr(rng: np.random.Generator, tone: str) -> np.ndarray:
    image = np.full((64, 64, 3), rng.integers(0, 256, size=3), np.uint8)
    skin = tuple(int(c) for c in np.clip(np.array(TONES_BGR[tone]) + rng.integers(-20, 21, 3), 0, 255))
    cx, cy = 32 + int(rng.integers(-4, 5)), 32 + int(rng.integers(-4, 5))
    cv2.ellipse(image, (cx, cy), (18, 24), 0, 0, 360, skin, -1)
    for dx in (-8, 8):
        cv2.circle(image, (cx + dx, cy - 6), 3, (20, 20, 20), -1)
    cv2.line(image, (cx - 7, cy + 10), (cx + 7, cy + 10), (40, 40, 90), 2)
    return image


def nonface_bgr(rng: np.random.Generator) -> np.ndarray:
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    for _ in range(3):
        x0, y0 = rng.integers(0, 48, 2)
        cv2.rectangle(image, (int(x0), int(y0)), (int(x0) + 16, int(y0) + 16),
                      tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    return image


def write_reference_h5(path: Path, n_faces: int = 300, n_nonfaces: int = 340, seed: int = 0) -> Path:
    """``train_face.h5`` in the reference lab's schema: ``images`` (N, 64, 64, 3) uint8 **BGR**, ``labels`` (N, 1)."""
    rng = np.random.default_rng(seed)
    faces = [face_bgr(rng, "L" if rng.random() < 0.9 else "D") for _ in range(n_faces)]
    nonfaces = [nonface_bgr(rng) for _ in range(n_nonfaces)]
    order = rng.permutation(n_faces + n_nonfaces)
    images = np.stack(faces + nonfaces)[order]
    labels = np.r_[np.ones(n_faces), np.zeros(n_nonfaces)][order].reshape(-1, 1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    return path


def write_ppb_folder(root: Path, per_group: int = 5, seed: int = 1) -> Path:
    """``root/<group>/<i>.png`` for each of the four groups, as the reference lab's test faces are laid out."""
    rng = np.random.default_rng(seed)
    for group in GROUPS:
        (root / group).mkdir(parents=True, exist_ok=True)
        for i in range(per_group):
            cv2.imwrite(str(root / group / f"{i}.png"), face_bgr(rng, group[0]))
    return root


def write_csv_table(root: Path, per_group: int = 5, seed: int = 2) -> Path:
    """``root/faces.csv`` with columns ``image`` (relative path) and ``group``, images in ``root/images``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for group in GROUPS:
        for i in range(per_group):
            name = f"images/{group.lower()}_{i}.jpg"
            cv2.imwrite(str(root / name), face_bgr(rng, group[0]))
            rows.append({"image": name, "group": group})
    path = root / "faces.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return path
