"""The repository's address lives in pyproject.toml; the notebooks' set-up cells and the README badges follow it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab_utils.teaching import colab

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_notebooks_and_badges_agree_with_pyproject():
    assert colab.sync(ROOT, check=True) == []
    url = colab.repository_url(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert readme.count("colab.research.google.com/github/") == 2 * len(list((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")))
    assert url.removeprefix("https://github.com/") in readme


def test_a_fork_changes_the_address_in_one_place(tmp_path):
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("student", "*.py"))
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("github.com/dbvae-labs/dbvae-labs", "github.com/me/my-fork"))
    stale = colab.sync(tmp_path, check=True)
    n_labs = len(list((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")))
    assert len(stale) == n_labs + 1 and all("my-fork" in line for line in stale)  # every notebook + the badges
    colab.sync(tmp_path)
    assert colab.sync(tmp_path, check=True) == []
    cells = json.loads((tmp_path / "labs" / "01_baseline_cnn.ipynb").read_text())["cells"]
    assert any('LAB_REPO = "https://github.com/me/my-fork"' in "".join(c["source"]) for c in cells)
    assert "github/me/my-fork/blob/main/labs/student/03_dbvae.ipynb" in (tmp_path / "README.md").read_text()


def test_no_repository_address_is_a_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match=r"no \[project.urls\] Repository"):
        colab.repository_url(tmp_path)
