"""Rewrite .ci/colab-runtime.txt from Colab's published package list, so CI rebuilds what Colab has.

    curl -LO https://raw.githubusercontent.com/googlecolab/backend-info/main/pip-freeze.txt   # and os-info.txt
    python .ci/colab_pins.py pip-freeze.txt --python 3.13 --date 2026-08-19 --source "googlecolab/backend-info@a724079"
    python -m pytest tests/test_colab_runtime.py

Pins every package the labs import on Colab (lab_utils is installed there with --no-deps, so it runs on these) and
the Jupyter stack the Colab test runs the notebooks with. A package missing from the list is an error, not a guess.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PINS = Path(__file__).resolve().parent / "colab-runtime.txt"
LABS = ("tensorflow", "keras", "numpy", "h5py", "matplotlib", "opencv-python", "scipy", "tqdm")
"""What lab_utils and the notebooks import (cv2 from opencv-python; Colab also ships -headless and -contrib)."""
HARNESS = ("ipykernel", "ipython", "jupyter_client", "traitlets", "pyzmq", "tornado", "nbclient", "nbformat")
"""What runs the notebooks: Colab's kernel stack, and the executor the Colab test drives it with."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(text: str) -> dict[str, str]:
    """``name==version`` lines of a ``pip freeze`` (other lines, e.g. ``name @ url``, are skipped)."""
    return {canonical(m["name"]): m["version"] for m in re.finditer(r"(?m)^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)", text)}


def render(versions: dict[str, str], python: str, date: str, source: str) -> str:
    missing = [n for n in LABS + HARNESS if canonical(n) not in versions]
    if missing:
        raise ValueError(f"the package list has no version for {missing}; is it Colab's pip-freeze.txt?")
    pin = lambda names: [f"{n}=={versions[canonical(n)]}" for n in names]  # noqa: E731
    return "\n".join([
        "# A fresh Google Colab CPU runtime, as the tests rebuild it (tests/test_colab_runtime.py).",
        "#",
        "# Source: Google's published package list of the Colab runtime (pip-freeze.txt and os-info.txt),",
        f"# {source}, dated {date}.",
        "# Written by .ci/colab_pins.py (its docstring says how to refresh); do not edit by hand.",
        f"# Python: {python}",
        "#",
        "# What the labs import (lab_utils is installed with --no-deps on Colab, so it runs on these):",
        *pin(LABS),
        "",
        "# Colab's kernel stack, and the executor the Colab test runs the notebooks with:",
        *pin(HARNESS),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("freeze", type=Path, help="Colab's pip-freeze.txt")
    parser.add_argument("--python", required=True, help="Colab's Python minor version (os-info.txt), e.g. 3.13")
    parser.add_argument("--date", required=True, help="the date of the package list")
    parser.add_argument("--source", required=True, help="where it came from, e.g. googlecolab/backend-info@COMMIT")
    parser.add_argument("--out", type=Path, default=PINS)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python):
        parser.error(f"--python takes a minor version such as 3.13, got {args.python!r}")
    try:
        text = render(read_freeze(args.freeze.read_text(encoding="utf-8")), args.python, args.date, args.source)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
