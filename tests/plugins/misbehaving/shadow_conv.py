"""A plugin that tries to replace the built-in conv2d: specgen refuses it."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape


class MyConv(LayerPlugin):
    kind: Literal["conv2d"] = "conv2d"

    torch_class: ClassVar[str] = "shadow_conv_impl:MyConv"
    keras_class: ClassVar[str] = "shadow_conv_impl:MyConv"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
