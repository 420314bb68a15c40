"""Is the batch sampler cheap next to the training step it feeds? Target: < 15% of one CNN step.

Times ``FaceBatchSampler.sample()`` (non-uniform face weights, as DB-VAE uses it) on an in-memory dataset
of random images against one ``train_on_batch`` of ``lab_utils.nn.models.build_cnn()`` at the same batch size,
prints a table and writes ``benchmarks/results/sampler_speed.{json,md}``.

    python benchmarks/sampler_speed.py [--n-images 20000] [--batch-sizes 32 64 128]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_utils.data.dataset import FaceDataset  # noqa: E402
from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.core.env import machine_info  # noqa: E402
from lab_utils.training.debiasing import FaceBatchSampler  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SHARE = 0.15


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def random_dataset(n_images: int, seed: int) -> FaceDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_images, 64, 64, 3), dtype=np.uint8)
    labels = (np.arange(n_images) % 2).astype(np.float32)
    return FaceDataset(images, labels, name="random")


def time_training_step(batch_size: int, steps: int, seed: int) -> float:
    import keras

    from lab_utils.nn.models import build_cnn

    keras.utils.set_random_seed(seed)
    model = build_cnn()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, 64, 64, 3), dtype=np.float32)
    y = (np.arange(batch_size) % 2).astype(np.float32)
    for _ in range(3):  # tracing and warm-up
        model.train_on_batch(x, y)
    return median_ms(lambda: model.train_on_batch(x, y), steps)


def markdown(report: dict) -> str:
    lines = [
        "# Sampler speed vs. one CNN training step",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
        "",
        f"{report['n_images']} random 64x64 images in memory, half faces; medians over {report['sampler_calls']} "
        f"sampler calls and {report['train_steps']} training steps. Target: sampler < "
        f"{100 * TARGET_SHARE:.0f}% of a step.",
        "",
        "| batch | sample() ms | CNN train step ms | sampler / step | target met |",
        "|---:|---:|---:|---:|:---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['batch_size']} | {row['sample_ms']:.3f} | {row['step_ms']:.1f} | "
                     f"{100 * row['share']:.1f}% | {'yes' if row['target_met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=20_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--sampler-calls", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    dataset = random_dataset(args.n_images, args.seed)
    weights = np.random.default_rng(args.seed).gamma(0.5, size=len(dataset.face_idx))
    rows = []
    for batch_size in tqdm(args.batch_sizes, desc="batch sizes"):
        sampler = FaceBatchSampler(dataset, batch_size, sampling_probs=weights, seed=args.seed)
        sampler.sample()
        sample_ms = median_ms(sampler.sample, args.sampler_calls)
        step_ms = time_training_step(batch_size, args.train_steps, args.seed)
        share = sample_ms / step_ms
        rows.append({"batch_size": batch_size, "sample_ms": sample_ms, "step_ms": step_ms, "share": share,
                     "target_met": share < TARGET_SHARE})

    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "intervals": methods_record(),
        "n_images": args.n_images,
        "sampler_calls": args.sampler_calls,
        "train_steps": args.train_steps,
        "target_share": TARGET_SHARE,
        "rows": rows,
    }
    text = markdown(report)
    print(text)
    write_text_atomic(args.out / "sampler_speed.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(args.out / "sampler_speed.md", text)


if __name__ == "__main__":
    main()
