"""The Keras 3 target: what each node becomes in ``keras``, and how statements print.

Tensors are channels last (NLC, NHWC, NDHWC), as the spec's semantics are, so 'same' padding,
transposed-convolution cropping, flattening and concatenation are Keras' own; batch-norm
``momentum`` is Keras' convention too. The file has the same classes, attributes and statements
as the PyTorch one, built by the shared view-model in :mod:`specgen.codegen.pyview`.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError, SpecErrors
from ..graph import ModelGraph, Node
from ..layers.base import product
from ..render import render
from .helper_classes import helper_ctor
from .layout import layout_of, ranked
from .plugin_layers import from_imports
from .program import Arg, Ctor, Statement
from .pyformat import step_lines
from .pyliteral import literal
from .pyview import Target, ViewBuilder, call_statement
from .torch_target import (
    channels_first_axes,
    channels_last_axes,
    crop_slices,
    ordered_dims,
)

HELPERS = (
    "ConstantPReLU",
    "GeluTanh",
    *ranked("Pad{}D"),
    *ranked("PaddedConv{}D"),
    *ranked("CroppedConv{}DTranspose"),
    *ranked("ConstantConv{}DTranspose"),
    "UpsampleLinear",
    "VaeSampling",
    "DiagonalGaussian",
    "VectorQuantizer",
    "SpatialSelfAttention",
    "GeneralizedDivisiveNorm",
    "EntropyBottleneck",
)

#: Helpers that other helpers use, so that the file defines them too.
HELPER_NEEDS = {f"PaddedConv{rank}D": (f"Pad{rank}D",) for rank in (1, 2, 3)}


def _pair(p: tuple[int, ...]) -> Any:
    """Per-axis values as the frameworks take them: one int when every axis has it."""
    return p[0] if len(set(p)) == 1 else tuple(p)


def _ones(p: tuple[int, ...]) -> bool:
    return set(p) == {1}


def _unsupported(node: Node, what: str) -> SpecErrors:
    return SpecErrors(
        [SpecError(f"the Keras target cannot express {what} ('{node.name}')", node.origin)]
    )


def _init_args(layer) -> list[Arg]:
    args = []
    if layer.kernel_initializer != "glorot_uniform":
        args.append(Arg("kernel_initializer", layer.kernel_initializer))
    if getattr(layer, "use_bias", True) and getattr(layer, "bias_initializer", "zeros") != "zeros":
        args.append(Arg("bias_initializer", layer.bias_initializer))
    return args


def _norm_args(layer, default_eps: float) -> list[Arg]:
    args = []
    if layer.epsilon != default_eps:
        args.append(Arg("epsilon", layer.epsilon))
    if not layer.center:
        args.append(Arg("center", False))
    if not layer.scale:
        args.append(Arg("scale", False))
    return args


def keras_ctor(node: Node, graph: ModelGraph) -> Ctor:
    """The Keras layer that computes ``node``."""
    layer = node.layer
    kind = layer.kind
    shape = graph.shape(node.inputs[0]) if node.inputs else ()
    rank = layer.spatial_rank
    if layer.neutral_kind in ("conv", "conv_transpose"):
        transposed = layer.neutral_kind == "conv_transpose"
        if transposed and layer.groups != 1:
            raise _unsupported(node, f"a grouped {layer.ranked_kind}")
        args = [
            Arg(None, layer.filters, "filters"),
            Arg(None, _pair(layer.kernel_size), "kernel_size"),
        ]
        if not _ones(layer.strides):
            args.append(Arg("strides", _pair(layer.strides)))
        unpadded = ((0, 0),) * rank
        sides = unpadded if transposed else layer.explicit_padding(shape)
        explicit = not transposed and layer.padding != "valid"
        explicit = explicit and (layer.padding != "same" or layer.padding_mode != "zeros")
        if explicit and sides != unpadded:
            # Keras pads only as 'same' does, with zeros: other padding comes first
            args.append(Arg("padding", sides))
            if layer.padding_mode != "zeros":
                args.append(Arg("padding_mode", layer.padding_mode))
        elif not explicit and layer.padding == "same":
            args.append(Arg("padding", layer.padding))
        if transposed and any(layer.output_padding):
            args.append(Arg("output_padding", _pair(layer.output_padding)))
        if not _ones(layer.dilation_rate):
            args.append(Arg("dilation_rate", _pair(layer.dilation_rate)))
        if layer.groups != 1:
            args.append(Arg("groups", layer.groups))
        if not layer.use_bias:
            args.append(Arg("use_bias", False))
        args += _init_args(layer)
        if explicit and sides != unpadded:
            return Ctor(f"PaddedConv{rank}D", tuple(args))
        if transposed and layer.constant_kernel is not None:
            # Conv*DTranspose's arguments, less the bias and the initializer a constant lacks
            args = [a for a in args if a.keyword not in ("use_bias", "kernel_initializer")]
            args.append(Arg("value", layer.constant_kernel))
            if not isinstance(layer.padding, str) and any(layer.padding):
                args.append(Arg("crop", tuple(layer.padding)))
            return Ctor(f"ConstantConv{rank}DTranspose", tuple(args))
        if transposed and not isinstance(layer.padding, str) and any(layer.padding):
            # PyTorch's padding cuts the full output on both sides of each axis
            crop = Arg("crop", tuple(layer.padding))
            return Ctor(f"CroppedConv{rank}DTranspose", (*args, crop))
        callee = f"layers.Conv{rank}DTranspose" if transposed else f"layers.Conv{rank}D"
        return Ctor(callee, tuple(args))
    if kind == "pad":
        amounts = {v for pair in layer.padding for v in pair}
        # ZeroPadding1D takes its (left, right) pair alone
        sides = layer.padding[0] if rank == 1 else layer.padding
        sides = next(iter(amounts)) if len(amounts) == 1 else sides
        if layer.mode == "zeros":
            return Ctor(f"layers.ZeroPadding{rank}D", (Arg("padding", sides),))
        return Ctor(f"Pad{rank}D", (Arg("padding", layer.padding), Arg("mode", layer.mode)))
    if kind == "dense":
        args = [Arg(None, layer.units, "units")]
        if not layer.use_bias:
            args.append(Arg("use_bias", False))
        return Ctor("layers.Dense", tuple(args + _init_args(layer)))
    if kind == "batch_norm":
        args = []
        if layer.momentum != 0.99:
            args.append(Arg("momentum", layer.momentum))
        return Ctor("layers.BatchNormalization", tuple(args + _norm_args(layer, 0.001)))
    if kind == "layer_norm":
        return Ctor("layers.LayerNormalization", tuple(_norm_args(layer, 0.001)))
    if kind == "group_norm":
        args = [Arg("groups", layer.groups)] + _norm_args(layer, 0.001)
        return Ctor("layers.GroupNormalization", tuple(args))
    if kind == "instance_norm":
        # group normalization with one group per channel; both use the biased variance and
        # add epsilon to it under the square root, as PyTorch does
        args = [Arg("groups", shape[-1]), Arg("epsilon", layer.epsilon)]
        if not layer.affine:
            args += [Arg("center", False), Arg("scale", False)]
        return Ctor("layers.GroupNormalization", tuple(args))
    if kind == "relu":
        return Ctor("layers.ReLU")
    if kind == "leaky_relu":
        return Ctor("layers.LeakyReLU", (Arg("negative_slope", layer.negative_slope),))
    if kind == "prelu":
        # Keras keeps one slope per position unless its axes are shared: all but the channels,
        # or all of them for a single slope
        rank = len(shape)
        shared = list(range(1, rank + 1 if layer.shared else rank))
        args = [Arg("init", layer.init)] if layer.init != 0.25 else []
        if shared:
            args.append(Arg("shared_axes", shared))
        return Ctor("ConstantPReLU", tuple(args))
    if kind in ("sigmoid", "tanh", "silu"):
        return Ctor("layers.Activation", (Arg(None, kind, "activation"),))
    if kind == "gelu":
        if layer.approximate:
            return Ctor("GeluTanh")
        return Ctor("layers.Activation", (Arg(None, "gelu", "activation"),))
    if kind == "elu":
        return Ctor("layers.ELU", (Arg("alpha", layer.alpha),) if layer.alpha != 1.0 else ())
    if kind == "linear":
        return Ctor("layers.Identity")
    if kind == "softmax":
        return Ctor("layers.Softmax", (Arg("axis", -1),))
    if kind == "dropout":
        return Ctor("layers.Dropout", (Arg(None, layer.rate, "rate"),))
    if kind in ("max_pool", "avg_pool"):
        args = [Arg(None, _pair(layer.pool_size), "pool_size")]
        if layer.strides != layer.pool_size:
            args.append(Arg("strides", _pair(layer.strides)))
        if layer.padding != "valid":
            args.append(Arg("padding", layer.padding))
        pool = "MaxPooling" if kind == "max_pool" else "AveragePooling"
        return Ctor(f"layers.{pool}{rank}D", tuple(args))
    if kind == "upsample":
        if layer.linear and rank != 2:
            # Keras interpolates linearly only in 2-D (bilinear)
            return Ctor("UpsampleLinear", (Arg("size", tuple(layer.size)),))
        args = [Arg("size", _pair(layer.size))]
        if layer.linear:
            args.append(Arg("interpolation", "bilinear"))
        return Ctor(f"layers.UpSampling{rank}D", tuple(args))
    shared = helper_ctor(kind, layer, shape)
    if shared is not None:
        return shared
    raise _unsupported(node, f"layer kind '{kind}'")  # pragma: no cover - registry is closed


def shape_comment(shape: tuple[int, ...] | None) -> str:
    """NHWC without the batch: ``(H, W, C)``."""
    if shape is None:
        return ""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(map(str, shape)) + ")"


def layout_steps(s: Statement, graph: ModelGraph) -> list[str]:
    """``flatten`` and ``reshape`` as steps for :func:`step_lines`: tensors are ``(N, *spatial,
    C)``, and channels-first order reads and writes them through ``(N, C, *spatial)``."""
    layer = s.node.layer
    src = graph.shape(s.node.inputs[0])
    first = layer.order == "channels_first"
    steps = []
    if first and len(src) > 1:
        steps.append(f"ops.transpose({{}}, {channels_first_axes(len(src))})")
    if s.op == "flatten":
        return steps + [f"ops.reshape({{}}, (-1, {product(src)}))"] if len(src) > 1 else steps
    shape = tuple(layer.target_shape)
    dims = ", ".join(map(str, ordered_dims(shape, layer.order)))
    steps.append(f"ops.reshape({{}}, (-1, {dims}))")
    if first and len(shape) > 1:
        steps.append(f"ops.transpose({{}}, {channels_last_axes(len(shape))})")
    return steps


def render_statement(s: Statement, graph: ModelGraph) -> str:
    target = ", ".join(s.targets)
    ins = list(s.inputs)
    if s.op in ("layer", "call"):
        return call_statement(s)
    if s.op == "add":
        expr = " + ".join(ins)
    elif s.op == "multiply":
        expr = " * ".join(ins)
    elif s.op == "scale":
        expr = f"{ins[0]} * {literal(s.node.layer.factor)}"
    elif s.op == "concat":
        expr = f"ops.concatenate([{', '.join(ins)}], axis=-1)"
    elif s.op == "identity":
        expr = ins[0]
    elif s.op in ("flatten", "reshape"):
        comment = shape_comment(s.shape)
        return step_lines(target, ins[0], layout_steps(s, graph), comment)
    elif s.op in ("crop", "crop2d"):
        expr = f"{ins[0]}[:, {crop_slices(s, graph)}, :]"
    else:  # pragma: no cover - every inline op is handled above
        raise AssertionError(s.op)
    return f"{target} = {expr}"


class KerasTarget(Target):
    framework = "keras"
    forward = "call"
    annotation = ""
    # Keras hands ``training`` on to the layers inside only when the model's call takes it:
    # without it, fit() would run batch norm, dropout and sampling in inference mode
    model_extra_params = ", training=None"
    helpers = HELPERS

    def ctor(self, node: Node, graph: ModelGraph) -> Ctor:
        return keras_ctor(node, graph)

    def statement(self, s: Statement, graph: ModelGraph) -> str:
        return render_statement(s, graph)

    def shape_comment(self, shape):
        return shape_comment(shape)


def render_keras(graph: ModelGraph, spec_label: str, header: str) -> str:
    """The text of ``keras_model.py``."""
    view = ViewBuilder(KerasTarget(), graph).file_view(spec_label, header)
    needed = set(view.helpers)
    for helper in view.helpers:
        needed.update(HELPER_NEEDS.get(helper, ()))
    view.helpers = [h for h in HELPERS if h in needed]
    return render(
        "keras/model.py.j2",
        v=view,
        layout=layout_of(graph.input_shape),
        from_imports=from_imports(
            [("keras", "layers", None), ("keras", "ops", None)], view.plugin_imports
        ),
    )
