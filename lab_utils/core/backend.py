"""The Keras backend: which one a run asks for (read before anything imports Keras), which one runs, its version and
devices, and loading it without TensorFlow's start-up notices.

A foundation: it imports nothing else of ``lab_utils``, and Keras only inside the functions that need it, so
``import lab_utils`` can check the choice without loading a backend. What the models must do differently per backend
(the per-replica loss scale, the distribution scope) lives in :mod:`lab_utils.nn.backend`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Iterator

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
"""Keras backend name -> the Python package it needs."""

INSTALL_HINTS = {
    "tensorflow": "python -m pip install 'tensorflow>=2.16,<3'",
    "jax": "python -m pip install 'jax[cpu]'   (or 'jax[cuda12]' for an NVIDIA GPU)",
    "torch": "python -m pip install torch",
}


def requested() -> str:
    """The backend Keras will load: ``$KERAS_BACKEND``, else ``~/.keras/keras.json``, else TensorFlow."""
    name = os.environ.get("KERAS_BACKEND")
    if name is not None and name.strip() and name != name.strip().lower():
        raise ImportError(f"KERAS_BACKEND={name!r}: Keras reads the name exactly as written; set it to "
                          f"{name.strip().lower()!r} (lower case, no spaces) and restart the kernel.")
    if not name:
        config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
        try:
            name = json.loads(config.read_text()).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return (name or "tensorflow").strip().lower()


def check_requested() -> str:
    """Fail early, before Keras does with a bare traceback, when the requested backend cannot load."""
    name = requested()
    if name not in BACKENDS:
        raise ImportError(
            f"KERAS_BACKEND={name!r} is not a backend these labs run on; use one of {sorted(BACKENDS)} "
            "(e.g. `export KERAS_BACKEND=jax`), or unset it for TensorFlow."
        )
    if importlib.util.find_spec(BACKENDS[name]) is None:
        raise ImportError(
            f"KERAS_BACKEND={name!r} but the package {BACKENDS[name]!r} is not installed. Install it with "
            f"`{INSTALL_HINTS[name]}`, or switch backend (`export KERAS_BACKEND=tensorflow`) and restart the kernel."
        )
    return name


def name() -> str:
    """The backend Keras is running on now."""
    import keras

    return keras.backend.backend()


def version() -> str:
    """The running backend's package version."""
    module = importlib.import_module(BACKENDS[name()])
    return str(getattr(module, "__version__", "unknown"))


def load_quietly() -> None:
    """Import Keras and find the devices without TensorFlow's C++ start-up notices (:func:`quiet_start`).

    ``lab_utils.nn`` and ``lab_utils.training`` call it on import, so a script or a notebook that imports them gets
    no ``cuInit`` or ``cuda drivers`` lines, whichever module it imports first.
    """
    import sys

    if "keras" in sys.modules:
        return
    with quiet_start():
        import keras  # noqa: F401

        accelerators()  # TensorFlow looks for CUDA here, and says so on stderr


def accelerators() -> list[str]:
    """The GPUs (or TPUs) the running backend can use; empty on a CPU-only machine."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "Unable to register cuDNN factory", "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)
"""Lines TensorFlow's C++ start-up writes on every machine without a GPU (or with one): notices, not errors."""


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """Load the backend without its C++ start-up notices.

    What the native code writes to the process's stderr while the block runs is captured; on success the known
    notices (:data:`STARTUP_NOISE`) are dropped and anything else is written back, and if the block raises, all
    of it is written back before the error propagates, so a real problem still shows.
    """
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters): nothing to quieten
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = text if failed else "".join(
                line for line in text.splitlines(keepends=True) if not any(n in line for n in STARTUP_NOISE))
            if kept.strip():
                sys.stderr.write(kept)
