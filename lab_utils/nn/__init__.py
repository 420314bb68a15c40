"""The models (CNN, VAE, DB-VAE), their losses, and the one place that knows the Keras backend."""

from lab_utils.core.backend import load_quietly

load_quietly()  # before any module of this package imports Keras
