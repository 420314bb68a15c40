"""The embedded benchmark: reproducible, correctly labelled and balanced as promised, physically biased, cached."""

import warnings

import numpy as np
import pytest

from lab_utils import GROUPS
from lab_utils.data import attributes, benchmark, h5io
from lab_utils.data import config as benchmark_config
from lab_utils.data.benchmark import config_from_profile, load_benchmark
from lab_utils.data.config import BenchmarkConfig
from lab_utils.data.render import generate_split
from lab_utils.core.profiles import PROFILES

TINY = dict(n_train_faces=40, n_train_nonfaces=30, n_test_per_group=6, n_test_nonfaces=20)


def tiny(**overrides) -> BenchmarkConfig:
    return BenchmarkConfig(**(TINY | overrides))


@pytest.fixture(scope="module")
def train():
    return generate_split(tiny(train_darker_fraction=0.25), "train", n_jobs=1, progress=False)


@pytest.fixture(scope="module")
def test_split():
    return generate_split(tiny(), "test", n_jobs=1, progress=False)


def test_same_seed_same_bytes_other_seed_differs(train):
    again = generate_split(tiny(train_darker_fraction=0.25), "train", n_jobs=1, progress=False)
    assert again.images.tobytes() == train.images.tobytes()
    assert np.array_equal(again.labels, train.labels)
    for key, values in train.attributes.items():
        np.testing.assert_array_equal(again.attributes[key], values, err_msg=key)
    other = generate_split(tiny(train_darker_fraction=0.25, seed=1), "train", n_jobs=1, progress=False)
    assert other.images.tobytes() != train.images.tobytes()


def test_worker_count_does_not_change_the_data(test_split):
    parallel = generate_split(tiny(), "test", n_jobs=2, progress=False)
    assert parallel.images.tobytes() == test_split.images.tobytes()
    np.testing.assert_array_equal(parallel.attributes["feature_contrast"], test_split.attributes["feature_contrast"])


def test_train_and_test_use_different_streams(train, test_split):
    assert not np.array_equal(train.images[:5], test_split.images[:5])


def test_shapes_dtypes_and_ranges(train):
    assert train.images.shape == (70, 64, 64, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.float32 and set(np.unique(train.labels)) == {0.0, 1.0}
    assert len(train.face_idx) == 40 and len(train.nonface_idx) == 30
    assert train.images.std() > 20  # real content, not a blank canvas
    for key in attributes.FLOAT_ATTRIBUTES:
        assert train.attributes[key].dtype == np.float32, key
    for key in attributes.INT_ATTRIBUTES:
        assert train.attributes[key].dtype == np.int8, key
    faces = train.face_idx
    tone = train.attributes["skin_tone"][faces]
    assert ((tone >= 0) & (tone <= 1)).all()
    assert set(train.attributes["fitzpatrick"][faces]) <= set(range(1, 7))
    assert ((train.attributes["feature_contrast"][faces] > 0) & (train.attributes["feature_contrast"][faces] < 1)).all()
    assert (np.abs(train.attributes["rotation"][faces]) <= 15).all()


def test_attributes_are_consistent(train):
    a, faces, nonfaces = train.attributes, train.face_idx, train.nonface_idx
    np.testing.assert_array_equal(a["group"][faces], 2 * a["darker"][faces] + a["male"][faces])
    np.testing.assert_array_equal(a["darker"][faces], a["fitzpatrick"][faces] >= 4)
    np.testing.assert_array_equal(a["darker"][faces], a["skin_tone"][faces] >= 0.5)
    assert (a["beard"][faces][a["male"][faces] == 0] == 0).all()
    assert (a["nonface_kind"][faces] == -1).all() and (a["distractor_layout"][faces] == -1).all()
    assert np.isnan(a["object_tone"][faces]).all()
    for key in ("fitzpatrick", "darker", "male", "group", "beard", "glasses"):
        assert (a[key][nonfaces] == -1).all(), key
    for key in ("skin_tone", "feature_contrast"):
        assert np.isnan(a[key][nonfaces]).all(), key
    assert (train.group[nonfaces] == -1).all()
    heads = nonfaces[a["nonface_kind"][nonfaces] == 0]
    others = nonfaces[a["nonface_kind"][nonfaces] > 0]
    assert len(heads) and len(others)
    assert not np.isnan(a["object_tone"][heads]).any() and (a["distractor_layout"][heads] >= 0).all()
    assert np.isnan(a["dx"][others]).all() and (a["hat"][others] == -1).all()
    assert not np.isnan(a["exposure"]).any()  # the camera applies to every photo


def test_training_darker_share_matches_config(train):
    darker = train.attributes["darker"][train.face_idx]
    assert abs(darker.mean() - 0.25) <= 1 / 40
    big = attributes.draw_attributes(BenchmarkConfig(n_train_faces=4000, n_train_nonfaces=10), "train")[1]
    faces = big["group"] >= 0
    assert abs(big["darker"][faces].mean() - 0.05) < 0.005
    assert abs(big["male"][faces].mean() - 0.5) < 0.04
    assert big["hat"][faces].mean() < 0.1 and big["glasses"][faces].mean() < 0.15


def test_test_split_is_exactly_balanced(test_split):
    for code in GROUPS:
        assert len(test_split.group_idx(code)) == 6
    assert len(test_split.nonface_idx) == 20


def test_distractors_cover_every_tone_and_darker_faces_have_less_feature_contrast():
    labels, attrs = attributes.draw_attributes(BenchmarkConfig(n_train_faces=200, n_train_nonfaces=2000), "train")
    tones = attrs["object_tone"][attrs["nonface_kind"] == 0]
    share = len(tones) / 2000
    assert abs(share - benchmark_config.DIFFICULTY["head_distractor_share"]) < 0.05
    assert np.histogram(tones, bins=6, range=(0, 1))[0].min() > 0.1 * len(tones)
    balanced = generate_split(BenchmarkConfig(n_test_per_group=12, n_test_nonfaces=0), "test", n_jobs=1,
                              progress=False)
    contrast = balanced.attributes["feature_contrast"]
    darker = balanced.attributes["darker"] == 1
    assert contrast[darker].mean() < 0.75 * contrast[~darker].mean()


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=-1), "seed"),
    (dict(n_train_faces=2.5), "n_train_faces"),
    (dict(n_test_nonfaces=True), "n_test_nonfaces"),
    (dict(train_darker_fraction=1.5), "train_darker_fraction"),
    (dict(hat_rate=-0.1), "hat_rate"),
    (dict(glasses_rate="often"), "glasses_rate"),
    (dict(n_train_faces=0, n_train_nonfaces=0), "training split is empty"),
    (dict(n_test_per_group=0, n_test_nonfaces=0), "test split is empty"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BenchmarkConfig(**kwargs)


def test_config_from_profile():
    cfg = config_from_profile(PROFILES["cpu"], seed=3, train_darker_fraction=0.5)
    assert (cfg.seed, cfg.n_train_faces, cfg.n_test_per_group, cfg.train_darker_fraction) == (3, 10_000, 250, 0.5)
    with pytest.raises(ValueError, match="Unknown BenchmarkConfig field"):
        config_from_profile(PROFILES["smoke"], darker=0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown split"):
        generate_split(tiny(), "validation")
    with pytest.raises(ValueError, match="n_jobs"):
        generate_split(tiny(), "test", n_jobs=0)
    with pytest.raises(ValueError, match="BenchmarkConfig"):
        load_benchmark({"seed": 0})


def test_cache_key_tracks_config_and_difficulty(monkeypatch):
    key = benchmark_config.cache_key(tiny())
    assert benchmark_config.cache_key(tiny()) == key
    assert benchmark_config.cache_key(tiny(seed=1)) != key
    monkeypatch.setitem(benchmark_config.DIFFICULTY, "read_noise", 0.5)
    assert benchmark_config.cache_key(tiny()) != key


def _cache_files(path):
    return sorted(p.name for p in path.glob("*.h5"))


def test_cache_hit_miss_and_regeneration(tmp_path, monkeypatch):
    cfg = tiny(n_train_faces=8, n_train_nonfaces=8, n_test_per_group=2, n_test_nonfaces=4)
    train, test = load_benchmark(cfg, cache_dir=tmp_path, progress=False)
    key = benchmark_config.cache_key(cfg)
    assert _cache_files(tmp_path) == [f"benchmark-{key}-test.h5", f"benchmark-{key}-train.h5"]
    assert h5io.read_metadata(tmp_path / f"benchmark-{key}-train.h5")["cache_key"] == key

    calls = []
    real_generate = benchmark.generate_split
    monkeypatch.setattr(benchmark, "generate_split", lambda *a, **k: calls.append(a[1]) or real_generate(*a, **k))
    cached_train, cached_test = load_benchmark(cfg, cache_dir=tmp_path, progress=False)  # hit
    assert calls == []
    assert cached_train.images.tobytes() == train.images.tobytes()
    np.testing.assert_array_equal(cached_test.attributes["group"], test.attributes["group"])
    np.testing.assert_array_equal(cached_train.attributes["skin_tone"], train.attributes["skin_tone"])

    load_benchmark(tiny(n_train_faces=8, n_train_nonfaces=8, n_test_per_group=2, n_test_nonfaces=4, seed=1),
                   cache_dir=tmp_path, progress=False)  # changed config: miss, new files
    assert calls == ["train", "test"] and len(_cache_files(tmp_path)) == 4

    train_file = tmp_path / f"benchmark-{key}-train.h5"
    train_file.write_bytes(train_file.read_bytes()[:2000])  # truncated, e.g. by a full disk
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again, _ = load_benchmark(cfg, cache_dir=tmp_path, progress=False)
    assert calls[-1] == "train" and again.images.tobytes() == train.images.tobytes()
    assert h5io.load_dataset(train_file).images.tobytes() == train.images.tobytes()  # repaired on disk

    h5io.save_dataset(train, train_file, metadata={"cache_key": "stale"})  # e.g. an older generator
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_benchmark(cfg, cache_dir=tmp_path, progress=False)
    assert calls[-1] == "train" and h5io.read_metadata(train_file)["cache_key"] == key


def test_corrupted_pixels_or_labels_fail_the_checksum_and_are_regenerated(tmp_path):
    import h5py

    cfg = tiny(n_train_faces=8, n_train_nonfaces=8, n_test_per_group=2, n_test_nonfaces=4)
    train, _ = load_benchmark(cfg, cache_dir=tmp_path, progress=False)
    path = tmp_path / f"benchmark-{benchmark_config.cache_key(cfg)}-train.h5"
    for key in ("images", "labels"):
        with h5py.File(path, "r+") as f:
            data = f[key][()]
            data.flat[0] = 1 - data.flat[0] if key == "labels" else data.flat[0] ^ 1  # one bit or one label
            f[key][...] = data
        with pytest.warns(RuntimeWarning, match="does not match its checksum"):
            again, _ = load_benchmark(cfg, cache_dir=tmp_path, progress=False)
        assert again.images.tobytes() == train.images.tobytes()
        np.testing.assert_array_equal(again.labels, train.labels)


def test_a_killed_write_leaves_nothing_the_next_run_keeps(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".benchmark-x-train.h5.{int(dead.stdout)}-{'0' * 32}.tmp"
    stale.write_bytes(b"half a file")
    live = tmp_path / f".benchmark-y-train.h5.{__import__('os').getpid() + 0}-{'1' * 32}.tmp"  # this process
    live.write_bytes(b"being written")
    load_benchmark(tiny(n_train_faces=8, n_train_nonfaces=8, n_test_per_group=2, n_test_nonfaces=4),
                   cache_dir=tmp_path, progress=False)
    assert not stale.exists() and live.exists()


def test_the_cache_folder_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        load_benchmark(tiny(), cache_dir=tmp_path / "file", progress=False)


SCRIPT_WITHOUT_GUARD = """
from lab_utils.data import benchmark
from lab_utils.data.config import BenchmarkConfig
cfg = BenchmarkConfig(n_train_faces=300, n_train_nonfaces=300, n_test_per_group=4, n_test_nonfaces=8)
train, test = benchmark.load_benchmark(cfg, cache_dir={cache!r}, progress=False)
print("DONE", len(train), len(test))
"""


def test_a_script_without_a_main_guard_finishes_instead_of_hanging(tmp_path):
    """Spawned workers re-import the script; they used to crash and be restarted for ever (a hang)."""
    import subprocess
    import sys

    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT_WITHOUT_GUARD.format(cache=str(tmp_path / "cache")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DONE 600 24" in done.stdout
    assert "if __name__ == \"__main__\":" in done.stderr  # the warning names the fix
