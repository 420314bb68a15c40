"""Run the core unit tests and every notebook (smoke scale) under each Keras backend, and record the outcome.

    python benchmarks/backend_tests.py                     # every installed backend
    python benchmarks/backend_tests.py --backends torch    # e.g. after `python -m pip install torch`

CI runs the unit tests under TensorFlow and JAX on every submission (``tests/test_backends.py``). PyTorch is not in
``requirements.txt`` (on most machines ``pip install torch`` brings a CUDA build of several GB), so its run is
recorded here instead: ``benchmarks/results/backend_tests.md`` shows the command, the versions and what passed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.core.backend import BACKENDS  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from test_backends import CORE_TESTS  # noqa: E402

SUITES = {"core unit tests": CORE_TESTS, "notebooks (smoke, solution and student)": ["labs"]}


def run_suite(backend: str, paths: list[str]) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "LAB_PROFILE": "smoke", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *([] if paths == ["labs"] else ["-o", "addopts="]), *paths]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    lines = done.stdout.strip().splitlines()
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), "no summary")
    return {"returncode": done.returncode, "summary": summary.strip("= "), "seconds": time.perf_counter() - start,
            "failures": [line for line in lines if line.startswith("FAILED")][:20]}


def version_of(backend: str) -> str:
    code = f"import {BACKENDS[backend]} as m, keras; print(m.__version__, keras.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    backend_version, keras_version = done.stdout.split()
    return f"{BACKENDS[backend]} {backend_version}, Keras {keras_version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*",
                        default=[b for b in BACKENDS if importlib.util.find_spec(BACKENDS[b])])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "backend_tests")
    args = parser.parse_args()
    results = []
    for backend in args.backends:
        for suite, paths in SUITES.items():
            print(f"{backend}: {suite} ...", flush=True)
            results.append({"backend": backend, "versions": version_of(backend), "suite": suite,
                            **run_suite(backend, paths)})
            print(f"  {results[-1]['summary']} ({results[-1]['seconds']:.0f} s)", flush=True)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:])
    lines = ["# The tests under each Keras backend", "", f"Command: `{command}`  ",
             f"Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}", "",
             "| backend | versions | suite | result | seconds |", "|---|---|---|---|---:|"]
    lines += [f"| {r['backend']} | {r['versions']} | {r['suite']} | {r['summary']} | {r['seconds']:.0f} |"
              for r in results]
    failures = [f"- {r['backend']}, {r['suite']}: {f}" for r in results for f in r["failures"]]
    if failures:
        lines += ["", "Failures:", *failures]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text_atomic(args.out.with_suffix(".md"), text)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps({"intervals": methods_record(), "runs": results},
                                                                 indent=2) + "\n")
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
