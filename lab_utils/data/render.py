"""From drawn scene to photograph: directional light, exposure, optical blur, sensor noise and 8-bit sRGB, and
the rendering of a whole split in worker processes."""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from tqdm.auto import tqdm

from lab_utils.data.attributes import DISTRACTOR_LAYOUTS, NONFACE_KINDS, draw_attributes
from lab_utils.data.config import DIFFICULTY, IMAGE_STREAM, SPLIT_IDS, SPLITS, BenchmarkConfig
from lab_utils.data.dataset import IMAGE_SHAPE, FaceDataset
from lab_utils.data.drawing import SIZE, background, draw_clutter, draw_shapes, projection, random_colour, texture
from lab_utils.data.faces import HEAD_CENTRE, draw_person
from lab_utils.data.opencv import cv2
from lab_utils.core.validation import integer

GAMMA = 2.2
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
SRGB_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** GAMMA).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0) ** (1.0 / GAMMA)


def render_photo(rng: np.random.Generator, label: float, row: dict, difficulty: dict) -> tuple[np.ndarray, float]:
    """One photo: albedo scene -> directional light -> exposure -> optical blur -> sensor noise -> 8-bit sRGB."""
    albedo = background(rng, int(row["background"]))
    person = None
    if label == 1.0:
        person = draw_person(rng, float(row["skin_tone"]), bool(row["male"]), float(row["hair_length"]),
                              bool(row["beard"]), bool(row["glasses"]), bool(row["hat"]), "face")
    else:
        kind = NONFACE_KINDS[int(row["nonface_kind"])]
        if kind == "head":
            person = draw_person(rng, float(row["object_tone"]), bool(rng.random() < 0.5),
                                  float(row["hair_length"]), False, False, bool(row["hat"]),
                                  DISTRACTOR_LAYOUTS[int(row["distractor_layout"])], body=bool(rng.random() < 0.6))
        elif kind == "shapes":
            draw_shapes(rng, albedo)
        elif kind == "texture":
            albedo = np.clip(texture(rng, random_colour(rng, 0.5), random_colour(rng, 0.5)), 0, 255)
            albedo = albedo.astype(np.uint8)
        else:
            draw_clutter(rng, albedo, int(rng.integers(2, 6)), (4.0, 16.0))

    linear = SRGB_TO_LINEAR[albedo]
    head_xy = (32.0, 32.0)
    if person is not None:
        canvas, mask, skin, brow = person
        matrix = cv2.getRotationMatrix2D((32.0, 32.0), float(row["rotation"]), float(row["scale"]))
        matrix[:, 2] += (float(row["dx"]), float(row["dy"]))
        canvas = cv2.warpAffine(canvas, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        linear = linear * (1.0 - alpha[..., None]) + SRGB_TO_LINEAR[canvas] * alpha[..., None]
        head_xy = tuple(matrix @ np.array([*HEAD_CENTRE, 1.0]))

    ambient, strength = rng.uniform(0.45, 0.8), rng.uniform(0.0, 0.6)
    light = ambient + (1.0 - ambient) * (1.0 + strength * (2.0 * projection(rng) - 1.0))
    gain = 2.0 ** float(row["exposure"])
    linear = linear * (light[..., None] * gain)
    linear = cv2.GaussianBlur(linear, (0, 0), float(row["blur"]))
    sigma = np.sqrt(difficulty["read_noise"] ** 2 + difficulty["shot_noise"] * np.maximum(linear, 0.0))
    linear = linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)
    image = np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)

    contrast = float("nan")
    if label == 1.0:  # noise-free luma difference of skin and brows where the face is lit
        x, y = (int(np.clip(round(v), 0, SIZE - 1)) for v in head_xy)
        exposure = light[y, x] * gain
        skin_lin, brow_lin = (SRGB_TO_LINEAR[np.round(c).astype(np.uint8)] * exposure for c in (skin, brow))
        contrast = float(LUMA @ (linear_to_srgb(skin_lin) - linear_to_srgb(brow_lin)))
    return image, contrast


def _render_chunk(task: tuple) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker entry: image i always uses its own stream, so results do not depend on the number of workers."""
    seed, split_id, start, labels, rows, difficulty = task
    images = np.empty((len(labels), *IMAGE_SHAPE), np.uint8)
    contrast = np.full(len(labels), np.nan, np.float32)
    for j, label in enumerate(labels):
        rng = np.random.default_rng([seed, split_id, IMAGE_STREAM, start + j])
        images[j], contrast[j] = render_photo(rng, float(label), {k: v[j] for k, v in rows.items()}, difficulty)
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
    n_jobs = integer("n_jobs", n_jobs, hint=" (or None for 2)")
    labels, attrs = draw_attributes(cfg, split)
    n = len(labels)
    chunk = max(1, min(256, math.ceil(n / (4 * n_jobs))))
    tasks = [(cfg.seed, SPLIT_IDS[split], s, labels[s:s + chunk], {k: v[s:s + chunk] for k, v in attrs.items()},
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
    return FaceDataset(images, labels, attrs, name=split_name(cfg, split))


def split_name(cfg: BenchmarkConfig, split: str) -> str:
    if split == "train":
        return f"benchmark-train (seed {cfg.seed}, {cfg.train_darker_fraction:.0%} darker)"
    return f"benchmark-test (seed {cfg.seed}, balanced)"
