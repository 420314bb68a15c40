"""The package declares what it imports: every third-party module imported at the top of a lab_utils module is a
dependency in pyproject.toml, and without OpenCV (an extra) every module imports or fails with the install line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lab_utils"
DISTRIBUTION = {"cv2": "opencv-python-headless", "sklearn": "scikit-learn"}
EXTRAS_WITH_A_GUARD = {"cv2": "lab_utils/data/opencv.py"}  # optional, imported in one place with a clear error


def modules() -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in PACKAGE.rglob("*.py"))


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:  # module level only: imports in functions are deferred on purpose
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Try):
            for inner in node.body:
                if isinstance(inner, ast.Import):
                    names |= {a.name.split(".")[0] for a in inner.names}
    return names


def declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in deps}


def test_every_top_level_import_is_declared():
    stdlib, deps = set(sys.stdlib_module_names), declared()
    missing = {}
    for path in PACKAGE.rglob("*.py"):
        for name in top_level_imports(path) - stdlib - {"lab_utils"}:
            where = EXTRAS_WITH_A_GUARD.get(name)
            if where is not None:
                assert path.relative_to(ROOT).as_posix() == where, f"{path}: import {name} through {where}"
                continue
            if DISTRIBUTION.get(name, name).lower() not in deps:
                missing.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    assert not missing, f"imported at module level but not in pyproject.toml's dependencies: {missing}"


def test_without_opencv_every_module_imports_or_names_the_install_line():
    script = (
        "import importlib, sys\n"
        "sys.modules['cv2'] = None  # as if OpenCV were not installed\n"
        f"for name in {modules()!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as err:\n"
        "        assert 'pip install opencv-python-headless' in str(err), (name, str(err))\n"
        "        print('needs opencv:', name)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    needing = {line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("needs opencv:")}
    assert "lab_utils.data.render" in needing  # the check above did see OpenCV missing
    assert "lab_utils.data.loaders" not in needing  # reading HDF5 files does not need it


def requirement_extras(name: str) -> set[str]:
    lines = [ln.split("#")[0].strip() for ln in (ROOT / name).read_text().splitlines()]
    installs = [ln for ln in lines if ln and ln != "-c .ci/constraints.txt"]  # exact versions, not requirements
    assert installs and all(re.fullmatch(r"-e \.\[[a-z,]+\]", ln) for ln in installs), \
        f"{name} should only name pyproject.toml's extras (one source of truth), got {installs}"
    return {extra for ln in installs for extra in ln[len("-e .["):-1].split(",")}


def test_the_student_file_installs_no_test_tools_and_no_jax():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    student = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0] for e in requirement_extras("requirements.txt")
               for d in extras[e]}
    assert {"tensorflow", "opencv-python-headless", "nbclient", "jupyterlab"} <= student
    assert not student & {"pytest", "nbval", "jax", "scikit-learn"}, student
    assert requirement_extras("requirements.txt") < requirement_extras("requirements-dev.txt")
    assert "requirements-dev.txt && python -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_ci_installs_under_the_constraints_file_and_every_pinned_package_is_in_it():
    assert "-c .ci/constraints.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-c" not in (ROOT / "requirements.txt").read_text()  # students resolve within pyproject's ranges
    pinned = dict(re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / ".ci" / "constraints.txt").read_text()))
    assert {"tensorflow", "keras", "jax", "numpy", "opencv-python-headless", "pytest", "nbval"} <= set(pinned)


def test_the_fast_moving_packages_have_an_upper_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    for name in ("keras", "jax[cpu]", "opencv-python-headless", "tensorflow"):
        spec = next(d for d in declared if d.startswith(name + ">") or d.startswith(name + "<"))
        assert "<" in spec, f"{spec}: no upper bound"
