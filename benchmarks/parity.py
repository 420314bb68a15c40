"""Do two runs of the multi-seed benchmark agree, seed by seed? (e.g. before and after a rewrite of the core)

    python benchmarks/parity.py BEFORE.json AFTER.json [--name parity]

Pairs the records of ``benchmarks/debias.py`` result files by variant and seed and reports, per seed, each run's
lighter-darker recall gap, darker-group recall, FPR and E[A], the after-minus-before differences with their mean
and standard deviation, and, for scale, the seed-to-seed spread of the gap in the first file. The same seed means
the same data and initialisation, so a difference comes from the code (or run-to-run nondeterminism), not the data.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402

METRICS = {
    "gap": lambda r: r["evaluation"]["lighter_darker_gap"]["value"],
    "darker recall": lambda r: (r["evaluation"]["recall"]["DF"]["value"] + r["evaluation"]["recall"]["DM"]["value"]) / 2,
    "FPR": lambda r: r["evaluation"]["fpr"]["value"],
    "E[A]": lambda r: r["evaluation"]["expected_accuracy"]["value"],
}
TIMING = ("train_seconds", "detector_seconds")
"""What may differ between two runs of the same code: the clock."""


def records(path: Path) -> dict[tuple[str, int], dict]:
    data = json.loads(path.read_text())
    return {(name, r["seed"]): {k: v for k, v in r.items() if k not in TIMING}
            for name, runs in data["records"].items() for r in runs}


def leaves(x: object, path: str = "") -> dict[str, object]:
    """Every value of a nested record by its path, so two runs can be compared value by value."""
    if isinstance(x, dict):
        return {k: v for key, item in x.items() for k, v in leaves(item, f"{path}.{key}").items()}
    if isinstance(x, list):
        return {k: v for i, item in enumerate(x) for k, v in leaves(item, f"{path}[{i}]").items()}
    return {path: x}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--name", default="parity")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    before, after = records(args.before), records(args.after)
    common = sorted(set(before) & set(after))
    if not common:
        parser.error("the two files share no (variant, seed) pair")
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:])
    lines = [f"# Parity: {args.after.name} against {args.before.name}", "", f"Command: `{command}`", "",
             "Percentage points (FPR in %). Differences are after minus before, on the same seed.", "",
             "| variant | seed | " + " | ".join(f"{m} before | {m} after" for m in METRICS) + " |",
             "|---|---:|" + "---:|---:|" * len(METRICS)]
    diffs: dict[str, dict[str, list[float]]] = {}
    for variant, seed in common:
        b, a = before[(variant, seed)], after[(variant, seed)]
        cells = []
        for m, get in METRICS.items():
            cells += [f"{100 * get(b):.1f}", f"{100 * get(a):.1f}"]
            diffs.setdefault(variant, {}).setdefault(m, []).append(100 * (get(a) - get(b)))
        lines.append(f"| {variant} | {seed} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | seeds | " + " | ".join(f"{m}: mean diff ± sd" for m in METRICS)
              + " | gap: seed-to-seed sd before |", "|---|---:|" + "---:|" * (len(METRICS) + 1)]
    summary = {}
    for variant, by_metric in diffs.items():
        gaps_before = [100 * METRICS["gap"](before[k]) for k in common if k[0] == variant]
        spread = float(np.std(gaps_before, ddof=1)) if len(gaps_before) > 1 else float("nan")
        cells = [f"{np.mean(v):+.1f} ± {np.std(v, ddof=1) if len(v) > 1 else float('nan'):.1f}"
                 for v in by_metric.values()]
        lines.append(f"| {variant} | {len(by_metric['gap'])} | " + " | ".join(cells) + f" | {spread:.1f} |")
        same = [leaves(before[k]) == leaves(after[k]) for k in common if k[0] == variant]
        summary[variant] = {"diffs": by_metric, "gap_sd_before": spread, "identical_seeds": int(sum(same))}
    lines += ["", "Every recorded value but the timings (training history, recalls, intervals, FPR, AUC and AP, the share "
              "of darker faces drawn, the ESS) identical, "
              "before and after: " + "; ".join(f"{v} on {s['identical_seeds']} of {len(s['diffs']['gap'])} seed(s)"
                                               for v, s in summary.items()) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text_atomic(args.out / f"{args.name}.md", text)
    write_text_atomic(args.out / f"{args.name}.json", json.dumps({"command": command, "intervals": methods_record(),
                                                                   "pairs": [list(k) for k in common],
                                                                   "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
