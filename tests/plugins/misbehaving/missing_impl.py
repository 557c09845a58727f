"""A plugin whose Keras implementation is not installed."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape


class HalfInstalled(LayerPlugin):
    kind: Literal["half_installed"] = "half_installed"

    torch_class: ClassVar[str] = "clash_torch:Encoder"
    keras_class: ClassVar[str] = "missing_impl_keras_layers:HalfInstalled"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
