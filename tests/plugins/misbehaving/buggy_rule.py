"""A plugin whose shape rule has a bug of its own: specgen names the plugin, not itself."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import LayerPlugin, Shape


class BuggyRule(LayerPlugin):
    kind: Literal["buggy_rule"] = "buggy_rule"

    torch_class: ClassVar[str] = "clash_torch:Encoder"
    keras_class: ClassVar[str] = "clash_keras:Encoder"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [tuple(d // 0 for d in inputs[0])]
