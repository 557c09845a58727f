"""Property-based tests over the spec language: random valid specs expand, round-trip through the
expanded spec, and their generated PyTorch and Keras models compute the same function.

The strategy writes specs the way a user would, at a spatial rank of 1, 2 or 3 drawn per spec
(sequences ``(L, C)``, images ``(H, W, C)`` or volumes ``(D, H, W, C)``): the paddings of
convolutions and pad layers are drawn per axis, and the convolutions are written with the
rank-neutral kinds (``conv``, ``conv_transpose``) or the rank's aliases (``conv3d``...). Reusable
blocks are defined in the spec itself:

- ``res``: (conv 3x3 -> norm -> act) x 2 plus the input, with an identity or 1x1 projection
  shortcut chosen with ``in_channels`` and ``when``;
- ``preact``: full pre-activation, (norm -> act -> conv 3x3) x 2 plus the input;
- ``bottleneck``: the 1x1 -> 3x3 -> 1x1 unit with a narrower middle width;
- ``plain``: conv -> norm -> act with a kernel size parameter and an optional dropout.

Each block definition draws its own norm (batch norm with random momentum/epsilon, group norm,
layer norm, instance norm with or without affine, gdn/igdn, or none) and activation (relu,
leaky_relu with a slope, gelu, silu, elu, tanh, sigmoid, prelu per channel or shared with an
initial slope); the 3x3 convolutions of ``res``, ``preact`` and ``bottleneck`` pad 'same' or by
explicit amounts (``1``, ``[1, 1]``, ``[[0, 2], [2, 0]]``) with zeros, reflect or replicate, and
``res`` at times scales its sum. One to three resolution levels each run 0-2 instances of a
block at a random width and downsample by a strided conv (kernel 2, 3 or 4: 'same', explicit
padding, or a ``pad`` layer then 'valid') or by max/avg pooling; the decoder mirrors them with
conv-transposes (stride 2: 'same', 'valid', or PyTorch's integer padding and output padding) or
upsample (nearest/bilinear) + conv (padded by itself or by a ``pad`` layer). Levels are written
in one of three ways: explicit groups, a ``for`` loop over a list parameter whose entries pick
their block with ``when``, or the ``levels`` shorthand (counted or over a list). The encoder's
last level is at times followed by a self-attention layer (random groups, heads, head width,
residual and rescaling) and an entropy bottleneck. Reflect padding is drawn only where each side
pads less than the rows or columns it extends, and instance norm only where a map has more than
one position.
Skips are none, ResNetAE-like multi-resolution skips (every encoder level to the bottleneck
resolution, added or multiplied there; the decoder stem to every decoder level), or U-Net concat
skips from each encoder level to the decoder level of the same resolution. The bottleneck is
none, dense (random units and activation), variational, diagonal Gaussian (with an inference
mode) or vector-quantized with a small codebook, at times written as items (its library block
used inline); the output activation is linear, sigmoid or
tanh, and at times the output is a head of its own channel count (``reconstructs: false``).
``EVERY_CONSTRUCT`` (and its 1-D and 3-D versions) adds one spec with every layer option
above to the samples.

Names are drawn too: the model, the stems, the down/up items, the outputs, the block definitions
and the layers and groups inside them are at times named like things that generated code or Python
already use (lower-cased keywords, variants of builtins and framework attributes, the generated
files' own identifiers such as ``padded_conv2d``, ``INITIALIZERS`` or ``F``).

The strategy tracks channel counts while it draws, so every spec is valid: group-norm groups
divide the channels they normalize, skip transforms produce their targets' shapes, and input
sizes are multiples of 2 ** levels. Models stay tiny (inputs of at most 32x32x4, 8x8x8x4 in 3-D,
widths of at most 16) so that building and comparing both frameworks stays fast.
"""

from __future__ import annotations

import copy
import math
import traceback
from dataclasses import dataclass
from functools import lru_cache

import pytest
import yaml
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from specgen.api import build_graph, load_spec
from specgen.errors import SpecErrors
from specgen.graph import ModelGraph
from specgen.names import check_identifier
from specgen.to_spec import dump_spec, graph_to_spec
from test_names import MODEL_FORM, all_names

pytestmark = pytest.mark.frameworks

BLOCK_KINDS = ("res", "preact", "bottleneck", "plain")
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "elu", "tanh", "sigmoid", "prelu")
NORMS = ("batch_norm", "group_norm", "layer_norm", "instance_norm", "gdn", "igdn", "none")
PADDING_MODES = ("zeros", "reflect", "replicate")
BOTTLENECKS = ("none", "dense", "variational", "vector_quantized", "diagonal_gaussian")
#: The spatial ranks drawn, and the largest input side of each (a 3-D model stays tiny).
SPATIAL_RANKS = (1, 2, 3)
MAX_SIDE = {1: 32, 2: 32, 3: 8}
CODE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "gelu", "silu", "elu", "softmax")
STYLES = ("explicit", "loop", "levels")

# ------------------------------------------------------------------------ small strategies ----


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def decimals(lo: int, hi: int, scale: int) -> st.SearchStrategy[float]:
    """Floats ``i / scale`` for ``lo <= i <= hi``: short decimals that print exactly in YAML."""
    return st.integers(lo, hi).map(lambda i: i / scale)


@st.composite
def activations(draw) -> dict:
    """One activation layer with random settings."""
    kind = draw(st.sampled_from(ACTIVATIONS))
    layer: dict = {"kind": kind}
    if kind == "leaky_relu":
        layer["negative_slope"] = draw(decimals(0, 50, 100))
    elif kind == "gelu" and draw(st.booleans()):
        layer["approximate"] = draw(st.booleans())
    elif kind == "elu" and draw(st.booleans()):
        layer["alpha"] = draw(decimals(1, 20, 10))
    elif kind == "prelu":
        shared = draw(st.booleans())
        if shared or draw(st.booleans()):
            layer["shared"] = shared
        if draw(st.booleans()):
            layer["init"] = draw(decimals(-50, 100, 100))
    return layer


@st.composite
def norms(draw, single_position: bool = False) -> dict | None:
    """A norm layer template (a group norm's ``groups`` is filled in by the block), or None;
    no instance norm where the block may meet a single position (``single_position``)."""
    kind = draw(st.sampled_from([n for n in NORMS if n != "instance_norm" or not single_position]))
    if kind == "none":
        return None
    layer: dict = {"kind": kind}
    if kind in ("gdn", "igdn"):
        if draw(st.booleans()):
            layer["beta_min"] = draw(st.sampled_from([1e-6, 1e-4, 0.01]))
        if draw(st.booleans()):
            layer["gamma_init"] = draw(decimals(0, 50, 100))
        return layer
    if kind == "batch_norm" and draw(st.booleans()):
        layer["momentum"] = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 0.999]))
    if kind == "instance_norm":
        affine = draw(st.booleans())
        if affine or draw(st.booleans()):
            layer["affine"] = affine
    if draw(st.booleans()):
        layer["epsilon"] = draw(st.sampled_from([1e-5, 1e-4, 1e-3, 0.01, 0.1]))
    return layer


@st.composite
def attentions(draw, channels: int) -> dict:
    """A self-attention layer for an input of ``channels`` channels: a group-norm group count
    that divides them, and heads that split them or a ``head_dim`` of their own."""
    layer: dict = {"kind": "attention", "norm_groups": draw(st.sampled_from(divisors(channels)))}
    if draw(st.booleans()):
        layer["heads"] = draw(st.sampled_from(divisors(channels)))
    elif draw(st.booleans()):
        layer["heads"] = draw(st.integers(1, 3))
        layer["head_dim"] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        layer["residual"] = draw(st.booleans())
    if draw(st.booleans()):
        layer["rescale_output_factor"] = draw(decimals(5, 20, 10))
    if draw(st.booleans()):
        layer["epsilon"] = draw(st.sampled_from([1e-6, 1e-5, 1e-3]))
    return layer


def axis_paddings(totals: tuple[int, ...], limit: int) -> list[tuple[int, int]]:
    """The ``(before, after)`` paddings of one axis adding up to one of ``totals``, neither
    more than ``limit``."""
    return [(t, n - t) for n in totals for t in range(n + 1) if max(t, n - t) <= limit]


@st.composite
def paddings(draw, totals: tuple[int, ...], side: int, rank: int, same: bool = True) -> dict:
    """The ``padding`` and ``padding_mode`` fields of a convolution (of a ``rank``-D spec) that
    keeps its output size whenever each axis is padded by one of ``totals`` in all, on inputs of
    at least ``side`` positions along each axis (a reflected side pads less than that); ``same``
    when 'same' keeps it too. Amounts are written as ``p``, one per axis (``[v, h]``) or
    ``(before, after)`` per axis (``[[top, bottom], [left, right]]``)."""
    limits = {"zeros": max(totals), "reflect": side - 1, "replicate": max(totals)}
    modes = [m for m in PADDING_MODES if axis_paddings(totals, limits[m])]
    mode = draw(st.sampled_from(modes))
    fields: dict = {}
    if same and draw(st.booleans()):
        if draw(st.booleans()):
            fields["padding"] = "same"
    else:
        options = axis_paddings(totals, limits[mode])
        axes = [draw(st.sampled_from(options)) for _ in range(rank)]
        form = draw(st.sampled_from(["short", "sides"]))
        if form == "short" and len({amount for pair in axes for amount in pair}) == 1:
            fields["padding"] = axes[0][0]
        elif form == "short" and all(before == after for before, after in axes):
            fields["padding"] = [before for before, _ in axes]
        else:
            fields["padding"] = [list(pair) for pair in axes]
    if mode != "zeros" or draw(st.integers(0, 3)) == 0:
        fields["padding_mode"] = mode
    return fields


@st.composite
def pad_layers(draw, totals: tuple[int, ...], side: int, rank: int) -> dict:
    """A ``pad`` layer adding one of ``totals`` positions along each axis to inputs of at least
    ``side`` positions, for a 'valid' convolution after it."""
    fields = draw(paddings(totals, side, rank, same=False))
    layer = {"kind": "pad", "padding": fields["padding"]}
    if "padding_mode" in fields:
        layer["mode"] = fields["padding_mode"]
    return layer


#: A conv-transpose's kernel -> its integer (padding, output_padding) doubling the size with
#: stride 2: (H - 1) * 2 - 2 * padding + kernel + output_padding = 2 * H.
TRANSPOSE_PADDINGS = {1: (0, 1), 2: (0, 0), 3: (1, 1), 4: (1, 0), 5: (2, 1)}


@st.composite
def entropy_bottlenecks(draw) -> dict:
    """An entropy bottleneck with a small density model."""
    layer: dict = {"kind": "entropy_bottleneck"}
    if draw(st.booleans()):
        layer["filters"] = draw(st.lists(st.integers(1, 3), max_size=3))
    if draw(st.booleans()):
        layer["init_scale"] = draw(decimals(1, 100, 10))
    if draw(st.booleans()):
        layer["likelihood_bound"] = draw(st.sampled_from([0.0, 1e-9, 1e-6]))
    return layer


def maybe(layer: dict | None) -> list[dict]:
    return [] if layer is None else [layer]


# ----------------------------------------------------------------------------------- names ----

#: The names a drawn spec gives its items, by what they name; each is replaced at times by a
#: name drawn from :func:`hostile_names`.
ROLES = ("stem", "out", "down", "up", "last", "projection", "skip", *BLOCK_KINDS)

#: Names and variables the drawn specs use whatever is drawn.
FIXED_NAMES = frozenset(
    {
        *("level", "blocks", "block", "cfg", "a", "i", "input", "input_shape", "n_levels"),
        *("filters", "mid", "groups", "groups_in", "groups_mid", "kernel_size", "rate"),
        *("multires_skips", "dec_skip_widths", "enc_levels", "dec_levels", "enc_args"),
        *("dec_args", "enc_side", "dec_side", "enc_repeat", "dec_repeat"),
    }
)


@lru_cache(maxsize=1)
def hostile_names() -> tuple[str, ...]:
    """Valid names that are close to what generated code or Python already use: lower-cased
    keywords (``none``, ``true``), variants of builtins, of framework attributes and of every
    identifier the generated files define (``padded_conv2d``, ``INITIALIZERS``, ``F``, ``x``).
    Names ending in a digit are left out, as they could meet a drawn spec's automatic names."""
    return tuple(
        n
        for n in all_names()
        if check_identifier(n) is None
        and not n[-1].isdigit()
        and n.casefold() not in {f.casefold() for f in FIXED_NAMES}
    )


@st.composite
def role_names(draw) -> dict[str, str]:
    """A name for each of :data:`ROLES`, distinct even up to letter case, and a model name."""
    names: dict[str, str] = {}
    used = {n.casefold() for n in FIXED_NAMES}
    for role in ROLES:
        drawn = draw(st.sampled_from((role, *hostile_names())))
        name = next(n for n in (drawn, role, f"{role}_name") if n.casefold() not in used)
        used.add(name.casefold())
        names[role] = name
    models = [n for n in hostile_names() if MODEL_FORM.fullmatch(n)]
    names["model"] = draw(st.sampled_from(("random_ae", *models)))
    return names


# ---------------------------------------------------------------------------------- blocks ----


@dataclass
class Block:
    """A block definition, and for each of its group-norm parameters a function
    ``(in_channels, filters, mid) -> channel counts`` its norms see, so that a use can pass a
    divisor of all of them."""

    definition: dict
    groups: dict


def norm_layer(template: dict | None, groups_param: str) -> list[dict]:
    if template is None:
        return []
    layer = dict(template)
    if layer["kind"] == "group_norm":
        layer["groups"] = "${" + groups_param + "}"
    return [layer]


def projection(names: dict) -> dict:
    return {
        "kind": "conv2d",
        "name": names["projection"],
        "inputs": ["input"],
        "filters": "${filters}",
        "kernel_size": 1,
        "when": "${in_channels != filters}",
    }


def residual_add(names: dict) -> dict:
    shortcut = f"${{'{names['projection']}' if in_channels != filters else 'input'}}"
    return {
        "kind": "add",
        "inputs": [names["last"], shortcut],
    }


def conv3(pad: dict, **fields) -> dict:
    """A 3x3 convolution with ``filters`` filters and (a copy of) the padding fields ``pad``."""
    pad = copy.deepcopy(pad)  # a list the spec holds twice would be written as a YAML alias
    return {"kind": "conv2d", **fields, "filters": "${filters}", "kernel_size": 3, **pad}


def block_padding(rank: int) -> st.SearchStrategy[dict]:
    """Padding that keeps the size of a block's 3x3 convolutions: 2 positions in all along each
    axis, on inputs of at least 2 (blocks other than ``plain`` run at the levels' resolutions)."""
    return paddings((2,), 2, rank)


@st.composite
def res_block(draw, names: dict, rank: int, single_position: bool = False) -> Block:
    norm, act, pad = draw(norms()), draw(activations()), draw(block_padding(rank))
    # at times the sum is scaled, as diffusers' ResnetBlock2D does by output_scale_factor
    scale = {"kind": "scale", "factor": draw(decimals(1, 20, 10))}
    layers = [
        conv3(pad),
        *norm_layer(norm, "groups"),
        dict(act),
        conv3(pad),
        *norm_layer(norm, "groups"),
        {**act, "name": names["last"]},
        projection(names),
        residual_add(names),
        *maybe(scale if draw(st.booleans()) else None),
    ]
    return Block(
        {"params": {"filters": None, "groups": 1}, "layers": layers},
        {"groups": lambda cin, f, mid: [f]},
    )


@st.composite
def preact_block(draw, names: dict, rank: int, single_position: bool = False) -> Block:
    norm, act, pad = draw(norms()), draw(activations()), draw(block_padding(rank))
    layers = [
        *norm_layer(norm, "groups_in"),
        dict(act),
        conv3(pad),
        *norm_layer(norm, "groups"),
        dict(act),
        conv3(pad, name=names["last"]),
        projection(names),
        residual_add(names),
    ]
    # with `repeat`, every instance after the first sees `filters` channels at its input
    return Block(
        {"params": {"filters": None, "groups_in": 1, "groups": 1}, "layers": layers},
        {"groups_in": lambda cin, f, mid: [cin, f], "groups": lambda cin, f, mid: [f]},
    )


@st.composite
def bottleneck_block(draw, names: dict, rank: int, single_position: bool = False) -> Block:
    norm, act, pad = draw(norms()), draw(activations()), draw(block_padding(rank))
    layers = [
        {"kind": "conv2d", "filters": "${mid}", "kernel_size": 1},
        *norm_layer(norm, "groups_mid"),
        dict(act),
        {**conv3(pad), "filters": "${mid}"},
        *norm_layer(norm, "groups_mid"),
        dict(act),
        {"kind": "conv2d", "filters": "${filters}", "kernel_size": 1},
        *norm_layer(norm, "groups"),
        {**act, "name": names["last"]},
        projection(names),
        residual_add(names),
    ]
    return Block(
        {"params": {"filters": None, "mid": None, "groups_mid": 1, "groups": 1}, "layers": layers},
        {"groups_mid": lambda cin, f, mid: [mid], "groups": lambda cin, f, mid: [f]},
    )


@st.composite
def plain_block(draw, names: dict, rank: int, single_position: bool = False) -> Block:
    norm, act = draw(norms(single_position)), draw(activations())
    layers = [
        {"kind": "conv2d", "filters": "${filters}", "kernel_size": "${kernel_size}"},
        *norm_layer(norm, "groups"),
        dict(act),
        {"kind": "dropout", "rate": "${rate}", "when": "${rate > 0}"},
    ]
    return Block(
        {
            "params": {"filters": None, "kernel_size": 3, "groups": 1, "rate": 0.0},
            "layers": layers,
        },
        {"groups": lambda cin, f, mid: [f]},
    )


BLOCK_STRATEGIES = {
    "res": res_block,
    "preact": preact_block,
    "bottleneck": bottleneck_block,
    "plain": plain_block,
}


# ---------------------------------------------------------------------------------- levels ----


@dataclass
class Level:
    kind: str  # block kind
    repeat: int
    args: dict  # every parameter of the block, in definition order
    side: dict  # the down (encoder) or up (decoder) configuration
    side_width: int  # filters of the down/up convolution


class SpecBuilder:
    """Draws the parts of one spec; the blocks it uses are defined on first use."""

    def __init__(self, draw, rank: int):
        self.draw = draw
        #: the spec's spatial rank
        self.rank = rank
        self.blocks: dict[str, Block] = {}
        self.parameters: dict = {}
        self.names = draw(role_names())
        #: the spatial sizes at the encoder's end, where the decoder stem runs
        self.bottleneck_side = (1,) * rank

    def block(self, kind: str) -> Block:
        if kind not in self.blocks:
            # only the stems use `plain` outside the levels, and the decoder's can run at 1x1
            single = kind == "plain" and math.prod(self.bottleneck_side) == 1
            self.blocks[kind] = self.draw(BLOCK_STRATEGIES[kind](self.names, self.rank, single))
        return self.blocks[kind]

    def args(self, kind: str, cin: int, filters: int) -> dict:
        """Every argument of one use of block ``kind`` whose input has ``cin`` channels."""
        draw = self.draw
        block = self.block(kind)
        args = dict(block.definition["params"])
        args["filters"] = filters
        mid = filters
        if "mid" in args:
            mid = args["mid"] = draw(st.integers(1, 8))
        if kind == "plain":
            args["kernel_size"] = draw(st.sampled_from([1, 3]))
            args["rate"] = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
        for param, seen in block.groups.items():
            args[param] = draw(st.sampled_from(divisors(math.gcd(*seen(cin, filters, mid)))))
        return args

    def sparse_args(self, kind: str, args: dict) -> dict:
        """``args`` without the values equal to the block's defaults (some of the time)."""
        defaults = self.block(kind).definition["params"]
        if not self.draw(st.booleans()):
            return dict(args)
        return {k: v for k, v in args.items() if defaults[k] is None or defaults[k] != v}

    def activation_or_none(self) -> dict | None:
        return self.draw(activations()) if self.draw(st.booleans()) else None

    # -- down and up ---------------------------------------------------------------------------
    def down_conf(self) -> dict:
        """A downsampling by 2: a stride-2 conv ('same', explicit padding, or a ``pad`` layer
        and 'valid') or a pooling; its inputs have at least 2 rows and columns."""
        draw = self.draw
        op = draw(st.sampled_from(["conv", "max_pool", "avg_pool"]))
        if op == "conv":
            k = draw(st.sampled_from([2, 3, 4]))
            # floor((H + total - k) / 2) + 1 == H / 2 for an even H
            totals = tuple(t for t in (k - 2, k - 1) if t >= 0)
            conf = {"op": op, "kernel_size": k, "act": self.activation_or_none(), "pad": None}
            if draw(st.booleans()):
                conf["pad"] = draw(pad_layers(totals, 2, self.rank))
                conf["padding"] = {"padding": "valid"}
            else:
                conf["padding"] = draw(paddings(totals, 2, self.rank))
            return conf
        return {"op": op, "pool_size": draw(st.sampled_from([2, 3]))}

    def up_conf(self) -> dict:
        """An upsampling by 2: a stride-2 conv-transpose ('same', 'valid' or PyTorch's integer
        padding and output padding) or upsample + conv (padded by the conv or a ``pad``)."""
        draw = self.draw
        op = draw(st.sampled_from(["deconv", "upsample"]))
        conf = {"op": op, "act": self.activation_or_none(), "padding": {}, "pad": None}
        if op == "deconv":
            padding = draw(st.sampled_from(["same", "valid", "explicit", "explicit"]))
            if padding == "same":
                conf["kernel_size"] = draw(st.sampled_from([2, 3]))
            elif padding == "valid":
                conf["kernel_size"] = 2
                conf["padding"] = {"padding": "valid"}
            else:
                k = conf["kernel_size"] = draw(st.sampled_from(sorted(TRANSPOSE_PADDINGS)))
                p, out = TRANSPOSE_PADDINGS[k]
                conf["padding"] = {"padding": p}
                if out or draw(st.booleans()):
                    conf["padding"]["output_padding"] = out
        else:
            linear = ["linear", "bilinear"] if self.rank == 2 else ["linear"]
            conf["interpolation"] = draw(st.sampled_from(["nearest", *linear]))
            k = conf["kernel_size"] = draw(st.sampled_from([1, 3]))
            if k == 3 and draw(st.booleans()):
                conf["pad"] = draw(pad_layers((2,), 2, self.rank))
                conf["padding"] = {"padding": "valid"}
            else:
                conf["padding"] = draw(paddings((k - 1,), 2, self.rank))
        return conf


def down_item(conf: dict, filters, name: str = "down") -> dict:
    """The encoder's downsampling item ``down`` (a layer or a group)."""
    if conf["op"] == "conv":
        conv = {"kind": "conv2d", "filters": filters, "kernel_size": conf["kernel_size"]}
        conv.update(strides=2, padding="same")
        conv.update(copy.deepcopy(conf["padding"]))
        layers = [*maybe(copy.deepcopy(conf["pad"])), conv, *maybe(conf["act"])]
        if len(layers) == 1:
            return {**conv, "name": name}
        return {"name": name, "layers": [dict(layer) for layer in layers]}
    if conf["pool_size"] == 2:
        return {"kind": conf["op"], "name": name, "pool_size": 2}
    return {"kind": conf["op"], "name": name, "pool_size": 3, "strides": 2, "padding": "same"}


def up_item(conf: dict, filters, name: str = "up") -> dict:
    """The decoder's upsampling item ``up`` (a layer or a group)."""
    if conf["op"] == "deconv":
        layers = [
            {
                "kind": "conv2d_transpose",
                "filters": filters,
                "kernel_size": conf["kernel_size"],
                "strides": 2,
                **conf["padding"],
            }
        ]
    else:
        up = {"kind": "upsample", "size": 2}
        if conf["interpolation"] != "nearest":
            up["interpolation"] = conf["interpolation"]
        conv = {"kind": "conv2d", "filters": filters, "kernel_size": conf["kernel_size"]}
        pad = copy.deepcopy(conf["pad"])
        layers = [up, *maybe(pad), {**conv, **copy.deepcopy(conf["padding"])}]
    if conf["act"] is not None:
        layers.append(dict(conf["act"]))
    if len(layers) == 1:
        return {**layers[0], "name": name}
    return {"name": name, "layers": layers}


def level_items(b: SpecBuilder, part: str, style: str, levels: list[Level]) -> list[dict]:
    """The items writing ``levels`` in ``style``: each level is a group ``level<i>`` holding a
    group ``blocks`` of the block instances and the item ``down`` after it (encoder) or ``up``
    before it (decoder)."""
    draw = b.draw
    side_item = down_item if part == "encoder" else up_item

    def side(conf: dict, filters) -> dict:
        return side_item(conf, filters, b.names["down" if part == "encoder" else "up"])

    side_key = "after" if part == "encoder" else "before"

    def arrange(blocks: dict, side_: dict) -> list[dict]:
        return [blocks, side_] if part == "encoder" else [side_, blocks]

    if style == "explicit":
        items = []
        for i, lv in enumerate(levels):
            uses = []
            if lv.repeat:
                use: dict = {"block": b.names[lv.kind], "name": "block"}
                if lv.repeat != 1 or draw(st.booleans()):
                    use["repeat"] = lv.repeat
                use["args"] = b.sparse_args(lv.kind, lv.args)
                uses.append(use)
            body = arrange({"name": "blocks", "layers": uses}, side(lv.side, lv.side_width))
            items.append({"name": f"level{i}", "layers": body})
        return items

    prefix = part[:3]
    if style == "loop":
        # one entry per level, [kind, repeat, [arguments], side width]; every block kind gets a
        # use guarded by `when`, all named alike since only one of them exists per level
        b.parameters[f"{prefix}_levels"] = [
            [lv.kind, lv.repeat, list(lv.args.values()), lv.side_width] for lv in levels
        ]
        uses = []
        for kind in sorted({lv.kind for lv in levels}):
            params = list(b.block(kind).definition["params"])
            uses.append(
                {
                    "block": b.names[kind],
                    "name": "block",
                    "when": f"${{cfg[0] == '{kind}'}}",
                    "repeat": "${cfg[1]}",
                    "args": {p: f"${{cfg[2][{j}]}}" for j, p in enumerate(params)},
                }
            )
        body = arrange({"name": "blocks", "layers": uses}, side(levels[0].side, "${cfg[3]}"))
        return [{"name": "level", "for": "cfg", "in": f"${{{prefix}_levels}}", "layers": body}]

    # the `levels` shorthand: one block kind, repeat and side configuration for all levels
    kind = levels[0].kind
    params = list(b.block(kind).definition["params"])
    b.parameters[f"{prefix}_args"] = [list(lv.args.values()) for lv in levels]
    b.parameters[f"{prefix}_side"] = [lv.side_width for lv in levels]
    b.parameters[f"{prefix}_repeat"] = levels[0].repeat
    if draw(st.booleans()):
        item: dict = {"levels": "${n_levels}"}
        args = {p: f"${{{prefix}_args[level][{j}]}}" for j, p in enumerate(params)}
        side_width = f"${{{prefix}_side[level]}}"
    else:
        item = {"levels": f"${{{prefix}_args}}", "for": "a", "index": "i"}
        args = {p: f"${{a[{j}]}}" for j, p in enumerate(params)}
        side_width = f"${{{prefix}_side[i]}}"
    item.update(block=b.names[kind], repeat=f"${{{prefix}_repeat}}", args=args)
    item[side_key] = [side(levels[0].side, side_width)]
    return [item]


def encoder_levels(b: SpecBuilder, n_levels: int, style: str, ch: int, needs_features: bool):
    """The encoder's levels; returns (levels, channels of each level's blocks, channels out)."""
    draw = b.draw
    shared_kind = draw(st.sampled_from(BLOCK_KINDS))
    shared_repeat = draw(st.integers(0, 2))
    shared_side = b.down_conf()
    levels, features = [], []
    for i in range(n_levels):
        kind = shared_kind if style == "levels" else draw(st.sampled_from(BLOCK_KINDS))
        repeat = shared_repeat if style == "levels" else draw(st.integers(0, 2))
        if needs_features and i == 0 and repeat == 0:
            # a skip from level 0's blocks would otherwise start from the model input, which
            # the language reference lists as an unsupported skip source
            repeat = 1
            if style == "levels":
                shared_repeat = 1
        width = draw(st.integers(2, 16))
        args = b.args(kind, ch, width)
        if repeat:
            ch = width
        features.append(ch)
        side = shared_side if style != "explicit" else b.down_conf()
        side_width = draw(st.integers(2, 16))
        if side["op"] == "conv":
            ch = side_width
        levels.append(Level(kind, repeat, args, side, side_width))
    if style == "levels":
        for lv in levels:
            lv.repeat = shared_repeat
    return levels, features, ch


def decoder_levels(b: SpecBuilder, n_levels: int, style: str, ch: int, concat: list[int]):
    """The decoder's levels (``concat``: channels a U-Net skip adds after each level's ``up``);
    returns (levels, channels out of each level)."""
    draw = b.draw
    shared_kind = draw(st.sampled_from(BLOCK_KINDS))
    shared_repeat = draw(st.integers(0, 2))
    shared_side = b.up_conf()
    levels, outs = [], []
    for i in range(n_levels):
        kind = shared_kind if style == "levels" else draw(st.sampled_from(BLOCK_KINDS))
        repeat = shared_repeat if style == "levels" else draw(st.integers(0, 2))
        side = shared_side if style != "explicit" else b.up_conf()
        side_width = draw(st.integers(2, 16))
        ch = side_width + concat[i]
        width = draw(st.integers(2, 16))
        args = b.args(kind, ch, width)
        if repeat:
            ch = width
        outs.append(ch)
        levels.append(Level(kind, repeat, args, side, side_width))
    return levels, outs


# ------------------------------------------------------------------------------------ spec ----


@st.composite
def random_specs(draw) -> dict:
    """A random valid spec, as the data of a YAML file."""
    rank = draw(st.sampled_from(SPATIAL_RANKS))
    b = SpecBuilder(draw, rank)
    n_levels = draw(st.integers(1, 3))
    scale = 2**n_levels
    largest = MAX_SIDE[rank]
    first = scale * draw(st.integers(1, largest // scale))
    spatial = [first] + [
        scale * draw(st.integers(1, largest // scale)) if draw(st.booleans()) else first
        for _ in range(rank - 1)
    ]
    c = draw(st.integers(1, 4))
    skips = draw(st.sampled_from(["none", "resnet", "unet"]))
    b.bottleneck_side = tuple(d // scale for d in spatial)
    b.parameters.update(input_shape=[*spatial, c], n_levels=n_levels)

    # -- encoder ---------------------------------------------------------------------------
    encoder: list[dict] = []
    ch = c
    if draw(st.booleans()):
        width = draw(st.integers(2, 16))
        args = b.sparse_args("plain", b.args("plain", ch, width))
        encoder.append({"block": b.names["plain"], "name": b.names["stem"], "args": args})
        ch = width
    style = draw(st.sampled_from(STYLES))
    levels, features, ch = encoder_levels(b, n_levels, style, ch, skips != "none" and ch == c)
    encoder += level_items(b, "encoder", style, levels)
    enc_skip_width = ch
    if draw(st.integers(0, 3)) == 0:
        encoder.append(draw(attentions(ch)))
    if draw(st.integers(0, 4)) == 0:
        encoder.append(draw(entropy_bottlenecks()))
    if draw(st.booleans()):
        ch = draw(st.integers(2, 16))
        k = draw(st.sampled_from([1, 3]))
        encoder.append(
            {
                "kind": "conv2d",
                "name": b.names["out"],
                "filters": ch,
                "kernel_size": k,
                **draw(paddings((k - 1,), min(b.bottleneck_side), rank)),
            }
        )

    # -- bottleneck ------------------------------------------------------------------------
    kind = draw(st.sampled_from(BOTTLENECKS))
    bottleneck: dict = {"kind": kind}
    if kind in ("variational", "diagonal_gaussian") and draw(st.booleans()):
        bottleneck["inference"] = draw(st.sampled_from(["mean", "sample", "mean_plus_std"]))
    if kind == "diagonal_gaussian":
        ch = bottleneck["latent_channels"] = draw(st.integers(1, 8))
    elif kind in ("dense", "variational"):
        bottleneck["units"] = draw(st.integers(1, 16))
        if kind == "dense" and draw(st.booleans()):
            bottleneck["activation"] = draw(st.sampled_from(CODE_ACTIVATIONS))
        if draw(st.booleans()):
            bottleneck["expand_activation"] = draw(st.sampled_from(CODE_ACTIVATIONS))
        if draw(st.booleans()):
            bottleneck["use_bias"] = draw(st.booleans())
    elif kind == "vector_quantized":
        ch = draw(st.integers(1, 8))
        bottleneck["embedding_dim"] = ch
        bottleneck["num_embeddings"] = draw(st.integers(1, 16))
        if draw(st.booleans()):
            bottleneck["commitment_cost"] = draw(decimals(0, 100, 100))
        if draw(st.booleans()):
            bottleneck["loss_weighting"] = draw(st.sampled_from(["vqvae", "diffusers_legacy"]))
    if draw(st.integers(0, 3)) == 0:
        # the same bottleneck written as items: its library block, inlined
        args = {k: v for k, v in bottleneck.items() if k != "kind"}
        bottleneck = [{"block": f"{kind}_bottleneck", "inline": True, "args": args}]

    # -- decoder ---------------------------------------------------------------------------
    decoder: list[dict] = []
    if skips == "resnet" or draw(st.booleans()):
        width = draw(st.integers(2, 16))
        args = b.sparse_args("plain", b.args("plain", ch, width))
        decoder.append({"block": b.names["plain"], "name": b.names["stem"], "args": args})
        ch = width
    style = draw(st.sampled_from(STYLES))
    concat = features[::-1] if skips == "unet" else [0] * n_levels
    levels, outs = decoder_levels(b, n_levels, style, ch, concat)
    decoder += level_items(b, "decoder", style, levels)
    k = draw(st.sampled_from([1, 3]))
    # at times a head of its own channel count rather than a reconstruction
    head = draw(st.integers(1, 4)) if draw(st.integers(0, 4)) == 0 else None
    decoder.append(
        {
            "kind": "conv2d",
            "name": b.names["out"],
            "filters": "${input_shape[-1]}" if head is None else head,
            "kernel_size": k,
            **draw(paddings((k - 1,), min(spatial), rank)),
        }
    )

    # -- skips -----------------------------------------------------------------------------
    skip_items: list[dict] = []
    if skips == "resnet":
        # every encoder level's features, brought to the bottleneck resolution by a k x k
        # stride-k conv and added there; the decoder stem brought up to every decoder level
        b.parameters["multires_skips"] = True
        enc_skip = {"kind": "conv2d", "filters": enc_skip_width}
        enc_skip.update(kernel_size="${2 ** (n_levels - level)}")
        enc_skip.update(strides="${2 ** (n_levels - level)}")
        skip_items.append(
            {
                "name": b.names["skip"],
                "when": "${multires_skips}",
                "for": "level",
                "in": "${n_levels}",
                "from": "encoder.level${level}.blocks",
                "to": "encoder.level${n_levels - 1}",
                "merge": draw(st.sampled_from(["add", "multiply"])),
                "layers": [enc_skip, *maybe(b.activation_or_none())],
            }
        )
        b.parameters["dec_skip_widths"] = outs
        dec_skip = {"kind": "conv2d_transpose", "filters": "${dec_skip_widths[level]}"}
        dec_skip.update(kernel_size="${2 ** (level + 1)}", strides="${2 ** (level + 1)}")
        skip_items.append(
            {
                "name": b.names["skip"],
                "when": "${multires_skips}",
                "for": "level",
                "in": "${n_levels}",
                "from": f"decoder.{b.names['stem']}",
                "to": "decoder.level${level}",
                "layers": [dec_skip, *maybe(b.activation_or_none())],
            }
        )
    elif skips == "unet":
        skip_items.append(
            {
                "name": b.names["skip"],
                "for": "level",
                "in": "${n_levels}",
                "from": "encoder.level${n_levels - 1 - level}.blocks",
                "to": f"decoder.level${{level}}.{b.names['up']}",
                "merge": "concat",
            }
        )

    spec: dict = {
        "specgen": 1,
        "name": b.names["model"],
        "parameters": b.parameters,
        "input": {"shape": "${input_shape}"},
        "blocks": {b.names[k]: b.blocks[k].definition for k in sorted(b.blocks)},
        "encoder": encoder,
        "bottleneck": bottleneck,
        "decoder": decoder,
    }
    if skip_items:
        spec["skips"] = skip_items
    out_act = draw(st.sampled_from(["linear", "sigmoid", "tanh"]))
    if out_act != "linear" or draw(st.booleans()):
        spec["output"] = {"activation": out_act}
    if head is not None:
        spec.setdefault("output", {})["reconstructs"] = False
    if draw(st.integers(0, 3)) == 0:
        spec["training"] = {"loss": draw(st.sampled_from(["mse", "l1", "bce"])), "epochs": 2}
    return at_rank(spec, draw(rank_kinds(rank)))


@st.composite
def rank_kinds(draw, rank: int) -> dict[str, str]:
    """The kinds a ``rank``-D spec writes for the strategy's ``conv2d`` and ``conv2d_transpose``:
    the rank-neutral ``conv``/``conv_transpose`` or the rank's aliases."""
    return {
        "conv2d": draw(st.sampled_from(["conv", f"conv{rank}d"])),
        "conv2d_transpose": draw(st.sampled_from(["conv_transpose", f"conv{rank}d_transpose"])),
    }


def at_rank(value, kinds: dict[str, str]):
    """``value`` (a spec's data) with its layers' kinds replaced as ``kinds`` says."""
    if isinstance(value, dict):
        out = {k: at_rank(v, kinds) for k, v in value.items()}
        if isinstance(out.get("kind"), str) and out["kind"] in kinds:
            out["kind"] = kinds[out["kind"]]
        return out
    if isinstance(value, list):
        return [at_rank(v, kinds) for v in value]
    return value


# ----------------------------------------------------------------------------------- tests ----


def spec_text(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)


def constructs(graph: ModelGraph) -> set[str]:
    """The layer kinds and options of ``graph`` the strategy draws at times, by name, for
    Hypothesis' statistics (``--hypothesis-show-statistics``)."""
    found = {f"{len(graph.input_shape) - 1}-D"}
    if not graph.reconstructs:
        found.add("head (reconstructs: false)")
    for node in graph.nodes:
        layer = node.layer
        if layer.kind == "prelu":
            found.add("prelu shared" if layer.shared else "prelu per channel")
        elif layer.kind == "instance_norm":
            found.add("instance_norm affine" if layer.affine else "instance_norm")
        elif layer.kind == "pad":
            found.add(f"pad {layer.mode}")
        elif layer.neutral_kind == "conv" and not isinstance(layer.padding, str):
            found.add(f"conv explicit padding, {layer.padding_mode}")
        elif layer.neutral_kind == "conv" and layer.padding_mode != "zeros":
            found.add(f"conv padding {layer.padding}, {layer.padding_mode}")
        elif layer.neutral_kind == "conv_transpose" and not isinstance(layer.padding, str):
            found.add(f"conv_transpose padding, output_padding {max(layer.output_padding)}")
        elif layer.kind == "upsample" and layer.linear:
            found.add(f"upsample {layer.interpolation}")
        elif layer.kind in ("attention", "gdn", "igdn", "scale", "multiply", "entropy_bottleneck"):
            found.add(layer.kind)
    return found


def reconstructs(spec: dict, graph: ModelGraph) -> bool:
    """The model's output has the input's shape, or the spec says it need not."""
    if not spec.get("output", {}).get("reconstructs", True):
        return True
    return graph.shape(graph.output("reconstruction")) == graph.input_shape


def expand(text: str) -> ModelGraph:
    """The graph of a spec the strategy drew; a rejection fails with every error and the spec
    (the strategy only draws valid specs)."""
    try:
        return build_graph(load_spec(text=text, filename="random.yaml"))
    except SpecErrors as exc:
        errors = exc.render()
    pytest.fail(f"a valid random spec was rejected:\n{errors}\n\n{text}")


#: A spec with every layer option :func:`constructs` names, so that every sample, however small,
#: checks each of them once.
EVERY_CONSTRUCT = """\
specgen: 1
name: every_construct
input: {shape: [8, 8, 2]}
blocks:
  rate:
    require:
      - {that: "${len(in_shape) == 3}", message: "rate needs an image, got rank ${len(in_shape)}"}
    layers:
      - {kind: entropy_bottleneck, name: entropy, filters: [2]}
    outputs:
      - {name: likelihoods, from: "entropy:1"}
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, padding: 1, padding_mode: reflect}
  - {kind: instance_norm, affine: true}
  - {kind: prelu}
  - {kind: pad, padding: [[0, 1], [1, 0]], mode: replicate}
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: valid}
  - {kind: pad, padding: [1, 1], mode: reflect}
  - {kind: conv2d, filters: 4, kernel_size: 3, padding: valid}
  - {kind: instance_norm}
  - {kind: prelu, shared: true, init: 0.1}
  - kind: conv2d
    filters: 4
    kernel_size: 4
    strides: 2
    padding: [[1, 1], [2, 1]]
    padding_mode: replicate
  - {kind: conv2d, filters: 4, kernel_size: 3, padding_mode: reflect}
  - {kind: conv2d, filters: 4, kernel_size: 3, padding_mode: replicate}
  - {kind: attention, name: attended, norm_groups: 2, heads: 2}
  - {kind: gdn}
  - {kind: sigmoid, name: gate}
  - {kind: multiply, inputs: [attended, gate]}
bottleneck:
  - {block: rate, inline: true}
decoder:
  - {kind: igdn, beta_min: 0.0001, gamma_init: 0.2}
  - {kind: scale, factor: 0.5}
  - {kind: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2, padding: 1, output_padding: 1}
  - {kind: pad, padding: 1}
  - {kind: conv2d, filters: 4, kernel_size: 3, padding: valid}
  - {kind: conv2d_transpose, filters: 4, kernel_size: 4, strides: 2, padding: 1}
  - {kind: conv2d, filters: 2, kernel_size: 3, padding: [[0, 2], [2, 0]]}
outputs:
  - {name: reconstruction}
  - {name: gated, from: encoder.gate, role: extra}
"""

#: The same constructs in a 3-D spec (volumes ``(D, H, W, C)``), with per-axis options.
EVERY_CONSTRUCT_3D = """\
specgen: 1
name: every_construct_3d
input: {shape: [4, 8, 8, 2]}
encoder:
  - {kind: conv, filters: 4, kernel_size: [1, 3, 3], padding: [0, 1, 1], padding_mode: reflect}
  - {kind: instance_norm, affine: true}
  - {kind: prelu}
  - {kind: pad, padding: [[0, 1], [1, 0], [1, 0]], mode: replicate}
  - {kind: conv3d, filters: 4, kernel_size: [2, 3, 3], strides: [1, 2, 2], padding: valid}
  - {kind: pad, padding: [0, 1, 1], mode: reflect}
  - {kind: conv, filters: 4, kernel_size: [1, 3, 3], padding: valid}
  - {kind: instance_norm}
  - {kind: prelu, shared: true, init: 0.1}
  - kind: conv
    filters: 4
    kernel_size: 4
    strides: 2
    padding: [[1, 1], [2, 1], 1]
    padding_mode: replicate
  - {kind: conv, filters: 4, kernel_size: 3, padding_mode: reflect}
  - {kind: conv3d, filters: 4, kernel_size: 3, padding_mode: replicate}
  - {kind: attention, name: attended, norm_groups: 2, heads: 2}
  - {kind: gdn}
  - {kind: sigmoid, name: gate}
  - {kind: multiply, inputs: [attended, gate]}
  - {kind: entropy_bottleneck, filters: [2]}
decoder:
  - {kind: igdn, beta_min: 0.0001, gamma_init: 0.2}
  - {kind: scale, factor: 0.5}
  - kind: conv_transpose
    filters: 4
    kernel_size: [2, 3, 3]
    strides: 2
    padding: [0, 1, 1]
    output_padding: [0, 1, 1]
  - {kind: upsample, size: [1, 2, 2], interpolation: linear}
  - {kind: pad, padding: [[0, 1], 1, 1]}
  - {kind: conv3d, filters: 2, kernel_size: [2, 3, 3], padding: valid}
"""

#: The same constructs in a 1-D spec (sequences ``(L, C)``).
EVERY_CONSTRUCT_1D = """\
specgen: 1
name: every_construct_1d
input: {shape: [16, 2]}
encoder:
  - {kind: conv1d, filters: 4, kernel_size: 3, padding: 1, padding_mode: reflect}
  - {kind: instance_norm, affine: true}
  - {kind: prelu}
  - {kind: pad, padding: [[0, 1]], mode: replicate}
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2, padding: valid}
  - {kind: pad, padding: [1], mode: reflect}
  - {kind: conv, filters: 4, kernel_size: 3, padding: valid}
  - {kind: instance_norm}
  - {kind: prelu, shared: true, init: 0.1}
  - {kind: conv, filters: 4, kernel_size: 4, strides: 2, padding: [[2, 1]], padding_mode: replicate}
  - {kind: conv1d, filters: 4, kernel_size: 3, padding_mode: reflect}
  - {kind: conv, filters: 4, kernel_size: 3, padding_mode: replicate}
  - {kind: attention, name: attended, norm_groups: 2, heads: 2}
  - {kind: gdn}
  - {kind: sigmoid, name: gate}
  - {kind: multiply, inputs: [attended, gate]}
  - {kind: entropy_bottleneck, filters: [2]}
decoder:
  - {kind: igdn, beta_min: 0.0001, gamma_init: 0.2}
  - {kind: scale, factor: 0.5}
  - {kind: conv1d_transpose, filters: 4, kernel_size: 3, strides: 2, padding: 1, output_padding: 1}
  - {kind: upsample, size: 2, interpolation: linear}
  - {kind: pad, padding: [[1, 0]]}
  - {kind: conv, filters: 2, kernel_size: 3, padding: [[0, 1]]}
"""


@settings(max_examples=150, deadline=None)
@given(random_specs())
@example(yaml.safe_load(EVERY_CONSTRUCT))
@example(yaml.safe_load(EVERY_CONSTRUCT_3D))
@example(yaml.safe_load(EVERY_CONSTRUCT_1D))
def test_random_specs_round_trip(spec):
    text = spec_text(spec)
    graph = expand(text)
    assert reconstructs(spec, graph)
    expanded = dump_spec(graph_to_spec(graph))
    again = expand(expanded)
    assert again.structure() == graph.structure(), f"{text}\n--- expanded:\n{expanded}"
    assert dump_spec(graph_to_spec(again)) == expanded


@settings(max_examples=50, deadline=None)
@given(random_specs())
@example(yaml.safe_load(EVERY_CONSTRUCT))
@example(yaml.safe_load(EVERY_CONSTRUCT_3D))
@example(yaml.safe_load(EVERY_CONSTRUCT_1D))
def test_random_specs_expand_and_verify(spec):
    from specgen.codegen.compiled import compile_module
    from specgen.verify import verify

    text = spec_text(spec)
    graph = expand(text)
    assert reconstructs(spec, graph), text
    skips = {s["merge"] if "merge" in s else "add" for s in spec.get("skips", [])} or {"none"}
    written = "items" if graph.bottleneck is None else graph.bottleneck.kind
    event(f"bottleneck {written}, skips {'/'.join(sorted(skips))}")
    for construct in sorted(constructs(graph)):
        event(construct)

    # a crash in the generated code is reported from this one place, without the exception
    # chained to it, so that Hypothesis sees one failure whichever generated line raised it
    crash = None
    try:
        model = compile_module(graph, "torch").build_model()
        trainable, non_trainable, _ = graph.counts()
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        stats = sum(b.numel() for n, b in model.named_buffers() if "num_batches_tracked" not in n)
        report = verify(graph, seed=0, batch=2)
    except Exception:
        crash = traceback.format_exc()
    if crash is not None:
        pytest.fail(f"building or verifying the models crashed:\n{crash}\n{text}")
    assert (params, stats) == (trainable, non_trainable), f"torch parameter counts\n{text}"
    assert report.ok, f"{report.table()}\n{text}"
