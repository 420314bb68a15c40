"""The package's layers, from the bottom: every import (at module level or inside a function) goes to the importing
module's own layer or one below it, and every import inside a function says why it is there."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lab_utils"
LAYERS = ("core", "data", "nn", "evaluation", "training", "teaching", "running")
"""Bottom to top. The package's own ``__init__`` (the group codes, the early backend check) counts as ``core``."""


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "lab_utils":
        raise ValueError(module)
    if len(parts) == 1 or not (PACKAGE / parts[1]).is_dir():  # the package itself, or a name its __init__ defines
        return 0
    if parts[1] not in LAYERS:
        raise AssertionError(f"lab_utils.{parts[1]} is in no layer: put it in a subpackage of {LAYERS}")
    return LAYERS.index(parts[1])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool, str]]:
    """(imported module, line, inside a function?, the source line) for every lab_utils import in a file."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "lab_utils":
                targets = ([f"lab_utils.{a.name}" for a in child.names] if child.module == "lab_utils"
                           else [child.module])
                for target in targets:
                    found.append((target, child.lineno, in_function, lines[child.lineno - 1]))
            elif isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function, lines[child.lineno - 1]) for a in child.names
                             if a.name.split(".")[0] == "lab_utils")
            visit(child, nested)

    visit(ast.parse(source), False)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_layers_cover_the_package():
    assert {p.parent.name for p in MODULES if p.parent != PACKAGE} == set(LAYERS)
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"], "a module outside every layer"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path):
    here = module_name(path)
    upward = [f"line {line}: {here} ({LAYERS[layer_of(here)]}) imports {target} ({LAYERS[layer_of(target)]})"
              for target, line, _, _ in imports(path)
              if target.split(".")[:2] != here.split(".")[:2] and layer_of(target) > layer_of(here)]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_an_import_inside_a_function_says_why(path):
    silent = [f"line {line}: {text.strip()}" for _, line, in_function, text in imports(path)
              if in_function and "#" not in text]
    assert not silent, ("imports inside a function need a reason in a comment on the same line (an optional "
                        "dependency, start-up time, a cycle):\n" + "\n".join(silent))


def test_the_walk_sees_an_upward_import_inside_a_function(tmp_path):
    """The tests above can fail: an import of training inside a function of a data module is found, as upward and
    without a reason."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from lab_utils.training import trainers\n    return trainers\n")
    assert imports(probe) == [("lab_utils.training", 2, True, "    from lab_utils.training import trainers")]
    assert layer_of("lab_utils.training") > layer_of("lab_utils.data.probe")


METHOD = PACKAGE / "training" / "debiasing.py"
METHOD_ORDER = ("dbvae_loss", "DBVAE", "max_rule", "principal_max_rule", "ResamplingOptions", "FaceBatchSampler",
                "ResamplingCallback")
"""The DB-VAE in the order a reader meets it: the loss, the model, the rules, their options, the batches, the
recompute that ties them together inside fit()."""


def test_the_method_reads_top_to_bottom_in_one_file_of_a_few_hundred_lines():
    tree = ast.parse(METHOD.read_text(encoding="utf-8"))
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert [name for name in defined if name in METHOD_ORDER] == list(METHOD_ORDER)
    n_lines = len(METHOD.read_text(encoding="utf-8").splitlines())
    assert n_lines <= 450, f"{METHOD.name} has {n_lines} lines: move checks, diagnostics or tooling around it"


def test_lab_3_prints_the_training_step_from_the_method_file():
    lab3 = json.loads((PACKAGE.parent / "labs" / "03_dbvae.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(cell["source"]) for cell in lab3["cells"] if cell["cell_type"] == "code")
    for part in ("debiasing.DBVAE.compute_loss", "debiasing.ResamplingCallback.on_epoch_begin",
                 "debiasing.FaceBatchSampler.sample"):
        assert part in code, f"Lab 3 no longer prints {part}"
