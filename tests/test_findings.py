"""The findings in the README and FINDINGS.md are the results files' numbers: hand edits fail, typed numbers fail."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("findings", ROOT / "benchmarks" / "findings.py")
findings = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(findings)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of what the generator reads and writes, to edit without touching the checkout."""
    root = tmp_path_factory.mktemp("tree")
    (root / "benchmarks").mkdir()
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    for relative in [findings.README, findings.FINDINGS, *findings.TEMPLATES.values()]:
        shutil.copy(ROOT / relative, root / relative)
    return root


def test_the_committed_documents_agree_with_the_results():
    assert findings.main(["--check"]) == 0, "run python benchmarks/findings.py and commit what it writes"


def test_a_number_edited_by_hand_fails_the_check(tree, capsys):
    assert findings.main(["--check", "--root", str(tree)]) == 0
    for relative in (findings.README, findings.FINDINGS):
        path = tree / relative
        original = path.read_text()
        block = original.split(findings.START)[1] if relative == findings.README else original
        number = next(tok for tok in block.split() if tok.replace(".", "").isdigit() and "." in tok)
        path.write_text(original.replace(number, f"{float(number) + 1:.1f}", 1))
        assert findings.main(["--check", "--root", str(tree)]) == 1
        assert f"{relative.as_posix()} disagrees with the results files" in capsys.readouterr().out
        path.write_text(original)


def test_a_changed_result_changes_the_document(tree):
    assert findings.main(["--check", "--root", str(tree)]) == 0
    results = tree / "benchmarks" / "results" / "debias_pooled.json"
    original = results.read_text()
    import json

    data = json.loads(original)
    data["summary"]["cnn"]["gap_lighter_darker"]["mean"] += 0.01  # one point more
    results.write_text(json.dumps(data))
    try:
        assert findings.main(["--check", "--root", str(tree)]) == 1
    finally:
        results.write_text(original)


def test_numbers_typed_into_a_template_are_refused():
    assert findings.lint("a gap of {{ mean('x', 'cnn', 'gap') }} points at `0.05`", "t") == []
    problems = findings.lint("line one\nthe CNN's gap is 14.9 points and 85% of faces", "t")
    assert len(problems) == 2 and "line 2: '14.9'" in problems[0] and "'85%'" in problems[1]


def test_a_broken_expression_names_itself():
    with pytest.raises(ValueError, match=r"nothing\(\).*NameError"):
        findings.render("x {{ nothing() }} y", findings.Results(ROOT / "benchmarks" / "results"), "t")
    with pytest.raises(ValueError, match="FileNotFoundError: .*absent.json.*no such results file"):
        findings.render("{{ mean('absent', 'cnn', 'gap') }}", findings.Results(ROOT / "benchmarks" / "results"), "t")
