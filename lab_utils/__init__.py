"""lab_utils: the reference implementations behind the DB-VAE fairness labs.

Map of the code, in layers from the bottom: a package imports only from its own layer and those below it
(tests/test_layers.py walks the imports), and the labs teach the layers above ``core`` in this order.

core/        foundations, importing nothing else of lab_utils
  env.py          the notebooks' first cell, project and output folders, seeding;  profiles.py  run scales
  files.py        atomic writes;  validation.py  argument checks with messages that say what to do
  backend.py      which Keras backend runs (checked before Keras loads), its devices, a quiet start
  notebooks.py    where the labs are and how one is executed;  processes.py  ending what a run started
data/        where images come from
  dataset.py      FaceDataset: images, face labels and per-image attributes, the one type every loader returns
  benchmark.py    the embedded benchmark, rendered once per configuration and cached (load_benchmark)
  config.py       what a benchmark is: sizes, seed, frozen difficulty, cache key
  attributes.py   who is in each picture (skin tone, gender presentation, pose, ...), drawn before any pixel
  drawing.py      primitives and scenery;  faces.py  one person, top to bottom;  render.py  light, lens, sensor
  sources.py      which data a lab runs on: "embedded" or "reference" (real photographs), $LAB_DATASET
  loaders.py      real data, opt-in: the reference lab's file, PPB folders, CSV tables;  download.py  fetching
  h5io.py         the HDF5 schema shared with the reference lab
nn/          the models and what they minimise
  models.py       the CNN detector, the VAE and what the DB-VAE shares with it (loss in compute_loss, any backend)
  losses.py       KL divergence, reconstruction, the VAE's loss (Lab 2's exercises)
  backbones.py    other detector bodies for Lab 5: a wider CNN, a small ResNet, a VGG-style network
  backend.py      what training does differently on TensorFlow, JAX and PyTorch, in one place
evaluation/  what came out
  metrics.py      per-group recall with bootstrap intervals, gaps, FPR, E[A], Var[A] (evaluate_detector)
  threshold_free.py  recall at a matched FPR, per-group AUC and AP;  seeds.py  several seeds;  results.py  the values
  latents.py      a dataset's faces encoded, active latent dimensions;  probes.py  a cross-validated linear probe
  sampling.py     what a resampler did: the ESS of its weights, whom it drew (read after training)
  committed.py    the committed multi-seed results, read by Lab 5 (from the checkout, or fetched on Colab)
  reports.py      the words and tables a lab prints;  plots.py, galleries.py  the figures
training/    how they learn
  trainers.py     train_classifier, train_vae, train_dbvae, predict_face_probs
  debiasing.py    the method, top to bottom: the DB-VAE's loss (Lab 3's exercise) and model, the resampling rules
                  (Lab 3's exercises), the weighted batches and the per-epoch recompute inside fit()
  augmentation.py Lab 5: new training faces decoded from rare latent codes (and the label-aware oracle's)
  upweighting.py  Just Train Twice's error-based weights (Lab 5's exercise)
  variants.py     named variants (models, remedies) trained the same way by notebooks and benchmarks
  remedies.py     Lab 5's remedies, one registry;  model_cache.py  where labs save models, load-or-train
teaching/    the course around it
  checks.py       the exercises' self-checks;  exercise.py  how a check runs;  compare.py  what it says is wrong
  records.py      what a notebook reports to the grader;  grading.py, grades.py  the grader and its tables
  student.py      student notebooks built from the solutions;  release.py  the repository address and release tag
                  that every set-up cell and badge repeats
running/     the main job
  run_labs.py     every lab notebook in order, and what they found
"""

import sys

__version__ = "0.1.0"

if "keras" not in sys.modules:  # say how to fix a KERAS_BACKEND that cannot load, before Keras fails on it
    from lab_utils.core.backend import check_requested

    check_requested()

GROUPS: tuple[str, ...] = ("LF", "LM", "DF", "DM")
"""Test-group codes as in the Pilot Parliaments Benchmark: Lighter/Darker skin x Female/Male presentation."""

GROUP_NAMES: dict[str, str] = {
    "LF": "lighter female",
    "LM": "lighter male",
    "DF": "darker female",
    "DM": "darker male",
}
