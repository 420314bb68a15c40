"""Rewrite .ci/constraints.txt: the exact versions a fresh install of requirements-dev.txt resolves to today.

    python .ci/freeze_constraints.py        # then run the tests, and commit the file if they pass

requirements-dev.txt installs under these constraints, so a CI run can be repeated a month later with the same
packages; refreshing is a deliberate commit, never a side effect of a new release on the registry. The resolution
is pip's own (``pip install --dry-run --ignore-installed --report``), on this interpreter's Python version.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".ci" / "constraints.txt"
EXTRAS = ".[tf,cv,notebooks,jax,dev]"  # requirements-dev.txt's, without the constraints it names


def main() -> int:
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", "-", "-e", EXTRAS], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"error: pip could not resolve {EXTRAS}:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return 2
    report = json.loads(proc.stdout)
    pins = sorted((i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"]
                  if i["metadata"]["name"].lower().replace("_", "-") != "lab-utils")
    header = [f"# Exact versions for requirements-dev.txt (CI and developers), resolved {date.today()} on Python "
              f"{platform.python_version()} by .ci/freeze_constraints.py; refresh on purpose with that script.",
              "# Students' requirements.txt and Colab do not use this file."]
    OUT.write_text("\n".join(header + [f"{name}=={version}" for name, version in pins]) + "\n")
    print(f"wrote {OUT}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
