"""The committed results carry Wilson intervals from their counts, and the script that made them keeps them so."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from lab_utils.evaluation.metrics import evaluate_detector
from lab_utils.evaluation.results import DetectorEvaluation

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("recompute_intervals", ROOT / "benchmarks" / "recompute_intervals.py")
recompute_intervals = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(recompute_intervals)


def old_style(evaluation: DetectorEvaluation) -> dict:
    """What a file written before the Wilson intervals held: bootstrap intervals, no method named."""
    d = json.loads(json.dumps(evaluation.to_dict()))
    for estimate in [*d["recall"].values(), d["fpr"], d["accuracy"]]:
        estimate["low"] = estimate["high"] = estimate["value"]  # the zero-width percentile interval
    for value in [*d.values(), *d["recall"].values(), *d["mean_probability"].values()]:
        if isinstance(value, dict):
            value.pop("method", None)
    return d


def test_a_file_of_old_intervals_is_rewritten_to_what_evaluate_detector_gives_now(tmp_path):
    groups = np.r_[np.repeat(np.arange(4), 250), np.full(1000, -1)]
    labels = (groups >= 0).astype(int)
    probs = np.r_[np.full(500, 0.9), np.linspace(0.3, 0.9, 500), np.full(1000, 0.1)]
    now = evaluate_detector(probs, labels, groups, n_boot=100)
    old = {"meta": {"command": "x"}, "records": {"cnn": [{"seed": 0, "evaluation": old_style(now), "ap": {}}]},
           "probe": {"probe_accuracy": 0.7}}
    (tmp_path / "run.json").write_text(json.dumps(old))
    assert recompute_intervals.main(["--results", str(tmp_path), "--check"]) == 1
    assert recompute_intervals.main(["--results", str(tmp_path)]) == 0
    new = json.loads((tmp_path / "run.json").read_text())
    assert DetectorEvaluation.from_dict(new["records"]["cnn"][0]["evaluation"]) == now
    assert set(new["meta"]["intervals"]) == {"wilson", "bootstrap-percentile", "student-t-over-seeds"}
    assert "scikit-learn" in new["meta"]["ap_ranking"]  # labelled: AP cannot be recomputed from the file
    assert new["probe"] == {"probe_accuracy_in_sample": 0.7}
    assert recompute_intervals.main(["--results", str(tmp_path), "--check"]) == 0  # idempotent


def test_the_committed_results_are_current_and_no_proportion_has_a_zero_width_interval():
    assert recompute_intervals.main(["--check"]) == 0, "run python benchmarks/recompute_intervals.py"

    def estimates(x):
        if isinstance(x, dict):
            if {"value", "low", "high", "n"} <= set(x):
                yield x
            for v in x.values():
                yield from estimates(v)
        elif isinstance(x, list):
            for v in x:
                yield from estimates(v)

    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        if path.name.endswith(".partial.json"):  # the checkpoint of a run in progress, not a result
            continue
        data = json.loads(path.read_text())
        assert "intervals" in (data.get("meta", data)), f"{path.name} does not record its interval methods"
        for e in estimates(data):
            assert e["method"] in ("wilson", "bootstrap-percentile"), path.name
            if e["method"] == "wilson" and e["n"] > 0:
                assert e["high"] > e["low"], f"{path.name}: zero-width interval of a proportion {e}"
