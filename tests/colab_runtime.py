"""Runs notebooks as a fresh Colab runtime would, inside the Colab-pinned environment (its own interpreter).

Called by tests/test_colab_runtime.py as ``<colab-env>/bin/python tests/colab_runtime.py OUT NOTEBOOK...``. For
each notebook: ``lab_utils`` is uninstalled (a new Colab runtime has none), a new empty working folder stands in
for ``/content``, and the notebook runs in a kernel of this interpreter, where the IPython start-up file made by
the test has imported the stand-in ``google.colab``. So the set-up cell takes its Colab branch and installs
``lab_utils`` with ``--no-deps`` from ``$LAB_REPO``. Imports only the Jupyter stack: lab_utils is not installed
when this starts, and must not be until a notebook installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def kernel_of_this_interpreter(root: Path) -> str:
    """A kernelspec that runs this interpreter, so no user- or system-wide ``python3`` kernel can stand in."""
    spec = root / "kernels" / "colab-python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(root) + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    return spec.name


def main(out: Path, notebooks: list[Path]) -> int:
    kernel = kernel_of_this_interpreter(out / "jupyter")
    report = []
    for path in notebooks:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "lab_utils"], check=False,
                       capture_output=True)
        content = out / "content" / f"{path.parent.name}-{path.stem}"
        content.mkdir(parents=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name=kernel,
                                resources={"metadata": {"path": str(content)}})
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except Exception as err:  # the executed copy keeps the traceback; the report names the notebook
            error = f"{type(err).__name__}: {str(err)[-2000:]}"
        executed = out / "executed" / f"{path.parent.name}-{path.name}"
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed)
        report.append({"notebook": str(path), "seconds": round(time.perf_counter() - start, 1), "error": error,
                       "executed": str(executed)})
        print(f"{path.parent.name}/{path.name}: {'FAILED ' + error if error else 'ok'} "
              f"({report[-1]['seconds']} s)", flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 1 if any(r["error"] for r in report) else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
