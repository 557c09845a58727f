"""The common machinery of every layer kind: the config base class, the registry and shared types.

A layer kind is one :class:`LayerConfig` subclass. Its pydantic fields are the spec's options for
that kind (validated and normalised when the config is built); its methods are the *pure* rules
that the graph checker needs: output shapes, parameter counts and multiply-accumulate counts.

Shapes never include the batch axis: an image is ``(H, W, C)`` (channels last, always), a vector
is ``(N,)``, a scalar is ``()`` and an index map is ``(H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

Shape = tuple[int, ...]

#: Largest kernel / stride / dilation / pool / upsampling factor accepted.
MAX_WINDOW = 4096
#: Largest filters / units / groups / codebook size accepted.
MAX_COUNT = 2**20

INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
)
Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
]
Padding = Literal["same", "valid"]
#: How explicit padding fills: zeros, the mirror image about the edge (the edge itself not
#: repeated, as PyTorch's "reflect") or copies of the edge.
PaddingMode = Literal["zeros", "reflect", "replicate"]

# ----------------------------------------------------------------------------------------------
# Field types shared by several kinds. Integers and booleans are strict (no "3" -> 3, no
# True -> 1); floats accept ints but never bools, strings, inf or nan.

# Both frameworks hold these values as float32, so a float must fit one: a larger magnitude
# becomes infinity, and a positive value below the smallest normal float32 may become 0 (which
# is why fields that must be positive reject it).

#: The largest finite float32.
FLOAT32_MAX = 3.4028234663852886e38
#: The smallest positive normal float32.
FLOAT32_TINY = 1.1754943508222875e-38


def _shown(value: float) -> str:
    return repr(value).replace("e+", "e")


def fits_float32(value: float) -> float:
    """``value`` if a float32 holds it (up to rounding); else a ValueError saying why."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{_shown(value)} does not fit a float32 (largest 3.4e38)")
    return value


def positive_float32(value: float) -> float:
    """A positive ``value`` that stays positive as a float32."""
    fits_float32(value)
    if 0 < value < FLOAT32_TINY:
        raise ValueError(
            f"{_shown(value)} is below the smallest normal float32 (1.2e-38) and may become 0"
        )
    return value


Window = Annotated[int, Field(strict=True, ge=1, le=MAX_WINDOW)]
Count = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
StrictBool = Annotated[bool, Field(strict=True)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(fits_float32)]
NonNegative = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=0.0), AfterValidator(fits_float32)
]
Positive = Annotated[
    float, Field(strict=True, allow_inf_nan=False, gt=0.0), AfterValidator(positive_float32)
]
Rate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0, lt=1.0)]
Epsilon = Positive


def to_pair(value: Any) -> Any:
    """Normalise an int-or-pair option: ``3 -> (3, 3)``, ``[3, 5] -> (3, 5)``.

    A single int out of range is rejected here, so that it gives one error rather than one per
    element. Anything else is passed through unchanged so that pydantic reports it.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_WINDOW:
            raise ValueError(f"must be between 1 and {MAX_WINDOW}, got {value}")
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    return value


_WINDOW_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW}

#: An ``(h, w)`` pair of window sizes; the spec may give a single int for both.
Pair = Annotated[
    tuple[Window, Window],
    BeforeValidator(to_pair),
    WithJsonSchema(
        {
            "anyOf": [
                _WINDOW_SCHEMA,
                {"type": "array", "items": _WINDOW_SCHEMA, "minItems": 2, "maxItems": 2},
            ]
        },
        mode="validation",
    ),
]


#: Rows or columns of explicit padding on one side.
PadAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_WINDOW)]


def to_sides(value: Any) -> Any:
    """Normalise a padding amount: ``p -> ((p, p), (p, p))``, ``[v, h] -> ((v, v), (h, h))``,
    ``[[top, bottom], [left, right]]`` -> nested tuples; anything else passes through unchanged
    so that pydantic reports it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value), (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return (value[0], value[0]), (value[1], value[1])
        return tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in value)
    return value


_PAD_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW}
_PAD_PAIR_SCHEMA = {"type": "array", "items": _PAD_SCHEMA, "minItems": 2, "maxItems": 2}

#: Explicit padding ``((top, bottom), (left, right))``; the spec may give ``p`` for every side,
#: ``[v, h]`` for rows and columns, or all four.
Sides = Annotated[
    tuple[tuple[PadAmount, PadAmount], tuple[PadAmount, PadAmount]],
    BeforeValidator(to_sides),
    WithJsonSchema(
        {
            "anyOf": [
                _PAD_SCHEMA,
                _PAD_PAIR_SCHEMA,
                {"type": "array", "items": _PAD_PAIR_SCHEMA, "minItems": 2, "maxItems": 2},
            ]
        },
        mode="validation",
    ),
]


def _padding_branch(value: Any) -> str:
    return "named" if isinstance(value, str) else "amounts"


#: A convolution's padding: 'same', 'valid' or explicit amounts. A string is only ever checked
#: against the names, so that a misspelt one gives one error listing them.
PaddingOrSides = Annotated[
    Annotated[Padding, Tag("named")] | Annotated[Sides, Tag("amounts")],
    Discriminator(_padding_branch),
]


#: A transposed convolution's padding: 'same', 'valid' or PyTorch's amount cut from each side.
TransposePadding = Annotated[
    Annotated[Padding, Tag("named")] | Annotated[PadAmount, Tag("amounts")],
    Discriminator(_padding_branch),
]


def check_reflect(
    kind: str, shape: Shape, sides: tuple[tuple[int, int], tuple[int, int]], field: str
) -> None:
    """Reflect padding mirrors the input about its edge, so each side's amount must be smaller
    than the input's length along that axis (PyTorch refuses anything else)."""
    for axis, what in ((0, "rows"), (1, "columns")):
        widest = max(sides[axis])
        if widest >= shape[axis]:
            raise ShapeError(
                f"{kind} cannot reflect-pad {widest} {what} of an input with {shape[axis]} "
                f"{what}: reflect padding must be smaller than the input side",
                field=field,
                hint="pad less, or use mode 'replicate' or 'zeros'"
                if kind == "pad"
                else "pad less, or use padding_mode 'replicate' or 'zeros'",
            )


# ----------------------------------------------------------------------------------------------
# Errors and small helpers for shape rules.


class ShapeError(Exception):
    """A shape problem of one node that the spec's author can fix.

    ``field`` names the config field the message is about (``"kernel_size"``), if any; ``hint``
    says how to fix it; ``mismatch`` lists the indices of the offending inputs for multi-input
    kinds (the caller may substitute node names for indices).
    """

    def __init__(
        self,
        message: str,
        field: str | None = None,
        hint: str | None = None,
        *,
        mismatch: Sequence[int] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint
        self.mismatch: list[int] = list(mismatch or [])

    def __str__(self) -> str:
        return self.message


def fmt_shape(shape: Sequence[int]) -> str:
    """``(16, 16, 128) -> "(16, 16, 128)"``, ``(128,) -> "(128,)"``, ``() -> "()"``."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def fmt_pair(pair: Sequence[int]) -> str:
    """``(3, 5) -> "3x5"``."""
    return f"{pair[0]}x{pair[1]}"


def ceil_div(a: int, b: int) -> int:
    """Exact integer ceiling of ``a / b`` for ``b > 0``."""
    return -(-a // b)


def product(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


_RANK_NAMES = {0: "a scalar", 1: "a vector (N,)", 2: "an index map (H,W)", 3: "an image (H,W,C)"}


def describe_rank(rank: int) -> str:
    return _RANK_NAMES.get(rank, f"a rank-{rank} tensor")


def expect_rank(kind: str, shape: Shape, ranks: Sequence[int], hint: str | None = None) -> None:
    """Raise :class:`ShapeError` unless ``len(shape)`` is one of ``ranks``."""
    if len(shape) in ranks:
        return
    wanted = " or ".join(describe_rank(r) for r in ranks)
    raise ShapeError(
        f"{kind} expects {wanted} input, "
        f"got {describe_rank(len(shape))} of shape {fmt_shape(shape)}",
        hint=hint,
    )


# ----------------------------------------------------------------------------------------------
# The config base class.


class LayerConfig(BaseModel):
    """Base of every layer kind's config.

    Subclasses declare ``kind: Literal["..."] = "..."``, their option fields, the class-level
    metadata below, and override the hooks :meth:`infer`, :meth:`count_params` and
    :meth:`count_macs`. The public methods :meth:`output_shapes`, :meth:`param_counts` and
    :meth:`macs` check the number and form of the input shapes first, so a hook may assume it
    gets the right number of well-formed shapes, and only has to validate their ranks and sizes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str

    #: Stem of automatically generated node names (``conv`` -> ``conv_1``, ``conv_2``...).
    short_name: ClassVar[str] = "layer"
    min_inputs: ClassVar[int] = 1
    #: ``None`` means any number of inputs.
    max_inputs: ClassVar[int | None] = 1
    #: Names of the outputs, in the order :meth:`output_shapes` returns them.
    output_names: ClassVar[tuple[str, ...]] = ("output",)
    #: Whether the generated layer owns variables (trainable or not).
    has_weights: ClassVar[bool] = False

    # -- arity ----------------------------------------------------------------------------------

    @classmethod
    def kind_name(cls) -> str:
        return cls.model_fields["kind"].default

    @classmethod
    def check_arity(cls, n: int) -> str | None:
        """A message if ``n`` inputs is not an acceptable number for this kind, else ``None``."""
        lo, hi = cls.min_inputs, cls.max_inputs
        if lo <= n and (hi is None or n <= hi):
            return None

        def inputs(k: int) -> str:
            return f"{k} input" + ("" if k == 1 else "s")

        if hi == lo:
            need = f"exactly {inputs(lo)}"
        elif hi is None:
            need = f"at least {inputs(lo)}"
        else:
            need = f"between {lo} and {hi} inputs"
        return f"{cls.kind_name()} takes {need}, got {n}"

    # -- public rules ---------------------------------------------------------------------------

    def output_shapes(self, inputs: Sequence[Shape]) -> list[Shape]:
        """The shape of each output (see ``output_names``) for the given input shapes.

        Raises :class:`ShapeError` when the inputs do not suit this layer.
        """
        return [tuple(int(d) for d in s) for s in self.infer(self._checked(inputs))]

    def param_counts(self, inputs: Sequence[Shape]) -> tuple[int, int]:
        """``(trainable, non_trainable)`` parameter counts for the given input shapes."""
        shapes = self._checked(inputs)
        self.infer(shapes)
        trainable, frozen = self.count_params(shapes)
        return int(trainable), int(frozen)

    def macs(self, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
        """Multiply-accumulate operations of one forward pass of one sample.

        ``outputs`` must be what :meth:`output_shapes` returned for ``inputs``. Only the
        convolutions, dense layers and the vector quantizer's distance computation count;
        element-wise and normalisation work is reported as 0.
        """
        shapes = self._checked(inputs)
        computed = self.infer(shapes)
        if [tuple(o) for o in outputs] != [tuple(c) for c in computed]:
            raise ValueError(f"outputs {list(outputs)} do not match the computed {computed}")
        return int(self.count_macs(shapes, computed))

    # -- hooks for subclasses -------------------------------------------------------------------

    def infer(self, inputs: list[Shape]) -> list[Shape]:
        raise NotImplementedError(f"{type(self).__name__} has no shape rule")

    def count_params(self, inputs: list[Shape]) -> tuple[int, int]:
        return 0, 0

    def count_macs(self, inputs: list[Shape], outputs: list[Shape]) -> int:
        return 0

    # -- internals ------------------------------------------------------------------------------

    def _checked(self, inputs: Sequence[Shape]) -> list[Shape]:
        problem = self.check_arity(len(inputs))
        if problem is not None:
            raise ShapeError(problem)
        shapes: list[Shape] = []
        for i, shape in enumerate(inputs):
            ok = isinstance(shape, (tuple, list)) and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
            )
            if not ok:
                raise ShapeError(f"input {i} has an invalid shape {shape!r}", mismatch=[i])
            shapes.append(tuple(shape))
        return shapes


# ----------------------------------------------------------------------------------------------
# The registry.

REGISTRY: dict[str, type[LayerConfig]] = {}

L = TypeVar("L", bound=type[LayerConfig])


def register(cls: L) -> L:
    """Class decorator adding a layer kind to :data:`REGISTRY` under its ``kind`` literal."""
    kind = cls.model_fields["kind"].default
    if not isinstance(kind, str) or not kind:
        raise RuntimeError(f"{cls.__name__} must declare kind: Literal['...'] = '...'")
    if kind in REGISTRY:
        raise RuntimeError(
            f"layer kind {kind!r} registered twice ({REGISTRY[kind].__name__} and {cls.__name__})"
        )
    REGISTRY[kind] = cls
    return cls


def layer_kinds() -> list[str]:
    """All registered kind names, sorted."""
    return sorted(REGISTRY)
