"""A plugin that prints when it is imported."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape

print("noisy_import: loading the passthrough kind")


class Passthrough(LayerPlugin):
    kind: Literal["passthrough"] = "passthrough"

    torch_class: ClassVar[str] = "clash_torch:Encoder"
    keras_class: ClassVar[str] = "clash_keras:Encoder"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
