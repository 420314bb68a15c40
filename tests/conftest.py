"""Test tiers: ``slow`` marks what executes notebooks, trains several models, builds environments or runs a second
backend; ``python -m pytest -m "not slow"`` is the fast unit tier for a developer's edit loop. The README's test
command (and CI) runs every tier."""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_FILES = {
    "test_colab_runtime.py",      # rebuilds Colab's runtime and runs every notebook in it
    "test_grading.py",            # one kernel per submission, and a submission that hangs for its limit
    "test_backends.py",           # the core tests again under JAX, and data-parallel training
    "test_distribute.py",         # a tf.distribute run in a subprocess
    "test_reference_notebooks.py",  # every notebook on the reference-format files
    "test_collapse.py",           # trains VAEs for a few hundred steps
    "test_packaging.py",          # imports every module in a fresh interpreter with OpenCV hidden
    "test_debias_runner.py",      # the benchmark runner end to end
    "test_run_labs.py",           # the main job on notebooks
    "test_training.py",           # trains each model until it learns
    "test_remedies.py",           # trains detectors under each remedy
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" or path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
