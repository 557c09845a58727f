"""Learned image compression: ``gdn``, ``igdn`` and ``entropy_bottleneck``.

The layers of Ballé et al.'s transforms and factorized prior, as compressai implements them
(``compressai.layers.GDN`` and ``compressai.entropy_models.EntropyBottleneck``): same options,
same defaults, same parameters stored the same way, so that compressai's weights load as they are.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import (
    Count,
    LayerConfig,
    NonNegative,
    Positive,
    Shape,
    map_hint,
    product,
    register,
)


class _DivisiveNorm(LayerConfig):
    """Generalized divisive normalization of a feature map, per position across its channels.

    ``norm[i] = beta[i] + sum_j gamma[i, j] * x[j]^2`` (a 1x1 convolution of ``x^2`` with bias);
    ``gdn`` gives ``x / sqrt(norm)``, ``igdn`` (its approximate inverse) ``x * sqrt(norm)``.

    ``beta`` (C,) and ``gamma`` (C, C) are held reparametrized, as compressai holds them: the
    value used is ``max(p, bound)^2 - pedestal`` with ``pedestal = 2^-36`` and
    ``bound = sqrt(minimum + pedestal)``, where the minimum is ``beta_min`` for beta and 0 for
    gamma. They start at beta = 1 and gamma = ``gamma_init`` times the identity. MACs count the
    1x1 convolution, ``H * W * C^2`` (the spatial positions times ``C^2``).
    """

    beta_min: Positive = 1e-6
    gamma_init: NonNegative = 0.1

    has_weights: ClassVar[bool] = True
    #: Whether the layer multiplies by the norm (``igdn``) rather than divides.
    inverse: ClassVar[bool] = False

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        return [shape]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        channels = inputs[0][-1]
        return channels + channels * channels, 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        channels = inputs[0][-1]
        return product(inputs[0][:-1]) * channels * channels


@register
class GDN(_DivisiveNorm):
    """``y = x / sqrt(beta + gamma x^2)``: compressai's ``GDN``."""

    kind: Literal["gdn"] = "gdn"

    short_name: ClassVar[str] = "gdn"


@register
class IGDN(_DivisiveNorm):
    """``y = x * sqrt(beta + gamma x^2)``: compressai's ``GDN(inverse=True)``."""

    kind: Literal["igdn"] = "igdn"

    short_name: ClassVar[str] = "igdn"
    inverse: ClassVar[bool] = True


#: Most hidden layers of the entropy bottleneck's density model.
MAX_DENSITY_LAYERS = 16

Probability = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0.0, lt=1.0)]


@register
class EntropyBottleneck(LayerConfig):
    """A factorized entropy model: quantizes a ``(*spatial, C)`` map and gives each value's
    likelihood.

    Each channel has its own learnt cumulative density ``c(v)``: a chain of small per-channel
    maps ``1 -> filters[0] -> ... -> filters[-1] -> 1``, each ``softplus(matrix) @ v + bias``,
    followed (except the last) by ``v + tanh(factor) * tanh(v)``; ``sigmoid`` of the result is the
    CDF. In training the output is ``x + u`` with ``u`` uniform in ``[-0.5, 0.5)``; in inference it
    is ``x`` rounded around the channel's median (``quantiles[:, 0, 1]``). The likelihood of each
    output value ``y`` is ``sigmoid(c(y + 0.5)) - sigmoid(c(y - 0.5))``, at least
    ``likelihood_bound``.

    Outputs: ``quantized`` and ``likelihoods``, both of the input's shape. Parameters, all
    trainable, per channel: the matrices, biases and factors, and the three ``quantiles`` (which
    compressai trains with its auxiliary loss alone, towards the ``tail_mass`` quantiles).
    """

    kind: Literal["entropy_bottleneck"] = "entropy_bottleneck"
    filters: Annotated[tuple[Count, ...], Field(max_length=MAX_DENSITY_LAYERS)] = (3, 3, 3, 3)
    init_scale: Positive = 10.0
    tail_mass: Probability = 1e-9
    likelihood_bound: NonNegative = 1e-9

    short_name: ClassVar[str] = "entropy"
    output_names: ClassVar[tuple[str, ...]] = ("quantized", "likelihoods")
    has_weights: ClassVar[bool] = True

    def widths(self) -> tuple[int, ...]:
        """The widths of the density model's layers, input and output included."""
        return (1, *self.filters, 1)

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        return [shape, shape]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        widths = self.widths()
        matrices = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
        biases = sum(widths[1:])
        factors = sum(self.filters)
        return inputs[0][-1] * (matrices + biases + factors + 3), 0
