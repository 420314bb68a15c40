"""Every exercise in the solution notebooks passes the self-check that follows it.

nbval only proves the cells run; a check that prints FAIL does not stop a notebook (by design, so students can go
on). This test runs each solution cell and its check cell, outside a kernel, and asserts the check said PASS.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from keras import ops

from lab_utils import GROUPS
from lab_utils.nn import losses
from lab_utils.teaching import checks, grading

LABS = Path(__file__).resolve().parent.parent / "labs"
CHECK_CALL = re.compile(r"^\w+ = checks\.check_\w+\(", re.MULTILINE)
SOLUTION_NOTEBOOKS = sorted(p for p in LABS.glob("[0-9][0-9]_*.ipynb") if "BEGIN SOLUTION" in p.read_text())


def _exercise_and_check_cells(path: Path) -> tuple[list[str], int]:
    """Sources of the solution and check cells in notebook order, and the number of checks among them."""
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    wanted = [s for s in cells if "BEGIN SOLUTION" in s or CHECK_CALL.search(s)]
    return wanted, sum(bool(CHECK_CALL.search(s)) for s in wanted)


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_solution_exercises_pass_their_checks(path):
    sources, n_checks = _exercise_and_check_cells(path)
    assert n_checks, f"{path.name} has no exercise checks"
    namespace = {"np": np, "ops": ops, "checks": checks, "losses": losses, "GROUPS": GROUPS}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for source in sources:
            exec(compile(source, f"{path.name}", "exec"), namespace)
    outcomes = [line for line in out.getvalue().splitlines() if line.startswith(("PASS", "FAIL", "NOT DONE"))]
    assert len(outcomes) == n_checks, out.getvalue()
    assert all(line.startswith("PASS") for line in outcomes), out.getvalue()
    # The grader finds a notebook's exercises by the same names the checks record.
    assert [line.split()[1].rstrip(":") for line in outcomes] == grading.exercises_in(path)


def test_exercises_cover_the_method():
    names = {m for p in SOLUTION_NOTEBOOKS for m in re.findall(r"checks\.check_(\w+)\(", p.read_text())}
    assert names == {"group_recall", "reparameterize", "kl_divergence", "vae_loss", "dbvae_loss",
                     "max_rule_probs", "resampling_probs", "error_weights"}


def _max_rule_from(histogram_value):
    """The max rule written out, with each dimension's histogram value at a face given by ``histogram_value``."""
    def probs(mu, bins=10, alpha=1e-3):
        mu = np.asarray(mu, dtype=np.float64)
        per_dim = []
        for i in range(mu.shape[1]):
            value = histogram_value(mu[:, i], bins)
            w = 1.0 / (value + alpha)
            per_dim.append(w / w.sum())
        face = np.max(per_dim, axis=0)
        return face / face.sum()
    return probs


def _at_faces(column, bins, density):
    counts, edges = np.histogram(column, bins=bins, density=density)
    which = np.clip(np.digitize(column, edges[1:-1]), 0, bins - 1)
    return counts[which] if density else counts[which] / len(column)


def test_the_check_fails_a_max_rule_built_on_densities_instead_of_bin_shares(capsys):
    """The check can fail, and for this reason alone: np.histogram(density=True) divides each dimension by its bin
    width, which the reference's bin shares do not, and with alpha > 0 that changes the probabilities. The same rule
    on bin shares passes."""
    checks.check_resampling_probs(_max_rule_from(lambda c, bins: _at_faces(c, bins, density=False)), rule="max")
    assert capsys.readouterr().out.startswith("PASS resampling_probs")
    checks.check_resampling_probs(_max_rule_from(lambda c, bins: _at_faces(c, bins, density=True)), rule="max")
    assert capsys.readouterr().out.startswith("FAIL resampling_probs")
