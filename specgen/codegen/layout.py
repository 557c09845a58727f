"""How the generated model files lay out the feature maps of a spec, by its spatial rank.

The PyTorch model holds a feature map ``(*spatial, C)`` channels first, ``(N, C, *spatial)``
(NCL, NCHW, NCDHW); the Keras model holds it as the spec writes it, ``(N, *spatial, C)``. A
:class:`Layout` gives the templates and targets what they print for one rank: class suffixes,
the names of the sides of each axis, axis orders for ``permute`` and the like. Everything that
depends on the rank is decided here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..layers.base import AXES, AXIS_UNITS

#: The spatial axes as variable names in generated code.
_DIMS = {1: ("length",), 2: ("h", "w"), 3: ("d", "h", "w")}
#: The ``(before, after)`` sides of each spatial axis, as padding and cropping name them.
_SIDES = {
    1: (("left", "right"),),
    2: (("top", "bottom"), ("left", "right")),
    3: (("front", "back"), ("top", "bottom"), ("left", "right")),
}


def _tuple_text(items: list[str]) -> str:
    """``"(a, b)"``, with the trailing comma of a one-element tuple."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


@dataclass(frozen=True)
class Layout:
    """What the generated files print for feature maps of ``rank`` spatial axes."""

    rank: int

    # -- names ----------------------------------------------------------------------------------
    @property
    def suffix(self) -> str:
        """PyTorch's class suffix: ``2d`` (``nn.Conv2d``)."""
        return f"{self.rank}d"

    @property
    def keras_suffix(self) -> str:
        """Keras' class suffix: ``2D`` (``layers.Conv2D``)."""
        return f"{self.rank}D"

    @property
    def letters(self) -> tuple[str, ...]:
        return AXES[self.rank]

    @property
    def dims(self) -> tuple[str, ...]:
        """The spatial sizes as variable names: ``("h", "w")``."""
        return _DIMS[self.rank]

    @property
    def torch_order(self) -> str:
        """``NCHW``."""
        return "NC" + "".join(self.letters)

    @property
    def keras_order(self) -> str:
        """``NHWC``."""
        return "N" + "".join(self.letters) + "C"

    @property
    def torch_axes(self) -> str:
        """A PyTorch feature map's axes without the batch: ``(C, H, W)``."""
        return "(" + ", ".join(("C", *self.letters)) + ")"

    @property
    def keras_axes(self) -> str:
        """A Keras feature map's axes without the batch: ``(H, W, C)``."""
        return "(" + ", ".join((*self.letters, "C")) + ")"

    @property
    def torch_axes_batch(self) -> str:
        """A PyTorch feature map's axes: ``(N, C, H, W)``."""
        return "(" + ", ".join(("N", "C", *self.letters)) + ")"

    @property
    def keras_axes_batch(self) -> str:
        """A Keras feature map's axes: ``(N, H, W, C)``."""
        return "(" + ", ".join(("N", *self.letters, "C")) + ")"

    @property
    def spatial_axes(self) -> str:
        """The spatial axes: ``H, W``."""
        return ", ".join(self.letters)

    @property
    def positions(self) -> str:
        """The number of positions of a map: ``H*W``."""
        return "*".join(self.letters)

    @property
    def examples(self) -> str:
        """What a model's inputs are called: ``images``."""
        return {1: "sequences", 2: "images", 3: "volumes"}[self.rank]

    @property
    def units(self) -> str:
        """The positions along the axes, as a phrase: ``rows and columns``."""
        units = AXIS_UNITS[self.rank]
        return units[0] if len(units) == 1 else ", ".join(units[:-1]) + " and " + units[-1]

    @property
    def units_wrapped(self) -> str:
        """:attr:`units` after a space, broken before its last word onto a docstring's next
        line: `` rows and\n    columns``."""
        head, _, last = self.units.rpartition(" ")
        return f" {head}\n    {last}" if head else f"\n    {last}"

    @property
    def extra_after(self) -> str:
        """Where 'same' padding puts an odd one out: ``the extra row and column go after``."""
        singular = {1: "position goes", 2: "row and column go", 3: "plane, row and column go"}
        return f"the extra {singular[self.rank]} after"

    # -- code -----------------------------------------------------------------------------------
    @property
    def torch_shape(self) -> str:
        """Unpacking a PyTorch map's shape: ``n, c, h, w``."""
        return ", ".join(("n", "c", *self.dims))

    @property
    def keras_shape(self) -> str:
        """Unpacking a Keras map's shape, batch ignored: ``_, h, w, c``."""
        return ", ".join(("_", *self.dims, "c"))

    @property
    def extents(self) -> tuple[str, ...]:
        """The sizes along the spatial axes as variable names: ``("rows", "cols")``."""
        return {1: ("length",), 2: ("rows", "cols"), 3: ("planes", "rows", "cols")}[self.rank]

    @property
    def sides(self) -> tuple[tuple[str, str], ...]:
        """``(("top", "bottom"), ("left", "right"))``."""
        return _SIDES[self.rank]

    @property
    def pairs(self) -> str:
        """The sides as pairs: ``(top, bottom), (left, right)``."""
        return ", ".join(f"({b}, {a})" for b, a in self.sides)

    @property
    def unpack(self) -> str:
        """The left-hand side that unpacks per-axis sides: ``(top, bottom), (left, right)``."""
        return self.pairs if self.rank > 1 else f"({self.pairs},)"

    @property
    def sides_doc(self) -> str:
        """The per-axis sides as a tuple: ``((top, bottom), (left, right))``."""
        return _tuple_text([f"({b}, {a})" for b, a in self.sides])

    @property
    def pad_order(self) -> str:
        """The sides in ``F.pad``'s order, last axis first: ``left, right, top, bottom``."""
        return ", ".join(f"{b}, {a}" for b, a in reversed(self.sides))

    @property
    def cut_order(self) -> str:
        """The sides negated in ``F.pad``'s order (a crop): ``-left, -right, -top, -bottom``."""
        return ", ".join(f"-{b}, -{a}" for b, a in reversed(self.sides))

    @property
    def to_last(self) -> str:
        """The ``permute`` from ``(N, C, *spatial)`` to ``(N, *spatial, C)``: ``0, 2, 3, 1``."""
        return ", ".join(map(str, (0, *range(2, self.rank + 2), 1)))

    @property
    def to_first(self) -> str:
        """The ``permute`` from ``(N, *spatial, C)`` to ``(N, C, *spatial)``: ``0, 3, 1, 2``."""
        return ", ".join(map(str, (0, self.rank + 1, *range(1, self.rank + 1))))

    @property
    def channels_to_front(self) -> str:
        """The ``transpose`` from ``(N, *spatial, C)`` to ``(C, N, *spatial)``: ``3, 0, 1, 2``."""
        return ", ".join(map(str, (self.rank + 1, *range(self.rank + 1))))

    @property
    def channels_to_back(self) -> str:
        """The ``transpose`` from ``(C, N, *spatial)`` to ``(N, *spatial, C)``: ``1, 2, 3, 0``."""
        return ", ".join(map(str, (*range(1, self.rank + 2), 0)))

    @property
    def group_axes(self) -> str:
        """The axes a Keras group norm reduces over ``(N, *spatial, groups, C / groups)``:
        ``1, 2, 4``."""
        return ", ".join(map(str, (*range(1, self.rank + 1), self.rank + 2)))

    @property
    def memory_format(self) -> str:
        """PyTorch's channels-last memory format for feature maps of this rank (1-D maps have
        none: their contiguous format is kept)."""
        formats = {2: "torch.channels_last", 3: "torch.channels_last_3d"}
        return formats.get(self.rank, "torch.contiguous_format")

    @property
    def ones(self) -> str:
        """One ``1`` per spatial axis: ``1, 1``."""
        return ", ".join("1" for _ in range(self.rank))


def layout_of(input_shape: tuple[int, ...]) -> Layout:
    """The layout of a spec with input shape ``(*spatial, C)``."""
    return Layout(len(input_shape) - 1)


def ranked(pattern: str) -> tuple[str, ...]:
    """A name at every spatial rank: ``ranked("Pad{}D") == ("Pad1D", "Pad2D", "Pad3D")``."""
    return tuple(pattern.format(rank) for rank in (1, 2, 3))


def rank_neutral(name: str) -> str:
    """The template of a class of one rank (``PaddedConv3d`` -> ``PaddedConvNd``); other names
    stay as they are."""
    return re.sub(r"(?<=[A-Za-z])[123](?=[dD])", "N", name)


def template_classes(template: str) -> tuple[str, ...]:
    """The classes a helper template defines: one per rank for ``PaddedConvNd``, else the one
    its name gives."""
    pattern = re.sub(r"N(?=[dD])", "{}", template)
    return ranked(pattern) if pattern != template else (template,)
