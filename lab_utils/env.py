"""The first cell of every notebook: where am I running, on what, and with which seed."""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

import numpy as np

DATA_ENV = "LAB_DATA_DIR"
OUTPUT_ENV = "LAB_OUTPUT_DIR"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def project_root() -> Path:
    """The checkout when lab_utils is installed editable from it (has ``labs/``), else the working directory.

    Notebooks run with ``labs/`` as their working directory locally and ``/content`` on Colab; anchoring on the
    checkout keeps one ``data/`` and one ``outputs/`` folder for every notebook, benchmark and test.
    """
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "labs").is_dir() and (candidate / "lab_utils").is_dir():
        return candidate
    return Path.cwd()


def data_dir() -> Path:
    """Cache of generated and downloaded data (git-ignored); ``$LAB_DATA_DIR`` overrides."""
    return Path(os.environ.get(DATA_ENV) or project_root() / "data")


def output_dir(*parts: str) -> Path:
    """Where notebooks write models, figures and summaries (git-ignored); ``$LAB_OUTPUT_DIR`` overrides."""
    path = Path(os.environ.get(OUTPUT_ENV) or project_root() / "outputs").joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> None:
    """Python, NumPy and the Keras backend from one seed, so a rerun on CPU reproduces the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import keras

    keras.utils.set_random_seed(seed)


def machine_info() -> dict:
    """What a benchmark result must say about where it ran, so numbers from different machines are not mixed."""
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gpus": len(gpu_names()),
    }


def machine_summary() -> str:
    """:func:`machine_info` as the one line a results table prints."""
    m = machine_info()
    return (f"{m['platform']}, {m['cpu_count']} CPU cores, {m['gpus']} GPU(s), Python {m['python']}, "
            f"TensorFlow {m['tensorflow']}, Keras {m['keras']}")


def gpu_names() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def setup(seed: int = 0, *, quiet_tf: bool = True) -> dict:
    """Print versions and device, advise (never insist) on a GPU, seed everything; returns what it found."""
    if quiet_tf:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    gpus = gpu_names()
    info = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "colab": in_colab(),
        "gpus": gpus,
        "seed": seed,
    }
    print(f"Python {info['python']} | TensorFlow {info['tensorflow']} | Keras {info['keras']} | NumPy {info['numpy']}")
    print("Running on Colab" if info["colab"] else f"Running locally ({platform.system()}, {os.cpu_count()} CPU cores)")
    if gpus:
        print(f"GPU: {', '.join(gpus)}")
    else:
        hint = ("Runtime > Change runtime type > GPU" if info["colab"]
                else "the 'cpu' profile is sized for a laptop; use LAB_PROFILE=full only with a GPU")
        print(f"No GPU found: everything still runs on the CPU, just slower ({hint}).")
    seed_everything(seed)
    print(f"Seed: {seed}")
    return info
