"""Training speed per Keras backend and compile setting, next to a reference-lab-style TensorFlow loop.

    python benchmarks/backend_speed.py                    # every installed backend, 2 interleaved repeats
    python benchmarks/backend_speed.py --backends tensorflow jax --repeats 3 --n-images 20000

What is timed: training images per second of the CNN, the VAE, the DB-VAE and (to isolate the transposed
convolutions) the decoder alone, each trained by ``lab_utils.training.trainers`` on batches from ``FaceBatchSampler``,
under each backend and compile setting (``jit_compile`` on and off, ``steps_per_execution`` 8, and without the
weight average). Next to them, for TensorFlow, the reference lab's way of training: its whole training file read
into memory, a random half-face batch indexed out of it per step, and a ``tf.function`` step with a gradient tape,
run here on the same reference-schema HDF5 file (BGR, as the reference stores it) and the same architectures. One
difference is kept on purpose: the reference lab calls its model without ``training=True``, so its BatchNorm never
trains; here both paths train BatchNorm, so they do the same, correct computation.

Every backend runs in its own process (Keras picks its backend at import); repeats are interleaved across backends
so drifting machine load hits all of them alike. Reported: the fastest timed epoch (least disturbed) and the median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from throughput import DEFAULTS, EpochTimer  # noqa: E402

from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.backend import BACKENDS  # noqa: E402 - a worker's KERAS_BACKEND is set before it starts

RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("cnn", "vae", "dbvae", "decoder")


def settings_for(backend: str) -> list[dict]:
    """The compile settings tried on one backend (name, trainer keywords)."""
    base = [{"name": "jit", "jit_compile": True}, {"name": "spe8", "jit_compile": True, "steps_per_execution": 8},
            {"name": "jit_no_ema", "jit_compile": True, "ema": False}]
    if backend == "tensorflow":
        return [{"name": "graph", "jit_compile": False}, {"name": "graph_spe8", "jit_compile": False,
                                                           "steps_per_execution": 8}, *base]
    if backend == "torch":  # eager; torch.compile on CPU is tried once
        return [{"name": "eager", "jit_compile": False}, {"name": "compiled", "jit_compile": True}]
    return base  # JAX always compiles its steps


# ----------------------------------------------------------------------------------------------------- worker


def write_reference_file(path: Path, n: int, seed: int) -> None:
    """A reference-schema training file: ``images`` (N, 64, 64, 3) uint8 in BGR, ``labels`` (N, 1) float32."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        f["labels"] = (np.arange(n) % 2).astype(np.float32)[:, None]



def train_ours(kind: str, setting: dict, train, args) -> list[float]:
    import keras

    from lab_utils.nn import models
    from lab_utils.core.env import seed_everything
    from lab_utils.training import debiasing, trainers

    seed_everything(args.seed)
    timer = EpochTimer()
    config = DEFAULTS.replace(batch_size=args.batch_size,
                              ema_momentum=DEFAULTS.ema_momentum if setting.get("ema", True) else None)
    common = {"epochs": args.epochs, "config": config, "steps_per_epoch": args.steps, "seed": args.seed, "callbacks": [timer], "verbose": 0,
              "jit_compile": setting["jit_compile"], "steps_per_execution": setting.get("steps_per_execution", 1)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "cnn":
            trainers.train_classifier(models.build_cnn(), train, **common)
        elif kind == "vae":
            trainers.train_vae(models.VAE(args.latent_dim, seed=args.seed), train, **common)
        elif kind == "dbvae":
            trainers.train_dbvae(debiasing.DBVAE(args.latent_dim, seed=args.seed), train, resample=False, **common)
        else:  # the decoder alone, z -> image with an L1 loss: the transposed convolutions in isolation
            decoder = models.build_decoder(args.latent_dim)
            decoder.compile(optimizer=keras.optimizers.Adam(DEFAULTS.learning_rate), loss="mae",
                            jit_compile=setting["jit_compile"],
                            steps_per_execution=setting.get("steps_per_execution", 1))
            n = args.steps * args.batch_size
            rng = np.random.default_rng(args.seed)
            z = rng.normal(size=(n, args.latent_dim)).astype(np.float32)
            x = train.as_float(rng.choice(train.face_idx, n))
            decoder.fit(z, x, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer], verbose=0)
    return timer.seconds


def train_reference_style(kind: str, h5_path: Path, args) -> list[float]:
    """The reference lab's loop: in-memory file, random half-face batches, tf.function step with a tape."""
    import h5py
    import keras
    import tensorflow as tf

    from lab_utils.nn import models
    from lab_utils.training import debiasing

    keras.utils.set_random_seed(args.seed)
    with h5py.File(h5_path, "r") as f:
        images, labels = f["images"][:], f["labels"][:]
    pos, neg = np.flatnonzero(labels[:, 0] == 1), np.flatnonzero(labels[:, 0] == 0)
    rng = np.random.default_rng(args.seed)

    def get_batch(n: int) -> tuple[np.ndarray, np.ndarray]:
        sel = np.concatenate([rng.choice(pos, n // 2), rng.choice(neg, n - n // 2)])
        return (images[sel][..., ::-1] / 255.0).astype(np.float32), labels[sel]

    optimizer = keras.optimizers.Adam(DEFAULTS.learning_rate)
    if kind == "cnn":
        model = models.build_cnn()

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
    else:
        encoder, decoder = models.build_encoder(args.latent_dim, n_extra=1), models.build_decoder(args.latent_dim)
        variables = encoder.trainable_variables + decoder.trainable_variables
        k = args.latent_dim

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                out = encoder(x, training=True)
                logit, mu, logvar = out[:, :1], out[:, 1:1 + k], out[:, 1 + k:]
                z = mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu))
                x_hat = decoder(z, training=True)
                loss = tf.reduce_mean(debiasing.dbvae_loss(x, x_hat, y, logit, mu, logvar, 0.05))
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return loss

    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for _ in range(args.steps):
            step(*get_batch(args.batch_size))
        seconds.append(time.perf_counter() - start)
    return seconds


def worker(backend: str, args) -> None:
    """Run every setting of one backend once; print one JSON line per run."""
    import keras

    from lab_utils.data.dataset import FaceDataset
    from lab_utils.data.loaders import load_reference_training_file

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    train = load_reference_training_file(args.h5)
    assert isinstance(train, FaceDataset)
    for kind in MODELS:
        for setting in settings_for(backend):
            if kind == "decoder" and setting.get("ema") is False:
                continue
            try:
                seconds = train_ours(kind, setting, train, args)
                error = None
            except Exception as err:  # noqa: BLE001 - a setting that cannot run is a result too
                seconds, error = [], f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            print("RESULT" + json.dumps({"backend": backend, "path": "lab_utils", "model": kind,
                                         "setting": setting["name"], "seconds": seconds, "error": error}),
                  flush=True)
    if backend == "tensorflow":
        for kind in ("cnn", "dbvae"):
            print("RESULT" + json.dumps({"backend": backend, "path": "reference-style", "model": kind,
                                         "setting": "tf.function", "seconds": train_reference_style(kind, args.h5, args),
                                         "error": None}), flush=True)


# ----------------------------------------------------------------------------------------------------- parent


def run_repeat(backend: str, args, h5: Path) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", backend, "--h5", str(h5), "--steps", str(args.steps),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--latent-dim", str(args.latent_dim),
           "--seed", str(args.seed)]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3000)
    rows = [json.loads(line[len("RESULT"):]) for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if done.returncode != 0:
        rows.append({"backend": backend, "path": "worker", "model": "-", "setting": "-", "seconds": [],
                     "error": done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else "failed"})
    return rows


def summarise(runs: list[dict], images_per_epoch: int) -> list[dict]:
    table: dict[tuple, dict] = {}
    for r in runs:
        key = (r["backend"], r["path"], r["model"], r["setting"])
        entry = table.setdefault(key, {"backend": key[0], "path": key[1], "model": key[2], "setting": key[3],
                                       "epoch_seconds": [], "errors": []})
        entry["epoch_seconds"] += r["seconds"][1:]  # the first epoch traces/compiles
        if r["error"]:
            entry["errors"].append(r["error"])
    for entry in table.values():
        s = entry["epoch_seconds"]
        entry["best_images_per_s"] = images_per_epoch / min(s) if s else None
        entry["median_images_per_s"] = images_per_epoch / float(np.median(s)) if s else None
    return list(table.values())


def markdown(report: dict) -> str:
    a = report["args"]
    lines = [
        "# Training speed per backend and compile setting, and a reference-lab-style loop",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {report['machine']}",
        "",
        f"Batch {a['batch_size']}, {a['steps']} steps per epoch, {a['epochs']} epochs per run (the first dropped), "
        f"{a['repeats']} repeats interleaved across backends, {a['n_images']} random images in a reference-schema "
        "HDF5 file. `lab_utils` rows train through `lab_utils.training.trainers` (sampler batches, Adam with EMA unless "
        "`no_ema`); `reference-style` rows are the reference lab's loop (in-memory file, random batch per step, "
        "`tf.function` step with a tape, Adam without EMA) with BatchNorm trained as in ours. Settings: `graph` = "
        "tf.function without XLA, `jit` = XLA (JAX always), `spe8` = steps_per_execution 8, `eager`/`compiled` "
        "= PyTorch without/with torch.compile.",
        "",
        "| backend | path | model | setting | best img/s | median img/s | note |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for r in report["rows"]:
        best = f"{r['best_images_per_s']:.0f}" if r["best_images_per_s"] else "-"
        median = f"{r['median_images_per_s']:.0f}" if r["median_images_per_s"] else "-"
        note = r["errors"][0] if r["errors"] else ""
        lines.append(f"| {r['backend']} | {r['path']} | {r['model']} | {r['setting']} | {best} | {median} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*",
                        default=[b for b in BACKENDS if importlib.util.find_spec(BACKENDS[b])])
    parser.add_argument("--n-images", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="backend_speed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=sorted(BACKENDS), help=argparse.SUPPRESS)
    parser.add_argument("--h5", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch (tracing) is not timed.")
    if args.worker:
        worker(args.worker, args)
        return

    from lab_utils.core.files import write_text_atomic
    from lab_utils.core.env import machine_summary

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "train_face.h5"
        write_reference_file(h5, args.n_images, args.seed)
        for repeat in range(args.repeats):
            for backend in args.backends:
                print(f"repeat {repeat + 1}/{args.repeats}: {backend}", flush=True)
                runs += run_repeat(backend, args, h5)
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_summary(),
        "intervals": methods_record(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k not in ("out", "worker", "h5")},
        "rows": summarise(runs, args.steps * args.batch_size),
        "runs": runs,
    }
    text = markdown(report)
    print(text)
    write_text_atomic(args.out / f"{args.name}.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(args.out / f"{args.name}.md", text)


if __name__ == "__main__":
    main()
