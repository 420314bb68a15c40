"""benchmarks/lab_timing.py: the order of its runs, what it reads from the main job's output, and its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "lab_timing", Path(__file__).resolve().parent.parent / "benchmarks" / "lab_timing.py")
lab_timing = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lab_timing)

MAIN_JOB_OUTPUT = """Running 5 notebook(s) at profile 'cpu'; executed copies -> /tmp/x/run-cpu
  01_baseline_cnn.ipynb: 250 s, 5 figure(s)
  02_vae.ipynb: 241 s, 6 figure(s)
  05_beyond_resampling.ipynb: 457 s, 5 figure(s)
"""


def test_reads_the_seconds_per_notebook_the_main_job_prints():
    assert dict(lab_timing.NOTEBOOK_SECONDS.findall(MAIN_JOB_OUTPUT)) == {
        "01_baseline_cnn": "250", "02_vae": "241", "05_beyond_resampling": "457"}


def test_the_table_has_a_row_per_run_and_the_ratio_of_the_means():
    runs = [{"which": w, "notebooks": {"01_baseline_cnn": s, "02_vae": 2 * s}, "wall_s": float(s * 3),
             "load_after": 1.0} for w, s in (("before", 10), ("after", 12), ("after", 14), ("before", 10))]
    meta = {"name": "t", "profile": "cpu", "command": "c", "machine": "m", "before": "abc", "after": "def"}
    table = lab_timing.markdown(runs, meta)
    assert "| run | Lab 1 | Lab 2 | wall (s) | load after |" in table
    assert "| after | 12 | 24 | 36 | 1.0 |" in table
    assert meta["after_over_before"] == pytest.approx(39 / 30)
    assert "after / before = 1.30" in table


def test_refuses_a_folder_that_is_not_a_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit):
        lab_timing.main(["--before", str(tmp_path)])
    assert "is not a checkout of this project" in capsys.readouterr().err
