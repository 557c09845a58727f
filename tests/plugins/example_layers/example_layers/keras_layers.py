"""The Keras implementations (NHWC tensors)."""

from __future__ import annotations

import keras
from keras import layers, ops


class LearnedScale(layers.Layer):
    def __init__(self, init: float = 1.0, use_bias: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init = init
        self.use_bias = use_bias

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        self.scale = self.add_weight(
            shape=(channels,), initializer=keras.initializers.Constant(self.init), name="scale"
        )
        if self.use_bias:
            self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, x):
        out = x * self.scale
        return out + self.bias if self.use_bias else out


class SwishGate(layers.Layer):
    def __init__(self, channels: int, kernel_size: tuple[int, int] = (1, 1), **kwargs) -> None:
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(channels, kernel_size, padding="same")

    def call(self, x):
        return x * ops.sigmoid(self.conv(x))
