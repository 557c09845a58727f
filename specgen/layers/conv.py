"""Convolutions (``conv``, ``conv_transpose`` and their ``conv1d``... aliases) and the padding
arithmetic generators need."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .base import (
    Amounts,
    Count,
    Finite,
    Initializer,
    LayerConfig,
    Padding,
    PaddingMode,
    PaddingOrAxisSides,
    Shape,
    ShapeError,
    StrictBool,
    TransposeAmounts,
    Windows,
    ceil_div,
    check_reflect,
    fmt_sides,
    fmt_window,
    map_hint,
    per_axis,
    register,
)


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Zero padding ``(before, after)`` of one axis for padding 'same', TensorFlow's convention.

    The output length is ``ceil(size / stride)``; the total padding is the least that makes the
    last window fit, and when it is odd the extra row/column goes *after* (bottom/right).
    """
    total = (ceil_div(size, stride) - 1) * stride + dilation * (kernel - 1) + 1 - size
    total = max(total, 0)
    before = total // 2
    return before, total - before


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of one axis of a convolution or pooling window; may be < 1 for 'valid'."""
    if padding == "same":
        return ceil_div(size, stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def transpose_crop(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int]:
    """How a transposed convolution's 'full' output of one axis is cut to its target length.

    The 'full' output (every input position scattered through the whole kernel, no cropping)
    has length ``full = (size - 1) * stride + dilation * (kernel - 1) + 1``. The target length is
    ``size * stride`` for 'same' and ``full`` for 'valid' (so 'valid' returns ``(0, 0)``).

    Returns ``(crop_before, crop_after)`` with ``total = full - target``:

    * ``total >= 0``: drop ``crop_before = total // 2`` leading and ``crop_after = total -
      crop_before`` trailing positions (the odd one goes at the end, as in TensorFlow; e.g.
      kernel 3, stride 2 gives ``(0, 1)``).
    * ``total < 0`` (kernel smaller than stride): nothing is cropped and the output is padded
      with ``-total`` zeros at the *end*; this is returned as ``(0, total)``, i.e. a negative
      ``crop_after`` means "pad after by ``-crop_after``".
    """
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    target = size * stride if padding == "same" else full
    total = full - target
    if total < 0:
        return 0, total
    before = total // 2
    return before, total - before


def fmt_extent(spatial: Sequence[int]) -> str:
    """The spatial size of an input in messages: ``8x8``, ``4x8x8``, ``length-16``."""
    return f"length-{spatial[0]}" if len(spatial) == 1 else fmt_window(spatial)


def fmt_amounts(values: Sequence[int]) -> str:
    """Per-axis amounts in messages: ``2`` when every axis has it, else ``2x1``."""
    return str(values[0]) if len(set(values)) == 1 else fmt_window(values)


class _ConvBase(LayerConfig):
    """Options shared by ``conv`` and ``conv_transpose``."""

    filters: Count
    kernel_size: Windows
    strides: Windows = Field(1, validate_default=True)
    padding: Padding = "same"
    dilation_rate: Windows = Field(1, validate_default=True)
    groups: Count = 1
    use_bias: StrictBool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"

    has_weights: ClassVar[bool] = True

    _windows = per_axis(windows=("kernel_size", "strides", "dilation_rate"))

    @model_validator(mode="after")
    def _check_combination(self):
        if self.filters % self.groups:
            raise ValueError(
                f"filters ({self.filters}) must be a multiple of groups ({self.groups})"
            )
        if max(self.dilation_rate) > 1 and max(self.strides) > 1:
            raise ValueError(
                "dilation_rate > 1 requires strides 1 (TensorFlow cannot combine both), got "
                f"strides {fmt_window(self.strides)} and dilation_rate "
                f"{fmt_window(self.dilation_rate)}"
            )
        return self

    def _check_input(self, shape: Shape) -> None:
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        channels = shape[-1]
        if channels % self.groups:
            raise ShapeError(
                f"{self.kind} with groups={self.groups} needs the input channel count to be a "
                f"multiple of {self.groups}, got {channels} channels",
                field="groups",
            )

    def _axis(self, axis: int) -> tuple[int, int, int]:
        """``(kernel, stride, dilation)`` along spatial ``axis`` (0 = the first)."""
        return self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]

    def _bias(self) -> int:
        return self.filters if self.use_bias else 0


@register
class Conv(_ConvBase):
    """Convolution (cross-correlation) over every spatial axis of the spec, channels last.

    'same' gives ``ceil(H / stride)`` positions per axis, padded as in :func:`same_padding`;
    'valid' gives ``floor((H - dilation * (kernel - 1) - 1) / stride) + 1`` and needs that to be
    >= 1. Explicit padding, ``(before, after)`` per axis (PyTorch's), pads first and then works as
    'valid'. ``padding_mode`` says what the padding holds: zeros, the input mirrored about its
    edge ('reflect') or copies of the edge ('replicate').
    """

    kind: Literal["conv"] = "conv"
    padding: PaddingOrAxisSides = "same"
    padding_mode: PaddingMode = "zeros"

    short_name: ClassVar[str] = "conv"
    ranked_name: ClassVar[str | None] = "conv{rank}d"

    _sides = per_axis(sides=("padding",))

    @model_validator(mode="after")
    def _check_padding_mode(self):
        if self.padding == "valid" and self.padding_mode != "zeros":
            raise ValueError(
                f"padding_mode '{self.padding_mode}' needs padding 'same' or explicit amounts; "
                "padding 'valid' pads nothing"
            )
        return self

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self._check_input(shape)
        sides = self.explicit_padding(shape)
        axes = range(self.spatial_rank)
        if self.padding == "same":
            out = [ceil_div(shape[a], self.strides[a]) for a in axes]
        else:
            out = [
                conv_output_size(shape[a] + sum(sides[a]), *self._axis(a), "valid") for a in axes
            ]
        if min(out) < 1:
            raise ShapeError(
                self._misfit_message(shape),
                field="kernel_size",
                hint="use padding 'same' or a smaller kernel_size/dilation_rate"
                if self.padding == "valid"
                else "pad more, or use a smaller kernel_size/dilation_rate",
            )
        if self.padding_mode == "reflect":
            check_reflect(self.kind, shape, sides, "padding")
        return [(*out, self.filters)]

    def _misfit_message(self, shape: Shape) -> str:
        kernel = f"kernel {fmt_window(self.kernel_size)}"
        if max(self.dilation_rate) > 1:
            eff = [
                d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate, strict=True)
            ]
            kernel += f" with dilation {fmt_window(self.dilation_rate)} (spans {fmt_window(eff)})"
        extent = fmt_extent(shape[:-1])
        if self.padding == "valid":
            return f"{kernel} does not fit a {extent} input with padding 'valid'"
        return f"{kernel} does not fit a {extent} input padded by {fmt_sides(self.padding)}"

    def explicit_padding(self, input_shape: Shape) -> tuple[tuple[int, int], ...]:
        """The padding ``(before, after)`` per spatial axis equivalent to this layer's padding:
        ``((top, bottom), (left, right))`` in 2-D."""
        axes = range(self.spatial_rank)
        if self.padding == "valid":
            return tuple((0, 0) for _ in axes)
        if self.padding == "same":
            return tuple(same_padding(input_shape[a], *self._axis(a)) for a in axes)
        return self.padding

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        per_group_in = inputs[0][-1] // self.groups
        return math.prod(self.kernel_size) * per_group_in * self.filters + self._bias(), 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        positions = math.prod(outputs[0][:-1])
        taps = math.prod(self.kernel_size)
        return positions * taps * (inputs[0][-1] // self.groups) * self.filters


@register
class Conv1d(Conv):
    """``conv`` in a 1-D spec (an input ``(L, C)``); any other spec rejects it."""

    kind: Literal["conv1d"] = "conv1d"

    fixed_rank: ClassVar[int | None] = 1
    alias_of: ClassVar[str | None] = "conv"


@register
class Conv2d(Conv):
    """``conv`` in a 2-D spec (an input ``(H, W, C)``); any other spec rejects it."""

    kind: Literal["conv2d"] = "conv2d"

    fixed_rank: ClassVar[int | None] = 2
    alias_of: ClassVar[str | None] = "conv"


@register
class Conv3d(Conv):
    """``conv`` in a 3-D spec (an input ``(D, H, W, C)``); any other spec rejects it."""

    kind: Literal["conv3d"] = "conv3d"

    fixed_rank: ClassVar[int | None] = 3
    alias_of: ClassVar[str | None] = "conv"


@register
class ConvTranspose(_ConvBase):
    """Transposed convolution over every spatial axis of the spec, channels last.

    'same' gives ``H * stride`` positions per axis; 'valid' gives the full ``(H - 1) * stride +
    dilation * (kernel - 1) + 1``; an integer ``padding`` (per axis or for all) is PyTorch's: the
    full output less ``2 * padding``, plus ``output_padding``. :func:`transpose_crop` tells how
    the full output is cut.
    """

    kind: Literal["conv_transpose"] = "conv_transpose"
    padding: TransposeAmounts = "same"
    output_padding: Amounts = Field(0, validate_default=True)
    #: Every tap of the kernel fixed at this value: a constant, not a parameter (what TensorFlow
    #: code that passes a ``tf.constant`` kernel to ``conv2d_transpose`` computes).
    constant_kernel: Finite | None = None

    short_name: ClassVar[str] = "deconv"
    ranked_name: ClassVar[str | None] = "conv{rank}d_transpose"

    _amounts = per_axis(amounts=("padding", "output_padding"))

    @model_validator(mode="after")
    def _check_output_padding(self):
        if any(self.output_padding) and isinstance(self.padding, str):
            raise ValueError(
                f"output_padding needs an integer padding (PyTorch's), not '{self.padding}'"
            )
        for axis, out in enumerate(self.output_padding):
            _, s, d = self._axis(axis)
            if out >= max(s, d):
                raise ValueError(
                    f"output_padding ({fmt_amounts(self.output_padding)}) must be smaller than "
                    f"the stride or the dilation_rate, got strides {fmt_window(self.strides)} "
                    f"and dilation_rate {fmt_window(self.dilation_rate)}"
                )
        return self

    @model_validator(mode="after")
    def _check_constant_kernel(self):
        if self.constant_kernel is not None and (self.use_bias or self.groups != 1):
            raise ValueError(
                "constant_kernel needs use_bias: false and groups: 1, got use_bias: "
                f"{str(self.use_bias).lower()} and groups: {self.groups}"
            )
        return self

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self._check_input(shape)
        out = []
        for axis in range(self.spatial_rank):
            k, s, d = self._axis(axis)
            h = shape[axis]
            full = (h - 1) * s + d * (k - 1) + 1
            if self.padding == "same":
                out.append(h * s)
            elif self.padding == "valid":
                out.append(full)
            else:
                out.append(full - 2 * self.padding[axis] + self.output_padding[axis])
        if min(out) < 1:
            raise ShapeError(
                f"padding {fmt_amounts(self.padding)} cuts the whole {fmt_extent(shape[:-1])} "
                f"output of a transposed kernel {fmt_window(self.kernel_size)} away",
                field="padding",
                hint="use a smaller padding",
            )
        return [(*out, self.filters)]

    def output_crop(self, input_shape: Shape) -> tuple[tuple[int, int], ...]:
        """:func:`transpose_crop` for every spatial axis: ``((top, bottom), (left, right))`` in
        2-D; with an integer padding ``p``, ``(p, p - output_padding)`` per axis."""
        if not isinstance(self.padding, str):
            return tuple(
                (p, p - out) for p, out in zip(self.padding, self.output_padding, strict=True)
            )
        return tuple(
            transpose_crop(input_shape[a], *self._axis(a), self.padding)
            for a in range(self.spatial_rank)
        )

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        if self.constant_kernel is not None:
            return self._bias(), 0
        taps = math.prod(self.kernel_size)
        return taps * inputs[0][-1] * (self.filters // self.groups) + self._bias(), 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        positions = math.prod(inputs[0][:-1])
        taps = math.prod(self.kernel_size)
        return positions * taps * inputs[0][-1] * (self.filters // self.groups)


@register
class Conv1dTranspose(ConvTranspose):
    """``conv_transpose`` in a 1-D spec; any other spec rejects it."""

    kind: Literal["conv1d_transpose"] = "conv1d_transpose"

    fixed_rank: ClassVar[int | None] = 1
    alias_of: ClassVar[str | None] = "conv_transpose"


@register
class Conv2dTranspose(ConvTranspose):
    """``conv_transpose`` in a 2-D spec; any other spec rejects it."""

    kind: Literal["conv2d_transpose"] = "conv2d_transpose"

    fixed_rank: ClassVar[int | None] = 2
    alias_of: ClassVar[str | None] = "conv_transpose"


@register
class Conv3dTranspose(ConvTranspose):
    """``conv_transpose`` in a 3-D spec; any other spec rejects it."""

    kind: Literal["conv3d_transpose"] = "conv3d_transpose"

    fixed_rank: ClassVar[int | None] = 3
    alias_of: ClassVar[str | None] = "conv_transpose"
