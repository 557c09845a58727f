"""Element-wise activations (and ``softmax`` over the last axis). Shape kept; only ``prelu`` has
parameters (its learnt slopes)."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import (
    Finite,
    LayerConfig,
    NonNegative,
    Shape,
    StrictBool,
    expect_rank,
    register,
)


class _Activation(LayerConfig):
    short_name: ClassVar[str] = "act"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]


@register
class ReLU(_Activation):
    """``max(x, 0)``."""

    kind: Literal["relu"] = "relu"


@register
class LeakyReLU(_Activation):
    """``x`` if ``x >= 0`` else ``negative_slope * x``.

    ``negative_slope`` is required because the frameworks' defaults differ (0.01 vs 0.3).
    """

    kind: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: NonNegative


@register
class PReLU(_Activation):
    """``x`` if ``x >= 0`` else ``a * x`` with a learnt slope ``a``: one per channel (the last
    axis), or one for the whole tensor with ``shared``. Every slope starts at ``init``."""

    kind: Literal["prelu"] = "prelu"
    shared: StrictBool = False
    init: Finite = 0.25

    has_weights: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        if self.shared:
            ranks = range(1, self.spatial_rank + 2)
            expect_rank(self.kind, shape, tuple(ranks), spatial=self.spatial_rank)
        else:
            self.expect_map(shape, vector=True, hint="use shared: true for a single slope")
        return [shape]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        return (1 if self.shared else inputs[0][-1]), 0


@register
class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""

    kind: Literal["sigmoid"] = "sigmoid"


@register
class Tanh(_Activation):
    kind: Literal["tanh"] = "tanh"


@register
class GELU(_Activation):
    """Gaussian error linear unit; ``approximate=True`` selects the tanh approximation."""

    kind: Literal["gelu"] = "gelu"
    approximate: StrictBool = False


@register
class SiLU(_Activation):
    """``x * sigmoid(x)`` (also called swish)."""

    kind: Literal["silu"] = "silu"


@register
class ELU(_Activation):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""

    kind: Literal["elu"] = "elu"
    alpha: Finite = 1.0


@register
class Linear(_Activation):
    """The identity function (an explicit 'no activation')."""

    kind: Literal["linear"] = "linear"


@register
class Softmax(_Activation):
    """``exp(x) / sum(exp(x))`` over the last axis (channels for an image)."""

    kind: Literal["softmax"] = "softmax"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        ranks = tuple(range(1, self.spatial_rank + 2))
        expect_rank(self.kind, inputs[0], ranks, spatial=self.spatial_rank)
        return [inputs[0]]
