"""Rewrite the committed results' intervals of proportions from the counts they store; train nothing.

    python benchmarks/recompute_intervals.py            # every benchmarks/results/*.json, in place
    python benchmarks/recompute_intervals.py --check    # exit 1 if any file would change

Every per-seed evaluation in a results file stores each proportion (a group's recall, the FPR, accuracy) as a
rate and its ``n``, so the count is ``rate * n`` and its Wilson interval follows exactly; the files written before
the Wilson intervals held percentile-bootstrap ones, [100, 100] for every perfect group. Intervals of gaps and
spreads were bootstrapped then and are now, by the same code on the same draws, so they stay as they are and are
labelled. Every file also records, under ``"intervals"``, the methods its numbers use (``{}``: none).

What cannot be recomputed from a results file is labelled instead, for the reruns to replace: the per-group AP of
files written before AP ranked ties as scikit-learn does (``meta["ap_ranking"]``), a probe accuracy measured
on the faces the probe was fitted on (renamed ``probe_accuracy_in_sample``), and latent_diagnostics' probe AUC
from before the one probe protocol (``meta["probe_protocol"]``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils import GROUPS  # noqa: E402
from lab_utils.evaluation import intervals  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EVALUATION_KEYS = {"settings", "recall", "fpr", "accuracy", "lighter_darker_gap"}
PER_SEED = intervals.methods_record(intervals.WILSON, intervals.BOOTSTRAP, intervals.STUDENT_T)
OLD_PROBE = ("out-of-fold ridge regression of skin tone on the latent means (before the labs' one probe protocol, "
             "lab_utils.evaluation.probes.cross_validated_probe); a rerun replaces it")
OLD_AP = ("computed before AP ranked tied scores as scikit-learn does (every tied non-face ranked above every "
          "tied face) and on float32 probabilities (every logit above 17.3 tied at 1.0); a rerun replaces it")


def _wilson(estimate: dict, ci: float) -> None:
    k = intervals.count_from_rate(estimate["value"], estimate["n"])
    low, high = intervals.wilson_interval(k, estimate["n"], ci)
    estimate.update(low=None if estimate["n"] == 0 else low, high=None if estimate["n"] == 0 else high,
                    method=intervals.WILSON)


def _evaluation(d: dict) -> int:
    """Recompute one ``DetectorEvaluation.to_dict()`` in place; returns how many intervals were rewritten."""
    ci = float(d["settings"]["ci"])
    proportions = [d["recall"][g] for g in GROUPS] + [d["fpr"], d["accuracy"]]
    for estimate in proportions:
        _wilson(estimate, ci)
    for key, value in d.items():
        if isinstance(value, dict) and {"value", "low", "high", "n"} <= set(value):
            value.setdefault("method", intervals.BOOTSTRAP)
    for estimate in d["mean_probability"].values():
        estimate.setdefault("method", intervals.BOOTSTRAP)
    return len(proportions)


def _walk(x: Any, counts: dict[str, int]) -> None:
    if isinstance(x, dict):
        if EVALUATION_KEYS <= set(x):
            counts["intervals"] += _evaluation(x)
            counts["evaluations"] += 1
            return
        if "probe_accuracy" in x:
            x["probe_accuracy_in_sample"] = x.pop("probe_accuracy")
        for value in x.values():
            _walk(value, counts)
    elif isinstance(x, list):
        for value in x:
            _walk(value, counts)


def recompute(data: Any) -> tuple[Any, dict[str, int]]:
    """The file's JSON with Wilson intervals and its ``"intervals"`` record; the counts of what changed."""
    if isinstance(data, list):  # written before every file recorded its intervals (backend_tests.json)
        data = {"runs": data}
    counts = {"evaluations": 0, "intervals": 0}
    _walk(data, counts)
    holder = data["meta"] if "meta" in data else data
    holder["intervals"] = PER_SEED if counts["evaluations"] else intervals.methods_record()
    records = data.get("records", {})
    if counts["evaluations"] and any("ap" in r for recs in records.values() for r in recs):
        holder.setdefault("ap_ranking", OLD_AP)
    if any("probe_auc" in epoch for run in data.get("runs", []) if isinstance(run, dict)
           for epoch in run.get("per_epoch", [])):
        holder.setdefault("probe_protocol", OLD_PROBE)
    return data, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(args.results.glob("*.json")):
        if path.name.endswith(".partial.json"):
            continue
        before = path.read_text()
        data, counts = recompute(json.loads(before))
        after = json.dumps(data, indent=1) + "\n"
        if json.loads(after) == json.loads(before):
            continue
        stale.append(path.name)
        print(f"{path.name}: {counts['intervals']} intervals in {counts['evaluations']} evaluations recomputed")
        if not args.check:
            write_text_atomic(path, after)
    if args.check and stale:
        print(f"{len(stale)} file(s) would change: run python benchmarks/recompute_intervals.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
