"""The original Keras AutoEncoder (``zoo/autoencoder/autoencoder.py`` of the
keras-idiomatic-programmer), rebuilt for the port-weights tests.

Written here from the published architecture: a functional model that makes its layers in the
original's order, so that its Keras 3 weights file names them as the original's does (class name
and counter, in the order made). Each encoder level is a 3x3 stride-2 conv (no bias, he_normal),
batch norm and ReLU; the decoder mirrors all but the first level with conv-transposes, then a last
conv-transpose to ``channels`` (the original fixes 3), batch norm and ReLU.
"""

from __future__ import annotations

import keras
from keras import layers


def _unit(x, layer):
    return layers.ReLU()(layers.BatchNormalization()(layer(x)))


def autoencoder(widths=(64, 32, 32), input_shape=(32, 32, 3)) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = inputs
    options = {"strides": 2, "padding": "same", "use_bias": False}
    options["kernel_initializer"] = "he_normal"
    for width in widths:
        x = _unit(x, layers.Conv2D(width, 3, **options))
    for width in reversed(widths[1:]):
        x = _unit(x, layers.Conv2DTranspose(width, 3, **options))
    outputs = _unit(x, layers.Conv2DTranspose(input_shape[2], 3, **options))
    return keras.Model(inputs, outputs)
