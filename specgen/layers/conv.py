"""Convolutions (``conv2d``, ``conv2d_transpose``) and the padding arithmetic generators need."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from .base import (
    Count,
    Initializer,
    LayerConfig,
    PadAmount,
    Padding,
    PaddingMode,
    PaddingOrSides,
    Pair,
    Shape,
    ShapeError,
    StrictBool,
    TransposePadding,
    ceil_div,
    check_reflect,
    expect_rank,
    fmt_pair,
    register,
)

IMAGE_HINT = "insert a reshape layer before it to make an (H,W,C) image"


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


class _ConvBase(LayerConfig):
    """Options shared by ``conv2d`` and ``conv2d_transpose``."""

    filters: Count
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "same"
    dilation_rate: Pair = (1, 1)
    groups: Count = 1
    use_bias: StrictBool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"

    has_weights: ClassVar[bool] = True

    @model_validator(mode="after")
    def _check_combination(self):
        if self.filters % self.groups:
            raise ValueError(
                f"filters ({self.filters}) must be a multiple of groups ({self.groups})"
            )
        if max(self.dilation_rate) > 1 and max(self.strides) > 1:
            raise ValueError(
                "dilation_rate > 1 requires strides 1 (TensorFlow cannot combine both), got "
                f"strides {fmt_pair(self.strides)} and dilation_rate {fmt_pair(self.dilation_rate)}"
            )
        return self

    def _check_input(self, shape: Shape) -> None:
        expect_rank(self.kind, shape, (3,), hint=IMAGE_HINT)
        channels = shape[2]
        if channels % self.groups:
            raise ShapeError(
                f"{self.kind} with groups={self.groups} needs the input channel count to be a "
                f"multiple of {self.groups}, got {channels} channels",
                field="groups",
            )

    def _axis(self, axis: int) -> tuple[int, int, int]:
        """``(kernel, stride, dilation)`` along ``axis`` (0 = rows, 1 = columns)."""
        return self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]

    def _bias(self) -> int:
        return self.filters if self.use_bias else 0


@register
class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation), channels last.

    'same' gives ``ceil(H / stride)`` rows, padded as in :func:`same_padding`; 'valid' gives
    ``floor((H - dilation * (kernel - 1) - 1) / stride) + 1`` and needs that to be >= 1.
    Explicit padding ``((top, bottom), (left, right))`` (PyTorch's) pads first and then works as
    'valid'. ``padding_mode`` says what the padding holds: zeros, the input mirrored about its
    edge ('reflect') or copies of the edge ('replicate').
    """

    kind: Literal["conv2d"] = "conv2d"
    padding: PaddingOrSides = "same"
    padding_mode: PaddingMode = "zeros"

    short_name: ClassVar[str] = "conv"

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
        if self.padding == "same":
            out = [ceil_div(shape[a], self.strides[a]) for a in (0, 1)]
        else:
            out = [
                conv_output_size(shape[a] + sum(sides[a]), *self._axis(a), "valid") for a in (0, 1)
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
        return [(out[0], out[1], self.filters)]

    def _misfit_message(self, shape: Shape) -> str:
        kernel = f"kernel {fmt_pair(self.kernel_size)}"
        if max(self.dilation_rate) > 1:
            eff = [d * (k - 1) + 1 for k, _, d in (self._axis(0), self._axis(1))]
            kernel += f" with dilation {fmt_pair(self.dilation_rate)} (spans {fmt_pair(eff)})"
        if self.padding == "valid":
            return f"{kernel} does not fit a {shape[0]}x{shape[1]} input with padding 'valid'"
        (top, bottom), (left, right) = self.padding
        return (
            f"{kernel} does not fit a {shape[0]}x{shape[1]} input padded by {top}+{bottom} rows "
            f"and {left}+{right} columns"
        )

    def explicit_padding(self, input_shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """The padding ``((top, bottom), (left, right))`` equivalent to this layer's padding."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            rows, cols = (same_padding(input_shape[a], *self._axis(a)) for a in (0, 1))
            return rows, cols
        return self.padding

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        kh, kw = self.kernel_size
        per_group_in = inputs[0][2] // self.groups
        return kh * kw * per_group_in * self.filters + self._bias(), 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        kh, kw = self.kernel_size
        ho, wo, _ = outputs[0]
        return ho * wo * kh * kw * (inputs[0][2] // self.groups) * self.filters


@register
class Conv2dTranspose(_ConvBase):
    """2-D transposed convolution, channels last.

    'same' gives ``H * stride`` rows; 'valid' gives the full ``(H - 1) * stride +
    dilation * (kernel - 1) + 1``. :func:`transpose_crop` tells how the full output is cut.
    """

    kind: Literal["conv2d_transpose"] = "conv2d_transpose"
    padding: TransposePadding = "same"
    output_padding: PadAmount = 0

    short_name: ClassVar[str] = "deconv"

    @model_validator(mode="after")
    def _check_output_padding(self):
        if self.output_padding and isinstance(self.padding, str):
            raise ValueError(
                f"output_padding needs an integer padding (PyTorch's), not '{self.padding}'"
            )
        for axis in (0, 1):
            _, s, d = self._axis(axis)
            if self.output_padding >= max(s, d):
                raise ValueError(
                    f"output_padding ({self.output_padding}) must be smaller than the stride or "
                    f"the dilation_rate, got strides {fmt_pair(self.strides)} and "
                    f"dilation_rate {fmt_pair(self.dilation_rate)}"
                )
        return self

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self._check_input(shape)
        out = []
        for axis in (0, 1):
            k, s, d = self._axis(axis)
            h = shape[axis]
            full = (h - 1) * s + d * (k - 1) + 1
            if self.padding == "same":
                out.append(h * s)
            elif self.padding == "valid":
                out.append(full)
            else:
                out.append(full - 2 * self.padding + self.output_padding)
        if min(out) < 1:
            raise ShapeError(
                f"padding {self.padding} cuts the whole {shape[0]}x{shape[1]} output of a "
                f"transposed kernel {fmt_pair(self.kernel_size)} away",
                field="padding",
                hint="use a smaller padding",
            )
        return [(out[0], out[1], self.filters)]

    def output_crop(self, input_shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """:func:`transpose_crop` for both axes: ``((top, bottom), (left, right))``; with an
        integer padding ``p``, ``(p, p - output_padding)`` on both."""
        if isinstance(self.padding, int):
            cut = (self.padding, self.padding - self.output_padding)
            return cut, cut
        rows, cols = (transpose_crop(input_shape[a], *self._axis(a), self.padding) for a in (0, 1))
        return rows, cols

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        kh, kw = self.kernel_size
        return kh * kw * inputs[0][2] * (self.filters // self.groups) + self._bias(), 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        kh, kw = self.kernel_size
        hi, wi, c = inputs[0]
        return hi * wi * kh * kw * c * (self.filters // self.groups)
