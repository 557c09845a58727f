"""Regularisation: ``dropout``."""

from __future__ import annotations

from typing import ClassVar, Literal

from .base import LayerConfig, Rate, Shape, register


@register
class Dropout(LayerConfig):
    """Zeroes each element with probability ``rate`` during training and scales the kept ones by
    ``1 / (1 - rate)``; the identity in inference."""

    kind: Literal["dropout"] = "dropout"
    rate: Rate

    short_name: ClassVar[str] = "dropout"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
