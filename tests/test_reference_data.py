"""The "reference" dataset path: real-data formats in, the labs' (train, test) pair out, offline.

The files are small ones in the real formats that ``reference_files`` writes; the notebooks themselves run on
them in ``test_reference_notebooks.py``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lab_utils import GROUPS
from lab_utils.data import sources
from lab_utils.evaluation import metrics, reports
from lab_utils.core.profiles import get_profile
from lab_utils.training import model_cache
from reference_files import write_csv_table, write_ppb_folder, write_reference_h5

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    return {"h5": write_reference_h5(root / "train_face.h5"), "ppb": write_ppb_folder(root / "ppb"),
            "csv": write_csv_table(root / "table")}


def test_reference_data_at_the_profiles_scale_with_held_out_nonfaces(files, tmp_path):
    train, test = sources.load_reference_data(SMOKE, train_source=files["h5"], test_faces=files["ppb"],
                                              cache_dir=tmp_path)
    assert len(train.face_idx) == SMOKE.n_train_faces and len(train.nonface_idx) == SMOKE.n_train_nonfaces
    assert len(test.face_idx) == 20 and len(test.nonface_idx) == SMOKE.n_test_nonfaces
    assert [len(test.group_idx(g)) for g in GROUPS] == [5, 5, 5, 5]
    assert (test.group[test.nonface_idx] == -1).all()
    # held-out non-faces never appear in training (images are random, so equal bytes mean the same image)
    train_keys = {img.tobytes() for img in train.images[train.nonface_idx]}
    assert not train_keys & {img.tobytes() for img in test.images[test.nonface_idx]}
    # BGR on disk, RGB in memory: lighter faces' skin has more red than blue
    centre = test.images[test.group_idx("LF")][:, 32, 24].astype(int)
    assert (centre[:, 0] > centre[:, 2]).all()
    # the training faces record no skin tone
    assert "darker" not in train.attributes


def test_a_csv_table_of_test_faces(files, tmp_path):
    _, test = sources.load_reference_data(SMOKE, train_source=files["h5"], test_faces=files["csv"], cache_dir=tmp_path)
    assert [len(test.group_idx(g)) for g in GROUPS] == [5, 5, 5, 5]
    assert set(np.unique(test.attributes["darker"][test.face_idx])) == {0, 1}


def test_the_environment_chooses_the_dataset_and_files(files, tmp_path, monkeypatch):
    monkeypatch.setenv(sources.REFERENCE_TRAIN_ENV, str(files["h5"]))
    monkeypatch.setenv(sources.TEST_FACES_ENV, str(files["ppb"]))
    monkeypatch.setenv(sources.DATASET_ENV, "Reference")
    train, test = sources.load_lab_data(None, SMOKE, cache_dir=tmp_path)
    assert len(test.face_idx) == 20 and len(train) == SMOKE.n_train_faces + SMOKE.n_train_nonfaces
    monkeypatch.setenv(sources.DATASET_ENV, "celeba")
    with pytest.raises(ValueError, match="Unknown dataset 'celeba'.*LAB_DATASET.*'embedded'"):
        sources.load_lab_data(None, SMOKE, cache_dir=tmp_path)


def _mirror(root, monkeypatch):
    """A mirror of the reference lab's 20 faces (stand-in images, under the real file names) and their checksums."""
    made = write_ppb_folder(root.parent / f"{root.name}-made")
    manifest = {}
    for group, names in sources.REFERENCE_FACES.items():
        (root / group).mkdir(parents=True)
        manifest[group] = {}
        for path, name in zip(sorted((made / group).iterdir()), names):
            path.rename(root / group / name)
            manifest[group][name] = hashlib.sha256((root / group / name).read_bytes()).hexdigest()
    monkeypatch.setattr(sources, "REFERENCE_FACES", manifest)
    monkeypatch.setenv(sources.REFERENCE_FACES_ENV, root.as_uri())
    return root


def test_the_reference_faces_are_pinned_with_checksums():
    assert "fd8023c7804bd352fc7212ac3aa587bd90912653" in sources.REFERENCE_FACES_URL
    assert [len(sources.REFERENCE_FACES[g]) for g in GROUPS] == [5, 5, 5, 5]
    assert all(len(sha) == 64 for names in sources.REFERENCE_FACES.values() for sha in names.values())


def test_a_mirror_serving_other_bytes_is_refused(files, tmp_path, monkeypatch):
    mirror = _mirror(tmp_path / "mirror", monkeypatch)
    victim = next((mirror / "DF").iterdir())
    victim.write_bytes(victim.read_bytes() + b"x")
    monkeypatch.delenv(sources.TEST_FACES_ENV, raising=False)
    with pytest.raises(ValueError, match="SHA-256"):
        sources.load_reference_data(SMOKE, train_source=files["h5"], cache_dir=tmp_path / "cache")


def test_without_test_faces_the_reference_labs_twenty_are_fetched_once(files, tmp_path, monkeypatch):
    mirror = _mirror(tmp_path / "mirror", monkeypatch)
    monkeypatch.delenv(sources.TEST_FACES_ENV, raising=False)
    cache = tmp_path / "cache"
    _, test = sources.load_reference_data(SMOKE, train_source=files["h5"], cache_dir=cache)
    assert [len(test.group_idx(g)) for g in GROUPS] == [5] * 4
    for group in GROUPS:  # the origin is gone: the second call reads the cache
        for f in (mirror / group).iterdir():
            f.unlink()
    _, again = sources.load_reference_data(SMOKE, train_source=files["h5"], cache_dir=cache)
    np.testing.assert_array_equal(again.images[again.face_idx], test.images[test.face_idx])


def test_wrong_test_faces_are_named(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a folder.*nor a .csv"):
        sources.load_test_faces(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no such CSV file.*image"):
        sources.load_test_faces(tmp_path / "missing.csv")


def test_cells_needing_missing_attributes_say_so(files, tmp_path, capsys):
    train, test = sources.load_reference_data(SMOKE, train_source=files["h5"], test_faces=files["ppb"],
                                              cache_dir=tmp_path)
    assert not sources.has_attributes(train, ["darker"], what="the skin tone of drawn faces")
    assert "records no darker for its faces, so this cell cannot show the skin tone of drawn faces" in capsys.readouterr().out
    assert sources.has_attributes(test, ["group", "darker"], what="anything")
    assert capsys.readouterr().out == ""


def test_five_faces_per_group_allow_no_conclusion(files, tmp_path):
    _, test = sources.load_reference_data(SMOKE, train_source=files["h5"], test_faces=files["ppb"],
                                          cache_dir=tmp_path)
    probs = np.where(np.isin(test.group, [0, 1]), 0.9, 0.1)  # every lighter face found, every darker one missed
    with pytest.warns(RuntimeWarning, match="Only a few test faces"):
        result = metrics.evaluate_detector(probs, test.labels, test.group)
    line = reports.describe_gap("CNN", result)
    assert "only 5 faces in the smallest group: no conclusion about a gap can be drawn" in line
    assert "lighter faces are detected more often" not in line


def test_models_of_each_dataset_are_saved_apart():
    embedded = model_cache.model_path("cnn", SMOKE, 0)
    reference = model_cache.model_path("cnn", SMOKE, 0, "reference")
    assert embedded.name == "cnn-smoke-seed0.keras" and reference.name == "cnn-reference-smoke-seed0.keras"


def test_files_named_with_a_tilde_in_the_environment_are_found(files, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(files["ppb"].parent))
    monkeypatch.setenv(sources.REFERENCE_TRAIN_ENV, "~/" + files["h5"].name)
    monkeypatch.setenv(sources.TEST_FACES_ENV, "~/" + files["ppb"].name)
    train, test = sources.load_lab_data("reference", SMOKE, cache_dir=tmp_path)
    assert len(test.face_idx) == 20


def test_a_training_file_with_one_non_face_is_refused_before_any_training(tmp_path, monkeypatch):
    path = write_reference_h5(tmp_path / "one_nonface.h5", n_faces=40, n_nonfaces=1)
    monkeypatch.setenv(sources.REFERENCE_TRAIN_ENV, str(path))
    with pytest.raises(ValueError, match="at least two non-faces"):
        sources.load_lab_data("reference", SMOKE, cache_dir=tmp_path)
