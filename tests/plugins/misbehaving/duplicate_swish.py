"""A plugin defining a kind that the example_layers plugin defines too."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape


class OtherSwishGate(LayerPlugin):
    kind: Literal["swish_gate"] = "swish_gate"

    torch_class: ClassVar[str] = "clash_torch:Encoder"
    keras_class: ClassVar[str] = "clash_keras:Encoder"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
