"""What a notebook reports to the grader: every check's outcome and every metric, one JSON line each.

When ``$LAB_CHECKS_FILE`` is set (``lab_utils.teaching.grading`` sets it), each record is appended to that file as
one line. Appending one short line in a single write is what lets several cells add to the file without rewriting
it; the grader skips a line cut short by a killed kernel.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from lab_utils.teaching.compare import to_numpy

CHECKS_FILE_ENV = "LAB_CHECKS_FILE"


def append_record(record: dict[str, Any]) -> None:
    path = os.environ.get(CHECKS_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as err:
        print(f"(could not record to ${CHECKS_FILE_ENV}={path}: {err})", file=sys.stderr)


def _number(value: Any, name: str) -> float | str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return float(to_numpy(value))
    except (TypeError, ValueError):
        raise ValueError(
            f"record_metric({name!r}, ...): the value must be a number, string or None (or a dict of them), "
            f"got {type(value).__name__}."
        ) from None


def record_metric(name: str, value: Any) -> None:
    """Log a figure the notebook reached (e.g. darker-female recall) for the grader's table.

    A mapping is logged as one metric per key, ``name.key``, so a dict of per-group recalls can be passed whole.
    Without ``$LAB_CHECKS_FILE`` this does nothing, so notebooks call it unconditionally.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"record_metric needs a non-empty metric name, got {name!r}.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            record_metric(f"{name}.{key}", item)
        return
    append_record({"kind": "metric", "name": name, "value": _number(value, name)})
