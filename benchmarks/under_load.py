"""Do the tests' verdicts survive a busy machine? The grading tests while every core is kept busy.

    python benchmarks/under_load.py                       # tests/test_grading.py, one busy process per core
    python benchmarks/under_load.py --tests tests/test_grading.py tests/test_run_labs.py --busy 4

Starts ``--busy`` CPU-bound processes (bounded: each stops after ``--max-seconds`` at the latest, and all are
stopped when the tests end), runs the tests in a fresh pytest process alongside them and reports whether they
passed, how long they took and the load average. Writes ``benchmarks/results/<name>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.core.env import machine_summary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def spin(max_seconds: float) -> None:
    end = time.monotonic() + max_seconds
    x = 0
    while time.monotonic() < end:
        x = (x * 1103515245 + 12345) % 2**31


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", nargs="+", default=["tests/test_grading.py"])
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="CPU-bound processes (default: cores)")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="each busy process stops by then")
    parser.add_argument("--name", default="under_load")
    args = parser.parse_args(argv)
    workers = [multiprocessing.Process(target=spin, args=(args.max_seconds,), daemon=True) for _ in range(args.busy)]
    for w in workers:
        w.start()
    time.sleep(5)  # let the load build up
    start = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests],
                             cwd=ROOT, capture_output=True, text=True)
        load = os.getloadavg()
    finally:
        for w in workers:
            w.terminate()
            w.join()
    seconds = time.perf_counter() - start
    summary = [ln for ln in out.stdout.splitlines() if " passed" in ln or " failed" in ln or " error" in ln][-1:]
    record = {"command": "python benchmarks/under_load.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine_summary(), "busy_processes": args.busy, "tests": args.tests,
              "returncode": out.returncode, "summary": summary[0] if summary else out.stdout[-300:],
              "seconds": seconds, "load_average_at_end": load, "intervals": {}}  # no interval estimated here
    text = (f"# Tests under load\n\nCommand: `{record['command']}`  \nMachine: {record['machine']}.\n\n"
            f"With {args.busy} CPU-bound processes running alongside: `{' '.join(args.tests)}` -> "
            f"**{'passed' if out.returncode == 0 else 'FAILED'}** (`{record['summary'].strip()}`) in {seconds:.0f} s; "
            f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min).\n")
    print(text)
    if out.returncode != 0:
        print(out.stdout[-5000:])
    write_text_atomic(RESULTS / f"{args.name}.md", text)
    write_text_atomic(RESULTS / f"{args.name}.json", json.dumps(record, indent=1) + "\n")
    return out.returncode


if __name__ == "__main__":
    sys.exit(main())
