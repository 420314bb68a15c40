"""Colab in CI: every solution notebook, and Lab 3's student version, on a rebuilt fresh Colab CPU runtime.

One student notebook stands for the five: they differ from the solutions only in the exercise cells, whose
fallback to the reference is library code that the main suite runs in every student notebook; Lab 3's has the
most exercises (the loss and both rules). The other four would add about two minutes and prove nothing new.

A separate environment holds Colab's pinned versions (``.ci/colab-runtime.txt``); ``lab_utils`` is not in it until
each notebook's set-up cell installs it the Colab way (``--no-deps``, here from a copy of the checkout, as an upload
would be); a stand-in ``google.colab`` module is imported at kernel start so the notebooks take their Colab branch;
and every notebook runs at the smoke scale in a new working folder outside the checkout, as Colab's ``/content``.
The environment uses Colab's Python minor version (the pins file's ``# Python:`` line) where this machine has it,
and says so when it falls back to the interpreter running the tests. It is built once per version of the pins file
and interpreter, and kept in ``~/.cache/lab_utils`` (``$LAB_COLAB_ENV``). Building it needs the package registry:
outside CI a machine without one skips with that reason; in CI (``CI`` set) that is a failure.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lab_utils.core.notebooks import lab_notebooks
from lab_utils.core.env import project_root

ROOT = project_root()
PINS = ROOT / ".ci" / "colab-runtime.txt"
INSTALL_TIMEOUT_S = 1800


def pinned() -> dict[str, str]:
    return dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", PINS.read_text()))


def colab_python() -> tuple[str, str]:
    """An interpreter of Colab's minor version (PATH, then pyenv's versions), else this one; and its version."""
    minor = re.search(r"(?m)^# Python: (3\.\d+)$", PINS.read_text())[1]
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{minor}"), *sorted(glob.glob(f"{pyenv}/versions/{minor}*/bin/python{minor}"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version.split()[0])"],
                               capture_output=True, text=True)
        if probe.returncode == 0:  # a pyenv shim of a version not selected exits non-zero
            return candidate, probe.stdout.strip()
    here = sys.version.split()[0]
    print(f"Colab runs Python {minor}; this machine has none, so the Colab environment uses Python {here} instead.")
    return sys.executable, here


def colab_env() -> Path:
    """The Colab-pinned environment, built if missing; a half-built one (a killed install) is rebuilt."""
    python, version = colab_python()
    digest = hashlib.sha256(PINS.read_bytes() + version.encode()).hexdigest()[:12]
    base = Path(os.environ.get("LAB_COLAB_ENV") or Path.home() / ".cache" / "lab_utils")
    env_dir = base / f"colab-env-{digest}"
    done = env_dir / ".complete"
    if done.is_file():
        return env_dir
    shutil.rmtree(env_dir, ignore_errors=True)
    made = subprocess.run([python, "-m", "venv", str(env_dir)], capture_output=True, text=True, timeout=300)
    if made.returncode != 0:  # e.g. a Debian Python without ensurepip: virtualenv brings its own pip
        shutil.rmtree(env_dir, ignore_errors=True)
        fallback = subprocess.run([sys.executable, "-m", "virtualenv", "-p", python, str(env_dir)],
                                  capture_output=True, text=True, timeout=300)
        assert fallback.returncode == 0, (
            f"Could not create the Colab environment: `python -m venv` said {made.stderr.strip()[-500:]!r} and "
            "virtualenv is not available. Install python3-venv (or `pip install virtualenv`) and run again.")
    installed = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(PINS)],
                               capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if installed.returncode != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        why = f"Could not install Colab's pinned packages (.ci/colab-runtime.txt): {installed.stderr.strip()[-800:]}"
        if os.environ.get("CI"):
            raise AssertionError(why)
        pytest.skip(why + " (needs the package registry; CI runs this test)")
    done.write_text(PINS.read_text())
    return env_dir


def upload_of_the_checkout(target: Path) -> Path:
    """What a student would upload: the package and the files its build reads."""
    shutil.copytree(ROOT / "lab_utils", target / "lab_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    return target


def test_every_notebook_runs_on_a_fresh_colab_runtime(tmp_path):
    python = colab_env() / "bin" / "python"
    standin = tmp_path / "standin" / "google" / "colab"  # no google/__init__.py: google.protobuf must still import
    standin.mkdir(parents=True)
    (standin / "__init__.py").write_text('"""Stand-in for Colab\'s module: its presence is what the notebooks test."""\n')
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAB_", "KERAS_", "VIRTUAL_ENV", "PYTHONPATH", "JUPYTER_", "IPYTHONDIR"))}
    env.update(LAB_PROFILE="smoke", LAB_REPO=str(upload_of_the_checkout(tmp_path / "upload")),
               PYTHONPATH=str(tmp_path / "standin"), IPYTHONDIR=str(tmp_path / "ipython"))
    notebooks = lab_notebooks(ROOT / "labs") + lab_notebooks(ROOT / "labs" / "student", only=[3])
    out = tmp_path / "run"
    proc = subprocess.run([str(python), str(ROOT / "tests" / "colab_runtime.py"), str(out), *map(str, notebooks)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    print(proc.stdout)  # one line per notebook, with its seconds
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    report = json.loads((out / "report.json").read_text())
    assert [Path(r["notebook"]) for r in report] == notebooks

    # the notebooks installed lab_utils (not editable, into the environment) and kept Colab's own versions
    show = subprocess.run([str(python), "-m", "pip", "show", "lab_utils"], capture_output=True, text=True, env=env)
    assert show.returncode == 0 and "Editable project location" not in show.stdout
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, env=env).stdout
    canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    have = {canonical(name): version for name, version in re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", freeze)}
    pins = pinned()
    assert {canonical(n): v for n, v in pins.items()} == {canonical(n): have.get(canonical(n)) for n in pins}
    first = nbformat.read(report[0]["executed"], as_version=4)
    printed = "".join(o.get("text", "") for c in first.cells for o in c.get("outputs", []))
    assert f"Keras {pins['keras']}" in printed, printed[:2000]
