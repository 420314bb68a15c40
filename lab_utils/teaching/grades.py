"""A grade and its reports: one submission's checks, metrics, status and runtime, read from the records its notebook
wrote, and the ``grades.csv`` / ``grades.md`` tables over all submissions."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab_utils.core.files import write_text_atomic


@dataclass
class Grade:
    """One submission's outcome: per-check status and message, recorded metrics, overall status, runtime."""

    submission: str
    status: str
    runtime_s: float
    checks: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float | str | None] = field(default_factory=dict)

    @property
    def n_passed(self) -> int:
        return sum(status == "pass" for status in self.checks.values())


def read_records(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, float | str | None]]:
    """Check statuses, check messages and metrics from a checks file; later records win, torn lines are skipped."""
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    metrics: dict[str, float | str | None] = {}
    if not path.exists():
        return statuses, messages, metrics
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            kind, name = record["kind"], str(record["name"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a killed kernel, or not ours
        if kind == "check":
            statuses[name] = str(record.get("status", "error"))
            messages[name] = str(record.get("message", ""))
        elif kind == "metric":
            metrics[name] = record.get("value")
    return statuses, messages, metrics


def _columns(values: Iterable[Iterable[str]]) -> list[str]:
    """Names in first-seen order across submissions, so columns are stable for a given set of notebooks."""
    return list(dict.fromkeys(name for names in values for name in names))


def _metric_text(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def grade_table(grades: list[Grade]) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the CSV and the Markdown report."""
    check_names = _columns(g.checks for g in grades)
    metric_names = _columns(g.metrics for g in grades)
    header = ["submission", "status", "runtime_s", "passed", *check_names, *(f"metric:{m}" for m in metric_names)]
    rows = [[g.submission, g.status, f"{g.runtime_s:.1f}", f"{g.n_passed}/{len(g.checks)}",
             *(g.checks.get(name, "") for name in check_names),  # blank: not an exercise of this notebook
             *(_metric_text(g.metrics.get(name)) for name in metric_names)] for g in grades]
    return header, rows


def write_reports(grades: list[Grade], out_dir: Path) -> tuple[Path, Path]:
    """grades.csv and grades.md (with each failed check's message as feedback), written atomically."""
    header, rows = grade_table(grades)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    csv_path, md_path = Path(out_dir) / "grades.csv", Path(out_dir) / "grades.md"
    write_text_atomic(csv_path, buffer.getvalue())

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["# Grades", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    lines += ["", "## Feedback", ""]
    for g in grades:
        failed = [(name, status) for name, status in g.checks.items() if status != "pass"]
        if not failed and g.status == "ok":
            continue
        lines.append(f"### {g.submission}")
        if g.status != "ok":
            lines.append(f"- status: {g.status}")
        lines += [f"- **{name}** ({status}): {g.messages.get(name, '')}" for name, status in failed]
        lines.append("")
    write_text_atomic(md_path, "\n".join(lines).rstrip() + "\n")
    return csv_path, md_path
