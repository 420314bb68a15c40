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
from lab_utils.data.dataset import FaceDataset
from lab_utils.evaluation import metrics
from lab_utils.nn import backend, models
from lab_utils.running import env, profiles, run_labs
from lab_utils.training import experiments, resampling, trainers
from lab_utils.training.sampler import FaceBatchSampler

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
    "latent means with NaN": (lambda t: resampling.histogram_weights(nan_mu()), ValueError,
                              ["non-finite", "learning rate"]),
    "latent means 1-D": (lambda t: resampling.histogram_weights(np.zeros(5)), ValueError, ["(n_faces, latent_dim)"]),
    "unknown rule": (lambda t: resampling.histogram_weights(np.zeros((5, 2)), rule="median"), ValueError,
                     ["rule must be one of", "rule(mu, bins, alpha)"]),
    "rule returns wrong length": (lambda t: resampling.histogram_weights(np.zeros((5, 2)),
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
    "latent_dim zero": (lambda t: models.DBVAE(latent_dim=0), ValueError, ["latent_dim must be an integer >= 1"]),
    "kl_weight NaN": (lambda t: models.VAE(latent_dim=2, kl_weight=float("nan")), ValueError, ["finite number"]),
    "loss returns a scalar": (lambda t: models.VAE(latent_dim=2, loss_fn=lambda *a: np.float32(1.0)), ValueError,
                              ["one loss per sample", "one number for the whole batch"]),
    "loss not callable": (lambda t: models.DBVAE(latent_dim=2, loss_fn="dbvae_loss"), ValueError,
                          ["must be a function"]),
    "learning rate NaN": (lambda t: trainers.train_classifier(models.build_cnn(width=0.25), tiny(), epochs=1,
                                                              learning_rate=float("nan"), verbose=0),
                          ValueError, ["learning_rate must be a finite number > 0"]),
    "epochs zero": (lambda t: trainers.train_classifier(models.build_cnn(width=0.25), tiny(), epochs=0, verbose=0),
                    ValueError, ["epochs must be an integer >= 1"]),
    "ema momentum 1": (lambda t: trainers.train_vae(models.VAE(latent_dim=2), tiny(), epochs=1, ema_momentum=1.0,
                                                    verbose=0), ValueError, ["ema_momentum must be in [0, 1)"]),
    "wrong model for trainer": (lambda t: trainers.train_dbvae(models.build_cnn(width=0.25), tiny(), epochs=1),
                                ValueError, ["expects a lab_utils.nn.models.DBVAE"]),
    "variant kind unknown": (lambda t: experiments.Variant("x", kind="gan"), ValueError, ["kind must be one of"]),
    "oracle without attribute": (lambda t: experiments.oracle_sampling_probs(tiny(), 0.5), ValueError,
                                 ["needs the 'darker' attribute"]),
    # environment variables
    "profile unknown": (lambda t: profiles.get_profile("huge"), ValueError, ["Unknown profile", "choose one of"]),
    "backend unknown": (lambda t: (__import__("os").environ.__setitem__("KERAS_BACKEND", "theano"),
                                   backend.check_requested()), ImportError, ["not a backend these labs run on"]),
    # command lines
    "run_labs lab number": (lambda t: run_labs.main(["--only", "7"]), SystemExit, []),
}


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
        assert caught.value.code == 2 and "No lab numbered 7" in message


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
