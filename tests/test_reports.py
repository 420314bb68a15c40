"""What Labs 1 and 4 print about a gap, and the summary table the runner collects."""

from __future__ import annotations

import json

import numpy as np

from lab_utils.evaluation import metrics, reports


def evaluation(recall_lighter: float, recall_darker: float, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.r_[np.repeat(np.arange(4), n), np.full(n, -1)]
    labels = (groups >= 0).astype(np.float32)
    rate = np.where(groups < 2, recall_lighter, recall_darker)
    probs = np.where(labels == 1, (rng.random(groups.size) < rate).astype(np.float32), 0.1)
    return metrics.evaluate_detector(probs, labels, groups, n_boot=200, seed=seed)


def test_the_gap_is_described_only_as_far_as_its_interval_allows():
    assert "lighter faces are detected more often" in reports.describe_gap("CNN", evaluation(0.99, 0.80))
    assert "no gap can be claimed" in reports.describe_gap("CNN", evaluation(0.90, 0.90))
    assert "darker faces are detected more often" in reports.describe_gap("CNN", evaluation(0.80, 0.99))
    failing = reports.describe_gap("DB-VAE", evaluation(0.05, 0.04))
    assert "misses most faces in every group" in failing


def test_summary_files_and_metric_keys(tmp_path):
    results = {"CNN": evaluation(0.99, 0.8), "DB-VAE": evaluation(0.97, 0.9, seed=1)}
    table = reports.write_summary(tmp_path, results, profile="smoke", seed=3, n_faces=800, n_nonfaces=200)
    assert table.splitlines()[0] == "Profile 'smoke', seed 3, 800 test faces, 200 non-faces."
    assert [line.split(" | ")[0] for line in table.splitlines()[4:]] == ["| CNN", "| DB-VAE"]
    assert (tmp_path / "fairness_summary.md").read_text().endswith(table + "\n")
    saved = json.loads((tmp_path / "fairness_summary.json").read_text())
    assert saved["seed"] == 3 and set(saved["results"]) == {"CNN", "DB-VAE"}
    assert [reports.metric_key(name) for name in results] == ["cnn", "dbvae"]
