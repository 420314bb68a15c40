"""How the models learn: trainers, adaptive resampling, weighted batches, named variants."""

from lab_utils.core.backend import load_quietly

load_quietly()  # before any module of this package imports Keras
