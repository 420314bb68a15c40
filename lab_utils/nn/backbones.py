"""Face detector bodies: the labs' CNN (Lab 1, and the VAE's and DB-VAE's encoder) and the others of Lab 5's
question, is the gap the architecture's?

Each takes a 64x64x3 image in [0, 1] and returns one face logit, so every trainer, metric and benchmark that
takes the lab's CNN takes these too. They are kept small enough to train at the ``cpu`` profile.
"""

from __future__ import annotations

from typing import Callable

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


def build_wide_cnn(name: str = "wide_cnn") -> keras.Model:
    """The lab's CNN with twice the filters in every convolution."""
    return build_cnn(width=2.0, name=name)


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:  # project the shortcut to the new shape
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def build_resnet(filters: tuple[int, ...] = (16, 32, 64), name: str = "resnet") -> keras.Model:
    """A small residual network: a stride-2 stem, one basic block per stage (each stage halves the size),
    global average pooling and one logit."""
    inputs = keras.Input(shape=(64, 64, 3), name="image")
    x = layers.Conv2D(filters[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, f in enumerate(filters):
        x = _residual_block(x, f, stride=2, name=f"block{i + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(1, name="logits")(x), name=name)


def build_vgg(filters: tuple[int, ...] = (8, 16, 32, 64), name: str = "vgg", n_outputs: int = 1) -> keras.Model:
    """VGG-style: stages of two 3x3 convolutions and a max-pool, then a small dense head. Narrow, because two
    full-resolution convolutions per stage cost several times the lab CNN's compute at 64x64.

    ``n_outputs`` > 1 turns it into a DB-VAE encoder body, as for :func:`build_cnn`."""
    inputs = keras.Input(shape=(64, 64, 3), name="image")
    x = inputs
    for i, f in enumerate(filters):
        for j in (1, 2):
            x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"stage{i + 1}_conv{j}")(x)
        x = layers.BatchNormalization(name=f"stage{i + 1}_bn")(x)
        x = layers.MaxPooling2D(name=f"stage{i + 1}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    return keras.Model(inputs, layers.Dense(n_outputs, name="logits")(x), name=name)


BACKBONES: dict[str, Callable[[], keras.Model]] = {
    "cnn": build_cnn,
    "wide_cnn": build_wide_cnn,
    "resnet": build_resnet,
    "vgg": build_vgg,
}


def build_backbone(name: str) -> keras.Model:
    """A fresh detector by name, one of :data:`BACKBONES`."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {sorted(BACKBONES)}.")
    return BACKBONES[name]()
