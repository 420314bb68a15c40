"""The lab notebooks: where they are, and the one way to execute one (used by the main job and by the grader)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab_utils.core.files import write_text_atomic

LAB_GLOB = "[0-9][0-9]_*.ipynb"
"""Solution notebooks are ``labs/NN_name.ipynb``; their student versions the same names in ``labs/student``."""
LAB_NAME = re.compile(r"[0-9]{2}_[A-Za-z0-9_]+\.ipynb")
"""A lab's exact file name: Jupyter's duplicates (``01_baseline_cnn-Copy1.ipynb``) and other near-names are not labs."""


def lab_files(folder: Path) -> list[Path]:
    """The files in ``folder`` named like a lab notebook, in order (see :data:`LAB_NAME`)."""
    return [p for p in sorted(Path(folder).glob(LAB_GLOB)) if LAB_NAME.fullmatch(p.name)]


def read_json(path: Path) -> dict:
    """A notebook file as its JSON dict, with a clear error for a file that is not one."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid notebook JSON ({err}); open and re-save it in Jupyter.") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path}: not a Jupyter notebook (no 'cells' list).")
    return notebook


def to_json(notebook: dict) -> str:
    """Notebook JSON as nbformat writes it (sorted keys, indent 1), so generated files diff like saved ones."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def cell_source(cell: dict) -> str:
    """A cell's source as one string (notebook files store it as a list of lines or as a string)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


class NotebookFailed(RuntimeError):
    """A cell raised while the notebook was executed without ``allow_errors``."""


TRUNCATED = "[output truncated: the notebook printed more than {mb:g} MB; the rest was not kept]"
"""The line an execution with ``max_output_bytes`` adds where it stopped keeping output (the grader looks for it)."""


def _capped_client(max_output_bytes: int | None):
    """NotebookClient, or a subclass that keeps at most ``max_output_bytes`` of output over the whole run, so a
    cell that prints without end cannot grow the executor's memory until the time limit."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_output

    if max_output_bytes is None:
        return NotebookClient

    class CappedClient(NotebookClient):
        kept_bytes = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001 - nbclient's signature
            if msg["msg_type"] in ("stream", "display_data", "execute_result", "update_display_data", "error"):
                self.kept_bytes += len(json.dumps(msg.get("content", {})))
                if self.kept_bytes > max_output_bytes:
                    if not self.truncated:
                        self.truncated = True
                        outs.append(new_output("stream", name="stderr",
                                               text=TRUNCATED.format(mb=max_output_bytes / 1e6) + "\n"))
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def lab_notebooks(folder: Path, only: list[int] | None = None) -> list[Path]:
    """The lab notebooks in ``folder`` in order, optionally only those numbered in ``only``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No labs folder at {folder}. Run this from a clone of the repository after `pip install -e .`."
        )
    notebooks = lab_files(folder)
    if not notebooks:
        raise FileNotFoundError(f"No notebooks matching NN_*.ipynb in {folder}.")
    if only:
        available = sorted(int(p.name[:2]) for p in notebooks)
        unknown = sorted(set(only) - set(available))
        if unknown:
            raise ValueError(f"No lab numbered {', '.join(map(str, unknown))}; choose from {available}.")
        notebooks = [p for p in notebooks if int(p.name[:2]) in only]
    return notebooks


def execute(path: Path, out_path: Path, *, allow_errors: bool = False, cell_timeout: int | None = None,
            clear_outputs: bool = False, save_every_cell: bool = False, progress: bool = False,
            on_kernel_start: Callable[[Any], None] | None = None, max_output_bytes: int | None = None) -> float:
    """Run a notebook cell by cell in a fresh kernel (its working folder: the notebook's) and write the executed
    copy to ``out_path``, also when a cell fails; returns the seconds it took.

    Without ``allow_errors`` the first failing cell stops the run with :class:`NotebookFailed` naming the cell.
    ``save_every_cell`` keeps the copy current, so a run killed in a hang still shows where it was;
    ``on_kernel_start(client)`` runs once the kernel is up (the grader records its process group there).
    ``max_output_bytes`` caps the output kept over the whole run (the rest is dropped, with a :data:`TRUNCATED` line).
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    if clear_outputs:  # a submission's own outputs must not count as this run's
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    client = _capped_client(max_output_bytes)(nb, timeout=cell_timeout, kernel_name="python3",
                                              allow_errors=allow_errors,
                                              resources={"metadata": {"path": str(Path(path).parent)}})
    sockets = None
    if os.name == "posix":  # a local kernel over Unix sockets in a private folder: no plain-TCP warning per notebook
        sockets = tempfile.TemporaryDirectory(prefix="lab-kernel-")
        client.km = client.create_kernel_manager()
        client.km.transport, client.km.ip = "ipc", os.path.join(sockets.name, "kernel")
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    def save() -> None:
        write_text_atomic(out_path, nbformat.writes(nb))

    start = time.perf_counter()
    try:
        with client.setup_kernel():
            if on_kernel_start is not None:
                on_kernel_start(client)
            if save_every_cell:
                save()  # an unexecuted copy, so a hang in the first cell can still be located
            for n, (index, cell) in enumerate(tqdm(code_cells, desc=Path(path).stem, unit="cell", leave=True,
                                                   disable=not progress)):
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as err:
                    raise NotebookFailed(
                        f"{Path(path).name}: code cell {n + 1} of {len(code_cells)} (notebook cell {index}) failed: "
                        f"{err.ename}: {err.evalue}\nSee the executed copy {out_path} for the full traceback."
                    ) from None
                if save_every_cell:
                    save()
    finally:
        save()
        if sockets is not None:
            sockets.cleanup()
    return time.perf_counter() - start
