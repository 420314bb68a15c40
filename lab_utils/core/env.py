"""The first cell of every notebook: where am I running, on what, and with which seed."""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

import numpy as np

from lab_utils.core import backend, validation

DATA_ENV = "LAB_DATA_DIR"
OUTPUT_ENV = "LAB_OUTPUT_DIR"
FIT_VERBOSE_ENV = "LAB_FIT_VERBOSE"
"""Set by the main job to 2 (one line per epoch), so an executed notebook does not keep every progress-bar frame."""


def in_colab() -> bool:
    return "google.colab" in sys.modules


def project_root() -> Path:
    """The checkout when lab_utils is installed editable from it (has ``labs/``), else the working directory.

    Notebooks run with ``labs/`` as their working directory locally and ``/content`` on Colab; anchoring on the
    checkout keeps one ``data/`` and one ``outputs/`` folder for every notebook, benchmark and test.
    """
    candidate = Path(__file__).resolve().parents[2]  # lab_utils/core/env.py -> the checkout
    if (candidate / "labs").is_dir() and (candidate / "lab_utils").is_dir():
        return candidate
    return Path.cwd()


def fit_verbosity(verbose: str | int) -> str | int:
    """Keras ``fit``'s ``verbose``: ``"auto"`` becomes $LAB_FIT_VERBOSE (0, 1 or 2) when set, else stays the live bar."""
    value = os.environ.get(FIT_VERBOSE_ENV, "").strip()
    if verbose != "auto" or not value:
        return verbose
    if value not in ("0", "1", "2"):
        raise ValueError(f"${FIT_VERBOSE_ENV} must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got "
                         f"{value!r}; unset it for the default.")
    return int(value)


def env_path(variable: str) -> Path | None:
    """A path from ``$variable``: ``~`` expanded (a quoted ``~`` reaches Python as is), and a relative path taken
    from the checkout, not from each process's working folder (the main job runs in the checkout, its kernels in
    ``labs/``). None when unset."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    path = Path(os.path.expandvars(raw)).expanduser()
    return path if path.is_absolute() else project_root() / path


def _folder(variable: str, default: Path) -> Path:
    path = env_path(variable) or default
    if path.is_symlink() and not path.exists():
        raise ValueError(f"{path} (from ${variable}) is a broken symbolic link; point it at an existing folder, "
                         "delete the link, or unset the variable.")
    if path.exists() and not path.is_dir():
        source = f"${variable}" if os.environ.get(variable) else "the default"
        raise ValueError(f"{path} (from {source}) is a file, not a folder; point ${variable} at a folder (it is "
                         "created if missing) or unset it.")
    return path


def data_dir() -> Path:
    """Cache of generated and downloaded data (git-ignored); ``$LAB_DATA_DIR`` overrides."""
    return _folder(DATA_ENV, project_root() / "data")


def output_dir(*parts: str) -> Path:
    """Where notebooks write models, figures and summaries (git-ignored); ``$LAB_OUTPUT_DIR`` overrides."""
    path = _folder(OUTPUT_ENV, project_root() / "outputs").joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> None:
    """Python, NumPy and the Keras backend from one seed, so a rerun on CPU reproduces the same numbers.

    The one seeding function: notebooks, trainers and benchmarks all call it.
    """
    seed = validation.seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    with backend.quiet_start():  # seeding imports TensorFlow when it is installed, whatever the backend
        import keras

        keras.utils.set_random_seed(seed)


def machine_info() -> dict:
    """What a benchmark result must say about where it ran, so numbers from different machines are not mixed."""
    backend.load_quietly()
    import keras  # here, not at the top: a foundation loads no backend on import

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "backend": backend.name(),
        "backend_version": backend.version(),
        "keras": keras.__version__,
        "gpus": len(backend.accelerators()),
    }


def machine_summary() -> str:
    """:func:`machine_info` as the one line a results table prints."""
    m = machine_info()
    return (f"{m['platform']}, {m['cpu_count']} CPU cores, {m['gpus']} GPU(s), Python {m['python']}, "
            f"Keras {m['keras']} on {m['backend']} {m['backend_version']}")


BACKEND_LABELS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def setup(seed: int = 0, *, quiet_tf: bool = True) -> dict:
    """Print versions, backend and devices, advise (never insist) on a GPU, seed everything; returns what it found."""
    if quiet_tf:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend.check_requested()
    with backend.quiet_start():  # TensorFlow's C++ start-up notices are not for students; real errors still show
        import keras

        accelerators = backend.accelerators()

    info = {
        "python": platform.python_version(),
        "backend": backend.name(),
        "backend_version": backend.version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "colab": in_colab(),
        "gpus": accelerators,
        "seed": seed,
    }
    label = BACKEND_LABELS.get(info["backend"], info["backend"])
    print(f"Python {info['python']} | Keras {info['keras']} on {label} {info['backend_version']} | "
          f"NumPy {info['numpy']}")
    print("Running on Colab" if info["colab"] else f"Running locally ({platform.system()}, {os.cpu_count()} CPU cores)")
    if accelerators:
        print(f"GPU: {', '.join(accelerators)}")
    else:
        hint = ("Runtime > Change runtime type > GPU" if info["colab"]
                else "the 'cpu' profile is sized for a laptop; use LAB_PROFILE=full only with a GPU")
        print(f"No GPU found: everything still runs on the CPU, just slower ({hint}).")
    seed_everything(seed)
    print(f"Seed: {seed}")
    return info
