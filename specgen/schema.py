"""The spec document's structure, as Pydantic models.

A spec is validated twice:

1. *As written* (:class:`SpecDocument`): the structure of the document — which sections and keys
   exist, what nests where. Any value that may be computed may instead be a ``${...}`` expression
   (:data:`Expr`), so ``filters: ${8 * 2 ** level}`` passes here.
2. *As evaluated*: when the graph is expanded every expression is evaluated and each layer is
   validated by its kind's config model in :mod:`specgen.layers`; the bottleneck, input, output and
   training sections are validated again by the same models below, now without expressions.

Items of ``encoder``/``decoder``/block/skip ``layers`` lists are one of four shapes, told apart by
their keys: a layer (``kind``), a block use (``block``), a loop (``for``) or a group (``layers``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

from .layers.base import Initializer, fits_float32, positive_float32

#: A ``${...}`` expression in place of a value.
Expr = Annotated[str, StringConstraints(pattern=r"^\s*\$\{.*\}\s*$")]
#: A string that may embed ``${...}`` pieces (names, references).
Text = Annotated[str, StringConstraints(max_length=512)]

SPEC_VERSION = 1

#: Names a spec may not give to parameters, loop variables or block parameters: they are bound by
#: specgen itself in every scope.
BUILTIN_VARIABLES = ("in_channels", "in_height", "in_width", "in_depth", "in_length", "in_shape")

ParameterValue = bool | int | float | str | list[Any] | None
#: Booleans and integers are strict: YAML's ``no`` or ``"3"`` never pass as ``false`` or ``3``.
Bool = Annotated[bool, Field(strict=True)]
Int = Annotated[int, Field(strict=True)]
#: Non-negative and positive numbers that a float32 holds (the frameworks' training dtype).
NonNegative = Annotated[
    float, Field(strict=True, ge=0, allow_inf_nan=False), AfterValidator(fits_float32)
]
Positive = Annotated[
    float, Field(strict=True, gt=0, allow_inf_nan=False), AfterValidator(positive_float32)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _ItemCommon(_Strict):
    name: Text | None = Field(
        None,
        description="Local name of the node or group; the dotted path of its parents makes its "
        "full name. Defaults to a numbered stem of the kind (conv1, bn1, ...).",
    )
    inputs: list[Text] | Expr | None = Field(
        None,
        description="References to earlier tensors: sibling names, 'input' (the enclosing "
        "scope's input) or full dotted names. Defaults to the previous item's output.",
    )
    when: Bool | Expr | None = Field(None, description="The item exists only when this is true.")


class LayerItem(_ItemCommon):
    """One primitive layer. Its other keys are the fields of the kind's config."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    kind: str = Field(description="Layer kind, e.g. conv2d, batch_norm, leaky_relu.")


class BlockItem(_ItemCommon):
    """A use of a named block, optionally repeated (groups name0, name1, ...)."""

    block: str = Field(description="Name of a block defined under 'blocks'.")
    args: dict[str, Any] = Field(default_factory=dict, description="Values of the block's params.")
    repeat: Int | Expr | None = Field(
        None, description="Repeat the block this many times in sequence (numbered groups)."
    )
    inline: Bool = Field(
        False,
        description="Expand the block's items directly in the current scope, without a group "
        "of their own (no 'name', no 'repeat').",
    )


class GroupItem(_ItemCommon):
    """A named scope of items."""

    name: Text  # type: ignore[assignment]
    layers: list[Item]
    origin: str | None = Field(
        None, description="The block this group was made from (written by 'specgen expand')."
    )


class LoopItem(_ItemCommon):
    """Items repeated for each value, as groups name0, name1, ..."""

    name: Text  # type: ignore[assignment]
    for_: str = Field(alias="for", description="Loop variable name.")
    in_: Int | list[Any] | Expr = Field(
        alias="in", description="A count (0..n-1) or a list of values to iterate over."
    )
    index: str | None = Field(None, description="Optional variable holding the 0-based index.")
    layers: list[Item] = Field(default_factory=list)


class LevelsItem(_ItemCommon):
    """Resolution levels: per level, optional ``before`` items, a block repeated ``repeat`` times
    (group ``blocks``, instances ``block0``, ``block1``, ...), then optional ``after`` items.

    Shorthand for a loop whose body is ``before + [blocks group] + after``; the level groups are
    named ``level0``, ``level1``, ... (``name``) and the loop variable is ``level`` (``for``).
    """

    levels: Int | list[Any] | Expr = Field(
        description="Number of levels (0..n-1), or a list of per-level values."
    )
    name: Text = "level"  # type: ignore[assignment]
    for_: str = Field("level", alias="for", description="Loop variable name.")
    index: str | None = Field(None, description="Optional variable holding the 0-based index.")
    before: list[Item] = Field(default_factory=list, description="Items before the blocks.")
    block: str | None = Field(None, description="The block repeated at each level.")
    args: dict[str, Any] = Field(default_factory=dict, description="Values of the block's params.")
    repeat: Int | Expr = Field(1, description="Blocks per level.")
    after: list[Item] = Field(default_factory=list, description="Items after the blocks.")


_ITEM_TAGS = {
    LayerItem: "layer",
    BlockItem: "block",
    LoopItem: "loop",
    GroupItem: "group",
    LevelsItem: "levels",
}


def _item_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return _ITEM_TAGS.get(type(value))
    if not isinstance(value, dict):
        return None
    if "kind" in value:
        return "layer"
    if "levels" in value:
        return "levels"
    if "block" in value:
        return "block"
    if "for" in value:
        return "loop"
    if "layers" in value:
        return "group"
    return None


Item = Annotated[
    Annotated[LayerItem, Tag("layer")]
    | Annotated[BlockItem, Tag("block")]
    | Annotated[LoopItem, Tag("loop")]
    | Annotated[GroupItem, Tag("group")]
    | Annotated[LevelsItem, Tag("levels")],
    Discriminator(
        _item_tag,
        custom_error_type="item_kind",
        custom_error_message="an item needs 'kind' (a layer), 'block' (a block use), "
        "'for' (a loop), 'levels' (resolution levels) or 'layers' (a group)",
    ),
]

GroupItem.model_rebuild()
LoopItem.model_rebuild()
LevelsItem.model_rebuild()


#: What a model output means to the training scripts: ``reconstruction`` is compared with the
#: input, ``mu``/``logvar`` give the KL term of a sampled latent, ``vq_loss`` is added to the
#: loss, ``likelihoods`` give the rate term; ``code``, ``perplexity``, ``indices`` and ``extra``
#: have no part in the loss.
OutputRole = Literal[
    "reconstruction",
    "code",
    "mu",
    "logvar",
    "vq_loss",
    "perplexity",
    "indices",
    "likelihoods",
    "extra",
]


class OutputDecl(_Strict):
    """A model output: a tensor of the graph, named, with its role in training."""

    name: Text = Field(description="The output's name (may interpolate ${...}).")
    from_: Text | None = Field(
        None,
        alias="from",
        description="The tensor: a reference as in 'inputs' ('node', 'group.node', 'node:1' for a "
        "node's second output). Without it, the entry places an output declared elsewhere (the "
        "reconstruction, or an output of a block) at this position.",
    )
    role: OutputRole | None = Field(
        None,
        description="What the training scripts do with it; defaults to the name when the name is "
        "a role, else extra.",
    )


class BlockRequirement(_Strict):
    """A condition a block instance must meet, checked before its items are expanded."""

    that: Bool | Expr = Field(
        description="A condition over the block's parameters and the shape of its input."
    )
    message: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The error when the condition is false (may interpolate ${...})."
    )
    hint: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="How to fix it (may interpolate ${...})."
    )


class BlockDef(_Strict):
    """A reusable sub-graph written in the spec language."""

    description: str = ""
    params: dict[str, ParameterValue] = Field(
        default_factory=dict,
        description="Block parameters with defaults; null means the parameter is required.",
    )
    require: list[BlockRequirement] = Field(
        default_factory=list,
        description="Conditions each instance must meet (its parameters, its input's shape).",
    )
    layers: list[Item]
    outputs: list[OutputDecl] = Field(
        default_factory=list,
        description="Model outputs each instance declares, 'from' relative to the instance.",
    )


class SkipSpec(_Strict):
    """A skip path: from a tensor to a later point, through optional layers, merged there."""

    name: Text = Field(description="Name of the skip's group (numbered when it loops).")
    for_: str | None = Field(None, alias="for")
    in_: Int | list[Any] | Expr | None = Field(None, alias="in")
    index: str | None = None
    when: Bool | Expr | None = None
    from_: Text = Field(alias="from", description="Full dotted name of the source tensor.")
    to: Text = Field(description="Full dotted name of the node or group whose output it joins.")
    merge: Literal["add", "concat", "multiply"] | Expr = "add"
    merge_name: Text | None = Field(None, description="Name of the merge node.")
    layers: list[Item] = Field(default_factory=list, description="The skip's transform.")


PositiveInt = Annotated[int, Field(strict=True, ge=1, le=1 << 20)]
Dim = Annotated[int, Field(strict=True, ge=1, le=1 << 16)]
Activation = Literal["linear", "relu", "sigmoid", "tanh", "gelu", "silu", "elu", "softmax"]


class InputSpec(_Strict):
    shape: Annotated[list[Dim | Expr], Field(min_length=2, max_length=4)] | Expr = Field(
        description="Input shape (*spatial, channels): (length, channels) for a 1-D spec, "
        "(height, width, channels) for 2-D, (depth, height, width, channels) for 3-D."
    )


class NoBottleneck(_Strict):
    kind: Literal["none"] = "none"


class _DenseLike(_Strict):
    units: PositiveInt | Expr = Field(description="Width of the latent code.")
    expand_activation: Activation | Expr = Field(
        "linear", description="Activation after the dense layer back to the decoder's input."
    )
    use_bias: Bool | Expr = True
    kernel_initializer: Initializer | Expr = "glorot_uniform"


class DenseBottleneck(_DenseLike):
    kind: Literal["dense"]
    activation: Activation | Expr = Field("linear", description="Activation of the code.")


class VariationalBottleneck(_DenseLike):
    kind: Literal["variational"]
    inference: Literal["mean", "sample", "mean_plus_std"] | Expr = Field(
        "mean",
        description="The latent in inference: the mean, a sample as in training, or the mean "
        "plus one standard deviation (MONAI's VarAutoEncoder).",
    )


class VectorQuantizedBottleneck(_Strict):
    kind: Literal["vector_quantized"]
    embedding_dim: PositiveInt | Expr = Field(description="Width of each codebook vector.")
    num_embeddings: PositiveInt | Expr = Field(description="Number of codebook vectors.")
    commitment_cost: NonNegative | Expr = 0.25
    loss_weighting: Literal["vqvae", "diffusers_legacy"] | Expr = Field(
        "vqvae",
        description="Which loss term commitment_cost weights: the commitment term (vqvae, the "
        "original VQ-VAE) or the codebook term (diffusers_legacy, diffusers' VectorQuantizer "
        "with legacy=True).",
    )
    kernel_initializer: Initializer | Expr = "glorot_uniform"


class DiagonalGaussianBottleneck(_Strict):
    kind: Literal["diagonal_gaussian"]
    latent_channels: PositiveInt | Expr = Field(
        description="Channels of the spatial latent (the mean and the log-variance each)."
    )
    inference: Literal["mean", "sample", "mean_plus_std"] | Expr = Field(
        "mean", description="The latent in inference, as for the variational bottleneck."
    )
    kernel_initializer: Initializer | Expr = "glorot_uniform"


Bottleneck = Annotated[
    NoBottleneck
    | DenseBottleneck
    | VariationalBottleneck
    | VectorQuantizedBottleneck
    | DiagonalGaussianBottleneck,
    Field(discriminator="kind"),
]


def _bottleneck_form(value: Any) -> str | None:
    if isinstance(value, list):
        return "item-list"
    if isinstance(value, (dict, BaseModel)):
        return "kind-mapping"
    return None


#: The bottleneck section: a list of items, or a mapping with ``kind`` that stands for the
#: library block ``<kind>_bottleneck`` with the mapping's other fields as its arguments.
BottleneckSection = Annotated[
    Annotated[list[Item], Tag("item-list")] | Annotated[Bottleneck, Tag("kind-mapping")],
    Discriminator(
        _bottleneck_form,
        custom_error_type="bottleneck_form",
        custom_error_message="the bottleneck is a list of items, or a mapping with 'kind' "
        "(none, dense, variational, vector_quantized, diagonal_gaussian)",
    ),
]


class OutputSpec(_Strict):
    activation: Activation | Expr = Field(
        "linear", description="Activation applied to the decoder's output (the reconstruction)."
    )
    reconstructs: Bool | Expr = Field(
        True,
        description="Whether the output reconstructs the input: then it must have the input's "
        "shape. With false the decoder decides the output's shape (a head).",
    )


class OptimizerSpec(_Strict):
    kind: Literal["adam", "adamw", "sgd"] | Expr = "adam"
    learning_rate: Positive | Expr = 1e-3
    momentum: Annotated[float, Field(strict=True, ge=0, lt=1)] | Expr = 0.0
    weight_decay: NonNegative | Expr = 0.0


class ScheduleSpec(_Strict):
    kind: Literal["constant", "exponential", "cosine", "step"] | Expr = "constant"
    decay_rate: (
        Annotated[float, Field(strict=True, gt=0, le=1), AfterValidator(positive_float32)] | Expr
    ) = 1.0
    decay_steps: PositiveInt | Expr = 1
    staircase: Bool | Expr = False


class TrainingSpec(_Strict):
    """Reserved for the generated training scripts."""

    loss: Literal["mse", "l1", "bce"] | Expr = "mse"
    beta: NonNegative | Expr = Field(
        1.0, description="Weight of the KL term (variational bottleneck)."
    )
    distortion_weight: NonNegative | Expr = Field(
        1.0,
        description="Weight of the reconstruction loss; with a rate term, 0.01 * 255**2 and loss "
        "mse give compressai's RateDistortionLoss(lmbda=0.01).",
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    l2: NonNegative | Expr = 0.0
    gradient_clip: NonNegative | Expr | None = None
    epochs: PositiveInt | Expr = 10
    batch_size: PositiveInt | Expr = 32
    seed: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)] | Expr = 0


class Requirement(_Strict):
    """A condition the parameters must meet, and what to say when they do not."""

    that: Bool | Expr = Field(description="A condition on the parameters, e.g. ${act in [...]}.")
    message: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The error shown when the condition is false: the values that are accepted."
    )


#: Most repetitions (``*``, ``+``, ``{m,n}`` with n > 1) one pattern may hold.
MAX_PATTERN_REPEATS = 2


def _repeats(parsed, inside: bool = False) -> int:
    """The repetitions in a parsed pattern; ValueError for what can make matching take
    exponential time (a repetition or alternatives inside a repetition, a backreference)."""
    from re import _constants as c

    count = 0
    for op, arg in parsed:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            if high > 1 or high == c.MAXREPEAT:
                if inside:
                    raise ValueError(
                        "a repetition inside another repetition can make matching take "
                        "exponential time; write the pattern without nesting them"
                    )
                count += 1 + _repeats(sub, inside=True)
            else:
                count += _repeats(sub, inside)
        elif op in (c.GROUPREF, c.GROUPREF_EXISTS):
            raise ValueError("backreferences are not allowed in patterns")
        elif op == c.SUBPATTERN:
            count += _repeats(arg[-1], inside)
        elif op == c.BRANCH:
            if inside:
                raise ValueError(
                    "alternatives (|) inside a repetition can make matching take exponential "
                    "time; repeat a character class instead"
                )
            count += sum(_repeats(branch, inside) for branch in arg[1])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            count += _repeats(arg[1], inside)
        elif op == getattr(c, "ATOMIC_GROUP", None):
            count += _repeats(arg, inside)
    return count


def _regex(pattern: str) -> str:
    """A regular expression (Python's syntax) that compiles and matches in bounded time: no
    repetition or alternatives inside a repetition, no backreference, at most
    :data:`MAX_PATTERN_REPEATS` repetitions (patterns come from specs, which may come from
    strangers)."""
    import re
    from re import _parser

    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    if _repeats(_parser.parse(pattern)) > MAX_PATTERN_REPEATS:
        raise ValueError(
            f"a pattern may hold at most {MAX_PATTERN_REPEATS} repetitions (*, +, {{m,n}}), "
            "so that matching a name takes bounded time; split it into several steps"
        )
    return pattern


#: A regular expression over tensor names; not evaluated (``$`` and ``{}`` are the regex's).
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=512), AfterValidator(_regex)]


def _template_regex(pattern: str) -> str:
    """A regular expression that may hold ``${...}`` expressions (each standing for literal
    text): every expression parses, and the pattern compiles with each one in place."""
    from .expr import ExprError, _parse, _split

    if "${" not in pattern:
        return _regex(pattern)
    try:
        pieces = _split(pattern)
        for is_expr, text in pieces:
            if is_expr:
                _parse(text.strip())
    except ExprError as exc:
        raise ValueError(exc.message) from None
    _regex("".join("x" if is_expr else text for is_expr, text in pieces))
    return pattern


def _template_text(text: str) -> str:
    """A replacement that may hold ``${...}`` expressions: every expression parses."""
    from .expr import ExprError, _parse, _split

    try:
        for is_expr, piece in _split(text) if "${" in text else ():
            if is_expr:
                _parse(piece.strip())
    except ExprError as exc:
        raise ValueError(exc.message) from None
    return text


#: A regular expression over tensor names in which ``${...}`` is an expression over the
#: parameters (and the step's loop variable), standing for the literal text of its value.
TemplatePattern = Annotated[
    str, StringConstraints(min_length=1, max_length=512), AfterValidator(_template_regex)
]


class WeightsRename(_Strict):
    """One renaming step: every match of ``match`` in a tensor's name is replaced by ``to``."""

    match: TemplatePattern = Field(
        description="A regular expression searched for in the tensor name; ${...} inserts the "
        "literal text of an expression's value."
    )
    to: Annotated[str, StringConstraints(max_length=512), AfterValidator(_template_text)] = Field(
        description="Its replacement; \\1 or \\g<name> insert the match's groups, ${...} an "
        "expression's value."
    )
    for_: str | None = Field(
        None,
        alias="for",
        description="A loop variable: the step is repeated for each value of 'in', in order.",
    )
    in_: Int | list[Any] | Expr | None = Field(
        None, alias="in", description="A count (0..n-1) or a list of values for 'for'."
    )

    @model_validator(mode="after")
    def _loop(self) -> WeightsRename:
        if (self.for_ is None) != (self.in_ is None):
            raise ValueError("a renaming step with a loop needs both 'for' and 'in'")
        if self.for_ is not None:
            from .names import check_identifier

            problem = check_identifier(self.for_)
            if problem:
                raise ValueError(f"invalid loop variable in 'for': {problem}")
        return self


class WeightsLayout(_Strict):
    """How the source stores the tensors whose names match: a layout other than PyTorch's."""

    match: Pattern = Field(description="A regular expression over the source's tensor names.")
    layout: Literal["transpose", "channels_first_inputs", "channels_first_outputs"] = Field(
        description="transpose: a 2-D tensor stored (in, out), PyTorch's (out, in) transposed. "
        "channels_first_inputs: a dense layer's weight whose inputs come from a flatten in "
        "(C, *spatial) order, where the spec's flatten reads (*spatial, C). "
        "channels_first_outputs: a dense layer's weight or bias whose outputs a reshape reads in "
        "(C, *spatial) order. The shapes come from the spec's flatten and reshape."
    )


class WeightsFrom(_Strict):
    """Where a spec's weights come from: the names another library gives the same tensors."""

    library: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The library whose checkpoints these names are (shown in reports, chosen "
        "with --library)."
    )
    format: Literal["pytorch", "keras"] = Field(
        "pytorch",
        description="pytorch: the checkpoint is a state dict (.safetensors, .pt, .pth, .bin) "
        "and the steps rename into the generated PyTorch model's state-dict names; keras: it is "
        "a Keras weights file (.weights.h5, .h5) and the steps rename its dataset paths into "
        "those of the generated Keras model's weights file (node path/vars/index).",
    )
    rename: list[WeightsRename] = Field(
        default_factory=list,
        description="Renaming steps from the library's tensor names to the generated PyTorch "
        "model's state-dict names, applied in order.",
    )
    ignore: list[Pattern] = Field(
        default_factory=list,
        description="Source tensors (full matches of these patterns) that the spec's model "
        "does not hold; they are left out and reported.",
    )
    layout: list[WeightsLayout] = Field(
        default_factory=list,
        description="Source tensors stored in another layout than PyTorch's.",
    )


def _distinct_libraries(value: list[WeightsFrom]) -> list[WeightsFrom]:
    seen: set[str] = set()
    for entry in value:
        if entry.library.casefold() in seen:
            raise ValueError(
                f"two weights_from entries are for library '{entry.library}'; give each its own "
                "name"
            )
        seen.add(entry.library.casefold())
    return value


#: Several mappings, one per library or checkpoint format, each with its own name.
WeightsFromList = Annotated[
    list[WeightsFrom], Field(min_length=1, max_length=32), AfterValidator(_distinct_libraries)
]


class SpecDocument(_Strict):
    """A specgen spec: an autoencoder as an encoder, a bottleneck and a decoder."""

    specgen: Literal[1] = Field(SPEC_VERSION, description="Spec language version.")
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = Field(
        description="Model name: lowercase letters, digits and underscores."
    )
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict,
        description="Named values with defaults, used as ${name}; overridable with --set.",
    )
    require: list[Requirement] = Field(
        default_factory=list,
        description="Conditions on the parameters (accepted values, combinations), each with "
        "its message; checked before anything is expanded.",
    )
    input: InputSpec
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    encoder: list[Item] = Field(default_factory=list)
    bottleneck: BottleneckSection = Field(
        default_factory=NoBottleneck,
        description="A list of items from the encoder's output to the decoder's input, or "
        "{kind: ...}: a bottleneck of the library.",
    )
    decoder: list[Item] = Field(default_factory=list)
    skips: list[SkipSpec] = Field(default_factory=list)
    outputs: list[OutputDecl] = Field(
        default_factory=list,
        description="Model outputs besides the reconstruction, with their roles; an entry "
        "without 'from' places the reconstruction or an output a block declares.",
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    training: TrainingSpec | None = None
    weights_from: WeightsFrom | WeightsFromList | None = Field(
        None,
        description="How a checkpoint of another library maps onto this spec's model "
        "(specgen port-weights): one mapping, or a list of them, one per library or format; "
        "not evaluated.",
    )

    @property
    def weights_sources(self) -> list[tuple[tuple, WeightsFrom]]:
        """Every ``weights_from`` mapping with its path in the spec."""
        value = self.weights_from
        if value is None:
            return []
        if isinstance(value, list):
            return [(("weights_from", k), entry) for k, entry in enumerate(value)]
        return [(("weights_from",), value)]
