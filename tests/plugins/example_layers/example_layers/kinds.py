"""The configs of the two kinds: fields, shape/parameter/MAC rules and constructor arguments."""

from __future__ import annotations

from typing import ClassVar, Literal

from specgen.plugins import (
    Finite,
    LayerPlugin,
    Pair,
    Shape,
    ShapeError,
    StrictBool,
    Weight,
    expect_rank,
)


class LearnedScale(LayerPlugin):
    """``x * scale + bias`` with one learnt scale (and bias) per channel, the last axis.

    Its weights are declared: the same names and shapes in both frameworks."""

    kind: Literal["learned_scale"] = "learned_scale"
    init: Finite = 1.0
    use_bias: StrictBool = True

    has_weights: ClassVar[bool] = True
    short_name: ClassVar[str] = "scale"
    torch_class: ClassVar[str] = "example_layers.torch_layers:LearnedScale"
    keras_class: ClassVar[str] = "example_layers.keras_layers:LearnedScale"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        expect_rank(self.kind, inputs[0], (1, 3))
        return [inputs[0]]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        channels = inputs[0][-1]
        return channels * (2 if self.use_bias else 1), 0

    def torch_arguments(self, inputs: list[Shape]) -> dict[str, object]:
        # PyTorch creates its weights up front, so it needs the channel count; Keras takes
        # it from the input when the layer is built (the default arguments: init, use_bias)
        return {"channels": inputs[0][-1], **self.arguments(inputs)}

    def weights(self, inputs: list[Shape]) -> list[Weight]:
        out = [Weight("scale", "scale")]
        if self.use_bias:
            out.append(Weight("bias", "bias"))
        return out


class SwishGate(LayerPlugin):
    """``x * sigmoid(conv(x))``: a same-padded convolution as wide as its input gates it.

    Its weights are paired in order (the convolution's kernel, then its bias)."""

    kind: Literal["swish_gate"] = "swish_gate"
    kernel_size: Pair = (1, 1)

    has_weights: ClassVar[bool] = True
    torch_class: ClassVar[str] = "example_layers.torch_layers:SwishGate"
    keras_class: ClassVar[str] = "example_layers.keras_layers:SwishGate"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        expect_rank(self.kind, inputs[0], (3,))
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ShapeError(
                f"swish_gate needs an odd kernel_size, got {self.kernel_size}",
                field="kernel_size",
                hint="use 1, 3, 5, ...",
            )
        return [inputs[0]]

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        kh, kw = self.kernel_size
        channels = inputs[0][-1]
        return kh * kw * channels * channels + channels, 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        h, w, channels = inputs[0]
        kh, kw = self.kernel_size
        return h * w * channels * channels * kh * kw

    def arguments(self, inputs: list[Shape]) -> dict[str, object]:
        return {"channels": inputs[0][-1], "kernel_size": self.kernel_size}
