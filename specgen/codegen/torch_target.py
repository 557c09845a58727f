"""The PyTorch target: what each node becomes in ``torch``, and the view-model of the file.

Feature maps are channels first in the generated code (NCL, NCHW, NCDHW by the spec's spatial
rank, :mod:`~specgen.codegen.layout`); the spec's semantics are channels-last, so everything
that depends on the layout (flatten order, reshape, concatenation axis) converts explicitly.
'same' padding is TensorFlow's (extra row/column after), so where it is asymmetric the generated
code pads explicitly; transposed convolutions are cut to their target size the same way.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError, SpecErrors
from ..graph import INPUT, ModelGraph, Node
from ..render import render
from .helper_classes import helper_ctor
from .layout import layout_of, ranked
from .plugin_layers import from_imports
from .program import Arg, Ctor, Statement
from .pyformat import step_lines
from .pyliteral import literal
from .pyview import Target, ViewBuilder, call_statement

#: Helper classes defined in the generated file (templates/torch/_helpers/<name>.py.j2, where
#: a class of each rank has one template: ``PaddedConvNd`` for ``PaddedConv1d``...).
HELPERS = (
    *ranked("PaddedConv{}d"),
    *ranked("CroppedConvTranspose{}d"),
    *ranked("ConstantConvTranspose{}d"),
    "ChannelLayerNorm",
    *ranked("MaxPool{}dSame"),
    *ranked("AvgPool{}dSame"),
    "VaeSampling",
    "DiagonalGaussian",
    "VectorQuantizer",
    "SpatialSelfAttention",
    "GeneralizedDivisiveNorm",
    "EntropyBottleneck",
)


def _pair(p: tuple[int, ...]) -> Any:
    """Per-axis values as the frameworks take them: one int when every axis has it."""
    return p[0] if len(set(p)) == 1 else tuple(p)


def _ones(p: tuple[int, ...]) -> bool:
    return set(p) == {1}


#: ``nn.Upsample``'s mode of linear interpolation along every axis, by spatial rank.
LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def pad_order(sides: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Per-axis ``(before, after)`` amounts in ``F.pad``'s order, the last axis first."""
    return tuple(amount for pair in reversed(sides) for amount in pair)


def is_map(shape: tuple[int, ...], layer) -> bool:
    """Whether ``shape`` is a feature map ``(*spatial, C)`` of the layer's spec."""
    return len(shape) == layer.spatial_rank + 1


def _unsupported(node: Node, what: str) -> SpecErrors:
    return SpecErrors(
        [SpecError(f"the PyTorch target cannot express {what} ('{node.name}')", node.origin)]
    )


#: Layers whose output nothing needs once the next layer has read it: their backward pass reads
#: their input and weights, never their output, so an activation may overwrite it.
INPLACE_PRODUCERS = frozenset(
    {"conv", "conv_transpose", "batch_norm", "layer_norm", "group_norm", "instance_norm"}
)


def _inplace_exact(node: Node) -> bool:
    """Whether PyTorch computes ``node``'s activation in place bit for bit as it does out of
    place, forward and backward, and saves less for it. ReLU, and LeakyReLU with a slope of at
    least 0, save their result either way and compute their gradient from its sign. ELU's
    in-place gradient is computed from its result by another formula (it differs in the last
    bit), and SiLU in place keeps a copy of its input for the backward pass, so it saves
    nothing."""
    if node.kind == "relu":
        return True
    return node.kind == "leaky_relu" and node.layer.negative_slope >= 0


def computes_inplace(node: Node, graph: ModelGraph) -> bool:
    """Whether the generated code computes ``node`` in place: an exact in-place activation
    (:func:`_inplace_exact`) whose input is the output of a convolution or normalization that
    nothing else reads: no other layer, no skip path, not an output of the model."""
    if not _inplace_exact(node) or len(node.inputs) != 1:
        return False
    ref = node.inputs[0]
    if ref.node == INPUT:
        return False
    producer = graph.node(ref.node)
    if getattr(producer.layer, "neutral_kind", producer.kind) not in INPLACE_PRODUCERS:
        return False
    if graph.consumers(producer.name) != [node.name]:
        return False
    if graph.consumer_map.get(ref, set()) != {node.name}:
        return False
    if any(r.node == producer.name for _, r in graph.outputs):
        return False
    return not any(s.source.node == producer.name for s in graph.skips)


def torch_ctor(node: Node, graph: ModelGraph, inplace: bool = True) -> Ctor:
    """The torch module that computes ``node``; with ``inplace``, activations that
    :func:`computes_inplace` allows overwrite their input."""
    layer = node.layer
    kind = layer.kind
    ins = [graph.shape(r) for r in node.inputs]
    shape = ins[0] if ins else ()
    suffix = f"{layer.spatial_rank}d"
    if layer.neutral_kind == "conv":
        sides = layer.explicit_padding(shape)
        args = [
            Arg(None, shape[-1], "in_channels"),
            Arg(None, layer.filters, "out_channels"),
            Arg("kernel_size", _pair(layer.kernel_size)),
        ]
        if not _ones(layer.strides):
            args.append(Arg("stride", _pair(layer.strides)))
        symmetric = all(before == after for before, after in sides)
        if symmetric and any(before for before, _ in sides):
            args.append(Arg("padding", _pair(tuple(before for before, _ in sides))))
        elif not symmetric:
            args.append(Arg("padding", sides))
        if layer.padding_mode != "zeros":
            args.append(Arg("padding_mode", layer.padding_mode))
        if not _ones(layer.dilation_rate):
            args.append(Arg("dilation", _pair(layer.dilation_rate)))
        if layer.groups != 1:
            args.append(Arg("groups", layer.groups))
        if not layer.use_bias:
            args.append(Arg("bias", False))
        return Ctor(f"nn.Conv{suffix}" if symmetric else f"PaddedConv{suffix}", tuple(args))
    if layer.neutral_kind == "conv_transpose":
        crops = layer.output_crop(shape)
        args = [
            Arg(None, shape[-1], "in_channels"),
            Arg(None, layer.filters, "out_channels"),
            Arg("kernel_size", _pair(layer.kernel_size)),
        ]
        if not _ones(layer.strides):
            args.append(Arg("stride", _pair(layer.strides)))
        padding, out_pad, plain = [], [], True
        pytorch = not isinstance(layer.padding, str)  # PyTorch's own padding, written as it is
        if pytorch:
            crops = tuple((p, p) for p in layer.padding)
            out_pad = list(layer.output_padding)
        for (before, after), s, d in zip(crops, layer.strides, layer.dilation_rate, strict=True):
            if pytorch:
                padding.append(before)
            elif before == after >= 0:
                padding.append(before)
                out_pad.append(0)
            elif before == 0 and after < 0 and -after < max(s, d):
                padding.append(0)
                out_pad.append(-after)
            else:
                plain = False
        if plain:
            if any(padding):
                args.append(Arg("padding", _pair(tuple(padding))))
            if any(out_pad):
                args.append(Arg("output_padding", _pair(tuple(out_pad))))
        else:
            args.append(Arg("crop", crops))
        if not _ones(layer.dilation_rate):
            args.append(Arg("dilation", _pair(layer.dilation_rate)))
        if layer.groups != 1:
            args.append(Arg("groups", layer.groups))
        if not layer.use_bias:
            args.append(Arg("bias", False))
        if layer.constant_kernel is not None:
            # nn.ConvTranspose's arguments, less the bias it cannot have, and the kernel's value
            args = [a for a in args if a.keyword != "bias"]
            value = Arg("value", layer.constant_kernel)
            return Ctor(f"ConstantConvTranspose{suffix}", (*args, value))
        callee = f"nn.ConvTranspose{suffix}" if plain else f"CroppedConvTranspose{suffix}"
        return Ctor(callee, tuple(args))
    if kind == "pad":
        callee = {"zeros": f"nn.ZeroPad{suffix}", "reflect": f"nn.ReflectionPad{suffix}"}.get(
            layer.mode, f"nn.ReplicationPad{suffix}"
        )
        sides = pad_order(layer.padding)
        return Ctor(callee, (Arg(None, sides[0] if len(set(sides)) == 1 else sides, "padding"),))
    if kind == "dense":
        args = [Arg(None, shape[0], "in_features"), Arg(None, layer.units, "out_features")]
        if not layer.use_bias:
            args.append(Arg("bias", False))
        return Ctor("nn.Linear", tuple(args))
    if kind == "batch_norm":
        if layer.center != layer.scale:
            raise _unsupported(node, "batch_norm with only one of center/scale")
        args = [Arg(None, shape[-1], "num_features")]
        if layer.epsilon != 1e-5:
            args.append(Arg("eps", layer.epsilon))
        momentum = round(1.0 - layer.momentum, 12)
        if momentum != 0.1:
            args.append(Arg("momentum", momentum))
        if not layer.scale:
            args.append(Arg("affine", False))
        callee = f"nn.BatchNorm{suffix}" if is_map(shape, layer) else "nn.BatchNorm1d"
        return Ctor(callee, tuple(args))
    if kind == "layer_norm":
        if layer.center and not layer.scale:
            raise _unsupported(node, "layer_norm with center but no scale")
        args = [Arg(None, shape[-1], "num_features")]
        if layer.epsilon != 1e-5:
            args.append(Arg("eps", layer.epsilon))
        if not layer.scale:
            args.append(Arg("elementwise_affine", False))
        elif not layer.center:
            args.append(Arg("bias", False))
        return Ctor("ChannelLayerNorm" if is_map(shape, layer) else "nn.LayerNorm", tuple(args))
    if kind == "group_norm":
        if layer.center != layer.scale:
            raise _unsupported(node, "group_norm with only one of center/scale")
        args = [Arg(None, layer.groups, "num_groups"), Arg(None, shape[-1], "num_channels")]
        if layer.epsilon != 1e-5:
            args.append(Arg("eps", layer.epsilon))
        if not layer.scale:
            args.append(Arg("affine", False))
        return Ctor("nn.GroupNorm", tuple(args))
    if kind == "instance_norm":
        args = [Arg(None, shape[-1], "num_features")]
        if layer.epsilon != 1e-5:
            args.append(Arg("eps", layer.epsilon))
        if layer.affine:
            args.append(Arg("affine", True))
        return Ctor(f"nn.InstanceNorm{suffix}", tuple(args))
    in_place = (Arg("inplace", True),) if inplace and computes_inplace(node, graph) else ()
    if kind == "relu":
        return Ctor("nn.ReLU", in_place)
    if kind == "leaky_relu":
        slope = Arg(None, layer.negative_slope, "negative_slope")
        return Ctor("nn.LeakyReLU", (slope, *in_place))
    if kind == "prelu":
        args = [] if layer.shared else [Arg("num_parameters", shape[-1])]
        if layer.init != 0.25:
            args.append(Arg("init", layer.init))
        return Ctor("nn.PReLU", tuple(args))
    if kind == "sigmoid":
        return Ctor("nn.Sigmoid")
    if kind == "tanh":
        return Ctor("nn.Tanh")
    if kind == "gelu":
        return Ctor("nn.GELU", (Arg("approximate", "tanh"),) if layer.approximate else ())
    if kind == "silu":
        return Ctor("nn.SiLU")
    if kind == "elu":
        return Ctor("nn.ELU", (Arg("alpha", layer.alpha),) if layer.alpha != 1.0 else ())
    if kind == "linear":
        return Ctor("nn.Identity")
    if kind == "softmax":
        return Ctor("nn.Softmax", (Arg("dim", 1),))
    if kind == "dropout":
        return Ctor("nn.Dropout", (Arg(None, layer.rate, "p"),))
    if kind in ("max_pool", "avg_pool"):
        sides = layer.explicit_padding(shape)
        args = [Arg(None, _pair(layer.pool_size), "kernel_size")]
        if layer.strides != layer.pool_size:
            args.append(Arg("stride", _pair(layer.strides)))
        pool = "MaxPool" if kind == "max_pool" else "AvgPool"
        if not any(any(pair) for pair in sides):
            return Ctor(f"nn.{pool}{suffix}", tuple(args))
        args.append(Arg("padding", sides))
        return Ctor(f"{pool}{suffix}Same", tuple(args))
    if kind == "upsample":
        args = [Arg("scale_factor", _pair(layer.size))]
        if layer.linear:
            args += [Arg("mode", LINEAR_MODES[layer.spatial_rank]), Arg("align_corners", False)]
        return Ctor("nn.Upsample", tuple(args))
    shared = helper_ctor(kind, layer, shape)
    if shared is not None:
        return shared
    raise _unsupported(node, f"layer kind '{kind}'")  # pragma: no cover - registry is closed


# ----------------------------------------------------------------------------------------------
# Printing


def shape_comment(shape: tuple[int, ...] | None, spatial: int = 2) -> str:
    """A shape as the PyTorch model holds it, without the batch: a feature map of a spec of
    spatial rank ``spatial`` channels first, ``(C, H, W)``."""
    if shape is None:
        return ""
    if len(shape) == spatial + 1:
        return "(" + ", ".join(map(str, (shape[-1], *shape[:-1]))) + ")"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(map(str, shape)) + ")"


def held_channels_first(rank: int, spatial: int = 2) -> bool:
    """Whether the PyTorch model holds a tensor of this spec rank ``(*spatial, C)`` as
    ``(N, C, *spatial)`` (a feature map of a spec of spatial rank ``spatial``); the other ranks
    are held in the spec's order."""
    return rank == spatial + 1


def channels_last_axes(rank: int) -> tuple[int, ...]:
    """The ``permute`` taking ``(N, C, *spatial)`` to ``(N, *spatial, C)`` (``rank`` without N)."""
    return (0, *range(2, rank + 1), 1)


def channels_first_axes(rank: int) -> tuple[int, ...]:
    """The ``permute`` taking ``(N, *spatial, C)`` to ``(N, C, *spatial)`` (``rank`` without N)."""
    return (0, rank, *range(1, rank))


def _relayout(rank: int, order: str, back: bool = False, spatial: int = 2) -> list[str]:
    """The step that lays a tensor of spec rank ``rank`` out in ``order``, ready to be read
    row-major as ``(N, *spatial, C)`` or ``(N, C, *spatial)``; with ``back``, the inverse step
    from ``order`` to how the model holds that rank. No step where the two agree."""
    if rank < 2 or (order == "channels_first") == held_channels_first(rank, spatial):
        return []
    to_first = (order == "channels_first") != back
    axes = channels_first_axes(rank) if to_first else channels_last_axes(rank)
    return [f"{{}}.permute{axes}"]


def ordered_dims(shape: tuple[int, ...], order: str) -> tuple[int, ...]:
    """The spec shape ``(*spatial, C)`` with its axes in ``order``."""
    if order == "channels_first" and len(shape) > 1:
        return (shape[-1], *shape[:-1])
    return shape


def layout_steps(s: Statement, graph: ModelGraph) -> list[str]:
    """``flatten`` and ``reshape`` as steps for :func:`step_lines`."""
    layer = s.node.layer
    rank = len(graph.shape(s.node.inputs[0]))
    spatial = layout_of(graph.input_shape).rank
    steps = _relayout(rank, layer.order, spatial=spatial)
    if s.op == "flatten":
        return steps + ["torch.flatten({}, 1)"] if rank > 1 else steps
    shape = tuple(layer.target_shape)
    dims = ", ".join(map(str, ordered_dims(shape, layer.order)))
    back = _relayout(len(shape), layer.order, back=True, spatial=spatial)
    return steps + [f"{{}}.reshape(-1, {dims})"] + back


def render_statement(s: Statement, graph: ModelGraph) -> str:
    target = ", ".join(s.targets)
    ins = list(s.inputs)
    if s.op in ("layer", "call"):
        return call_statement(s)
    elif s.op == "add":
        expr = " + ".join(ins)
    elif s.op == "multiply":
        expr = " * ".join(ins)
    elif s.op == "scale":
        expr = f"{ins[0]} * {literal(s.node.layer.factor)}"
    elif s.op == "concat":
        expr = f"torch.cat([{', '.join(ins)}], dim=1)"
    elif s.op == "identity":
        expr = ins[0]
    elif s.op in ("flatten", "reshape"):
        comment = shape_comment(s.shape, layout_of(graph.input_shape).rank)
        return step_lines(target, ins[0], layout_steps(s, graph), comment)
    elif s.op in ("crop", "crop2d"):
        expr = f"{ins[0]}[:, :, {crop_slices(s, graph)}]"
    else:  # pragma: no cover - every inline op is handled above
        raise AssertionError(s.op)
    return f"{target} = {expr}"


def crop_slices(s: Statement, graph: ModelGraph) -> str:
    """The slices of a crop's spatial axes: ``1:31, 0:32``."""
    spatial = graph.shape(s.node.inputs[0])[:-1]
    cropping = s.node.layer.cropping
    return ", ".join(f"{b}:{n - a}" for n, (b, a) in zip(spatial, cropping, strict=True))


class TorchTarget(Target):
    framework = "torch"
    forward = "forward"
    annotation = ": torch.Tensor"
    helpers = HELPERS

    def __init__(self, spatial_rank: int = 2, inplace: bool = True) -> None:
        self.spatial_rank = spatial_rank
        self.inplace = inplace

    def ctor(self, node: Node, graph: ModelGraph) -> Ctor:
        return torch_ctor(node, graph, self.inplace)

    def statement(self, s: Statement, graph: ModelGraph) -> str:
        return render_statement(s, graph)

    def shape_comment(self, shape):
        return shape_comment(shape, self.spatial_rank)


#: Helpers written with ``torch.nn.functional``.
_FUNCTIONAL = {
    *ranked("PaddedConv{}d"),
    *ranked("CroppedConvTranspose{}d"),
    *ranked("ConstantConvTranspose{}d"),
    *ranked("MaxPool{}dSame"),
    *ranked("AvgPool{}dSame"),
    "VectorQuantizer",
    "SpatialSelfAttention",
    "GeneralizedDivisiveNorm",
    "EntropyBottleneck",
}


def render_torch(graph: ModelGraph, spec_label: str, header: str, *, inplace: bool = True) -> str:
    """The text of ``torch_model.py``; ``inplace=False`` computes every activation out of place
    (the same numbers, bit for bit, with more memory saved for the backward pass)."""
    layout = layout_of(graph.input_shape)
    target = TorchTarget(layout.rank, inplace)
    view = ViewBuilder(target, graph).file_view(spec_label, header)
    *spatial, channels = view.input_shape
    return render(
        "torch/model.py.j2",
        v=view,
        layout=layout,
        input_shape_nchw=(channels, *spatial),
        from_imports=from_imports(
            [("torch", "nn", None)]
            + ([("torch.nn", "functional", "F")] if _FUNCTIONAL & set(view.helpers) else []),
            view.plugin_imports,
        ),
    )
