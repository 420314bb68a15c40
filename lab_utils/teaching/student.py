"""Student notebooks generated from the solution notebooks, so there is one source to maintain.

    python -m lab_utils.teaching.student build   # labs/NN_*.ipynb -> labs/student/NN_*.ipynb
    python -m lab_utils.teaching.student check   # exit 1 naming stale student notebooks (CI runs this via pytest)

In code cells of a solution notebook, each exercise region::

    # BEGIN SOLUTION: sample eps and shift/scale it      (the ": hint" part is optional)
    ...reference code...
    # END SOLUTION

becomes, at the BEGIN marker's indentation::

    # TODO: sample eps and shift/scale it
    raise NotImplementedError("Exercise not finished: sample eps and shift/scale it")

Cells tagged ``solution-only`` are dropped and outputs are cleared; everything else (metadata, tags such as
``parameters``, cell ids) is kept, and the JSON is written the way nbformat writes it, so the same source always
gives a byte-identical student notebook and ``check`` can compare files.

Why not nbgrader or otter-grader: both are well kept, but both pull in a Jupyter server extension, a course
database or their own assignment/release/collect workflow, and are slow and fragile to install on Colab, where
students run these labs. The labs need only the part that strips solutions; that is a small, fully tested text
transform. The markers deliberately follow nbgrader's BEGIN/END SOLUTION convention (nbgrader writes them with
``###``, which is accepted too), so a course can move to nbgrader later without rewriting the notebooks.
Grading is done by ``lab_utils.teaching.grading`` with the self-checks in ``lab_utils.teaching.checks`` instead of hidden tests.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from lab_utils.core.files import write_text_atomic
from lab_utils.core.notebooks import cell_source, lab_files, read_json, to_json
from lab_utils.teaching import release

SOLUTION_ONLY_TAG = "solution-only"
RECORD = ".student-build.json"
"""In the student folder: the notebooks ``build`` wrote there, the only files a later build may remove."""
DEFAULT_TODO = "complete this part"

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION(?:[ \t]*:[ \t]*(?P<hint>.*?))?[ \t]*$")
_END = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION[ \t]*$")
_ANY_MARKER = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END)[ \t]+SOLUTION", re.IGNORECASE)
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+(?P<name>\w+)")


class MarkerError(ValueError):
    """A solution notebook whose BEGIN/END SOLUTION markers cannot be turned into a student version."""


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did: the student notebooks written (changed or not) and the orphans removed."""

    written: list[Path]
    changed: list[Path]
    removed: list[Path]


def _enclosing_function(lines: list[str], index: int, indent: str) -> str | None:
    """Name of the ``def`` the region sits in, so an unhinted exercise still says which function is unfinished."""
    for line in reversed(lines[:index]):
        match = _DEF.match(line)
        if match and len(match["indent"]) < len(indent):
            return match["name"]
    return None


def strip_solutions(source: str, where: str, exercise: str | None = None) -> str:
    """One code cell's source with every solution region replaced by a TODO and a NotImplementedError.

    ``where`` names the notebook and cell in error messages. An unhinted region's error names its enclosing
    function, else ``exercise`` (e.g. the heading above the cell), else ``where``.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    begin: tuple[int, re.Match] | None = None
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        begin_match, end_match = _BEGIN.match(text), _END.match(text)
        if not begin_match and not end_match and _ANY_MARKER.match(text):
            raise MarkerError(
                f"{where}, line {number}: malformed marker {text.strip()!r}; write exactly "
                "'# BEGIN SOLUTION', '# BEGIN SOLUTION: <hint>' or '# END SOLUTION'."
            )
        if begin_match:
            if begin is not None:
                raise MarkerError(
                    f"{where}, line {number}: BEGIN SOLUTION inside the region opened at line {begin[0]}; "
                    "regions cannot be nested - close the first one with '# END SOLUTION'."
                )
            begin = (number, begin_match)
        elif end_match:
            if begin is None:
                raise MarkerError(
                    f"{where}, line {number}: END SOLUTION without a matching BEGIN SOLUTION above it."
                )
            indent, hint = begin[1]["indent"], begin[1]["hint"]
            label = hint or _enclosing_function(lines, begin[0] - 1, indent) or exercise or where
            newline = "\n" if line.endswith("\n") else ""
            out.append(f"{indent}# TODO: {hint or DEFAULT_TODO}\n")
            message = json.dumps(f"Exercise not finished: {label}", ensure_ascii=False)
            out.append(f"{indent}raise NotImplementedError({message}){newline}")
            begin = None
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise MarkerError(
            f"{where}, line {begin[0]}: BEGIN SOLUTION has no matching '# END SOLUTION' before the end of the cell."
        )
    return "".join(out)


def _last_heading(markdown: str) -> str | None:
    headings = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    return headings[-1] if headings and headings[-1] else None



def student_notebook(notebook: dict, name: str) -> dict:
    """The student version of a solution notebook given as its JSON dict (not modified); ``name`` is for errors."""
    cells = []
    heading = None
    for index, cell in enumerate(notebook.get("cells", [])):
        if SOLUTION_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("cell_type") == "markdown":
            heading = _last_heading(cell_source(cell)) or heading
        cell = dict(cell)
        if cell.get("cell_type") == "code":
            text = strip_solutions(cell_source(cell), f"{name} cell {index}", heading)
            cell["source"] = text.splitlines(keepends=True)
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell["source"] = cell_source(cell).splitlines(keepends=True)
        cells.append(cell)
    return {**notebook, "cells": cells}




def expected_student_files(labs_dir: Path) -> dict[str, str]:
    """File name -> exact text of every student notebook that ``build`` would write for ``labs_dir``."""
    labs_dir = Path(labs_dir)
    if not labs_dir.is_dir():
        raise FileNotFoundError(f"No labs folder at {labs_dir}; pass the folder holding the NN_*.ipynb notebooks.")
    return {
        path.name: to_json(student_notebook(read_json(path), path.name))
        for path in lab_files(labs_dir)
    }


def _has_solutions(path: Path) -> bool:
    """Whether a notebook file holds solution markers, i.e. is (or may be) a solution notebook."""
    try:
        cells = read_json(path).get("cells", [])
    except ValueError:
        return False
    return any(_BEGIN.match(line) for c in cells for line in cell_source(c).splitlines())


def _recorded(student_dir: Path) -> set[str]:
    try:
        names = json.loads((student_dir / RECORD).read_text(encoding="utf-8"))["written"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {n for n in names if isinstance(n, str) and "/" not in n and "\\" not in n}


def build(labs_dir: Path, student_dir: Path | None = None) -> BuildResult:
    """Write every student notebook; remove the ones an earlier build wrote whose solution notebook is gone.

    All sources are converted before anything is written, so a marker error leaves the student folder untouched.
    It never writes over a notebook that holds solution markers (the solutions themselves, with ``--out labs``) and
    never removes a file it did not write (it keeps a record, :data:`RECORD`): a student's ``01_alice.ipynb`` stays.
    """
    labs_dir = Path(labs_dir)
    student_dir = Path(student_dir) if student_dir is not None else labs_dir / "student"
    expected = expected_student_files(labs_dir)
    if student_dir.resolve() == labs_dir.resolve():
        raise ValueError(f"The student folder {student_dir} is the solutions folder: building there would replace "
                         "every solution notebook with its student version. Choose another --out.")
    solutions = [student_dir / n for n in expected if (student_dir / n).is_file() and _has_solutions(student_dir / n)]
    if solutions:
        raise ValueError(f"Refusing to write over {', '.join(map(str, solutions))}: it holds solution markers, so it "
                         "is a solution notebook (or a copy of one). Choose another --out, or move it away first.")
    if student_dir.exists() and not student_dir.is_dir():
        raise ValueError(f"--out {student_dir} is a file, not a folder; name a folder for the student notebooks.")
    student_dir.mkdir(parents=True, exist_ok=True)
    written, changed = [], []
    for name, text in expected.items():
        path = student_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_text_atomic(path, text)
            changed.append(path)
        written.append(path)
    removed = [student_dir / n for n in sorted(_recorded(student_dir) - set(expected)) if (student_dir / n).is_file()]
    for path in removed:
        path.unlink()
    write_text_atomic(student_dir / RECORD, json.dumps({"written": sorted(expected)}, indent=1) + "\n")
    return BuildResult(written, changed, removed)


def stale_files(labs_dir: Path, student_dir: Path | None = None) -> list[str]:
    """Why each committed student notebook differs from what ``build`` would write; empty when all are current."""
    labs_dir = Path(labs_dir)
    student_dir = Path(student_dir) if student_dir is not None else labs_dir / "student"
    problems = []
    expected = expected_student_files(labs_dir)
    for name, text in expected.items():
        path = student_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    if student_dir.is_dir():
        problems += [f"{p}: no solution notebook {labs_dir / p.name}"
                     for p in lab_files(student_dir) if p.name not in expected]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab_utils.teaching.student", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("build", "check"), help="write the student notebooks, or verify them")
    parser.add_argument("--labs", type=Path, default=Path("labs"), help="folder of solution notebooks (default: labs)")
    parser.add_argument("--out", type=Path, default=None, help="student folder (default: <labs>/student)")
    args = parser.parse_args(argv)
    root = args.labs.resolve().parent
    in_checkout = (root / "pyproject.toml").is_file()  # the address is synced only in the project's own checkout
    try:
        if args.command == "build":
            for change in release.sync(root) if in_checkout else []:
                print(f"  {change}: updated")
            result = build(args.labs, args.out)
            print(f"{len(result.written)} student notebook(s), {len(result.changed)} updated:")
            for path in result.changed:
                print(f"  wrote {path}")
            for path in result.removed:
                print(f"  removed {path} (no solution notebook)")
            return 0
        problems = (release.sync(root, check=True) if in_checkout else []) + stale_files(args.labs, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if problems:
        print("Stale notebooks or badges (run `python -m lab_utils.teaching.student build` and commit the result):",
              file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("Student notebooks are up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
