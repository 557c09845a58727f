"""A hand-written Keras 3 ResNetAE, the baseline the generated Keras model is measured against.

Written from the architecture's description the way one would write it by hand in Keras: a
subclassed model with loops over levels and ``keras.Sequential`` for the repeated blocks. It has
exactly the generated model's parameters.
"""

from __future__ import annotations

import keras
from keras import layers, ops


def conv_bn_act(filters: int, kernel: int, stride: int, transpose: bool = False):
    conv = (layers.Conv2DTranspose if transpose else layers.Conv2D)(
        filters, kernel, strides=stride, padding="same"
    )
    return keras.Sequential([conv, layers.BatchNormalization(), layers.LeakyReLU(0.2)])


class ResidualBlock(layers.Layer):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = keras.Sequential([conv_bn_act(channels, 3, 1), conv_bn_act(channels, 3, 1)])

    def call(self, x):
        return self.body(x) + x


def residual_stack(channels: int, n: int):
    return keras.Sequential([ResidualBlock(channels) for _ in range(n)])


class ResNetAE(keras.Model):
    def __init__(
        self, input_shape=(256, 256, 3), n_blocks=8, n_levels=4, z_dim=128, bottleneck_dim=128
    ) -> None:
        super().__init__()
        h, w, c = input_shape
        top = 2 ** (n_levels + 3)
        self.latent_shape = (h // 2**n_levels, w // 2**n_levels, z_dim)
        self.enc_in = conv_bn_act(8, 3, 1)
        self.enc_blocks, self.enc_skips, self.enc_down = [], [], []
        for i in range(n_levels):
            width = 2 ** (i + 3)
            k = 2 ** (n_levels - i)
            self.enc_blocks.append(
                keras.Sequential([ResidualBlock(width) for _ in range(n_blocks)])
            )
            self.enc_skips.append(conv_bn_act(top, k, k))
            self.enc_down.append(conv_bn_act(2 * width, 2, 2))
        self.enc_out = layers.Conv2D(z_dim, 3, padding="same")
        flat = self.latent_shape[0] * self.latent_shape[1] * z_dim
        self.to_code = layers.Dense(bottleneck_dim)
        self.from_code = layers.Dense(flat)
        self.dec_in = conv_bn_act(top, 3, 1)
        self.dec_up, self.dec_blocks, self.dec_skips = [], [], []
        for i in range(n_levels):
            width = 2 ** (n_levels - i + 2)
            k = 2 ** (i + 1)
            self.dec_up.append(conv_bn_act(width, 2, 2, transpose=True))
            self.dec_blocks.append(
                keras.Sequential([ResidualBlock(width) for _ in range(n_blocks)])
            )
            self.dec_skips.append(conv_bn_act(width, k, k, transpose=True))
        self.dec_out = layers.Conv2D(c, 3, padding="same")

    def call(self, x):
        x = self.enc_in(x)
        skips = []
        for blocks, skip, down in zip(self.enc_blocks, self.enc_skips, self.enc_down, strict=True):
            x = blocks(x)
            skips.append(skip(x))
            x = down(x)
        for s in skips:
            x = x + s
        x = self.enc_out(x)
        z = self.to_code(ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3])))
        x = ops.reshape(self.from_code(z), (-1, *self.latent_shape))
        z_top = self.dec_in(x)
        x = z_top
        for up, blocks, skip in zip(self.dec_up, self.dec_blocks, self.dec_skips, strict=True):
            x = blocks(up(x)) + skip(z_top)
        return ops.sigmoid(self.dec_out(x))
