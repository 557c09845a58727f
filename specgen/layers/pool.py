"""Spatial resampling: ``max_pool``, ``avg_pool`` and ``upsample``, over every spatial axis."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .base import (
    LayerConfig,
    Padding,
    Shape,
    ShapeError,
    Windows,
    fmt_window,
    map_hint,
    per_axis,
    register,
)
from .conv import conv_output_size, fmt_extent, same_padding


class _Pool(LayerConfig):
    """A pooling window; output sizes follow a convolution with dilation 1 and
    ``kernel = pool_size``. ``strides`` defaults to ``pool_size`` (filled in at validation)."""

    pool_size: Windows
    strides: Windows | None = None
    padding: Padding = "valid"

    short_name: ClassVar[str] = "pool"

    _windows = per_axis(windows=("pool_size", "strides"))

    @model_validator(mode="after")
    def _default_strides(self):
        if self.strides is None:
            object.__setattr__(self, "strides", self.pool_size)
        return self

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        out = [
            conv_output_size(shape[a], self.pool_size[a], self.strides[a], 1, self.padding)
            for a in range(self.spatial_rank)
        ]
        if min(out) < 1:
            raise ShapeError(
                f"pool_size {fmt_window(self.pool_size)} does not fit a "
                f"{fmt_extent(shape[:-1])} input with padding 'valid'",
                field="pool_size",
                hint="use padding 'same' or a smaller pool_size",
            )
        return [(*out, shape[-1])]

    def explicit_padding(self, input_shape: Shape) -> tuple[tuple[int, int], ...]:
        """Padding ``(before, after)`` per spatial axis equivalent to this layer's padding:
        ``((top, bottom), (left, right))`` in 2-D."""
        axes = range(self.spatial_rank)
        if self.padding == "valid":
            return tuple((0, 0) for _ in axes)
        return tuple(
            same_padding(input_shape[a], self.pool_size[a], self.strides[a], 1) for a in axes
        )


@register
class MaxPool(_Pool):
    """Maximum over each window; 'same' padding never wins the maximum."""

    kind: Literal["max_pool"] = "max_pool"


@register
class AvgPool(_Pool):
    """Mean over each window. With 'same', padded positions are *excluded* from the average
    (each output divides by the number of real input positions its window covers)."""

    kind: Literal["avg_pool"] = "avg_pool"


#: How ``upsample`` fills the new positions: copies ('nearest'), or linear interpolation along
#: every spatial axis ('linear'; 'bilinear' is its 2-D name).
Interpolation = Literal["nearest", "linear", "bilinear"]


@register
class Upsample(LayerConfig):
    """Scales a feature map up by integer factors ``size``, one per spatial axis:
    ``(H, W, C) -> (H*sh, W*sw, C)`` in 2-D.

    'nearest' repeats positions; 'linear' interpolates linearly along every axis (bilinear in
    2-D, trilinear in 3-D; 'bilinear' is accepted in 2-D specs) with half-position centres
    (``align_corners=False``), clamping at the borders.
    """

    kind: Literal["upsample"] = "upsample"
    size: Windows = Field(2, validate_default=True)
    interpolation: Interpolation = "nearest"

    short_name: ClassVar[str] = "up"

    _windows = per_axis(windows=("size",))

    @model_validator(mode="after")
    def _check_interpolation(self):
        if self.interpolation == "bilinear" and self.spatial_rank != 2:
            raise ValueError(
                f"interpolation 'bilinear' is for 2-D specs and this spec is "
                f"{self.spatial_rank}-D; 'linear' interpolates along every axis"
            )
        return self

    @property
    def linear(self) -> bool:
        """Whether the layer interpolates linearly (rather than repeating positions)."""
        return self.interpolation != "nearest"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        spatial = [d * s for d, s in zip(shape[:-1], self.size, strict=True)]
        return [(*spatial, shape[-1])]
