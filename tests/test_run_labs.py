"""The main-job runner: finds the notebooks in order and names the cell that failed."""

import base64

import nbformat
import pytest

from lab_utils.core import notebooks
from lab_utils.running import run_labs


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_find_notebooks_orders_and_filters(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        _notebook(tmp_path / name, "1")
    assert [p.name for p in notebooks.lab_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in notebooks.lab_notebooks(tmp_path, [2])] == ["02_b.ipynb"]


def test_find_notebooks_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No labs folder"):
        notebooks.lab_notebooks(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="No notebooks"):
        notebooks.lab_notebooks(tmp_path)


def test_execute_notebook_writes_copy_and_names_failing_cell(tmp_path):
    ok = _notebook(tmp_path / "01_ok.ipynb", "x = 21", "print(x * 2)")
    out = tmp_path / "out" / "01_ok.ipynb"
    notebooks.execute(ok, out)
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "42"

    bad = _notebook(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('boom')", "print('never')")
    out_bad = tmp_path / "out" / "02_bad.ipynb"
    with pytest.raises(notebooks.NotebookFailed, match=r"02_bad.ipynb: code cell 2 of 3.*ValueError: boom"):
        notebooks.execute(bad, out_bad)
    assert out_bad.exists()  # the partial copy with the traceback is kept for the user
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_export_figures_writes_every_png_by_notebook_and_cell(tmp_path):
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
    nb = nbformat.v4.new_notebook()
    figure = nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode(),
                                                          "text/plain": "<Figure>"})
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("print(1)"),
                nbformat.v4.new_code_cell("plot()", outputs=[figure, figure])]
    path = tmp_path / "03_dbvae.ipynb"
    nbformat.write(nb, path)
    written = run_labs.export_figures(path, tmp_path / "figures")
    assert [p.name for p in written] == ["03_dbvae_cell02_1.png", "03_dbvae_cell02_2.png"]
    assert all(p.read_bytes() == png for p in written)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [p.name for p in written]


@pytest.mark.parametrize("argv, message", [(["--profile", "nonsense"], "Unknown profile 'nonsense'"),
                                           (["--only", "9"], "No lab numbered 9; choose from [1, 2, 3, 4, 5]"),
                                           (["--only"], "expected at least one argument")])
def test_bad_arguments_exit_2_with_a_message_not_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_labs.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_summary_left_by_an_earlier_run_is_not_reported(tmp_path, monkeypatch):
    labs = tmp_path / "labs"
    labs.mkdir()
    _notebook(labs / "01_a.ipynb", "x = 1")
    out = tmp_path / "outputs"
    out.mkdir()
    (out / run_labs.SUMMARY_FILE).write_text("STALE TABLE FROM ANOTHER PROFILE")
    import os
    os.utime(out / run_labs.SUMMARY_FILE, (1, 1))
    monkeypatch.setattr(run_labs, "project_root", lambda: tmp_path)
    monkeypatch.setenv("LAB_OUTPUT_DIR", str(out))
    monkeypatch.setenv("LAB_PROFILE", "smoke")  # main() exports it for the kernels; restored afterwards
    assert run_labs.main(["--profile", "smoke"]) == 0
    assert "STALE" not in (out / "run-smoke" / "run_summary.md").read_text()


def test_notebooks_anywhere_in_the_checkout_share_its_data_and_outputs(tmp_path, monkeypatch):
    from pathlib import Path

    from lab_utils.core import env

    checkout = Path(env.__file__).resolve().parents[2]
    monkeypatch.delenv(env.DATA_ENV, raising=False)
    monkeypatch.delenv(env.OUTPUT_ENV, raising=False)
    monkeypatch.chdir(checkout / "labs" / "student")  # a student notebook's working folder
    assert env.project_root() == checkout and env.data_dir() == checkout / "data"


def test_fit_verbosity_follows_the_main_jobs_setting(monkeypatch):
    from lab_utils.core.env import FIT_VERBOSE_ENV, fit_verbosity

    monkeypatch.delenv(FIT_VERBOSE_ENV, raising=False)
    assert fit_verbosity("auto") == "auto"  # a live notebook keeps its progress bar
    monkeypatch.setenv(FIT_VERBOSE_ENV, "2")
    assert fit_verbosity("auto") == 2 and fit_verbosity(0) == 0  # an explicit choice wins
    monkeypatch.setenv(FIT_VERBOSE_ENV, "lines")
    with pytest.raises(ValueError, match="LAB_FIT_VERBOSE must be 0"):
        fit_verbosity("auto")


def test_a_failed_run_leaves_nothing_of_the_previous_run_beside_it(tmp_path, monkeypatch):
    labs = tmp_path / "labs"
    labs.mkdir()
    _notebook(labs / "01_a.ipynb", "raise RuntimeError('boom')")
    out = tmp_path / "outputs"
    previous = out / "run-smoke"
    (previous / "figures").mkdir(parents=True)
    for name in ("run_summary.md", "timings.json", "02_b.ipynb", "figures/02_b_cell01_1.png"):
        (previous / name).write_text("from the previous, successful run")
    monkeypatch.setattr(run_labs, "project_root", lambda: tmp_path)
    monkeypatch.setenv("LAB_OUTPUT_DIR", str(out))
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    assert run_labs.main(["--profile", "smoke"]) == 1
    left = sorted(p.relative_to(previous).as_posix() for p in previous.rglob("*") if p.is_file())
    assert left == ["01_a.ipynb"]  # the failed copy alone, which names the failing cell


def test_jupyters_duplicates_are_not_run(tmp_path):
    for name in ("01_a.ipynb", "01_a-Copy1.ipynb", "01_a (copy).ipynb"):
        _notebook(tmp_path / name, "1")
    assert [p.name for p in notebooks.lab_notebooks(tmp_path, [1])] == ["01_a.ipynb"]


def test_ctrl_c_ends_the_main_job_with_one_line(tmp_path, monkeypatch, capsys):
    labs = tmp_path / "labs"
    labs.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        _notebook(labs / name, "x = 1")

    def execute(path, out, **kwargs):
        if path.name == "02_b.ipynb":
            raise KeyboardInterrupt
        out.write_text("{}")
        return 1.0

    monkeypatch.setattr(run_labs, "project_root", lambda: tmp_path)
    monkeypatch.setattr(run_labs.notebooks, "execute", execute)
    monkeypatch.setattr(run_labs, "export_figures", lambda *a: [])
    monkeypatch.setenv("LAB_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    assert run_labs.main(["--profile", "smoke"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("interrupted in 02_b.ipynb; finished: 01_a.ipynb")
    assert "Traceback" not in err
