"""Student notebooks from solution notebooks: regions replaced, solution-only cells dropped, deterministic output."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lab_utils.teaching import student

REPO = Path(__file__).resolve().parent.parent

SOLVED = '''def reparameterize(mu, logvar, eps):
    """Shift and scale eps."""
    # BEGIN SOLUTION: scale eps by exp(0.5 * logvar) and add mu
    std = keras.ops.exp(0.5 * logvar)
    return mu + std * eps
    # END SOLUTION
'''


def _solution_notebook() -> nbformat.NotebookNode:
    cells = [
        new_code_cell("PROFILE = 'smoke'", metadata={"tags": ["parameters"]}, execution_count=3,
                      outputs=[nbformat.v4.new_output("stream", text="hello\n")]),
        new_markdown_cell("## Exercise 1: the KL term"),
        new_code_cell(SOLVED),
        new_code_cell("print('answer key')", metadata={"tags": ["solution-only"]}),
        new_code_cell("x = 1\n# BEGIN SOLUTION\ny = x + 1\n# END SOLUTION\nprint(x)"),
        new_code_cell("for i in range(3):\n    ### BEGIN SOLUTION\n    total += i\n    ### END SOLUTION\n"),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def _write(labs: Path, name: str, nb: nbformat.NotebookNode) -> Path:
    labs.mkdir(parents=True, exist_ok=True)
    path = labs / name
    nbformat.write(nb, path)
    return path


def _built(tmp_path: Path) -> nbformat.NotebookNode:
    _write(tmp_path / "labs", "01_vae.ipynb", _solution_notebook())
    student.build(tmp_path / "labs")
    return nbformat.read(tmp_path / "labs" / "student" / "01_vae.ipynb", as_version=4)


def test_regions_replaced_with_todo_and_raise_keeping_indentation(tmp_path):
    cells = _built(tmp_path).cells
    func = cells[2].source
    assert "keras.ops.exp" not in func and "BEGIN SOLUTION" not in func
    assert '    # TODO: scale eps by exp(0.5 * logvar) and add mu\n' in func
    assert ('    raise NotImplementedError("Exercise not finished: scale eps by exp(0.5 * logvar) and add mu")'
            in func)
    assert func.startswith('def reparameterize(mu, logvar, eps):\n    """Shift and scale eps."""\n')
    # Unhinted top-level region: default TODO, named after the heading above the cell; code around it kept.
    assert cells[3].source == ("x = 1\n# TODO: complete this part\n"
                               'raise NotImplementedError("Exercise not finished: Exercise 1: the KL term")\n'
                               "print(x)")
    assert cells[4].source.startswith("for i in range(3):\n    # TODO: complete this part\n    raise ")


def test_student_code_compiles_and_raises_not_implemented(tmp_path):
    cells = _built(tmp_path).cells
    namespace: dict = {}
    exec(compile(cells[2].source, "cell", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="scale eps"):
        namespace["reparameterize"](0.0, 0.0, 1.0)


def test_unhinted_region_in_function_is_named_after_the_function():
    out = student.strip_solutions("def kl(mu, logvar):\n    # BEGIN SOLUTION\n    return 0\n    # END SOLUTION\n",
                                  "nb cell 0", "Some heading")
    assert 'raise NotImplementedError("Exercise not finished: kl")\n' in out


def test_solution_only_dropped_outputs_cleared_parameters_tag_and_metadata_kept(tmp_path):
    nb = _built(tmp_path)
    assert [c["id"] for c in nb.cells] == ["cell-0", "cell-1", "cell-2", "cell-4", "cell-5"]
    assert all("answer key" not in c.source for c in nb.cells)
    assert nb.cells[0].metadata["tags"] == ["parameters"]
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert nb.cells[0].source == "PROFILE = 'smoke'"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(nb)


def test_build_is_deterministic_and_does_not_touch_the_source(tmp_path):
    source = _write(tmp_path / "labs", "01_vae.ipynb", _solution_notebook())
    before = source.read_bytes()
    first = student.build(tmp_path / "labs")
    out = tmp_path / "labs" / "student" / "01_vae.ipynb"
    bytes1 = out.read_bytes()
    second = student.build(tmp_path / "labs")
    assert out.read_bytes() == bytes1 and source.read_bytes() == before
    assert first.changed == [out] and second.changed == []
    assert not [p for p in out.parent.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("source, problem", [
    ("# BEGIN SOLUTION\nx = 1\n", "no matching '# END SOLUTION'"),
    ("x = 1\n# END SOLUTION\n", "without a matching BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx\n# END SOLUTION\n# END SOLUTION\n", "cannot be nested"),
    ("# begin solution\nx\n# END SOLUTION\n", "malformed marker"),
])
def test_unbalanced_markers_name_notebook_and_cell(tmp_path, source, problem):
    nb = _solution_notebook()
    nb.cells.append(new_code_cell(source))
    _write(tmp_path / "labs", "02_dbvae.ipynb", nb)
    with pytest.raises(student.MarkerError, match=problem) as info:
        student.build(tmp_path / "labs")
    assert "02_dbvae.ipynb cell 6" in str(info.value)
    assert not (tmp_path / "labs" / "student" / "02_dbvae.ipynb").exists()


def test_check_detects_stale_missing_and_orphaned_files(tmp_path, capsys):
    labs = tmp_path / "labs"
    _write(labs, "01_vae.ipynb", _solution_notebook())
    assert student.main(["check", "--labs", str(labs)]) == 1
    assert "01_vae.ipynb: missing" in capsys.readouterr().err
    assert student.main(["build", "--labs", str(labs)]) == 0
    assert student.main(["check", "--labs", str(labs)]) == 0

    _write(labs, "09_gone.ipynb", _solution_notebook())
    assert student.main(["build", "--labs", str(labs)]) == 0
    (labs / "09_gone.ipynb").unlink()  # its student version, written by build, is now an orphan
    edited = _solution_notebook()
    edited.cells[0].source = "PROFILE = 'cpu'"
    _write(labs, "01_vae.ipynb", edited)
    assert student.main(["check", "--labs", str(labs)]) == 1
    err = capsys.readouterr().err
    assert "01_vae.ipynb: out of date" in err and "09_gone.ipynb: no solution notebook" in err

    result = student.build(labs)
    assert [p.name for p in result.removed] == ["09_gone.ipynb"]
    assert student.stale_files(labs) == []


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    assert student.main(["check", "--labs", str(tmp_path / "nowhere")]) == 2
    assert "No labs folder" in capsys.readouterr().err
    (tmp_path / "01_broken.ipynb").write_text("{not json")
    assert student.main(["build", "--labs", str(tmp_path)]) == 2
    assert "not valid notebook JSON" in capsys.readouterr().err


def test_output_is_nbformat_style_json(tmp_path):
    _built(tmp_path)
    text = (tmp_path / "labs" / "student" / "01_vae.ipynb").read_text()
    nb = nbformat.read(tmp_path / "labs" / "student" / "01_vae.ipynb", as_version=4)
    assert text == nbformat.writes(nb) + "\n"  # what Jupyter would save: no spurious diffs
    assert json.loads(text)["nbformat"] == 4


def test_committed_student_notebooks_are_up_to_date():
    """CI guard: regenerate with `python -m lab_utils.teaching.student build` and commit labs/student/."""
    assert student.stale_files(REPO / "labs") == []


def test_build_never_writes_over_the_solutions(tmp_path):
    labs = tmp_path / "labs"
    _write(labs, "01_vae.ipynb", _solution_notebook())
    before = (labs / "01_vae.ipynb").read_bytes()
    with pytest.raises(ValueError, match="is the solutions folder"):
        student.build(labs, labs)
    assert student.main(["build", "--labs", str(labs), "--out", str(labs)]) == 2
    copy = tmp_path / "elsewhere"
    _write(copy, "01_vae.ipynb", _solution_notebook())  # a copy of the solutions where the student versions go
    with pytest.raises(ValueError, match="holds solution markers"):
        student.build(labs, copy)
    assert (labs / "01_vae.ipynb").read_bytes() == before
    assert (copy / "01_vae.ipynb").read_bytes() == before


def test_build_removes_only_what_it_wrote(tmp_path):
    labs, out = tmp_path / "labs", tmp_path / "my_work"
    _write(labs, "01_vae.ipynb", _solution_notebook())
    _write(out, "01_alice.ipynb", new_notebook())  # a student's own notebook, named like a lab
    _write(out, "02_notes.ipynb", new_notebook())
    result = student.build(labs, out)
    assert result.removed == []
    assert (out / "01_alice.ipynb").is_file() and (out / "02_notes.ipynb").is_file() and (out / "01_vae.ipynb").is_file()


def test_jupyters_duplicates_are_not_labs(tmp_path):
    labs = tmp_path / "labs"
    _write(labs, "01_vae.ipynb", _solution_notebook())
    _write(labs, "01_vae-Copy1.ipynb", _solution_notebook())
    result = student.build(labs)
    assert [p.name for p in result.written] == ["01_vae.ipynb"]
    assert not (labs / "student" / "01_vae-Copy1.ipynb").exists()
