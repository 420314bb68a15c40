"""The backend-agnostic core, proved on the other Keras backends: the unit tests of losses, models, training,
resampling and checks run again in a fresh process under JAX (and PyTorch where it is installed), and
data-parallel training through ``keras.distribution`` on two logical CPU devices takes the same steps as one device.

Each backend needs its own process: Keras picks its backend once, at import.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lab_utils.core import backend

ROOT = Path(__file__).resolve().parent.parent
CORE_TESTS = ["tests/test_losses.py", "tests/test_models.py", "tests/test_training.py", "tests/test_resampling.py",
              "tests/test_checks.py", "tests/test_sampler.py", "tests/test_variants.py"]


def run_under(name: str, args: list[str], extra_env: dict[str, str] | None = None,
              timeout: int = 1500) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(backend.BACKENDS[name]) is None:
        pytest.skip(f"{name} is not installed ({backend.INSTALL_HINTS[name]})")
    env = {**os.environ, "KERAS_BACKEND": name, **(extra_env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_core_unit_tests_pass_on_another_backend(name):
    done = run_under(name, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *CORE_TESTS])
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"{name}: {summary}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary


DATA_PARALLEL = textwrap.dedent('''
    import json
    import keras
    import numpy as np
    from lab_utils.nn import models
    from lab_utils.core import profiles
    from lab_utils.evaluation import latents
    from lab_utils.training import debiasing, trainers, variants
    from lab_utils.data.dataset import FaceDataset

    devices = keras.distribution.list_devices("cpu")
    assert len(devices) == 2, devices
    rng = np.random.default_rng(0)
    x = rng.random((16, 64, 64, 3), dtype=np.float32)
    y = (np.arange(16) % 2).astype(np.float32)

    def update_norm(build, parallel):
        """Size of one SGD step on the same batch of 16 (each device sees 8 when parallel)."""
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices) if parallel else None)
        keras.utils.set_random_seed(0)
        model, loss = build()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        before = [np.array(v.numpy()) for v in model.trainable_weights]
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        return float(np.sqrt(sum(((np.array(v.numpy()) - b) ** 2).sum()
                                 for v, b in zip(model.trainable_weights, before))))

    builds = {
        "cnn": lambda: (models.build_cnn(), keras.losses.BinaryCrossentropy(from_logits=True)),
        "vae": lambda: (models.VAE(latent_dim=8, seed=0), None),
        "dbvae": lambda: (debiasing.DBVAE(latent_dim=8, seed=0), None),
    }
    ratios = {name: update_norm(b, True) / update_norm(b, False) for name, b in builds.items()}

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    n = 64
    images = rng.integers(0, 256, (2 * n, 64, 64, 3), dtype=np.uint8)
    train = FaceDataset(images, np.r_[np.ones(n), np.zeros(n)].astype(np.float32), name="tiny")
    profile = profiles.PROFILES["smoke"].with_overrides(batch_size=16, latent_dim=8)
    model, record = variants.train_variant(variants.LAB_VARIANTS["dbvae"], train, profile, seed=0, epochs=2,
                                              verbose=0)
    print("RESULT" + json.dumps({
        "ratios": ratios,
        "recomputes": len(record["resampling_log"]),
        "losses": record["history"]["loss"],
        "probs_shape": list(trainers.predict_face_probs(model, train).shape),
        "means_shape": list(latents.encode_faces(model, train).shape),
    }))
''')


def xla_flags_for_two_cpu_devices() -> str:
    """Two logical CPU devices, and (where jaxlib knows the flags, 0.8 on) XLA's wait for the other device at an
    all-reduce raised from 40 s to the test's own limit: on a busy 2-core machine one replica can fall that far
    behind, and XLA then aborts the process, so the verdict depended on the machine's load."""
    flags = "--xla_force_host_platform_device_count=2"
    version = importlib.metadata.version("jaxlib") if importlib.util.find_spec("jaxlib") else "0"
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= (0, 8):
        flags += (" --xla_cpu_collective_call_terminate_timeout_seconds=600"
                  " --xla_cpu_collective_call_warn_stuck_timeout_seconds=300")
    return flags


def test_jax_data_parallel_takes_the_same_size_steps_and_trains_a_variant():
    # Two devices emulated on a 2-core CPU: now and then XLA's in-process all-reduce never completes (the process
    # sits idle; seen once in a fresh-clone run whose next standalone run passed in under 150 s). That stall is in
    # the emulation, not in Keras' data parallelism under test, so a run that hangs is tried once more; two hangs
    # fail. Each attempt's limit is far above a normal run, also on a busy machine.
    for attempt in (1, 2):
        try:
            done = run_under("jax", ["-c", DATA_PARALLEL], {"XLA_FLAGS": xla_flags_for_two_cpu_devices()},
                             timeout=450)
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT"):])
    # keras.distribution computes the loss over the global batch, so a step matches single-device training.
    for name, ratio in result["ratios"].items():
        assert 0.8 < ratio < 1.25, (name, ratio)
    assert result["recomputes"] == 2
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))
    assert result["probs_shape"] == [128] and result["means_shape"] == [64, 8]


@pytest.mark.parametrize("value, message", [("theano", "not a backend these labs run on"),
                                            ("torch", "is not installed")])
def test_an_unusable_backend_gets_a_message_that_says_what_to_do(value, message, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", value)
    if value == "torch" and importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    with pytest.raises(ImportError, match=message):
        backend.check_requested()


def test_the_backend_is_reported_with_its_devices(capsys):
    from lab_utils.core import env

    info = env.setup(seed=0)
    assert info["backend"] == backend.name() and info["backend_version"] == backend.version()
    assert "Keras" in capsys.readouterr().out


QUIET = textwrap.dedent('''
    import os, sys
    from lab_utils.core import backend
    with backend.quiet_start():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\\n")
        os.write(2, b"a warning worth reading\\n")
    try:
        with backend.quiet_start():
            os.write(2, b"E0000 failed call to cuInit: the real cause\\n")
            raise RuntimeError("import failed")
    except RuntimeError:
        print("raised")
''')


def test_a_quiet_start_drops_start_up_notices_but_keeps_everything_else():
    done = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "raised" in done.stdout, done.stderr
    assert "oneDNN" not in done.stderr.split("a warning worth reading")[0]  # the notice is dropped ...
    assert "a warning worth reading" in done.stderr  # ... anything else comes back
    assert "failed call to cuInit: the real cause" in done.stderr  # and on failure, everything comes back


def test_the_set_up_cell_shows_no_start_up_noise():
    done = subprocess.run([sys.executable, "-c", "from lab_utils.core import env; env.setup()"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": backend.name()})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Seed: 0" in done.stdout
    noise = [line for line in done.stderr.splitlines() if any(n in line for n in backend.STARTUP_NOISE)]
    assert noise == [], noise
