"""The main job: execute every lab notebook in order and collect what they found.

    python -m lab_utils.running.run_labs                 # the default CPU scale
    python -m lab_utils.running.run_labs --profile smoke # seconds per notebook
    python -m lab_utils.running.run_labs --only 1 4      # a subset, by number

Executed copies, their figures as PNG files and the per-group summary land in ``outputs/`` (git-ignored). A failing
cell stops the run with a non-zero exit that names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

from lab_utils.evaluation.reports import SUMMARY_NAME
from lab_utils.core.files import write_bytes_atomic, write_text_atomic
from lab_utils.core import notebooks
from lab_utils.core.env import FIT_VERBOSE_ENV, OUTPUT_ENV, output_dir, project_root
from lab_utils.core.profiles import PROFILE_ENV, get_profile

SUMMARY_FILE = f"{SUMMARY_NAME}.md"


def export_figures(notebook_path: Path, folder: Path) -> list[Path]:
    """Every PNG an executed notebook displayed, as ``<notebook>_cell<N>_<k>.png`` (N counts code cells from 1),
    so the figures of a run can be looked at, diffed or put in a report without opening the notebook."""
    import nbformat

    nb = nbformat.read(notebook_path, as_version=4)
    written = []
    code_cells = (c for c in nb.cells if c.cell_type == "code")
    for n, cell in enumerate(code_cells, start=1):
        images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for k, encoded in enumerate(images, start=1):
            path = folder / f"{notebook_path.stem}_cell{n:02d}_{k}.png"
            written.append(write_bytes_atomic(path, base64.b64decode(encoded)))
    return written


def clear_previous_run(run_dir: Path) -> None:
    """Remove what an earlier run left in ``run_dir`` (its summary, timings, executed copies and figures), so a run
    that fails part-way never sits next to an older run's results and reads as a success."""
    for name in ("run_summary.md", "timings.json"):
        (run_dir / name).unlink(missing_ok=True)
    for path in [*notebooks.lab_files(run_dir), *(run_dir / "figures").glob("*.png")]:
        path.unlink()
    (output_dir() / SUMMARY_FILE).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="smoke | cpu (default) | full; or set $LAB_PROFILE")
    parser.add_argument("--only", type=int, nargs="+", metavar="N", help="notebook numbers to run, e.g. --only 1 4")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args(argv)
    if args.cell_timeout is not None and args.cell_timeout <= 0:
        parser.exit(2, f"{parser.prog}: error: --cell-timeout must be a number of seconds > 0, got "
                       f"{args.cell_timeout}; leave it out for no limit.\n")

    try:
        profile = get_profile(args.profile)
        os.environ[PROFILE_ENV] = profile.name  # inherited by the notebook kernels
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault(FIT_VERBOSE_ENV, "2")  # one line per epoch in the executed copies, not every bar frame
        os.environ[OUTPUT_ENV] = str(output_dir())  # absolute, so the kernels (working in labs/) write there too
        labs = notebooks.lab_notebooks(project_root() / "labs", args.only)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    run_dir = output_dir(f"run-{profile.name}")
    clear_previous_run(run_dir)
    print(f"Running {len(labs)} notebook(s) at profile '{profile.name}'; executed copies -> {run_dir}")

    summary = output_dir() / SUMMARY_FILE
    started = time.time()
    timings: dict[str, float] = {}
    for path in labs:
        try:
            timings[path.name] = notebooks.execute(path, run_dir / path.name, cell_timeout=args.cell_timeout,
                                                   progress=True)
        except notebooks.NotebookFailed as err:
            print(f"\nFAILED {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            done = ", ".join(timings) or "none"
            print(f"\ninterrupted in {path.name}; finished: {done} (executed copies in {run_dir})", file=sys.stderr)
            return 130
        figures = export_figures(run_dir / path.name, run_dir / "figures")
        print(f"  {path.name}: {timings[path.name]:.0f} s, {len(figures)} figure(s)")

    lines = [f"# Lab run, profile '{profile.name}'", "", "| notebook | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in timings.items()]
    # Only a summary this run wrote: one left by an earlier run or another profile would be mistaken for this one's.
    if summary.exists() and summary.stat().st_mtime >= started:
        lines += ["", summary.read_text()]
    report = "\n".join(lines) + "\n"
    write_text_atomic(run_dir / "run_summary.md", report)
    write_text_atomic(run_dir / "timings.json", json.dumps({"profile": profile.name, "seconds": timings}, indent=2))
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
