"""Spatial self-attention over the positions of a feature map: ``attention``.

The block of diffusers' ``AutoencoderKL`` mid-block (``Attention`` with a group norm, a residual
connection and ``_from_deprecated_attn_block``): every position of an ``(H, W, C)`` map (of any
spatial rank) attends to every other one, and the result is added back to the input.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import model_validator

from .base import (
    MAX_COUNT,
    Count,
    Epsilon,
    LayerConfig,
    Positive,
    Shape,
    ShapeError,
    StrictBool,
    map_hint,
    register,
)


@register
class Attention(LayerConfig):
    """Multi-head self-attention over all the spatial positions of a feature map (``H * W`` of an
    image).

    ``y = group_norm(x)`` (``norm_groups`` groups, learnt per-channel gamma and beta), flattened
    to a sequence of ``H * W`` (``D * H * W``, ``L``) vectors in row-major order; the linear
    projections ``q``, ``k`` and ``v`` (with bias) map each vector to ``heads`` x ``head_dim``
    values; each head computes ``softmax(q k^T / sqrt(head_dim)) v``; the heads' results, side by
    side, go through one more linear projection (with bias) back to ``C`` channels and are put
    back in ``(*spatial, C)`` form. With ``residual`` the input ``x`` is added; the sum is divided
    by ``rescale_output_factor``.

    ``head_dim`` defaults to ``C / heads`` (``C`` itself for one head), so that ``heads`` must
    then divide ``C``. MACs count the four projections (``4 * H*W * C * heads*head_dim``) and the
    two products with the ``H*W x H*W`` attention weights (``2 * (H*W)^2 * heads*head_dim``).
    """

    kind: Literal["attention"] = "attention"
    norm_groups: Count
    heads: Count = 1
    head_dim: Count | None = None
    epsilon: Epsilon = 1e-6
    residual: StrictBool = True
    rescale_output_factor: Positive = 1.0

    short_name: ClassVar[str] = "attn"
    has_weights: ClassVar[bool] = True

    @model_validator(mode="after")
    def _check_width(self):
        if self.head_dim is not None and self.heads * self.head_dim > MAX_COUNT:
            raise ValueError(
                f"heads x head_dim ({self.heads} x {self.head_dim} = "
                f"{self.heads * self.head_dim}) must be at most {MAX_COUNT}"
            )
        return self

    def dims(self, channels: int) -> tuple[int, int]:
        """``(heads, head_dim)`` for an input of ``channels`` channels (shape-checked first)."""
        if self.head_dim is None:
            return self.heads, channels // self.heads
        return self.heads, self.head_dim

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, hint=map_hint(self.spatial_rank))
        channels = shape[-1]
        if channels % self.norm_groups:
            raise ShapeError(
                f"attention with norm_groups={self.norm_groups} needs the channel count to be a "
                f"multiple of {self.norm_groups}, got {channels} channels",
                field="norm_groups",
                hint=f"choose norm_groups among the divisors of {channels}",
            )
        if self.head_dim is None and channels % self.heads:
            raise ShapeError(
                f"attention with heads={self.heads} and no head_dim splits the channels among "
                f"the heads, but {channels} channels are not a multiple of {self.heads}",
                field="heads",
                hint=f"give head_dim, or choose heads among the divisors of {channels}",
            )
        return [shape]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        channels = inputs[0][-1]
        heads, head_dim = self.dims(channels)
        inner = heads * head_dim
        norm = 2 * channels
        qkv = 3 * (channels * inner + inner)
        out = inner * channels + channels
        return norm + qkv + out, 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        channels = inputs[0][-1]
        heads, head_dim = self.dims(channels)
        inner = heads * head_dim
        positions = math.prod(inputs[0][:-1])
        return 4 * positions * channels * inner + 2 * positions * positions * inner
