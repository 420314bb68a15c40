"""Words and tables from evaluated detectors: what Labs 1 and 4 print and what the runner collects.

A gap is described only as far as its interval allows, so a notebook's prose never claims more than its run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from lab_utils import GROUPS
from lab_utils.evaluation.metrics import SMALL_GROUP
from lab_utils.evaluation.results import DetectorEvaluation
from lab_utils.core.files import write_text_atomic

SUMMARY_NAME = "fairness_summary"


def describe_gap(name: str, result: DetectorEvaluation) -> str:
    """One line on the lighter-darker recall gap and what its 95% interval allows one to say, plus a warning
    when every group fails (a small gap between groups that all fail is no achievement)."""
    gap = result.lighter_darker_gap
    smallest = min((r.n for r in result.recall.values() if r.n), default=0)
    side = ("no gap could be computed (a group has no faces or no interval): nothing can be said" if not
            all(map(math.isfinite, (gap.value, gap.low, gap.high))) else
            f"only {smallest} faces in the smallest group: no conclusion about a gap can be drawn, whatever the "
            "interval (a bootstrap over so few faces understates the uncertainty)" if smallest < SMALL_GROUP else
            "lighter faces are detected more often" if gap.low > 0 else
            "darker faces are detected more often" if gap.high < 0 else
            "the interval includes zero: no gap can be claimed")
    line = (f"{name}: lighter - darker recall {100 * gap.value:+.1f} pts "
            f"[{100 * gap.low:+.1f}, {100 * gap.high:+.1f}] -> {side}")
    if result.expected_accuracy.value < 0.5:
        line += (f"\n    but the mean group recall is only {100 * result.expected_accuracy.value:.0f}%: "
                 "this detector misses most faces in every group")
    return line


def metric_key(model_name: str) -> str:
    """The grader's column prefix for a model's name: "DB-VAE" -> "dbvae", "CNN" -> "cnn"."""
    return "".join(ch for ch in model_name.lower() if ch.isalnum())


def summary_table(results: Mapping[str, DetectorEvaluation], *, header: str) -> str:
    """A Markdown table, one row per model: recall per group, gap, FPR, E[A] and Var[A]."""
    lines = [header, "",
             "| model | " + " | ".join(f"{g} recall" for g in GROUPS)
             + " | lighter - darker | FPR | E[A] | Var[A] (%^2) |",
             "|---|" + "---:|" * (len(GROUPS) + 4)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * r.recall[g].value:.1f}" for g in GROUPS)
                     + f" | {100 * r.lighter_darker_gap.value:+.1f} | {100 * r.fpr.value:.2f}% "
                     f"| {100 * r.expected_accuracy.value:.1f} | {r.var_accuracy_pct2_ddof0.value:.1f} |")
    return "\n".join(lines)


def write_summary(folder: Path, results: Mapping[str, DetectorEvaluation], *, profile: str, seed: int,
                  n_faces: int, n_nonfaces: int) -> str:
    """Write ``fairness_summary.md`` and ``.json`` to ``folder`` (atomically) and return the table."""
    table = summary_table(results, header=f"Profile '{profile}', seed {seed}, {n_faces} test faces, "
                                          f"{n_nonfaces} non-faces.")
    folder = Path(folder)
    write_text_atomic(folder / f"{SUMMARY_NAME}.md", "## Per-group results (notebook 4)\n\n" + table + "\n")
    write_text_atomic(folder / f"{SUMMARY_NAME}.json", json.dumps(
        {"profile": profile, "seed": seed, "results": {n: r.to_dict() for n, r in results.items()}}, indent=2))
    return table
