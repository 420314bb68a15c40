"""Each chart returns a Figure with the expected artists; save_figure writes atomically."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402

from lab_utils.evaluation.metrics import evaluate_detector  # noqa: E402
from lab_utils.evaluation.plots import (  # noqa: E402
    plot_group_recall,
    plot_history,
    plot_mean_probability,
    plot_resampling,
    plot_score_distributions,
    plot_tradeoff,
    save_figure,
)


def predictions(seed: int = 0, n: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.r_[np.repeat(np.arange(4), n), np.full(2 * n, -1)].astype(np.int8)
    labels = (groups >= 0).astype(float)
    return np.where(labels == 1, rng.beta(4, 2, len(groups)), rng.beta(1, 5, len(groups))), labels, groups


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def results():
    return {"CNN": evaluate_detector(*predictions(0), n_boot=50),
            "DB-VAE": evaluate_detector(*predictions(1), n_boot=50)}


def bars(fig: Figure) -> list:
    return [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]


def test_group_recall_bars_per_model_and_group_with_fpr_in_legend(results):
    fig = plot_group_recall(results)
    assert isinstance(fig, Figure)
    containers = bars(fig)
    assert len(containers) == 2 and all(len(c) == 4 for c in containers)
    assert [p.get_height() for p in containers[1]] == pytest.approx(
        [results["DB-VAE"].recall[g].value for g in ("LF", "LM", "DF", "DM")])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("CNN (FPR ") and legend[1].startswith("DB-VAE")
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()


def test_group_recall_takes_lists_and_saved_dicts(results):
    fig = plot_group_recall([r.to_dict() for r in results.values()] + [results["CNN"]])
    assert len(bars(fig)) == 3
    with pytest.raises(ValueError, match="No results"):
        plot_group_recall({})
    with pytest.raises(ValueError, match="expected what evaluate_detector returns"):
        plot_group_recall({"x": 0.5})


def test_mean_probability_bars(results):
    fig = plot_mean_probability({"a": results["CNN"]})
    (container,) = bars(fig)
    assert [p.get_height() for p in container] == pytest.approx(
        [results["CNN"].mean_probability[g].value for g in ("LF", "LM", "DF", "DM")])


def test_score_distributions_one_histogram_per_group_plus_nonfaces_and_threshold():
    fig = plot_score_distributions(*predictions(), threshold=0.3)
    ax = fig.axes[0]
    assert sum(isinstance(p, StepPatch) for p in ax.patches) == 5
    (line,) = ax.lines
    assert list(line.get_xdata()) == [0.3, 0.3]
    probs, labels, groups = predictions()
    keep = groups != 3
    with pytest.raises(ValueError, match="bins"):
        plot_score_distributions(probs, labels, groups, bins=0)
    fig = plot_score_distributions(probs[keep], labels[keep], groups[keep])
    assert sum(isinstance(p, StepPatch) for p in fig.axes[0].patches) == 4


def test_tradeoff_points_labels_series_and_errors():
    points = [{"label": "alpha 0", "accuracy": 0.90, "gap": 0.20, "accuracy_err": 0.01, "gap_err": 0.04,
               "series": "max"},
              {"label": "alpha 0.5", "accuracy": 0.88, "gap": 0.10, "accuracy_err": 0.01, "gap_err": 0.02,
               "series": "max"},
              {"label": "alpha 1", "accuracy": 0.85, "gap": 0.05, "accuracy_err": 0.02, "gap_err": 0.02,
               "series": "max"},
              {"label": "cnn", "accuracy": 0.89, "gap": 0.15}]
    ax = plot_tradeoff(points).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["alpha 0", "alpha 0.5", "alpha 1", "cnn"]
    (curve,) = [ln for ln in ax.lines if ln.get_marker() in ("None", "", None)]
    assert list(curve.get_xdata()) == pytest.approx([20, 10, 5])  # the series, joined in the order given
    assert list(curve.get_ydata()) == pytest.approx([90, 88, 85])
    with pytest.raises(ValueError, match="gap"):
        plot_tradeoff([{"label": "x", "accuracy": 0.9}])


def test_tradeoff_draws_a_collapsed_run_off_scale_with_its_value():
    points = [{"label": "a", "accuracy": 0.96, "gap": 0.14}, {"label": "b", "accuracy": 0.95, "gap": 0.12},
              {"label": "collapsed", "accuracy": 0.51, "gap": 0.02}]
    ax = plot_tradeoff(points).axes[0]
    assert ax.get_ylim()[0] > 90  # the two healthy runs keep a readable scale
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[2] == "collapsed (off scale: accuracy 51.0%)"
    assert [t.get_text() for t in ax.texts] == ["51.0%"]


def test_history_lines_and_key_choice():
    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.4, 2.0], "accuracy": [0.5, 0.6, 0.7]}
    ax = plot_history(history).axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["loss", "val_loss"]
    assert ax.lines[1].get_linestyle() == "--" and ax.lines[0].get_color() == ax.lines[1].get_color()
    assert len(plot_history(history, keys=["accuracy"]).axes[0].lines) == 1
    with pytest.raises(ValueError, match="not in the history"):
        plot_history(history, keys=["kl"])
    with pytest.raises(ValueError, match="non-empty"):
        plot_history({})


def test_resampling_share_vs_base_rate_and_ess():
    log = {"epochs": [1, 2, 3], "shares": [0.05, 0.09, 0.12], "base_rate": 0.05, "ess": [9000, 3000, 1500]}
    share_ax, ess_ax = plot_resampling(log).axes
    assert len(share_ax.lines) == 2 and len(ess_ax.lines) == 1
    assert list(share_ax.lines[0].get_ydata()) == pytest.approx([5, 9, 12])
    assert len(plot_resampling({**log, "base_rate": [0.05, 0.05, 0.06]}).axes[0].lines) == 2
    with pytest.raises(ValueError, match="equal lengths"):
        plot_resampling({**log, "ess": [1, 2]})
    with pytest.raises(ValueError, match="ess"):
        plot_resampling({k: v for k, v in log.items() if k != "ess"})


def test_save_figure_is_atomic_and_checks_the_suffix(tmp_path, results):
    fig = plot_group_recall(results)
    path = save_figure(fig, tmp_path / "sub" / "recall.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    save_figure(fig, path)  # overwriting replaces in place
    assert [p.name for p in path.parent.iterdir()] == ["recall.png"]
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "recall.xyz")
    assert not (tmp_path / "recall.xyz").exists()
