"""A plugin whose implementations are both called ``Encoder``, a name generated files bind
themselves: they are imported under another name."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape


class Passthrough(LayerPlugin):
    kind: Literal["passthrough"] = "passthrough"

    torch_class: ClassVar[str] = "clash_torch:Encoder"
    keras_class: ClassVar[str] = "clash_keras:Encoder"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
