"""Which Keras backend a run asks for, and whether it can load: read before anything imports Keras.

A foundation: it imports nothing of ``lab_utils`` and nothing heavy, so ``import lab_utils`` can check the choice
without loading a backend. What differs between the running backends lives in :mod:`lab_utils.nn.backend`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

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
