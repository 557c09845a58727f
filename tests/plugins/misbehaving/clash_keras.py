"""The identity, in Keras, under a name generated files use themselves."""

from __future__ import annotations

from keras import layers


class Encoder(layers.Layer):
    def call(self, x):
        return x
