"""Multi-input merges (``add``, ``multiply``, ``concat``), ``identity`` and ``scale``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import ClassVar, Literal

from .base import Finite, LayerConfig, Shape, ShapeError, describe_rank, fmt_shape, register


def _odd_ones(shapes: list[Shape], key: Callable[[Shape], Hashable]) -> list[int]:
    """Indices of the inputs whose ``key`` differs from the most common one (ties: earliest)."""
    keys = [key(s) for s in shapes]
    counts = Counter(keys)
    best = max(counts.values())
    reference = next(k for k in keys if counts[k] == best)
    return [i for i, k in enumerate(keys) if k != reference]


def _list_shapes(shapes: list[Shape]) -> str:
    parts = [fmt_shape(s) for s in shapes]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


class _ElementWise(LayerConfig):
    """Two or more tensors of identical shape combined element by element (``verb`` names the
    operation in errors)."""

    verb: ClassVar[str]
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        odd = _odd_ones(inputs, lambda s: s)
        if odd:
            raise ShapeError(
                f"cannot {self.verb} tensors of shapes {_list_shapes(inputs)}",
                hint=f"all inputs of {self.kind} must have the same shape",
                mismatch=odd,
            )
        return [inputs[0]]


@register
class Add(_ElementWise):
    """Element-wise sum of two or more tensors of identical shape."""

    kind: Literal["add"] = "add"

    short_name: ClassVar[str] = "add"
    verb: ClassVar[str] = "add"


@register
class Multiply(_ElementWise):
    """Element-wise product of two or more tensors of identical shape."""

    kind: Literal["multiply"] = "multiply"

    short_name: ClassVar[str] = "multiply"
    verb: ClassVar[str] = "multiply"


@register
class Concat(LayerConfig):
    """Joins two or more tensors along the last (channel) axis; all other dims must agree."""

    kind: Literal["concat"] = "concat"

    short_name: ClassVar[str] = "concat"
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        for i, shape in enumerate(inputs):
            if not shape:
                raise ShapeError(f"cannot concatenate {describe_rank(0)} (input {i})", mismatch=[i])
        odd = _odd_ones(inputs, lambda s: (len(s), s[:-1]))
        if odd:
            raise ShapeError(
                f"cannot concatenate tensors of shapes {_list_shapes(inputs)} along the last axis",
                hint="all inputs of concat must have the same rank and agree on every "
                "dimension but the last",
                mismatch=odd,
            )
        return [inputs[0][:-1] + (sum(s[-1] for s in inputs),)]


@register
class Identity(LayerConfig):
    """Passes its input through unchanged (useful as a named tap point)."""

    kind: Literal["identity"] = "identity"

    short_name: ClassVar[str] = "identity"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]


@register
class Scale(LayerConfig):
    """Multiplies every element by the constant ``factor`` (no parameters)."""

    kind: Literal["scale"] = "scale"
    factor: Finite

    short_name: ClassVar[str] = "scale"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        return [inputs[0]]
