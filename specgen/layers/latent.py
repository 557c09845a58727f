"""Latent-space layers: ``vae_sampling``, ``vector_quantizer`` and ``diagonal_gaussian``."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import (
    Count,
    LayerConfig,
    NonNegative,
    Shape,
    ShapeError,
    fmt_shape,
    product,
    register,
)

#: What a sampling node gives in inference: the mean, a sample, or the mean plus one standard
#: deviation.
Inference = Literal["mean", "sample", "mean_plus_std"]


@register
class VaeSampling(LayerConfig):
    """The reparameterisation step of a VAE; inputs are ``(mu, logvar)`` of equal shape.

    In training ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, 1)`` drawn per element.
    In inference, by ``inference``: ``mean`` gives ``z = mu``; ``sample`` samples as in
    training; ``mean_plus_std`` gives ``z = mu + exp(logvar / 2)``, what MONAI's
    ``VarAutoEncoder`` returns in eval mode unless ``use_mean_at_inference`` is set.
    """

    kind: Literal["vae_sampling"] = "vae_sampling"
    inference: Inference = "mean"

    short_name: ClassVar[str] = "sample"
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = 2

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        mu, logvar = inputs
        if mu != logvar:
            raise ShapeError(
                f"vae_sampling needs mu and logvar of the same shape, got {fmt_shape(mu)} "
                f"and {fmt_shape(logvar)}",
                mismatch=[1],
            )
        return [mu]


@register
class VectorQuantizer(LayerConfig):
    """VQ-VAE bottleneck: each D-vector of an ``(H, W, D)`` map (of any spatial rank) is replaced
    by its nearest codebook entry (``num_embeddings`` x D, trainable).

    Outputs: ``quantized`` (H, W, D), the scalar ``loss`` (codebook loss plus
    ``commitment_cost`` times the commitment loss; with ``loss_weighting: diffusers_legacy`` the
    commitment loss plus ``commitment_cost`` times the codebook loss, as diffusers'
    ``VectorQuantizer(legacy=True)`` weights them), the scalar ``perplexity`` of code usage, and
    the ``indices`` map (H, W) of chosen codes (the input's spatial shape). MACs count the distance
    computation ``H * W * num_embeddings * D``.
    """

    kind: Literal["vector_quantizer"] = "vector_quantizer"
    num_embeddings: Count
    commitment_cost: NonNegative = 0.25
    loss_weighting: Literal["vqvae", "diffusers_legacy"] = "vqvae"

    short_name: ClassVar[str] = "quantizer"
    output_names: ClassVar[tuple[str, ...]] = ("quantized", "loss", "perplexity", "indices")
    has_weights: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape)
        return [shape, (), (), shape[:-1]]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        return self.num_embeddings * inputs[0][-1], 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        return product(inputs[0][:-1]) * self.num_embeddings * inputs[0][-1]


@register
class DiagonalGaussian(LayerConfig):
    """The parameters of a diagonal Gaussian, as diffusers' ``DiagonalGaussianDistribution``
    reads them: an ``(H, W, 2L)`` map (of any spatial rank) split along channels into the ``mean``
    (the first L) and the ``logvar`` (the last L), the logvar clamped to [-30, 20]. Outputs: both
    ``(H, W, L)``.
    """

    kind: Literal["diagonal_gaussian"] = "diagonal_gaussian"

    short_name: ClassVar[str] = "posterior"
    output_names: ClassVar[tuple[str, ...]] = ("mean", "logvar")

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape)
        c = shape[-1]
        if c % 2:
            raise ShapeError(
                f"diagonal_gaussian needs an even number of channels (mean and logvar), got "
                f"{fmt_shape(shape)}"
            )
        half = (*shape[:-1], c // 2)
        return [half, half]
