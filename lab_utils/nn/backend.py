"""The one module that knows which Keras backend runs: TensorFlow, JAX or PyTorch.

Everything else in ``lab_utils`` is written with ``keras`` and ``keras.ops`` and runs on all three. What Keras
does not hide lives here: versions and devices for the set-up cell, the per-replica loss scale and the scope of
``tf.distribute`` (JAX spreads a batch with ``keras.distribution`` instead and needs neither), and a clear message
when ``KERAS_BACKEND`` names a backend that is unknown or not installed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import Any, Iterator

from lab_utils.backend_choice import BACKENDS, INSTALL_HINTS, check_requested, requested  # noqa: F401 (re-exported)


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


def replicas(model: Any = None) -> int:
    """How many ``tf.distribute`` replicas split each batch: the model's strategy, else the one in scope.

    Always 1 on JAX and PyTorch, where ``keras.distribution`` computes the loss over the global batch.
    """
    if name() != "tensorflow":
        return 1
    if model is not None:
        return int(model.distribute_strategy.num_replicas_in_sync)
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_mean(per_sample: Any) -> Any:
    """The batch mean as this replica's share of the global mean.

    Under ``tf.distribute`` each replica sees 1/n of the batch and the replicas' gradients are summed, so an
    unscaled mean would take n-times-too-large steps (Keras' own losses scale the same way).
    """
    from keras import ops

    return ops.mean(per_sample) / replicas()


@contextlib.contextmanager
def training_scope(model: Any) -> Iterator[None]:
    """Compile and fit inside the ``tf.distribute`` strategy the model was built under (if any)."""
    if name() == "tensorflow":
        with model.distribute_strategy.scope():
            yield
    else:
        yield


def unalias_after_fit(model: Any) -> None:
    """Give every model variable its own buffer after ``fit()``.

    On JAX, Keras writes the EMA weights into the model by sharing the optimizer's arrays; the next jitted predict
    donates the model's buffers and so deletes the optimizer's copies, and saving the model then fails with "Array
    has been deleted". A copy per variable, once per ``fit()``, breaks the sharing.
    """
    if name() != "jax":
        return
    from keras import ops

    for variable in model.variables:
        variable.assign(ops.copy(variable.value))


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
