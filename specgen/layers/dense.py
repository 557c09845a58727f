"""Fully connected layer: ``dense``."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import (
    Count,
    Initializer,
    LayerConfig,
    Shape,
    ShapeError,
    StrictBool,
    describe_rank,
    fmt_shape,
    register,
)


@register
class Dense(LayerConfig):
    """``y = x @ W + b`` on a vector ``(N,) -> (units,)``."""

    kind: Literal["dense"] = "dense"
    units: Count
    use_bias: StrictBool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"

    short_name: ClassVar[str] = "dense"
    has_weights: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        if len(shape) != 1:
            hint = "insert a flatten layer before it" if len(shape) >= 2 else None
            raise ShapeError(
                f"dense expects a vector (N,) input, got {describe_rank(len(shape))} "
                f"of shape {fmt_shape(shape)}",
                hint=hint,
            )
        return [(self.units,)]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        n = inputs[0][0]
        return n * self.units + (self.units if self.use_bias else 0), 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        return inputs[0][0] * self.units
