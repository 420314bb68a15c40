"""Keras 3 models: the baseline CNN face detector (more models to be added by the models issue)."""

from __future__ import annotations

import keras
from keras import layers

CNN_FILTERS = (12, 24, 48, 72)
CNN_KERNELS = (5, 5, 3, 3)


def build_cnn(width: float = 1.0, name: str = "cnn", n_outputs: int = 1) -> keras.Model:
    """The reference lab's detector: four stride-2 conv + BN blocks, dense 512, ``n_outputs`` logits.

    ``width`` scales the filter counts; ``n_outputs`` > 1 turns the same body into the DB-VAE encoder.
    """
    inputs = keras.Input(shape=(64, 64, 3), name="image")
    x = inputs
    for i, (filters, kernel) in enumerate(zip(CNN_FILTERS, CNN_KERNELS)):
        x = layers.Conv2D(max(1, round(filters * width)), kernel, strides=2, padding="same",
                          activation="relu", name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    outputs = layers.Dense(n_outputs, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
