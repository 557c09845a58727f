"""Layout changes: ``flatten``, ``reshape``, ``crop2d`` and ``pad``."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from .base import (
    LayerConfig,
    PaddingMode,
    Shape,
    ShapeError,
    Sides,
    check_reflect,
    expect_rank,
    fmt_shape,
    product,
    register,
)

#: Largest single dimension a reshape target or crop may name.
MAX_DIM = 2**31 - 1


@register
class Flatten(LayerConfig):
    """``(H, W, C) -> (H*W*C,)`` in row-major H, W, C order (channels-last order: the channel
    index varies fastest). A vector passes through unchanged."""

    kind: Literal["flatten"] = "flatten"

    short_name: ClassVar[str] = "flatten"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        expect_rank(self.kind, shape, (1, 3))
        return [(product(shape),)]


def _to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


Dim = Annotated[int, Field(strict=True, ge=1, le=MAX_DIM)]


@register
class Reshape(LayerConfig):
    """Reinterprets the elements, in channels-last row-major order, as ``target_shape``
    (1 to 3 dimensions, no batch axis). The element count must stay the same."""

    kind: Literal["reshape"] = "reshape"
    target_shape: Annotated[
        tuple[Dim, ...], BeforeValidator(_to_tuple), Field(min_length=1, max_length=3)
    ]

    short_name: ClassVar[str] = "reshape"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        have, want = product(shape), product(self.target_shape)
        if have != want:
            raise ShapeError(
                f"cannot reshape {fmt_shape(shape)} ({have} elements) to "
                f"{fmt_shape(self.target_shape)} ({want} elements)",
                field="target_shape",
            )
        return [tuple(self.target_shape)]


def _to_cropping(value: Any) -> Any:
    """``v -> ((v, v), (v, v))``, ``[v, h] -> ((v, v), (h, h))``, nested lists -> nested tuples."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value), (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return (value[0], value[0]), (value[1], value[1])
        return tuple(_to_tuple(v) for v in value)
    return value


CropAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_DIM)]


@register
class Crop2d(LayerConfig):
    """Removes ``cropping = ((top, bottom), (left, right))`` rows/columns from an image."""

    kind: Literal["crop2d"] = "crop2d"
    cropping: Annotated[
        tuple[tuple[CropAmount, CropAmount], tuple[CropAmount, CropAmount]],
        BeforeValidator(_to_cropping),
    ]

    short_name: ClassVar[str] = "crop"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        expect_rank(self.kind, shape, (3,))
        (top, bottom), (left, right) = self.cropping
        h, w = shape[0] - top - bottom, shape[1] - left - right
        if h < 1 or w < 1:
            raise ShapeError(
                f"cropping {top}+{bottom} rows and {left}+{right} columns from a "
                f"{shape[0]}x{shape[1]} input leaves nothing",
                field="cropping",
            )
        return [(h, w, shape[2])]


@register
class Pad(LayerConfig):
    """Adds ``padding = ((top, bottom), (left, right))`` rows/columns around an image: zeros, the
    image mirrored about its edge without repeating it ('reflect'), or copies of the edge
    ('replicate')."""

    kind: Literal["pad"] = "pad"
    padding: Sides
    mode: PaddingMode = "zeros"

    short_name: ClassVar[str] = "pad"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        expect_rank(self.kind, shape, (3,))
        if self.mode == "reflect":
            check_reflect(self.kind, shape, self.padding, "padding")
        (top, bottom), (left, right) = self.padding
        return [(shape[0] + top + bottom, shape[1] + left + right, *shape[2:])]
