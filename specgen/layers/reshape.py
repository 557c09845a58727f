"""Layout changes: ``flatten``, ``reshape``, ``crop`` (alias ``crop2d``) and ``pad``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, WithJsonSchema

from .base import (
    AxisSides,
    LayerConfig,
    PaddingMode,
    Shape,
    ShapeError,
    check_reflect,
    fmt_shape,
    fmt_sides,
    per_axis,
    product,
    register,
)
from .conv import fmt_extent

#: Largest single dimension a reshape target or crop may name.
MAX_DIM = 2**31 - 1


#: The order in which ``flatten`` and ``reshape`` read and write the elements of a
#: ``(*spatial, C)`` tensor: row-major over ``(*spatial, C)`` (the channel index varies fastest)
#: or over ``(C, *spatial)`` (the channel index varies slowest, as ``x.view(B, -1)`` on a
#: PyTorch tensor does).
Order = Literal["channels_last", "channels_first"]


@register
class Flatten(LayerConfig):
    """``(H, W, C) -> (H*W*C,)``, row-major over H, W, C (``order: channels_last``, the channel
    index varies fastest) or over C, H, W (``channels_first``). A vector passes through
    unchanged."""

    kind: Literal["flatten"] = "flatten"
    order: Order = "channels_last"

    short_name: ClassVar[str] = "flatten"

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape, vector=True)
        return [(product(shape),)]


Dim = Annotated[int, Field(strict=True, ge=1, le=MAX_DIM)]


@register
class Reshape(LayerConfig):
    """Reinterprets the elements as ``target_shape`` (1 to rank + 1 dimensions, no batch axis,
    channels last as every shape is): both tensors are read and written row-major in ``order``, as
    :class:`Flatten` reads them. The element count must stay the same."""

    kind: Literal["reshape"] = "reshape"
    target_shape: Annotated[tuple[Dim, ...], Field(min_length=1, max_length=4)]
    order: Order = "channels_last"

    short_name: ClassVar[str] = "reshape"

    _shape = per_axis(shape=("target_shape",))

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


CropAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_DIM)]
_CROP_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_DIM}
_CROP_PAIR_SCHEMA = {"type": "array", "items": _CROP_SCHEMA, "minItems": 2, "maxItems": 2}
#: ``(before, after)`` positions removed per spatial axis; the spec may give ``v`` for every side,
#: or per axis ``v`` or ``[before, after]``.
CropSides = Annotated[
    tuple[tuple[CropAmount, CropAmount], ...],
    WithJsonSchema(
        {
            "anyOf": [
                _CROP_SCHEMA,
                {
                    "type": "array",
                    "items": {"anyOf": [_CROP_SCHEMA, _CROP_PAIR_SCHEMA]},
                    "minItems": 1,
                    "maxItems": 3,
                },
            ]
        },
        mode="validation",
    ),
]


@register
class Crop(LayerConfig):
    """Removes ``cropping``, ``(before, after)`` positions per spatial axis, from a feature map:
    ``((top, bottom), (left, right))`` rows/columns of an image."""

    kind: Literal["crop"] = "crop"
    cropping: CropSides

    short_name: ClassVar[str] = "crop"
    ranked_name: ClassVar[str | None] = "crop{rank}d"

    _sides = per_axis(sides=("cropping",))

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape)
        spatial = [d - b - a for d, (b, a) in zip(shape[:-1], self.cropping, strict=True)]
        if min(spatial) < 1:
            raise ShapeError(
                f"cropping {fmt_sides(self.cropping)} from a {fmt_extent(shape[:-1])} input "
                "leaves nothing",
                field="cropping",
            )
        return [(*spatial, shape[-1])]


@register
class Crop2d(Crop):
    """``crop`` in a 2-D spec; any other spec rejects it."""

    kind: Literal["crop2d"] = "crop2d"

    fixed_rank: ClassVar[int | None] = 2
    alias_of: ClassVar[str | None] = "crop"


@register
class Pad(LayerConfig):
    """Adds ``padding``, ``(before, after)`` positions per spatial axis, around a feature map
    (``((top, bottom), (left, right))`` rows/columns of an image): zeros, the map mirrored about
    its edge without repeating it ('reflect'), or copies of the edge ('replicate')."""

    kind: Literal["pad"] = "pad"
    padding: AxisSides
    mode: PaddingMode = "zeros"

    short_name: ClassVar[str] = "pad"

    _sides = per_axis(sides=("padding",))

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        (shape,) = inputs
        self.expect_map(shape)
        if self.mode == "reflect":
            check_reflect(self.kind, shape, self.padding, "padding")
        spatial = [d + b + a for d, (b, a) in zip(shape[:-1], self.padding, strict=True)]
        return [(*spatial, shape[-1])]
