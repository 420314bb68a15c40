"""The repository's address lives in pyproject.toml; the notebooks' set-up cells and the README badges follow it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab_utils.evaluation import committed
from lab_utils.teaching import release

ROOT = Path(__file__).resolve().parent.parent


def _copy_project(target: Path) -> None:
    """What ``release.sync`` reads and writes: pyproject, README, the solution notebooks, the results, the manifest."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    shutil.copytree(ROOT / "labs", target / "labs", ignore=shutil.ignore_patterns("student", "*.py"))
    shutil.copytree(ROOT / "benchmarks" / "results", target / "benchmarks" / "results")
    (target / committed.SHA256_MODULE).parent.mkdir(parents=True)
    shutil.copy(ROOT / committed.SHA256_MODULE, target / committed.SHA256_MODULE)


def test_the_committed_notebooks_and_badges_agree_with_pyproject():
    assert release.sync(ROOT, check=True) == []
    url = release.repository_url(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert readme.count("colab.research.google.com/github/") == 2 * len(list((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")))
    assert url.removeprefix("https://github.com/") in readme


def test_a_fork_changes_the_address_in_one_place(tmp_path):
    _copy_project(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("github.com/dbvae-labs/dbvae-labs", "github.com/me/my-fork"))
    stale = release.sync(tmp_path, check=True)
    n_labs = len(list((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")))
    assert len(stale) == n_labs + 1 and all("my-fork" in line for line in stale)  # every notebook + the badges
    release.sync(tmp_path)
    assert release.sync(tmp_path, check=True) == []
    cells = json.loads((tmp_path / "labs" / "01_baseline_cnn.ipynb").read_text())["cells"]
    assert any('LAB_REPO = "https://github.com/me/my-fork"' in "".join(c["source"]) for c in cells)
    assert "github/me/my-fork/blob/main/labs/student/03_dbvae.ipynb" in (tmp_path / "README.md").read_text()


def test_no_repository_address_is_a_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match=r"no \[project.urls\] Repository"):
        release.repository_url(tmp_path)


def test_a_release_pins_the_install_and_the_results_in_one_place(tmp_path):
    _copy_project(tmp_path)
    assert release.sync(tmp_path, check=True) == []
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1))
    results = tmp_path / "benchmarks" / "results" / "remedies_all.json"
    results.write_text(results.read_text() + "\n")
    stale = release.sync(tmp_path, check=True)
    n_labs = len(list((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")))
    assert sum("LAB_REF is not v0.2.0" in line for line in stale) == n_labs
    assert any("SHA-256s of the committed results are out of date" in line for line in stale)
    release.sync(tmp_path)
    assert release.sync(tmp_path, check=True) == []
    setup = "".join(json.loads((tmp_path / "labs" / "02_vae.ipynb").read_text())["cells"][1]["source"])
    assert 'LAB_REF = "v0.2.0"' in setup and 'f"git+{LAB_REPO}@{LAB_REF}"' in setup


def _fake_download(payload: bytes, seen: list):
    def fake(url, path, **kwargs):
        seen.append(url)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(payload)
    return fake


def test_committed_results_are_fetched_at_the_release_and_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(committed, "project_root", lambda: tmp_path / "no-checkout")
    monkeypatch.setattr(committed, "data_dir", lambda *parts: tmp_path / "data")
    good = (ROOT / "benchmarks" / "results" / "remedies_all.json").read_bytes()
    seen: list = []
    monkeypatch.setattr(committed, "download", _fake_download(good, seen))
    result = committed.committed_results("remedies_all", "https://github.com/o/r", ref="v0.1.0")
    assert result == json.loads(good)
    assert seen == ["https://raw.githubusercontent.com/o/r/v0.1.0/benchmarks/results/remedies_all.json"]
    assert (tmp_path / "data" / "results" / "v0.1.0" / "remedies_all.json").is_file()


def test_a_fetched_file_that_is_not_the_recorded_one_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(committed, "project_root", lambda: tmp_path / "no-checkout")
    monkeypatch.setattr(committed, "data_dir", lambda *parts: tmp_path / "data")
    monkeypatch.setattr(committed, "download", _fake_download(b'{"meta": "next term"}', []))
    assert committed.committed_results("remedies_all", "https://github.com/o/r", ref="main") is None
    out = capsys.readouterr().out
    assert "SHA-256 differs" in out and "Carrying on without them" in out
    assert not (tmp_path / "data" / "results" / "main" / "remedies_all.json").exists()


def test_a_damaged_local_results_file_is_a_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "remedies_all.json").write_text('{"meta": ')
    monkeypatch.setattr(committed, "project_root", lambda: tmp_path)
    assert committed.committed_results("remedies_all") is None
    assert "is not valid JSON" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not one of the committed results"):
        committed.committed_results("debias")


def test_every_notebook_opens_with_one_short_set_up_cell():
    notebooks = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb")) + sorted((ROOT / "labs" / "student").glob("*.ipynb"))
    setups = {"".join(json.loads(p.read_text())["cells"][1]["source"]) for p in notebooks}
    assert len(notebooks) == 10 and len(setups) == 1, "the set-up cells differ; copy one into the others"
    setup = setups.pop()
    assert len(setup.splitlines()) <= 16 and "--no-deps" in setup and setup.rstrip().endswith("env.setup(seed=0)")
