"""The original ResNetAE TensorFlow models (``ResNetAE.py`` of farrell236/ResNetAE), rebuilt for
the port-weights tests.

Written here from the published architecture, under Keras 3 as TensorFlow 2.16 and later run the
original: the same classes, attribute names and order of construction, so that ``save_weights``
writes the dataset paths the original writes (Keras 3 names a saved layer by the attribute that
holds it, or inside a list by its class name and a counter; the model's ``layers`` list takes the
layers no attribute saved first). What the original does is kept:

- Keras batch norm (momentum 0.99, eps 1e-3) and 'same' padding everywhere;
- the dense bottleneck flattens (H, W, C), channels last;
- the VAE draws its noise on every call, in inference too (``NOISE``, when set, is used instead,
  so that two models can be compared on one draw);
- the VQ-VAE keeps its codebook in a plain ``tf.Variable`` that Keras does not track: its
  weights file has no codebook.
"""

from __future__ import annotations

import tensorflow as tf

import keras
from keras import layers, ops

#: When set, the VAE's noise (an array of the shape of mu) instead of a random draw.
NOISE = None


def _conv_bn_act(conv) -> keras.Sequential:
    return keras.Sequential([conv, layers.BatchNormalization(), layers.LeakyReLU(0.2)])


class ResidualBlock(layers.Layer):
    def __init__(self, filters):
        super().__init__()
        self.residual_block = keras.Sequential(
            [
                layers.Conv2D(filters, 3, padding="same"),
                layers.BatchNormalization(),
                layers.LeakyReLU(0.2),
                layers.Conv2D(filters, 3, padding="same"),
                layers.BatchNormalization(),
                layers.LeakyReLU(0.2),
            ]
        )

    def call(self, x):
        return x + self.residual_block(x)


class ResNetEncoder(keras.Model):
    def __init__(self, n_ResidualBlock=8, n_levels=4, z_dim=10, bUseMultiResSkips=True):
        super().__init__()
        self.max_filters = 2 ** (n_levels + 3)
        self.n_levels = n_levels
        self.bUseMultiResSkips = bUseMultiResSkips
        self.conv_list = []
        self.res_blk_list = []
        self.multi_res_skip_list = []
        self.input_conv = _conv_bn_act(layers.Conv2D(8, 3, padding="same"))
        for level in range(n_levels):
            width = 2 ** (level + 3)
            size = 2 ** (n_levels - level)
            self.res_blk_list.append(
                keras.Sequential([ResidualBlock(width) for _ in range(n_ResidualBlock)])
            )
            self.conv_list.append(
                _conv_bn_act(layers.Conv2D(2 * width, 2, strides=2, padding="same"))
            )
            if bUseMultiResSkips:
                self.multi_res_skip_list.append(
                    _conv_bn_act(
                        layers.Conv2D(self.max_filters, size, strides=size, padding="same")
                    )
                )
        self.output_conv = layers.Conv2D(z_dim, 3, padding="same")

    def call(self, x):
        x = self.input_conv(x)
        skips = []
        for level in range(self.n_levels):
            x = self.res_blk_list[level](x)
            if self.bUseMultiResSkips:
                skips.append(self.multi_res_skip_list[level](x))
            x = self.conv_list[level](x)
        if self.bUseMultiResSkips:
            x = sum([x, *skips])
        return self.output_conv(x)


class ResNetDecoder(keras.Model):
    def __init__(self, n_ResidualBlock=8, n_levels=4, output_channels=3, bUseMultiResSkips=True):
        super().__init__()
        self.max_filters = 2 ** (n_levels + 3)
        self.n_levels = n_levels
        self.bUseMultiResSkips = bUseMultiResSkips
        self.conv_list = []
        self.res_blk_list = []
        self.multi_res_skip_list = []
        self.input_conv = _conv_bn_act(layers.Conv2D(self.max_filters, 3, padding="same"))
        for level in range(n_levels):
            width = 2 ** (n_levels - level + 2)
            size = 2 ** (level + 1)
            self.res_blk_list.append(
                keras.Sequential([ResidualBlock(width) for _ in range(n_ResidualBlock)])
            )
            self.conv_list.append(
                _conv_bn_act(layers.Conv2DTranspose(width, 2, strides=2, padding="same"))
            )
            if bUseMultiResSkips:
                self.multi_res_skip_list.append(
                    _conv_bn_act(layers.Conv2DTranspose(width, size, strides=size, padding="same"))
                )
        self.output_conv = layers.Conv2D(output_channels, 3, padding="same")

    def call(self, z):
        z = z_top = self.input_conv(z)
        for level in range(self.n_levels):
            z = self.conv_list[level](z)
            z = self.res_blk_list[level](z)
            if self.bUseMultiResSkips:
                z = z + self.multi_res_skip_list[level](z_top)
        return self.output_conv(z)


class _Dense(keras.Model):
    def __init__(self, input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips):
        super().__init__()
        self.z_dim = z_dim
        self.img_latent_dim = input_shape[0] // 2**n_levels
        self.encoder = ResNetEncoder(n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.decoder = ResNetDecoder(n_ResidualBlock, n_levels, input_shape[2], bUseMultiResSkips)

    def features(self, x):
        side = self.img_latent_dim
        return ops.reshape(self.encoder(x), (-1, side * side * self.z_dim))

    def decode_flat(self, h):
        side = self.img_latent_dim
        return ops.sigmoid(self.decoder(ops.reshape(h, (-1, side, side, self.z_dim))))


class ResNetAE(_Dense):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        bottleneck_dim=128,
        bUseMultiResSkips=True,
    ):
        super().__init__(input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.fc1 = layers.Dense(bottleneck_dim)
        self.fc2 = layers.Dense(self.img_latent_dim**2 * z_dim)

    def call(self, x):
        return self.decode_flat(self.fc2(self.fc1(self.features(x))))


class ResNetVAE(_Dense):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        bottleneck_dim=128,
        bUseMultiResSkips=True,
    ):
        super().__init__(input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.fc21 = layers.Dense(bottleneck_dim)
        self.fc22 = layers.Dense(bottleneck_dim)
        self.fc3 = layers.Dense(self.img_latent_dim**2 * z_dim)

    def call(self, x):
        h = self.features(x)
        mu, logvar = self.fc21(h), self.fc22(h)
        std = ops.exp(0.5 * logvar)
        eps = NOISE if NOISE is not None else tf.random.normal(ops.shape(std))
        return self.decode_flat(self.fc3(mu + eps * std)), mu, logvar


class VectorQuantizer(layers.Layer):
    def __init__(self, num_embeddings, embedding_dim, commiment_cost):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commiment_cost = commiment_cost
        initial = keras.initializers.VarianceScaling(distribution="uniform")
        # a tf.Variable, not a Keras weight: the original's weights file leaves it out
        self.embedding = tf.Variable(initial((embedding_dim, num_embeddings)), trainable=True)

    def call(self, x):
        flat = tf.reshape(x, (-1, self.embedding_dim))
        distances = (
            tf.reduce_sum(flat**2, axis=1, keepdims=True)
            - 2 * flat @ self.embedding
            + tf.reduce_sum(self.embedding**2, axis=0, keepdims=True)
        )
        indices = tf.argmin(distances, axis=1)
        one_hot = tf.one_hot(indices, self.num_embeddings)
        quantized = tf.reshape(one_hot @ tf.transpose(self.embedding), tf.shape(x))
        loss = tf.reduce_mean((quantized - tf.stop_gradient(x)) ** 2) + self.commiment_cost * (
            tf.reduce_mean((tf.stop_gradient(quantized) - x) ** 2)
        )
        quantized = x + tf.stop_gradient(quantized - x)
        probabilities = tf.reduce_mean(one_hot, axis=0)
        perplexity = tf.exp(-tf.reduce_sum(probabilities * tf.math.log(probabilities + 1e-10)))
        return loss, quantized, perplexity, tf.reshape(indices, tf.shape(x)[:-1])


class ResNetVQVAE(keras.Model):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        vq_num_embeddings=512,
        vq_embedding_dim=64,
        vq_commiment_cost=0.25,
        bUseMultiResSkips=True,
    ):
        super().__init__()
        self.encoder = ResNetEncoder(n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.decoder = ResNetDecoder(n_ResidualBlock, n_levels, input_shape[2], bUseMultiResSkips)
        self.vq_vae = VectorQuantizer(vq_num_embeddings, vq_embedding_dim, vq_commiment_cost)
        self.pre_vq_conv = layers.Conv2D(vq_embedding_dim, 1)

    def call(self, x):
        loss, quantized, perplexity, indices = self.vq_vae(self.pre_vq_conv(self.encoder(x)))
        return loss, self.decoder(quantized), perplexity, indices
