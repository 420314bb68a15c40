"""Grading: each submission runs in its own process; wrong, unfinished, raising and hanging ones are graded
as such and never stop the others. One grading run (~30-60 s on 2 cores) is shared by the tests."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from lab_utils.teaching import grades, grading

# The grader's limit covers the kernel's start-up and imports too. The correct submissions need ~5-15 s each on an
# idle 2-core machine; 120 s is met by one several times slower or busier, so the limit only ever decides the
# submission that loops for ever. It sorts first and runs alongside the others, so its limit costs little extra time.
HANG_TIMEOUT = 120.0

SETUP = "from keras import ops\nfrom lab_utils.teaching import checks, records"
KL_OK = "def kl(mu, logvar):\n    return 0.5 * ops.sum(ops.exp(logvar) + mu**2 - 1.0 - logvar, axis=-1)"
KL_WRONG = "def kl(mu, logvar):\n    return 0.5 * ops.sum(ops.exp(logvar) + mu**2 - 1.0 + logvar, axis=-1)"
KL_TODO = ("def kl(mu, logvar):\n    # TODO: complete this part\n"
           "    raise NotImplementedError(\"Exercise not finished: kl\")")
REPARAM_OK = "def reparameterize(mu, logvar, eps):\n    return mu + ops.exp(0.5 * logvar) * eps"
CHECK_CELLS = [
    "kl = checks.check_kl_divergence(kl)",
    "reparameterize = checks.check_reparameterize(reparameterize)",
    "import numpy as np\ngap = float(np.asarray(kl(np.zeros((2, 3), 'float32'), np.zeros((2, 3), 'float32')))[0])\n"
    "records.record_metric('gap', gap + 0.25)",
]


def _notebook(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _with_stale_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """As submitted: outputs and counts from the student's own run, including an old error."""
    for count, cell in enumerate(nb.cells, start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("error", ename="OldError", evalue="from the student's run",
                                               traceback=[])]
    return nb


SUBMISSIONS = {
    "alice_correct": _with_stale_outputs(_notebook(SETUP, KL_OK, REPARAM_OK, *CHECK_CELLS)),
    "bob_wrong_loss": _notebook(SETUP, KL_WRONG, REPARAM_OK, *CHECK_CELLS),
    "carol_unfinished": _notebook(SETUP, KL_TODO, REPARAM_OK, *CHECK_CELLS),
    # Raises in a cell before the checks; allow_errors still runs (and grades) the cells after it.
    "dave_raises": _notebook(SETUP, KL_OK, "1 / 0", REPARAM_OK, *CHECK_CELLS),
    # Passes the first check, then hangs: the check already recorded must survive the kill.
    "abe_hangs": _with_stale_outputs(
        _notebook(SETUP, KL_OK, CHECK_CELLS[0], "while True:\n    pass", REPARAM_OK, *CHECK_CELLS[1:])),
    # Another lab's notebook in the same folder: only its own exercise counts.
    "erin_other_lab": _notebook(SETUP, REPARAM_OK, CHECK_CELLS[1]),
    # Prints 12 MB (bounded) before its checks: graded, with the output cut at the grader's cap.
    "fay_prints_a_lot": _notebook(SETUP, KL_OK, REPARAM_OK,
                                  "for _ in range(600):\n    print('x' * 20_000)", *CHECK_CELLS),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submissions"
    subs.mkdir()
    for name, nb in SUBMISSIONS.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    (subs / "zz_not_json.ipynb").write_text("{ this is not a notebook")
    (subs / "zz_folder.ipynb").mkdir()  # neither may stop the others being graded
    (subs / "zz_link.ipynb").symlink_to(subs / "missing.ipynb")
    out = root / "grades"
    start = time.monotonic()
    code = grading.main([str(subs), "--out", str(out), "--timeout", str(HANG_TIMEOUT), "--jobs", "2"])
    elapsed = time.monotonic() - start
    with open(out / "grades.csv", newline="") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    return code, rows, out, elapsed


def test_exit_code_and_every_submission_has_a_row(graded):
    code, rows, _, _ = graded
    assert code == 0
    assert sorted(rows) == sorted([*SUBMISSIONS, "zz_not_json", "zz_folder", "zz_link"])


def test_correct_submission_passes_everything_and_records_metrics(graded):
    row = graded[1]["alice_correct"]
    assert row["status"] == "ok"
    assert row["kl_divergence"] == "pass" and row["reparameterize"] == "pass" and row["passed"] == "2/2"
    assert float(row["metric:gap"]) == pytest.approx(0.25)
    assert float(row["runtime_s"]) > 0


def test_exercises_of_other_notebooks_are_blank_not_counted(graded):
    row = graded[1]["erin_other_lab"]
    assert row["reparameterize"] == "pass" and row["kl_divergence"] == "" and row["passed"] == "1/1"
    assert graded[1]["zz_not_json"]["passed"] == "0/0"


def test_wrong_loss_fails_only_that_exercise(graded):
    row = graded[1]["bob_wrong_loss"]
    assert row["status"] == "ok"
    assert row["kl_divergence"] == "fail" and row["reparameterize"] == "pass"
    # The reference replaced the wrong function, so the later metric is the correct one.
    assert float(row["metric:gap"]) == pytest.approx(0.25)


def test_unfinished_exercise_is_not_done(graded):
    row = graded[1]["carol_unfinished"]
    assert row["status"] == "ok"
    assert row["kl_divergence"] == "not_done" and row["reparameterize"] == "pass"


def test_raising_cell_sets_error_status_but_later_checks_are_graded(graded):
    row = graded[1]["dave_raises"]
    assert row["status"] == "error: ZeroDivisionError: division by zero"
    assert row["kl_divergence"] == "pass" and row["reparameterize"] == "pass"


def test_hanging_submission_times_out_keeps_earlier_checks_and_is_killed(graded):
    _, rows, out, elapsed = graded
    row = rows["abe_hangs"]
    assert row["status"] == f"timeout after {HANG_TIMEOUT:g} s in cell 4 of 7"
    assert row["kl_divergence"] == "pass" and row["reparameterize"] == grading.NOT_RUN and row["passed"] == "1/2"
    assert HANG_TIMEOUT <= float(row["runtime_s"]) < HANG_TIMEOUT + 60  # killed soon after its limit
    # The others were graded alongside it (--jobs 2), not one after another: the wall time is well under the sum of
    # the runtimes, a ratio that holds on a busy machine as on an idle one.
    total = sum(float(r["runtime_s"]) for r in rows.values())
    assert elapsed < 0.8 * total + 20, (elapsed, total)
    executed = nbformat.read(out / "executed" / "abe_hangs.ipynb", as_version=4)
    assert any(o.get("text", "").startswith("PASS kl_divergence") for o in executed.cells[2].outputs)


def _survivors(stem: str) -> list[int]:
    """Live processes started for one graded submission (their environment names its temporary folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() \
                    and f"grade-{stem}-".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    for pid in found:  # clean up before failing, so a regression does not leave a spinning kernel behind
        os.kill(pid, signal.SIGKILL)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_no_kernel_survives_the_timeout(graded):
    assert _survivors("abe_hangs") == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_interrupt_kills_a_running_notebook_at_once(tmp_path):
    started = tmp_path / "started"
    path = tmp_path / "spins.ipynb"
    nbformat.write(_notebook(f"open({str(started)!r}, 'w').close()\nwhile True:\n    pass"), path)
    stop = threading.Event()

    def stop_once_running() -> None:
        deadline = time.monotonic() + 300
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()

    threading.Thread(target=stop_once_running, daemon=True).start()
    grade = grading.grade_submission(path, timeout=900, stop=stop)  # the limit only catches a stop that never comes
    assert grade.status == "interrupted in cell 1 of 1"  # stopped, not timed out
    assert _survivors("spins") == []


def test_unreadable_notebook_is_an_error_row(graded):
    row = graded[1]["zz_not_json"]
    assert row["status"].startswith("error: ") and "json" in row["status"].lower()


def test_markdown_report_has_the_table_and_feedback(graded):
    text = (graded[2] / "grades.md").read_text()
    assert "| submission | status |" in text
    assert "### bob_wrong_loss" in text and "**kl_divergence** (fail): wrong value" in text
    assert "### carol_unfinished" in text and "NOT DONE" in text
    assert "### alice_correct" not in text
    assert "**reparameterize** (not run): the notebook stopped before this check ran" in text  # abe_hangs


def test_bad_arguments_give_clear_errors(tmp_path, capsys):
    assert grading.main([str(tmp_path / "missing")]) == 2
    assert "No submissions folder" in capsys.readouterr().err
    assert grading.main([str(tmp_path)]) == 2
    assert "No .ipynb files" in capsys.readouterr().err
    (tmp_path / "a.ipynb").write_text("{}")
    assert grading.main([str(tmp_path), "--profile", "huge"]) == 2
    assert "Unknown profile" in capsys.readouterr().err
    assert grading.main([str(tmp_path), "--jobs", "0"]) == 2
    assert "jobs must be" in capsys.readouterr().err


def test_help_says_it_is_not_a_sandbox(capsys):
    with pytest.raises(SystemExit):
        grading.main(["--help"])
    text = capsys.readouterr().out
    assert "NOT A SECURITY SANDBOX" in text and "docker run --rm --network none" in text


def test_read_records_skips_torn_lines_and_keeps_the_last_outcome(tmp_path):
    path = tmp_path / "checks.jsonl"
    path.write_text('{"kind": "check", "name": "kl", "status": "fail", "message": "m"}\n'
                    '{"kind": "check", "name": "kl", "status": "pass", "message": ""}\n'
                    '{"kind": "metric", "name": "gap", "value": NaN}\n'
                    '{"kind": "metric", "name": "re')
    statuses, messages, metrics = grades.read_records(path)
    assert statuses == {"kl": "pass"} and list(metrics) == ["gap"]


DETACH = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open({pid_file!r}, "w").write(str(child.pid))
"""


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_process_the_submission_detached_does_not_outlive_its_grade(tmp_path):
    pid_file = tmp_path / "detached.pid"
    path = tmp_path / "detaches.ipynb"
    nbformat.write(_notebook(DETACH.format(pid_file=str(pid_file)), "import time\ntime.sleep(600)"), path)
    stop = threading.Event()

    def stop_once_detached() -> None:  # ends the grade once the submission has detached, however long that took
        deadline = time.monotonic() + 900
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()

    threading.Thread(target=stop_once_detached, daemon=True).start()
    grade = grading.grade_submission(path, timeout=900, stop=stop)
    assert grade.status.startswith("interrupted in cell 2")
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().split()[2]
    except FileNotFoundError:
        state = "gone"
    if state not in ("gone", "Z"):  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert state in ("gone", "Z"), f"the detached process {pid} survived the grade ({state})"


def test_a_folder_or_a_broken_link_named_ipynb_is_an_error_row(graded):
    _, rows, _, _ = graded
    assert rows["zz_folder"]["status"] == "error: zz_folder.ipynb is a folder, not a notebook file"
    assert rows["zz_link"]["status"] == "error: zz_link.ipynb is a broken link, not a notebook file"


def test_output_is_capped_and_the_grade_says_so(graded):
    _, rows, out, _ = graded
    row = rows["fay_prints_a_lot"]
    assert row["status"] == f"ok (output cut at {grading.MAX_OUTPUT_BYTES / 1e6:g} MB)"
    assert row["kl_divergence"] == "pass" and row["reparameterize"] == "pass"
    executed = out / "executed" / "fay_prints_a_lot.ipynb"
    assert executed.stat().st_size < 2 * grading.MAX_OUTPUT_BYTES


def test_out_naming_a_file_is_a_clear_error(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(SUBMISSIONS["erin_other_lab"], subs / "a.ipynb")
    (tmp_path / "grades").write_text("not a folder")
    assert grading.main([str(subs), "--out", str(tmp_path / "grades")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_ctrl_c_keeps_the_grades_already_finished(tmp_path, monkeypatch, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a_first", "b_second"):
        nbformat.write(SUBMISSIONS["erin_other_lab"], subs / f"{name}.ipynb")

    def fake(notebook, **kwargs):
        if notebook.stem == "b_second":
            raise KeyboardInterrupt
        return grading.Grade(notebook.stem, "ok", 1.0, {"reparameterize": "pass"})

    monkeypatch.setattr(grading, "grade_submission", fake)
    assert grading.main([str(subs), "--out", str(tmp_path / "grades")]) == 130
    assert "interrupted: 1 of 2 submissions graded" in capsys.readouterr().err
    with open(tmp_path / "grades" / "grades.csv", newline="") as handle:
        assert [row["submission"] for row in csv.DictReader(handle)] == ["a_first"]
