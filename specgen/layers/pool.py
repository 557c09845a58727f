"""Spatial resampling: ``max_pool``, ``avg_pool`` and ``upsample``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from .base import LayerConfig, Padding, Pair, Shape, ShapeError, expect_rank, fmt_pair, register
from .conv import IMAGE_HINT, conv_output_size, same_padding


class _Pool2d(LayerConfig):
    """A pooling window; output sizes follow a convolution with dilation 1 and
    ``kernel = pool_size``. ``strides`` defaults to ``pool_size`` (filled in at validation)."""

    pool_size: Pair
    strides: Pair | None = None
    padding: Padding = "valid"

    short_name: ClassVar[str] = "pool"

    @model_validator(mode="after")
    def _default_strides(self):
        if self.strides is None:
            object.__setattr__(self, "strides", self.pool_size)
        return self

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        expect_rank(self.kind, shape, (3,), hint=IMAGE_HINT)
        out = [
            conv_output_size(shape[a], self.pool_size[a], self.strides[a], 1, self.padding)
            for a in (0, 1)
        ]
        if min(out) < 1:
            raise ShapeError(
                f"pool_size {fmt_pair(self.pool_size)} does not fit a {shape[0]}x{shape[1]} "
                "input with padding 'valid'",
                field="pool_size",
                hint="use padding 'same' or a smaller pool_size",
            )
        return [(out[0], out[1], shape[2])]

    def explicit_padding(self, input_shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """Padding ``((top, bottom), (left, right))`` equivalent to this layer's padding."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        rows, cols = (
            same_padding(input_shape[a], self.pool_size[a], self.strides[a], 1) for a in (0, 1)
        )
        return rows, cols


@register
class MaxPool(_Pool2d):
    """Maximum over each window; 'same' padding never wins the maximum."""

    kind: Literal["max_pool"] = "max_pool"


@register
class AvgPool(_Pool2d):
    """Mean over each window. With 'same', padded positions are *excluded* from the average
    (each output divides by the number of real input positions its window covers)."""

    kind: Literal["avg_pool"] = "avg_pool"


@register
class Upsample(LayerConfig):
    """Scales an image up by integer factors ``size = (sh, sw)``: ``(H, W, C) -> (H*sh, W*sw, C)``.

    'nearest' repeats pixels; 'bilinear' interpolates with half-pixel centres
    (``align_corners=False``), clamping at the borders.
    """

    kind: Literal["upsample"] = "upsample"
    size: Pair = (2, 2)
    interpolation: Literal["nearest", "bilinear"] = "nearest"

    short_name: ClassVar[str] = "up"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        expect_rank(self.kind, shape, (3,), hint=IMAGE_HINT)
        h, w, c = shape
        return [(h * self.size[0], w * self.size[1], c)]
