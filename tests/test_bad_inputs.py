"""Bad input at every public entry point: each probe must fail with a message that names what was wrong and says
what to do, never with a bare traceback from deep inside a library, a hang or a silently wrong result.

One row per probe: (entry point, call, expected exception, words the message must contain). The other test files
hold the behaviour behind each message; this table is the sweep, so a new entry point gets its rows here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lab_utils.data import loaders
from lab_utils.data.config import BenchmarkConfig
from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation import galleries, latents, metrics, reports
from lab_utils.core import backend
from lab_utils.nn import models
from lab_utils.core import env, profiles
from lab_utils.running import run_labs
from lab_utils.training import augmentation, debiasing, model_cache, trainers, variants
from lab_utils.training.config import TrainingConfig
from lab_utils.training.debiasing import FaceBatchSampler

ROOT = Path(__file__).resolve().parent.parent


def tiny() -> FaceDataset:
    rng = np.random.default_rng(0)
    return FaceDataset(rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
                       np.r_[np.ones(4), np.zeros(4)].astype(np.float32), name="tiny")


def nan_mu() -> np.ndarray:
    mu = np.zeros((5, 2))
    mu[1, 1] = np.nan
    return mu


def a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("not a folder")
    return tmp / "plain.txt"


PROBES = {
    # files and folders
    "reference file missing": (lambda t: loaders.load_reference_training_file(t / "nope.h5"), FileNotFoundError,
                               ["no such file", "Download train_face.h5"]),
    "reference file is a folder": (lambda t: loaders.load_reference_training_file(t), ValueError,
                                   ["is a folder", "pass the path of the training file"]),
    "reference sha256 malformed": (lambda t: loaders.load_reference_training_file(t / "x.h5", sha256="abc"),
                                   ValueError, ["64 hexadecimal"]),
    "ppb root missing": (lambda t: loaders.load_ppb_folders(t / "nope"), FileNotFoundError,
                         ["no such folder", "one folder per group"]),
    "ppb no group folders": (lambda t: loaders.load_ppb_folders(t), ValueError, ["named exactly LF, LM, DF and DM"]),
    "csv missing": (lambda t: loaders.load_image_table(t / "nope.csv"), FileNotFoundError, ["no such CSV file"]),
    "csv is a folder": (lambda t: loaders.load_image_table(t), ValueError, ["is a folder"]),
    "image size not 64": (lambda t: loaders.load_ppb_folders(t, size=32), ValueError, ["size must be 64"]),
    "data dir is a file": (lambda t: (__import__("os").environ.__setitem__(env.DATA_ENV, str(a_file(t))),
                                      env.data_dir()), ValueError, ["is a file, not a folder", "LAB_DATA_DIR"]),
    "model file missing": (lambda t: models.load_model(t / "m.keras"), FileNotFoundError, ["Train and save one"]),
    "model file damaged": (lambda t: ((t / "m.keras").write_text("x"), models.load_model(t / "m.keras")),
                           ValueError, ["not a readable Keras model", "Delete it"]),
    "model path suffix": (lambda t: models.save_model(models.build_cnn(width=0.25), t / "m.h5"), ValueError,
                          [".keras"]),
    # arrays and metrics
    "probabilities outside [0, 1]": (lambda t: metrics.evaluate_detector([1.5, 0.2], [1, 0], [0, -1]),
                                     ValueError, ["[0, 1]"]),
    "latent means with NaN": (lambda t: debiasing.histogram_weights(nan_mu()), ValueError,
                              ["non-finite", "learning rate"]),
    "latent means 1-D": (lambda t: debiasing.histogram_weights(np.zeros(5)), ValueError, ["(n_faces, latent_dim)"]),
    "active units of NaN means": (lambda t: latents.active_units(nan_mu()), ValueError, ["non-finite", "diverged"]),
    "active units of one face": (lambda t: latents.active_units(np.zeros((1, 4))), ValueError, ["at least two faces"]),
    "unknown rule": (lambda t: debiasing.histogram_weights(np.zeros((5, 2)), rule="median"), ValueError,
                     ["rule must be one of", "rule(mu, bins, alpha)"]),
    "rule returns wrong length": (lambda t: debiasing.histogram_weights(np.zeros((5, 2)),
                                                                        rule=lambda mu, b, a: np.ones(3)),
                                  ValueError, ["one probability per face"]),
    "sampling weights negative": (lambda t: FaceBatchSampler(tiny(), 4, sampling_probs=[1, -1, 1, 1]),
                                  ValueError, ["negative", ">= 0"]),
    "sampling weights wrong length": (lambda t: FaceBatchSampler(tiny(), 4, sampling_probs=[1, 1]), ValueError,
                                      ["one weight per face"]),
    "NaN images to predict": (lambda t: trainers.predict_face_probs(models.build_cnn(width=0.25),
                                                                    np.full((2, 64, 64, 3), np.nan, np.float32)),
                              ValueError, ["NaN or infinite pixels"]),
    "images of the wrong size": (lambda t: trainers.predict_face_probs(models.build_cnn(width=0.25),
                                                                       np.zeros((2, 32, 32, 3), np.uint8)),
                                 ValueError, ["(N, 64, 64, 3)"]),
    # models and training
    "latent_dim zero": (lambda t: debiasing.DBVAE(latent_dim=0), ValueError, ["latent_dim must be an integer >= 1"]),
    "kl_weight NaN": (lambda t: models.VAE(latent_dim=2, kl_weight=float("nan")), ValueError, ["finite number"]),
    "loss returns a scalar": (lambda t: models.VAE(latent_dim=2, loss_fn=lambda *a: np.float32(1.0)), ValueError,
                              ["one loss per sample", "one number for the whole batch"]),
    "loss not callable": (lambda t: debiasing.DBVAE(latent_dim=2, loss_fn="dbvae_loss"), ValueError,
                          ["must be a function"]),
    "learning rate NaN": (lambda t: TrainingConfig(learning_rate=float("nan")), ValueError,
                          ["learning_rate must be a finite number > 0"]),
    "epochs zero": (lambda t: trainers.train_classifier(models.build_cnn(width=0.25), tiny(), epochs=0, verbose=0),
                    ValueError, ["epochs must be an integer >= 1"]),
    "ema momentum 1": (lambda t: TrainingConfig(ema_momentum=1.0), ValueError, ["ema_momentum must be in [0, 1)"]),
    "wrong model for trainer": (lambda t: trainers.train_dbvae(models.build_cnn(width=0.25), tiny(), epochs=1),
                                ValueError, ["expects a lab_utils.training.debiasing.DBVAE"]),
    "variant kind unknown": (lambda t: variants.Variant("x", kind="gan"), ValueError, ["kind must be one of"]),
    "oracle without attribute": (lambda t: variants.oracle_sampling_probs(tiny(), 0.5), ValueError,
                                 ["needs the 'darker' attribute"]),
    # environment variables
    "profile unknown": (lambda t: profiles.get_profile("huge"), ValueError, ["Unknown profile", "choose one of"]),
    "backend unknown": (lambda t: (__import__("os").environ.__setitem__("KERAS_BACKEND", "theano"),
                                   backend.check_requested()), ImportError, ["not a backend these labs run on"]),
    # command lines
    "run_labs lab number": (lambda t: run_labs.main(["--only", "7"]), SystemExit, []),
    # silently wrong before (issue 22): now a clear error
    "uint8 images of 0 and 1": (lambda t: trainers.predict_face_logits(models.build_cnn(width=0.25), ones_and_zeros()),
                                ValueError, ["hold only 0 and 1", "astype('uint8')", "* 255"]),
    "dataset of 0/1 uint8": (lambda t: FaceDataset(ones_and_zeros(), np.ones(4, np.float32)), ValueError,
                             ["hold only 0 and 1"]),
    "encode floats in 0-255": (lambda t: debiasing.DBVAE(latent_dim=2).encode(np.full((2, 64, 64, 3), 200.0, np.float32)),
                               ValueError, ["must be in [0, 1]", "divide by 255"]),
    "decode NaN codes": (lambda t: augmentation.decode_images(models.VAE(latent_dim=2), nan_mu()), ValueError,
                         ["NaN or infinite", "black image"]),
    "rare codes NaN logvar": (lambda t: augmentation.rare_codes(np.zeros((5, 2)), nan_mu(), 3), ValueError,
                              ["logvar has 1 NaN"]),
    "uniform codes NaN logvar": (lambda t: augmentation.uniform_codes(np.zeros((5, 2)), nan_mu(), 3), ValueError,
                                 ["logvar has 1 NaN"]),
    "mirror identical codes": (lambda t: augmentation.complementary_codes(np.ones((6, 2)), np.r_[0, 1, 0, 1, 0, 1], 2),
                               ValueError, ["same code", "collapsed"]),
    "batch of one": (lambda t: FaceBatchSampler(tiny(), 1), ValueError, ["0 faces per batch", "at least 2"]),
    "seed -1": (lambda t: env.seed_everything(-1), ValueError, ["seed must be an integer in [0, 4294967295]"]),
    "seed 2**32": (lambda t: FaceBatchSampler(tiny(), 4, seed=2**32), ValueError, ["in [0, 4294967295]"]),
    "benchmark seed 2**32": (lambda t: BenchmarkConfig(seed=2**32), ValueError, ["BenchmarkConfig.seed"]),
    "gallery seed -1": (lambda t: galleries.show_gallery(tiny(), seed=-1), ValueError, ["seed must be"]),
    "cell timeout 0": (lambda t: run_labs.main(["--only", "1", "--cell-timeout", "0"]), SystemExit,
                       ["--cell-timeout must be a number of seconds > 0"]),
    "backend in capitals": (lambda t: (__import__("os").environ.__setitem__("KERAS_BACKEND", "JAX"),
                                       backend.check_requested()), ImportError, ["exactly as written", "'jax'"]),
    "backend with a space": (lambda t: (__import__("os").environ.__setitem__("KERAS_BACKEND", " jax"),
                                        backend.check_requested()), ImportError, ["exactly as written"]),
    "data dir a broken link": (lambda t: ((t / "gone").symlink_to(t / "nowhere"),
                                          __import__("os").environ.__setitem__(env.DATA_ENV, str(t / "gone")),
                                          env.data_dir()), ValueError, ["broken symbolic link"]),
}


def ones_and_zeros() -> np.ndarray:
    return (np.random.default_rng(0).random((4, 64, 64, 3)) > 0.5).astype(np.uint8)


@pytest.mark.parametrize("name", PROBES)
def test_bad_input_gets_a_message_that_says_what_and_what_to_do(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(env.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_BACKEND", backend.name())
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    call, error, words = PROBES[name]
    with pytest.raises(error) as caught:
        call(tmp_path)
    message = str(caught.value) if error is not SystemExit else capsys.readouterr().err
    for word in words:
        assert word in message, (name, message)
    if error is SystemExit:
        assert caught.value.code == 2 and (words or "No lab numbered 7" in message)


@pytest.mark.parametrize("argv, words", [
    (["-m", "lab_utils.running.run_labs", "--profile", "nonsense"], ["Unknown profile 'nonsense'"]),
    (["-m", "lab_utils.teaching.grading", "/nonexistent-submissions"], ["error:"]),
    (["-m", "lab_utils.teaching.student", "frobnicate"], ["invalid choice"]),
])
def test_command_lines_exit_2_with_one_line_not_a_traceback(argv, words):
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr


def test_two_processes_generating_the_same_benchmark_both_succeed_and_leave_one_valid_file(tmp_path):
    code = ("from lab_utils.data import benchmark\nfrom lab_utils.data.config import BenchmarkConfig\n"
            "if __name__ == '__main__':\n"
            "    cfg = BenchmarkConfig(n_train_faces=200, n_train_nonfaces=200, n_test_per_group=4,"
            " n_test_nonfaces=8)\n"
            f"    train, test = benchmark.load_benchmark(cfg, cache_dir={str(tmp_path)!r}, progress=False)\n"
            "    print(benchmark.content_digest(train))\n")
    script = tmp_path / "gen.py"
    script.write_text(code)
    runs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outs = [r.communicate(timeout=300) for r in runs]
    assert all(r.returncode == 0 for r in runs), [o[1][-1000:] for o in outs]
    assert outs[0][0] == outs[1][0]  # the same bytes either way
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".h5" or p.name.startswith("."))
    assert len(files) == 2 and all(not name.startswith(".") for name in files)  # train + test, no temporaries


@pytest.mark.parametrize("scale", [1e300, 1e308])
def test_extreme_but_finite_codes_resample_as_their_scaled_copy(scale):
    mu = np.random.default_rng(0).normal(size=(400, 3))
    mu /= np.abs(mu).max()  # largest code exactly 1, so mu * 1e308 stays finite
    assert np.allclose(debiasing.histogram_weights(mu * scale), debiasing.histogram_weights(mu))


def test_weights_near_the_float_limit_are_not_all_zero_or_all_on_face_0():
    probs = debiasing.histogram_weights(np.random.default_rng(0).normal(size=(50, 2)),
                                         rule=lambda mu, bins, alpha: np.full(len(mu), 1e308))
    assert np.allclose(probs, 1 / 50)
    sampler = FaceBatchSampler(tiny(), 4, sampling_probs=np.full(4, 1e308), seed=0)
    assert np.allclose(sampler.sampling_probs, 0.25)
    for _ in range(50):
        sampler.sample()
    assert (sampler.drawn_face_counts > 0).all()  # not only face 0


def test_a_nan_gap_is_described_as_nothing_to_say():
    from lab_utils.evaluation.results import Estimate
    groups = np.repeat(np.arange(4), 40)
    ev = metrics.evaluate_detector(np.r_[np.full(160, 0.9), np.zeros(10)], np.r_[np.ones(160), np.zeros(10)],
                                   np.r_[groups, np.full(10, -1)], n_boot=10)
    nan = Estimate(float("nan"), float("nan"), float("nan"), 0, method=ev.lighter_darker_gap.method)
    line = reports.describe_gap("CNN", __import__("dataclasses").replace(ev, lighter_darker_gap=nan))
    assert "no gap could be computed" in line and "includes zero" not in line


def test_load_or_train_does_not_return_a_cnn_saved_where_the_dbvae_belongs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(env.OUTPUT_ENV, str(tmp_path))
    profile = profiles.get_profile("smoke")
    models.save_model(models.build_cnn(width=0.25), model_cache.model_path("dbvae", profile, 0))
    trained = []
    monkeypatch.setattr(model_cache, "train_variant", lambda *a, **k: (trained.append(1) or debiasing.DBVAE(latent_dim=2), {}))
    model = model_cache.load_or_train("dbvae", tiny(), profile)
    assert isinstance(model, debiasing.DBVAE) and trained
    assert "not a dbvae (a copied or renamed file?)" in capsys.readouterr().out


def test_a_relative_or_tilde_output_dir_is_one_folder_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(env.OUTPUT_ENV, "my-outputs")
    monkeypatch.chdir(tmp_path)
    assert env.output_dir() == env.project_root() / "my-outputs"
    (env.project_root() / "my-outputs").rmdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(env.DATA_ENV, "~/cache")
    assert env.data_dir() == tmp_path / "cache"


def test_a_check_is_not_fooled_by_a_reference_replaced_in_lab_utils(monkeypatch, capsys):
    from lab_utils.nn import losses
    from lab_utils.teaching import checks

    def kl_divergence(mu, logvar):  # wrong: no 0.5, and assigned over the reference as a careless student might
        from keras import ops
        return ops.sum(ops.exp(logvar) + ops.square(mu) - 1.0 - logvar, axis=-1)

    monkeypatch.setattr(losses, "kl_divergence", kl_divergence)
    checks.check_kl_divergence(kl_divergence)
    out = capsys.readouterr().out
    assert "PASS" not in out and "was replaced" in out
