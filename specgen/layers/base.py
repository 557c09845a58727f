"""The common machinery of every layer kind: the config base class, the registry and shared types.

A layer kind is one :class:`LayerConfig` subclass. Its pydantic fields are the spec's options for
that kind (validated and normalised when the config is built); its methods are the *pure* rules
that the graph checker needs: output shapes, parameter counts and multiply-accumulate counts.

Shapes never include the batch axis. A spec has a *spatial rank* of 1, 2 or 3, taken from its input
shape: its feature maps are ``(*spatial, C)`` (channels last, always) — ``(L, C)`` in 1-D,
``(H, W, C)`` in 2-D, ``(D, H, W, C)`` in 3-D — a vector is ``(N,)``, a scalar is ``()`` and an
index map is ``(*spatial)``. A config learns the spec's rank from the validation context
(:data:`RANK_CONTEXT`); its per-axis options (kernel sizes, strides, paddings...) hold one entry per
spatial axis.
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
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Shape = tuple[int, ...]

#: The spatial ranks a spec may have: 1-D ``(L, C)``, 2-D ``(H, W, C)`` and 3-D ``(D, H, W, C)``.
SPATIAL_RANKS = (1, 2, 3)
#: The key of the validation context that gives a config the spec's spatial rank.
RANK_CONTEXT = "spatial_rank"
#: The rank of a config validated without a context.
DEFAULT_RANK = 2
#: The spatial axes of each rank, as shapes are written.
AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: The same in words (messages, shape variables ``in_<name>``).
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
#: What a feature map of each rank is called in messages.
MAP_WORDS = {1: "a sequence", 2: "an image", 3: "a volume"}
#: What the positions along each spatial axis are called in messages about padding and cropping.
AXIS_UNITS = {1: ("positions",), 2: ("rows", "columns"), 3: ("planes", "rows", "columns")}

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

#: An ``(h, w)`` pair of window sizes, whatever the spec's rank (for options that are pairs in
#: every spec); the spec may give a single int for both. Per-axis options are :data:`Windows`.
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


_PAD_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW}
_PAD_PAIR_SCHEMA = {"type": "array", "items": _PAD_SCHEMA, "minItems": 2, "maxItems": 2}


def _padding_branch(value: Any) -> str:
    return "named" if isinstance(value, str) else "amounts"


# ----------------------------------------------------------------------------------------------
# Per-axis options: one entry per spatial axis of the spec. A spec may write a single value for
# every axis; a list must have exactly one entry per axis.


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def wrong_length(rank: int, field: str, n: int, sides: bool = False) -> PydanticCustomError:
    """The error of a per-axis list with ``n`` entries in a ``rank``-D spec; its context's hint
    says what the field takes (with ``sides``, also how to write ``[before, after]`` amounts)."""
    axes = ", ".join(AXIS_NAMES.get(rank, ()))
    hint = f"give one value for all axes, or a list with one entry per spatial axis ({axes})"
    if sides:
        hint += "; an entry may be a [before, after] pair, as in " + str([[1, 2]] * rank)
    return PydanticCustomError(
        "per_axis_length", f"this spec is {rank}-D; {field} has {_entries(n)}", {"hint": hint}
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _per_axis_list(value: Any, rank: int, field: str, sides: bool = False) -> tuple | None:
    """``value`` as a tuple when it is a list or tuple (of the right length), else None."""
    if not isinstance(value, (list, tuple)):
        return None
    if len(value) != rank:
        raise wrong_length(rank, field, len(value), sides)
    return tuple(value)


def to_windows(value: Any, rank: int, field: str) -> Any:
    """A window option: ``3 -> (3,) * rank``; a list becomes a tuple. A single int out of range is
    rejected here, so that it gives one error rather than one per axis; anything else is passed
    through unchanged so that pydantic reports it."""
    if _is_int(value):
        if not 1 <= value <= MAX_WINDOW:
            raise ValueError(f"must be between 1 and {MAX_WINDOW}, got {value}")
        return (value,) * rank
    listed = _per_axis_list(value, rank, field)
    return value if listed is None else listed


def to_amounts(value: Any, rank: int, field: str) -> Any:
    """An amount per axis (a transposed convolution's padding or output padding): ``p`` ->
    ``(p,) * rank``; names such as 'same' pass through."""
    if _is_int(value):
        return (value,) * rank
    listed = _per_axis_list(value, rank, field)
    return value if listed is None else listed


def to_axis_sides(value: Any, rank: int, field: str) -> Any:
    """Explicit ``(before, after)`` amounts per axis: ``p`` -> ``((p, p),) * rank``; a list has one
    entry per axis, each ``p`` (both sides) or ``[before, after]``; names pass through."""
    if _is_int(value):
        return ((value, value),) * rank
    listed = _per_axis_list(value, rank, field, sides=True)
    if listed is None:
        return value
    return tuple(
        (v, v) if _is_int(v) else tuple(v) if isinstance(v, (list, tuple)) else v for v in listed
    )


def to_target_shape(value: Any, rank: int, field: str) -> Any:
    """A shape without the batch axis: at most ``rank + 1`` entries (a feature map)."""
    if isinstance(value, (list, tuple)):
        if len(value) > rank + 1:
            raise ValueError(
                f"this spec is {rank}-D; {field} has {_entries(len(value))}, at most {rank + 1}"
            )
        return tuple(value)
    return value


#: How each form of per-axis option is normalised (see :func:`per_axis`).
PER_AXIS_FORMS = {
    "windows": to_windows,
    "amounts": to_amounts,
    "sides": to_axis_sides,
    "shape": to_target_shape,
}


def per_axis(**forms: tuple[str, ...]):
    """A before-validator normalising per-axis fields to the config's spatial rank, one entry per
    axis: ``_axes = per_axis(windows=("kernel_size", "strides"), sides=("padding",))``."""
    form_of = {name: form for form, names in forms.items() for name in names}

    def normalise(cls, value: Any, info: ValidationInfo) -> Any:
        field = info.field_name or ""
        return PER_AXIS_FORMS[form_of[field]](value, cls.rank_in(info.context), field)

    # the fields with one entry per axis (a target shape is no such field)
    normalise.per_axis = tuple(n for n, f in form_of.items() if f != "shape")  # type: ignore[attr-defined]
    return field_validator(*form_of, mode="before")(classmethod(normalise))


def _list_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 1, "maxItems": max(SPATIAL_RANKS)}


def _one_or_per_axis(item: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [item, _list_schema(item)]}, mode="validation")


#: Window sizes (kernel, stride, dilation, pool, upsampling factor), one per spatial axis; the spec
#: may give a single int for every axis.
Windows = Annotated[tuple[Window, ...], _one_or_per_axis(_WINDOW_SCHEMA)]
#: Amounts per spatial axis (PyTorch's padding and output padding of a transposed convolution).
Amounts = Annotated[tuple[PadAmount, ...], _one_or_per_axis(_PAD_SCHEMA)]
#: Explicit ``(before, after)`` amounts per spatial axis; the spec may give ``p`` for every side,
#: or per axis ``p`` or ``[before, after]``.
AxisSides = Annotated[
    tuple[tuple[PadAmount, PadAmount], ...],
    WithJsonSchema(
        {"anyOf": [_PAD_SCHEMA, _list_schema({"anyOf": [_PAD_SCHEMA, _PAD_PAIR_SCHEMA]})]},
        mode="validation",
    ),
]

#: A convolution's padding: 'same', 'valid' or explicit amounts per axis. A string is only ever
#: checked against the names, so that a misspelt one gives one error listing them.
PaddingOrAxisSides = Annotated[
    Annotated[Padding, Tag("named")] | Annotated[AxisSides, Tag("amounts")],
    Discriminator(_padding_branch),
]

#: A transposed convolution's padding: 'same', 'valid' or PyTorch's amount cut from each side of
#: each axis.
TransposeAmounts = Annotated[
    Annotated[Padding, Tag("named")] | Annotated[Amounts, Tag("amounts")],
    Discriminator(_padding_branch),
]


def fmt_window(values: Sequence[int]) -> str:
    """``(3, 5) -> "3x5"``, ``(3, 3, 3) -> "3x3x3"``."""
    return "x".join(str(v) for v in values)


def fmt_sides(sides: Sequence[tuple[int, int]]) -> str:
    """``((1, 0), (2, 2)) -> "1+0 rows and 2+2 columns"`` (the units of the rank)."""
    units = AXIS_UNITS[len(sides)]
    parts = [f"{b}+{a} {u}" for (b, a), u in zip(sides, units, strict=True)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def check_reflect(kind: str, shape: Shape, sides: Sequence[tuple[int, int]], field: str) -> None:
    """Reflect padding mirrors the input about its edge, so each side's amount must be smaller
    than the input's length along that axis (PyTorch refuses anything else)."""
    for axis, what in enumerate(AXIS_UNITS[len(sides)]):
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


def ceil_div(a: int, b: int) -> int:
    """Exact integer ceiling of ``a / b`` for ``b > 0``."""
    return -(-a // b)


def product(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


def describe_rank(rank: int, spatial: int = DEFAULT_RANK) -> str:
    """What a tensor of ``rank`` dimensions is in a spec of spatial rank ``spatial``:
    ``an image (H,W,C)``, ``a vector (N,)``, ``an index map (D,H,W)``..."""
    axes = ",".join(AXES[spatial])
    if rank == spatial + 1:
        return f"{MAP_WORDS[spatial]} ({axes},C)"
    if rank == 0:
        return "a scalar"
    if rank == 1:
        return "a vector (N,)"
    if rank == spatial:
        return f"an index map ({axes})"
    return f"a rank-{rank} tensor"


#: A feature map of each rank, as hints name it.
_MAP_NOUNS = {1: "an (L,C) sequence", 2: "an (H,W,C) image", 3: "a (D,H,W,C) volume"}


def map_hint(spatial: int) -> str:
    """The hint of a layer that needs a feature map of a ``spatial``-D spec."""
    return f"insert a reshape layer before it to make {_MAP_NOUNS[spatial]}"


def expect_rank(
    kind: str,
    shape: Shape,
    ranks: Sequence[int],
    hint: str | None = None,
    spatial: int = DEFAULT_RANK,
) -> None:
    """Raise :class:`ShapeError` unless ``len(shape)`` is one of ``ranks`` (tensor ranks, in a
    spec of spatial rank ``spatial``)."""
    if len(shape) in ranks:
        return
    wanted = " or ".join(describe_rank(r, spatial) for r in ranks)
    raise ShapeError(
        f"{kind} expects {wanted} input, "
        f"got {describe_rank(len(shape), spatial)} of shape {fmt_shape(shape)}",
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

    #: The spatial rank of the spec the config belongs to (from the validation context).
    _spatial_rank: int = PrivateAttr(DEFAULT_RANK)

    #: Stem of automatically generated node names (``conv`` -> ``conv_1``, ``conv_2``...).
    short_name: ClassVar[str] = "layer"
    #: The only spatial rank a kind works at (``conv3d``), or None for the spec's rank (``conv``).
    fixed_rank: ClassVar[int | None] = None
    #: The rank-neutral kind this kind is an alias of (``conv2d`` -> ``conv``), if any: both have
    #: the same fields and rules, and are generated alike.
    alias_of: ClassVar[str | None] = None
    #: The kind's name at each rank, as summaries show it (``conv{rank}d``), if it has one.
    ranked_name: ClassVar[str | None] = None
    min_inputs: ClassVar[int] = 1
    #: ``None`` means any number of inputs.
    max_inputs: ClassVar[int | None] = 1
    #: Names of the outputs, in the order :meth:`output_shapes` returns them.
    output_names: ClassVar[tuple[str, ...]] = ("output",)
    #: Whether the generated layer owns variables (trainable or not).
    has_weights: ClassVar[bool] = False

    # -- spatial rank ---------------------------------------------------------------------------

    @classmethod
    def rank_in(cls, context: Any) -> int:
        """The spatial rank a config of this kind is validated at with ``context``: the spec's,
        else the kind's own, else :data:`DEFAULT_RANK`."""
        rank = context.get(RANK_CONTEXT) if isinstance(context, dict) else None
        return rank or cls.fixed_rank or DEFAULT_RANK

    @model_validator(mode="after")
    def _take_rank(self, info: ValidationInfo):
        rank = self.rank_in(info.context)
        if self.fixed_rank is not None and rank != self.fixed_rank:
            neutral = self.kind.replace(f"{self.fixed_rank}d", "")
            raise ValueError(
                f"{self.kind} is a {self.fixed_rank}-D layer, but this spec is {rank}-D; "
                f"kind {neutral} takes the spec's rank"
            )
        self._spatial_rank = rank
        return self

    @property
    def neutral_kind(self) -> str:
        """The rank-neutral kind of this layer (``conv`` for ``conv2d``, else its kind)."""
        return self.alias_of or self.kind

    @property
    def ranked_kind(self) -> str:
        """The kind's name at the spec's rank (``conv2d`` for ``conv`` in a 2-D spec), else the
        kind itself: what summaries show, the same for a kind and its aliases."""
        if self.ranked_name is None:
            return self.kind
        return self.ranked_name.format(rank=self.spatial_rank)

    @property
    def spatial_rank(self) -> int:
        """The number of spatial axes of the spec's feature maps ``(*spatial, C)``."""
        return self._spatial_rank

    def expect_map(self, shape: Shape, *, vector: bool = False, hint: str | None = None) -> None:
        """Raise :class:`ShapeError` unless ``shape`` is a feature map of the spec's rank (or, with
        ``vector``, a vector)."""
        rank = self.spatial_rank
        ranks = (1, rank + 1) if vector else (rank + 1,)
        expect_rank(self.kind, shape, ranks, hint, rank)

    @classmethod
    def per_axis_fields(cls) -> frozenset[str]:
        """The fields holding one entry per spatial axis (see :func:`per_axis`)."""
        validators = cls.__pydantic_decorators__.field_validators.values()
        return frozenset(
            name for v in validators for name in getattr(v.func.__func__, "per_axis", ())
        )

    def is_default(self, name: str) -> bool:
        """Whether field ``name`` holds its default; an int default of a per-axis option stands
        for that value on every axis (``strides: 1`` is ``(1, 1, 1)`` in a 3-D spec)."""
        field = type(self).model_fields[name]
        if field.is_required():
            return False
        default = field.get_default(call_default_factory=True)
        value = getattr(self, name)
        if _is_int(default) and isinstance(value, tuple) and value:
            return value == (default,) * len(value)
        return value == default

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
