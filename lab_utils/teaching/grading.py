"""Grade a folder of submitted notebooks from the self-checks they run.

    python -m lab_utils.teaching.grading SUBMISSIONS_DIR [--out grades] [--timeout 900] [--profile smoke] [--jobs 1]

Each ``*.ipynb`` is copied into its own temporary folder and executed there in a separate process (nbclient,
errors allowed so one failing cell does not hide the checks after it) with ``$LAB_PROFILE`` set and
``$LAB_CHECKS_FILE`` pointing at a file where every ``lab_utils.teaching.checks`` call and ``record_metric`` appends a
line. A submission that runs past ``--timeout`` seconds has its executor and kernel process groups killed, and
when any grade ends every process carrying that submission's ``$LAB_GRADER_RUN`` tag in its environment is killed
too (on Linux), so a child it detached (``setsid``, a daemon) does not outlive it;
a broken, raising or hanging submission never stops the others. ``grades.csv`` and ``grades.md`` get one row
per submission: each exercise's pass / fail / not_done / error (``not run`` if the notebook never reached the
check; blank if the notebook has no such exercise), how many of the notebook's exercises passed, the recorded
metrics, the status (``ok``, ``error: <first error>`` or ``timeout``) and the runtime; executed copies go to
``<out>/executed/`` for feedback.

NOT A SECURITY SANDBOX. Submissions are untrusted code and run with your user's rights, files and network;
the separate process and folder only keep one submission from disturbing another's grade, and a submission that
deliberately clears its environment can still leave a process behind. The check records
are written by the submission itself, so they can be forged: treat grades as feedback and read suspicious
notebooks. Run the grader inside a throw-away container, for example:

    docker run --rm --network none -v "$PWD:/course:ro" -v "$PWD/grades:/grades" course-image \\
        python -m lab_utils.teaching.grading /course/submissions --out /grades
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from lab_utils.core.files import write_text_atomic
from lab_utils.core import notebooks, processes
from lab_utils.core.env import OUTPUT_ENV
from lab_utils.core.profiles import PROFILE_ENV, get_profile
from lab_utils.teaching.grades import Grade, grade_table, read_records, write_reports
from lab_utils.teaching.records import CHECKS_FILE_ENV

CHECKS_FILE = "checks.jsonl"
KERNEL_PID_FILE = "kernel.pid"
EXECUTOR_ERROR_FILE = "executor-error.txt"
NOT_RUN = "not run"
CHECK_CALL = re.compile(r"\bcheck_(\w+)\s*\(")
MAX_STATUS_CHARS = 200
MAX_OUTPUT_BYTES = 5_000_000
"""Output kept per submission: a lab's own output is well under 1 MB; a cell printing without end is cut here."""


# ------------------------------------------------------------------------------------ in the child process


def execute_notebook_child(notebook: str, executed: str) -> int:
    """Entry point of the executor process: every cell, errors allowed, the executed copy saved after each one.

    Saving as it goes keeps the outputs up to a hang; the kernel's process group id goes to a file next to
    the executed copy (outside the notebook's working folder) so the grader can kill the kernel too
    (jupyter_client starts kernels in their own session).
    """
    control = Path(executed).parent

    def record_kernel(client: object) -> None:
        provisioner = client.km.provisioner
        pgid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
        if pgid:
            write_text_atomic(control / KERNEL_PID_FILE, str(pgid))

    try:
        notebooks.execute(Path(notebook), Path(executed), allow_errors=True, clear_outputs=True,
                          save_every_cell=True, on_kernel_start=record_kernel, max_output_bytes=MAX_OUTPUT_BYTES)
    except Exception as err:  # noqa: BLE001 - any failure becomes the submission's status, read by the parent
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        (control / EXECUTOR_ERROR_FILE).write_text(f"{type(err).__name__}: {message}", encoding="utf-8")
        return 1
    return 0


# ------------------------------------------------------------------------------------ in the grader


def _truncated(executed: Path) -> bool:
    """Whether the executor stopped keeping the submission's output (it printed more than MAX_OUTPUT_BYTES)."""
    marker = notebooks.TRUNCATED.split(":")[0]
    try:
        return marker in executed.read_text(encoding="utf-8")
    except OSError:
        return False


def _running_cell(executed: Path) -> str:
    """' in cell i of n' for the first code cell that never finished (the copy is saved after every cell)."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return ""
    for index, cell in enumerate(cells, start=1):
        if cell.get("cell_type") == "code" and cell.get("execution_count") is None and cell.get("source"):
            return f" in cell {index} of {len(cells)}"
    return ""


def _first_error(executed: Path) -> str | None:
    """``Name: message`` of the first error output in an executed notebook, if any."""
    if not executed.exists():
        return None
    try:
        cells = json.loads(executed.read_text(encoding="utf-8")).get("cells", [])
    except json.JSONDecodeError:
        return None
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue", "")).strip().splitlines()
                return f"{output.get('ename', 'Error')}: {value[0] if value else ''}".strip()
    return None


def _child_env(control: Path, workdir: Path, profile: str, token: str) -> dict[str, str]:
    env = dict(os.environ)
    env[processes.TOKEN_ENV] = token  # inherited by everything the submission starts, so all of it can be ended
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env[PROFILE_ENV] = profile
    env[CHECKS_FILE_ENV] = str(control / CHECKS_FILE)
    env[OUTPUT_ENV] = str(workdir / "outputs")  # submissions must not overwrite each other's outputs
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def grade_submission(notebook: Path, *, timeout: float = 900, profile: str = "smoke",
                     executed_dir: Path | None = None, stop: threading.Event | None = None) -> Grade:
    """Execute one notebook in its own folder and process, within ``timeout`` seconds; never raises for the
    notebook's faults. The executed copy is saved to ``executed_dir`` when given; setting ``stop`` (Ctrl-C
    in the grader) kills a running notebook at once, so no kernel is left spinning."""
    notebook = Path(notebook)
    if not notebook.is_file():  # a folder named *.ipynb, a broken link: a row for it, the others still graded
        what = "a folder" if notebook.is_dir() else "a broken link" if notebook.is_symlink() else "not a regular file"
        return Grade(notebook.stem, f"error: {notebook.name} is {what}, not a notebook file", 0.0)
    control = Path(tempfile.mkdtemp(prefix=f"grade-{notebook.stem}-"))
    workdir = control / "work"  # the notebook's working folder; the grader's files stay one level up
    try:
        workdir.mkdir()
        shutil.copy2(notebook, workdir / notebook.name)
        executed = control / f"executed-{notebook.name}"
        command = [sys.executable, "-c",
                   "import sys; from lab_utils.teaching.grading import execute_notebook_child as run; "
                   "sys.exit(run(sys.argv[1], sys.argv[2]))",
                   str(workdir / notebook.name), str(executed)]
        start = time.monotonic()
        with open(control / "executor.log", "wb") as log:
            token = uuid.uuid4().hex
            process = subprocess.Popen(command, cwd=workdir, env=_child_env(control, workdir, profile, token),
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            killed = processes.wait_or_reason(process, timeout, stop)
            if killed:
                processes.kill_group(process.pid, grace=0.0)  # our child: reaped by the wait below, not polled
                kernel_file = control / KERNEL_PID_FILE
                if kernel_file.exists() and kernel_file.read_text().strip().isdigit():
                    processes.kill_group(int(kernel_file.read_text()))
                process.wait()
            processes.kill_tagged(token)  # whatever the submission detached from its process groups
        runtime = time.monotonic() - start

        statuses, messages, metrics = read_records(control / CHECKS_FILE)
        for name in exercises_in(notebook):
            if name not in statuses:
                statuses[name], messages[name] = NOT_RUN, "the notebook stopped before this check ran"
        error_file = control / EXECUTOR_ERROR_FILE
        if killed:
            status = killed + _running_cell(executed)
        elif error := _first_error(executed):
            status = f"error: {error}"
        elif error_file.exists():
            status = f"error: {error_file.read_text(encoding='utf-8').strip()}"
        elif process.returncode != 0:
            status = f"error: the executor exited with code {process.returncode}"
        else:
            status = "ok"
        if _truncated(executed):
            status += f" (output cut at {MAX_OUTPUT_BYTES / 1e6:g} MB)"
        if executed_dir is not None and executed.exists():
            executed_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(executed_dir / notebook.name, executed.read_text(encoding="utf-8"))
        return Grade(notebook.stem, " ".join(status.split())[:MAX_STATUS_CHARS], round(runtime, 1),
                     statuses, messages, metrics)
    finally:
        shutil.rmtree(control, ignore_errors=True)


def exercises_in(notebook: Path) -> list[str]:
    """The exercises a notebook checks (its ``checks.check_<name>(`` calls), so a check it never reached reads
    "not run" while exercises of other labs stay blank; an unreadable notebook has none."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                   for c in cells if c.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    names = (m.group(1) for src in sources for m in CHECK_CALL.finditer(src))
    return list(dict.fromkeys(n for n in names if n != "function"))


def find_submissions(submissions_dir: Path) -> list[Path]:
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"No submissions folder at {submissions_dir}; pass the folder of .ipynb files.")
    notebooks = sorted(p for p in submissions_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not notebooks:
        raise FileNotFoundError(f"No .ipynb files in {submissions_dir}; collect the submitted notebooks there.")
    return notebooks


def grade_all(submissions_dir: Path, out_dir: Path, *, timeout: float = 900, profile: str = "smoke",
              jobs: int = 1) -> list[Grade]:
    """Grade every ``*.ipynb`` in ``submissions_dir`` (``jobs`` at a time) and write the reports to ``out_dir``."""
    from tqdm.auto import tqdm

    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}.")
    profile = get_profile(profile).name
    notebooks = find_submissions(submissions_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder; name a folder for the reports.")
    out_dir.mkdir(parents=True, exist_ok=True)
    grades = []
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_submission, nb, timeout=timeout, profile=profile,
                               executed_dir=out_dir / "executed", stop=stop) for nb in notebooks]
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="notebook"):
                grades.append(future.result())
        except KeyboardInterrupt:
            stop.set()
            for future in futures:
                future.cancel()
            grades = [f.result() for f in futures  # every finished grade, whatever order they were collected in
                      if f.done() and not f.cancelled() and f.exception() is None]
            grades.sort(key=lambda g: g.submission)
            write_reports(grades, out_dir)  # what finished is kept
            raise GradingInterrupted(len(grades), len(notebooks)) from None
    grades.sort(key=lambda g: g.submission)
    write_reports(grades, out_dir)
    return grades


class GradingInterrupted(KeyboardInterrupt):
    """Ctrl-C while grading: the reports of the submissions already graded were written."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"{done} of {total}")
        self.done, self.total = done, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_utils.teaching.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="report folder (default: grades)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook, kernel start-up and imports included (default: 900)")
    parser.add_argument("--profile", default="smoke", help="LAB_PROFILE for the notebooks (default: smoke)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default: 1)")
    args = parser.parse_args(argv)
    try:
        grades = grade_all(args.submissions, args.out, timeout=args.timeout, profile=args.profile, jobs=args.jobs)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except GradingInterrupted as stopped:
        print(f"interrupted: {stopped.done} of {stopped.total} submissions graded; their reports are in "
              f"{args.out / 'grades.csv'} and {args.out / 'grades.md'}", file=sys.stderr)
        return 130
    header, rows = grade_table(grades)
    print("\t".join(header))
    for row in rows:
        print("\t".join(row))
    print(f"Reports: {args.out / 'grades.csv'}, {args.out / 'grades.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
