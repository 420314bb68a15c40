"""Galleries: one labelled row per group plus non-faces, graceful without groups, clear errors, atomic saving."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from lab_utils.data.dataset import FaceDataset  # noqa: E402
from lab_utils.evaluation.galleries import save_figure, show_gallery, show_images  # noqa: E402


def dataset(with_groups: bool = True) -> FaceDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    labels = np.r_[np.ones(20), np.zeros(10)]
    attributes = {}
    if with_groups:  # DM has only 2 faces: fewer than per_group
        attributes["group"] = np.r_[np.repeat(np.arange(3), 6), [3, 3], np.full(10, -1)].astype(np.int8)
    return FaceDataset(images, labels, attributes, name="toy")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def row_labels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]


def test_gallery_has_a_row_per_group_and_one_of_nonfaces():
    fig = show_gallery(dataset(), per_group=4, title="toy")
    assert len(fig.axes) == 5 * 4
    labels = row_labels(fig)
    assert [label.split(":")[0] for label in labels[:4]] == ["LF", "LM", "DF", "DM"]
    assert "lighter female" in labels[0] and "(6 faces)" in labels[0] and "(2 faces)" in labels[3]
    assert labels[4].startswith("non-faces") and "(10)" in labels[4]
    assert sum(len(ax.images) for ax in fig.axes) == 3 * 4 + 2 + 4
    assert fig._suptitle.get_text() == "toy"


def test_gallery_without_groups_or_nonfaces():
    fig = show_gallery(dataset(with_groups=False), per_group=3)
    assert len(fig.axes) == 2 * 3
    assert [label.split("\n")[0] for label in row_labels(fig)] == ["faces", "non-faces"]
    assert len(show_gallery(dataset(), per_group=2, include_nonfaces=False).axes) == 4 * 2


def test_gallery_sample_depends_on_seed():
    def shown(seed):
        return [ax.images[0].get_array().sum() for ax in show_gallery(dataset(), per_group=3, seed=seed).axes
                if ax.images]
    assert shown(0) == shown(0) and shown(0) != shown(1)


def test_show_images_uint8_and_float():
    images = np.random.default_rng(1).random((5, 64, 64, 3)).astype(np.float32)
    fig = show_images(images, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6 and sum(len(ax.images) for ax in fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert len(show_images((images * 255).astype(np.uint8)).axes) == 5


@pytest.mark.parametrize("images, kwargs, match", [
    (np.zeros((2, 64, 64)), {}, "shape"),
    (np.full((2, 8, 8, 3), 2.0), {}, r"\[0, 1\]"),
    (np.zeros((2, 8, 8, 3), np.int64), {}, "dtype"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"titles": ["one"]}, "titles"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"ncols": 0}, "ncols"),
])
def test_show_images_rejects_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        show_images(images, **kwargs)


def test_show_gallery_rejects_bad_input():
    with pytest.raises(ValueError, match="FaceDataset"):
        show_gallery(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="per_group"):
        show_gallery(dataset(), per_group=0)


def test_save_figure_writes_a_png_and_no_temporary_files(tmp_path):
    path = save_figure(show_gallery(dataset(), per_group=2), tmp_path / "sub" / "gallery.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["gallery.png"]
