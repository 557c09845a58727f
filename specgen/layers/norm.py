"""Normalisation layers: ``batch_norm``, ``layer_norm``, ``group_norm`` and ``instance_norm``.

All normalise channel-last tensors (feature maps of the spec's rank; ``batch_norm`` and
``layer_norm`` vectors too) and apply a learnt per-channel ``gamma``/``beta``: the first
three with ``scale``/``center``, ``instance_norm`` with ``affine`` (PyTorch's options and defaults).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .base import (
    Count,
    Epsilon,
    LayerConfig,
    Shape,
    ShapeError,
    StrictBool,
    fmt_window,
    product,
    register,
)

Momentum = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0, lt=1.0)]


class _NormBase(LayerConfig):
    epsilon: Epsilon = 0.001
    center: StrictBool = True
    scale: StrictBool = True

    has_weights: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, vector=True)
        return [shape]

    def _affine(self, channels: int) -> int:
        return channels * (int(self.center) + int(self.scale))

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        return self._affine(inputs[0][-1]), 0


@register
class BatchNorm(_NormBase):
    """Per-channel (image) or per-feature (vector) batch normalisation.

    Running statistics follow ``running = momentum * running + (1 - momentum) * batch_stat``
    (the Keras convention; PyTorch's ``momentum`` argument is ``1 - momentum``). The moving mean
    and variance are the non-trainable parameters.
    """

    kind: Literal["batch_norm"] = "batch_norm"
    momentum: Momentum = 0.99

    short_name: ClassVar[str] = "bn"

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        channels = inputs[0][-1]
        return self._affine(channels), 2 * channels


@register
class LayerNorm(_NormBase):
    """Normalises over the last (channel) axis at each position independently."""

    kind: Literal["layer_norm"] = "layer_norm"

    short_name: ClassVar[str] = "ln"


@register
class GroupNorm(_NormBase):
    """Splits the channels of a feature map into ``groups`` groups and normalises each group over
    (*spatial, channels-in-group); ``gamma``/``beta`` stay per channel."""

    kind: Literal["group_norm"] = "group_norm"
    groups: Count

    short_name: ClassVar[str] = "gn"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape)
        channels = shape[-1]
        if channels % self.groups:
            raise ShapeError(
                f"group_norm with groups={self.groups} needs the channel count to be a multiple "
                f"of {self.groups}, got {channels} channels",
                field="groups",
                hint=f"choose groups among the divisors of {channels}",
            )
        return [shape]


@register
class InstanceNorm(LayerConfig):
    """Normalises each channel of each sample over its spatial positions (every axis but the
    last), with the biased variance and no running statistics, as PyTorch's ``InstanceNorm2d``
    (``InstanceNorm1d``, ``InstanceNorm3d``)
    with ``track_running_stats=False``; ``affine`` adds a learnt per-channel ``gamma``/``beta``.
    Equal to ``group_norm`` with one group per channel."""

    kind: Literal["instance_norm"] = "instance_norm"
    epsilon: Epsilon = 1e-5
    affine: StrictBool = False

    short_name: ClassVar[str] = "inorm"
    has_weights: ClassVar[bool] = True

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint="use layer_norm or batch_norm on a vector")
        if product(shape[:-1]) == 1:
            raise ShapeError(
                "instance_norm needs more than one spatial position to normalise over; "
                "every output would be 0",
                hint="place it where the spatial size is larger than "
                f"{fmt_window((1,) * self.spatial_rank)}",
            )
        return [shape]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        return (2 * inputs[0][-1] if self.affine else 0), 0
