"""HDF5 storage: round trips, the reference lab's BGR files, every error path, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lab_utils.data import h5io
from lab_utils.data.dataset import FaceDataset


def make_dataset(n: int = 12, seed: int = 0) -> FaceDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    labels = (np.arange(n) % 2).astype(np.float32)
    group = np.where(labels == 1, np.arange(n) % 4, -1).astype(np.int8)
    attributes = {
        "group": group,
        "skin_tone": np.where(labels == 1, rng.random(n), np.nan).astype(np.float32),
        "source": np.array([f"img{i}" for i in range(n)]),
    }
    return FaceDataset(images, labels, attributes, name="tiny")


def write_reference_file(path, images_bgr: np.ndarray, labels: np.ndarray) -> None:
    """The reference lab's layout: only `images` (BGR, no attribute) and `labels` (N, 1)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images_bgr)
        f.create_dataset("labels", data=labels.reshape(-1, 1).astype(np.float32))


@pytest.mark.parametrize("compression", [None, "lzf", "gzip"])
def test_round_trip_keeps_everything(tmp_path, compression):
    ds = make_dataset()
    path = tmp_path / "sub" / "dir" / "faces.h5"
    h5io.save_dataset(ds, path, metadata={"seed": 3, "profile": "smoke"}, compression=compression)

    loaded = h5io.load_dataset(path)
    np.testing.assert_array_equal(loaded.images, ds.images)
    np.testing.assert_array_equal(loaded.labels, ds.labels)
    assert loaded.labels.dtype == np.float32 and loaded.labels.shape == (len(ds),)
    assert set(loaded.attributes) == set(ds.attributes)
    np.testing.assert_array_equal(loaded.attributes["group"], ds.attributes["group"])
    assert loaded.attributes["group"].dtype == np.int8
    np.testing.assert_array_equal(loaded.attributes["skin_tone"], ds.attributes["skin_tone"])  # NaNs equal
    np.testing.assert_array_equal(loaded.attributes["source"], ds.attributes["source"])
    assert loaded.attributes["source"].dtype.kind == "U"
    assert loaded.name == "faces"
    assert h5io.read_metadata(path) == {"seed": 3, "profile": "smoke"}
    with h5py.File(path) as f:
        assert f["images"].attrs["channel_order"] == "RGB"
        assert f["labels"].shape == (len(ds), 1)


def test_no_temp_files_left_and_overwrite_works(tmp_path):
    path = tmp_path / "faces.h5"
    h5io.save_dataset(make_dataset(seed=0), path)
    second = make_dataset(seed=1)
    h5io.save_dataset(second, path)
    assert [p.name for p in tmp_path.iterdir()] == ["faces.h5"]
    np.testing.assert_array_equal(h5io.load_dataset(path).images, second.images)


def test_metadata_absent_reads_as_empty_dict_and_bad_metadata_is_named(tmp_path):
    path = tmp_path / "faces.h5"
    h5io.save_dataset(make_dataset(), path)
    assert h5io.read_metadata(path) == {}
    for raw, message in (("{not json", "not valid JSON"), ("[1, 2]", "holds list")):
        with h5py.File(path, "a") as f:
            f.attrs["metadata"] = raw
        with pytest.raises(ValueError, match=message):
            h5io.read_metadata(path)


def test_reference_file_without_attribute_is_read_as_bgr(tmp_path):
    ds = make_dataset()
    path = tmp_path / "train_face.h5"
    write_reference_file(path, ds.images[..., ::-1], ds.labels)
    loaded = h5io.load_dataset(path)
    np.testing.assert_array_equal(loaded.images, ds.images)
    assert loaded.images.flags.c_contiguous
    # An explicit argument wins over the default.
    np.testing.assert_array_equal(h5io.load_dataset(path, channel_order="RGB").images, ds.images[..., ::-1])


def test_bgr_save_flips_pixels_on_disk_and_back(tmp_path):
    ds = make_dataset()
    path = tmp_path / "bgr.h5"
    h5io.save_dataset(ds, path, channel_order="BGR")
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["images"][()], ds.images[..., ::-1])
        assert f["images"].attrs["channel_order"] == "BGR"
    np.testing.assert_array_equal(h5io.load_dataset(path).images, ds.images)


def test_integer_labels_of_shape_n_are_accepted(tmp_path):
    ds = make_dataset()
    path = tmp_path / "ref.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=ds.images[..., ::-1])
        f.create_dataset("labels", data=ds.labels.astype(np.uint8))
    np.testing.assert_array_equal(h5io.load_dataset(path).labels, ds.labels)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        h5io.load_dataset(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError):
        h5io.read_metadata(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_text("<html>Dropbox error page</html>")
    with pytest.raises(ValueError, match="not a readable HDF5 file.*Delete the file"):
        h5io.load_dataset(path)
    with pytest.raises(ValueError, match="not a readable HDF5"):
        h5io.read_metadata(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "faces.h5"
    h5io.save_dataset(make_dataset(n=40), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="(truncated or corrupt|not a readable HDF5).*regenerate"):
        h5io.load_dataset(path)


@pytest.mark.parametrize("missing", ["images", "labels"])
def test_missing_key_names_key_and_expected_shape(tmp_path, missing):
    ds = make_dataset()
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as f:
        if missing != "images":
            f.create_dataset("images", data=ds.images)
        if missing != "labels":
            f.create_dataset("labels", data=ds.labels)
    expected = "uint8 array of shape \\(N, 64, 64, 3\\)" if missing == "images" else "shape \\(N,\\) or \\(N, 1\\)"
    with pytest.raises(ValueError, match=f"missing dataset '{missing}'.*{expected}"):
        h5io.load_dataset(path)


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.zeros((4, 32, 32, 3), np.uint8), np.ones(4), r"'images' is uint8 with shape \(4, 32, 32, 3\)"),
        (np.zeros((4, 64, 64, 3), np.float32), np.ones(4), r"'images' is float32 .*expected a uint8"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.ones((4, 2)), r"'labels' is float64 with shape \(4, 2\)"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.ones(3), r"'labels' .* shape \(3,\).*N = 4"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.array([b"a", b"b", b"c", b"d"]), r"'labels' is \|S1"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.array([0, 1, 2, 1.0]), r"'labels' has values \[2.0\]"),
    ],
)
def test_wrong_shape_or_dtype_names_key_found_and_expected(tmp_path, images, labels, message):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    with pytest.raises(ValueError, match=message):
        h5io.load_dataset(path)


def test_bad_arguments(tmp_path):
    ds = make_dataset()
    with pytest.raises(ValueError, match="channel order"):
        h5io.save_dataset(ds, tmp_path / "x.h5", channel_order="RBG")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        h5io.save_dataset(ds, tmp_path / "x.h5", metadata={"array": np.arange(3)})
    with pytest.raises(ValueError, match="compression"):
        h5io.save_dataset(ds, tmp_path / "x.h5", compression="zstd")
    odd = FaceDataset(ds.images, ds.labels, {"objects": np.array([{}] * len(ds), dtype=object)})
    with pytest.raises(ValueError, match="attribute 'objects'"):
        h5io.save_dataset(odd, tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []


def test_failure_during_write_leaves_existing_target_untouched(tmp_path, monkeypatch):
    path = tmp_path / "faces.h5"
    original = make_dataset(seed=0)
    h5io.save_dataset(original, path)
    before = path.read_bytes()

    real_create = h5py.Group.create_dataset

    def failing_create(self, name, *args, **kwargs):
        if name == "labels":  # images are already written when this fires
            raise RuntimeError("disk full (simulated)")
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create)
    with pytest.raises(RuntimeError, match="simulated"):
        h5io.save_dataset(make_dataset(seed=1), path)
    with pytest.raises(RuntimeError, match="simulated"):
        h5io.save_dataset(make_dataset(seed=1), tmp_path / "new.h5")
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["faces.h5"]
    np.testing.assert_array_equal(h5io.load_dataset(path).images, original.images)
