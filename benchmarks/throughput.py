"""Training throughput of the CNN, VAE and DB-VAE through our sampler vs. fit() on in-memory float arrays,
and the cost of one DB-VAE resampling recompute. Target: the sampler costs < 15% of step time.

For each model, the same architecture, optimiser (Adam with EMA, as ``lab_utils.training.trainers`` uses) and batch
size are trained twice: by the ``lab_utils.training.trainers.train_*`` function (``FaceBatchSampler`` batches
through a Keras ``PyDataset``) and by ``model.fit`` on float32 arrays already in memory. Throughput is
images per second over the fastest whole epoch after the first (which includes tracing): on a shared
machine the fastest epoch is the one least disturbed by other processes (medians are in the JSON). The
sampler's cost is
reported two ways: end to end (1 - sampler throughput / array throughput) and as ``sample()`` time over
one step. The resampling recompute encodes N faces and turns their latent means into probabilities.

    python benchmarks/throughput.py [--n-images 4000] [--steps 60] [--epochs 3] [--resample-faces 50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from lab_utils.data.dataset import FaceDataset  # noqa: E402
from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.nn.models import VAE, build_cnn  # noqa: E402
from lab_utils.core.env import (
    machine_info,  # noqa: E402
    seed_everything,  # noqa: E402
)
from lab_utils.evaluation.latents import encode_faces  # noqa: E402
from lab_utils.training.debiasing import DBVAE, FaceBatchSampler, compute_sampling_probs, histogram_weights  # noqa: E402
from lab_utils.training.config import TrainingConfig  # noqa: E402
from lab_utils.training.trainers import train_classifier, train_dbvae, train_vae  # noqa: E402

DEFAULTS = TrainingConfig()
"""The labs' learning rate and EMA, which every timed path here trains with."""

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SHARE = 0.15
KINDS = ("cnn", "vae", "dbvae")


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def random_dataset(n_faces: int, n_nonfaces: int, seed: int) -> FaceDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_faces + n_nonfaces, 64, 64, 3), dtype=np.uint8)
    labels = np.r_[np.ones(n_faces), np.zeros(n_nonfaces)].astype(np.float32)
    return FaceDataset(images, labels, name="random")


def build(kind: str, latent_dim: int, seed: int) -> keras.Model:
    seed_everything(seed)
    return {"cnn": lambda: build_cnn(), "vae": lambda: VAE(latent_dim, seed=seed),
            "dbvae": lambda: DBVAE(latent_dim, seed=seed)}[kind]()


def through_sampler(kind: str, ds: FaceDataset, args: argparse.Namespace) -> list[float]:
    """Epoch seconds when trained by lab_utils.training.trainers (DB-VAE without recomputes: timed separately)."""
    model, timer = build(kind, args.latent_dim, args.seed), EpochTimer()
    common = {"epochs": args.epochs, "config": DEFAULTS.replace(batch_size=args.batch_size), "steps_per_epoch": args.steps,
              "seed": args.seed, "callbacks": [timer], "verbose": 0}
    with warnings.catch_warnings():  # short runs trip the EMA-horizon warning; the EMA cost is still paid
        warnings.simplefilter("ignore", UserWarning)
        if kind == "cnn":
            train_classifier(model, ds, **common)
        elif kind == "vae":
            train_vae(model, ds, **common)
        else:
            train_dbvae(model, ds, resample=False, **common)
    return timer.seconds


def from_arrays(kind: str, ds: FaceDataset, args: argparse.Namespace) -> list[float]:
    """Epoch seconds of model.fit on float32 arrays holding exactly one epoch of the same kind of batches."""
    model, timer = build(kind, args.latent_dim, args.seed), EpochTimer()
    n = args.steps * args.batch_size
    rng = np.random.default_rng(args.seed)
    if kind == "vae":
        idx = rng.choice(ds.face_idx, n)
    else:
        idx = np.concatenate([rng.choice(ds.face_idx, n // 2), rng.choice(ds.nonface_idx, n - n // 2)])
    x, y = ds.as_float(idx), ds.labels[idx]
    optimizer = keras.optimizers.Adam(DEFAULTS.learning_rate, use_ema=True, ema_momentum=DEFAULTS.ema_momentum)
    if kind == "cnn":
        model.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True),
                      metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)])
    else:
        model.compile(optimizer=optimizer)
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, callbacks=[timer], verbose=0)
    return timer.seconds


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def training_rows(args: argparse.Namespace) -> list[dict]:
    ds = random_dataset(args.n_images // 2, args.n_images - args.n_images // 2, args.seed)
    # Non-uniform face weights, as after a DB-VAE recompute.
    weights = np.random.default_rng(args.seed).gamma(0.5, size=len(ds.face_idx))
    rows = []
    for kind in tqdm(KINDS, desc="models"):
        sampler_s, array_s = [], []
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits both paths alike
            sampler_s += through_sampler(kind, ds, args)[1:]
            array_s += from_arrays(kind, ds, args)[1:]
        sampler = FaceBatchSampler(ds, args.batch_size, face_fraction=1.0 if kind == "vae" else 0.5,
                                   sampling_probs=weights, seed=args.seed)
        sample_ms = median_ms(sampler.sample, 200)
        images = args.steps * args.batch_size
        sampler_ips, array_ips = images / min(sampler_s), images / min(array_s)
        step_ms = 1e3 * min(sampler_s) / args.steps
        overhead = 1.0 - sampler_ips / array_ips
        share = sample_ms / step_ms
        rows.append({
            "model": kind, "sampler_images_per_s": sampler_ips, "arrays_images_per_s": array_ips,
            "sampler_step_ms": step_ms, "arrays_step_ms": 1e3 * min(array_s) / args.steps,
            "end_to_end_overhead": overhead, "sample_ms": sample_ms, "sample_share_of_step": share,
            "target_met": bool(max(overhead, share) < TARGET_SHARE),
            "median_images_per_s": {"sampler": images / float(np.median(sampler_s)),
                                    "arrays": images / float(np.median(array_s))},
            "epoch_seconds": {"sampler": sampler_s, "arrays": array_s},
        })
    return rows


def resampling_row(args: argparse.Namespace) -> dict:
    ds = random_dataset(args.resample_faces, 0, args.seed)
    model = build("dbvae", args.latent_dim, args.seed)
    encode_faces(model, ds.subset(np.arange(512)))  # first call pays for building the eager graph
    start = time.perf_counter()
    mu = encode_faces(model, ds, batch_size=256, progress=True)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    compute_sampling_probs(model, ds, batch_size=256, progress=True)
    recompute_s = time.perf_counter() - start
    return {
        "n_faces": args.resample_faces, "latent_dim": args.latent_dim,
        "encode_s": encode_s, "recompute_s": recompute_s,
        "weights_product_ms": median_ms(lambda: histogram_weights(mu, rule="product"), 5),
        "weights_max_ms": median_ms(lambda: histogram_weights(mu, rule="max"), 5),
    }


def markdown(report: dict) -> str:
    a = report["args"]
    lines = [
        "# Training throughput: our sampler vs. in-memory arrays, and one resampling recompute",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
        "",
        f"Batch {a['batch_size']}, {a['steps']} steps per epoch, {a['epochs']} epochs x {a['repeats']} repeats "
        f"(first epoch of each run dropped; fastest epoch reported), {a['n_images']} random 64x64 images, "
        f"latent_dim {a['latent_dim']}, Adam with EMA. Cost = 1 - sampler/arrays throughput; sample() = one "
        f"`FaceBatchSampler.sample()` over one sampler-fed step. Target: both < {100 * TARGET_SHARE:.0f}%. "
        "Load averages above the CPU count mean other processes shared the machine: compare within a row only.",
        "",
        "| model | sampler img/s | arrays img/s | step ms (sampler) | step ms (arrays) | end-to-end cost | "
        "sample() ms | sample() / step | target met | median img/s sampler / arrays |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|",
    ]
    for r in report["training"]:
        med = r["median_images_per_s"]
        lines.append(
            f"| {r['model']} | {r['sampler_images_per_s']:.0f} | {r['arrays_images_per_s']:.0f} | "
            f"{r['sampler_step_ms']:.1f} | {r['arrays_step_ms']:.1f} | {100 * r['end_to_end_overhead']:+.1f}% | "
            f"{r['sample_ms']:.2f} | {100 * r['sample_share_of_step']:.1f}% | {'yes' if r['target_met'] else 'NO'} | "
            f"{med['sampler']:.0f} / {med['arrays']:.0f} |")
    r = report["resampling"]
    lines += [
        "",
        f"Resampling recompute for {r['n_faces']} faces (DB-VAE, latent_dim {r['latent_dim']}, batches of 256): "
        f"encode {r['encode_s']:.1f} s; encode + weights (`compute_sampling_probs`) {r['recompute_s']:.1f} s; "
        f"weights alone {r['weights_product_ms']:.0f} ms (product rule), {r['weights_max_ms']:.0f} ms (max rule).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is dropped as warm-up")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--resample-faces", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch (tracing) is not timed.")

    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "load_average_1min_at_start": round(os.getloadavg()[0], 2)},
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "intervals": methods_record(),
        "target_share": TARGET_SHARE,
        "training": training_rows(args),
        "resampling": resampling_row(args),
    }
    report["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    text = markdown(report)
    print(text)
    write_text_atomic(args.out / "throughput.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(args.out / "throughput.md", text)


if __name__ == "__main__":
    main()
