"""A hang in the suite fails the hanging test by name (pytest-timeout, set in pyproject.toml), not the whole run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_the_suite_has_a_per_test_timeout_for_hangs():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert float(options["timeout"]) >= 900  # for hangs only: far above the slowest test on a slow machine


def test_a_hanging_test_fails_with_its_name(tmp_path):
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_sleeps_for_ever():\n    time.sleep(600)\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--timeout", "3",
                          str(tmp_path / "test_hang.py")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:]
    assert "Timeout" in out.stdout and "test_sleeps_for_ever" in out.stdout, out.stdout[-2000:]
