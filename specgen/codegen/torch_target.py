"""The PyTorch target: what each node becomes in ``torch``, and the view-model of the file.

Tensors are NCHW in the generated code; the spec's semantics are channels-last, so everything
that depends on the layout (flatten order, reshape, concatenation axis) converts explicitly.
'same' padding is TensorFlow's (extra row/column after), so where it is asymmetric the generated
code pads explicitly; transposed convolutions are cut to their target size the same way.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError, SpecErrors
from ..graph import ModelGraph, Node
from ..render import render
from .program import Arg, Ctor, Statement
from .pyliteral import literal
from .pyview import Target, ViewBuilder, call_statement

#: Helper classes defined in the generated file (templates/torch/_helpers/<name>.py.j2).
HELPERS = (
    "PaddedConv2d",
    "CroppedConvTranspose2d",
    "ChannelLayerNorm",
    "MaxPool2dSame",
    "AvgPool2dSame",
    "VaeSampling",
    "DiagonalGaussian",
    "VectorQuantizer",
    "SpatialSelfAttention",
    "GeneralizedDivisiveNorm",
    "EntropyBottleneck",
)


def _pair(p: tuple[int, int]) -> Any:
    return p[0] if p[0] == p[1] else tuple(p)


def _unsupported(node: Node, what: str) -> SpecErrors:
    return SpecErrors(
        [SpecError(f"the PyTorch target cannot express {what} ('{node.name}')", node.origin)]
    )


def attention_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the SpatialSelfAttention helper of either target (both take the same)."""
    heads, head_dim = layer.dims(shape[2])
    args = [
        Arg(None, shape[2], "channels"),
        Arg(None, layer.norm_groups, "num_groups"),
        Arg("heads", heads),
        Arg("head_dim", head_dim),
        Arg("eps", layer.epsilon),
    ]
    if not layer.residual:
        args.append(Arg("residual", False))
    if layer.rescale_output_factor != 1.0:
        args.append(Arg("rescale_output_factor", layer.rescale_output_factor))
    return args


def gdn_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the GeneralizedDivisiveNorm helper of either target (both take the same)."""
    args = [Arg(None, shape[-1], "channels")]
    if layer.inverse:
        args.append(Arg("inverse", True))
    if layer.beta_min != 1e-6:
        args.append(Arg("beta_min", layer.beta_min))
    if layer.gamma_init != 0.1:
        args.append(Arg("gamma_init", layer.gamma_init))
    return args


def entropy_bottleneck_args(layer, shape: tuple[int, ...]) -> list[Arg]:
    """Arguments of the EntropyBottleneck helper of either target (both take the same)."""
    args = [Arg(None, shape[-1], "channels")]
    if layer.filters != (3, 3, 3, 3):
        args.append(Arg("filters", layer.filters))
    if layer.init_scale != 10.0:
        args.append(Arg("init_scale", layer.init_scale))
    if layer.tail_mass != 1e-9:
        args.append(Arg("tail_mass", layer.tail_mass))
    if layer.likelihood_bound != 1e-9:
        args.append(Arg("likelihood_bound", layer.likelihood_bound))
    return args


def torch_ctor(node: Node, graph: ModelGraph) -> Ctor:
    """The torch module that computes ``node``."""
    layer = node.layer
    kind = layer.kind
    ins = [graph.shape(r) for r in node.inputs]
    shape = ins[0] if ins else ()
    if kind == "conv2d":
        (t, b), (left, r) = layer.explicit_padding(shape)
        args = [
            Arg(None, shape[2], "in_channels"),
            Arg(None, layer.filters, "out_channels"),
            Arg("kernel_size", _pair(layer.kernel_size)),
        ]
        if layer.strides != (1, 1):
            args.append(Arg("stride", _pair(layer.strides)))
        symmetric = t == b and left == r
        if symmetric and (t, left) != (0, 0):
            args.append(Arg("padding", _pair((t, left))))
        elif not symmetric:
            args.append(Arg("padding", ((t, b), (left, r))))
        if layer.padding_mode != "zeros":
            args.append(Arg("padding_mode", layer.padding_mode))
        if layer.dilation_rate != (1, 1):
            args.append(Arg("dilation", _pair(layer.dilation_rate)))
        if layer.groups != 1:
            args.append(Arg("groups", layer.groups))
        if not layer.use_bias:
            args.append(Arg("bias", False))
        return Ctor("nn.Conv2d" if symmetric else "PaddedConv2d", tuple(args))
    if kind == "conv2d_transpose":
        crops = layer.output_crop(shape)
        args = [
            Arg(None, shape[2], "in_channels"),
            Arg(None, layer.filters, "out_channels"),
            Arg("kernel_size", _pair(layer.kernel_size)),
        ]
        if layer.strides != (1, 1):
            args.append(Arg("stride", _pair(layer.strides)))
        padding, out_pad, plain = [], [], True
        if isinstance(layer.padding, int):  # PyTorch's own padding, written as it is
            crops = ((layer.padding, layer.padding),) * 2
            out_pad = [layer.output_padding] * 2
        for (before, after), s, d in zip(crops, layer.strides, layer.dilation_rate, strict=True):
            if isinstance(layer.padding, int):
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
        if layer.dilation_rate != (1, 1):
            args.append(Arg("dilation", _pair(layer.dilation_rate)))
        if layer.groups != 1:
            args.append(Arg("groups", layer.groups))
        if not layer.use_bias:
            args.append(Arg("bias", False))
        return Ctor("nn.ConvTranspose2d" if plain else "CroppedConvTranspose2d", tuple(args))
    if kind == "pad":
        (t, b), (left, r) = layer.padding
        callee = {"zeros": "nn.ZeroPad2d", "reflect": "nn.ReflectionPad2d"}.get(
            layer.mode, "nn.ReplicationPad2d"
        )
        sides = (left, r, t, b)
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
        return Ctor("nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d", tuple(args))
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
        return Ctor("ChannelLayerNorm" if len(shape) == 3 else "nn.LayerNorm", tuple(args))
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
        return Ctor("nn.InstanceNorm2d", tuple(args))
    if kind == "relu":
        return Ctor("nn.ReLU")
    if kind == "leaky_relu":
        return Ctor("nn.LeakyReLU", (Arg(None, layer.negative_slope, "negative_slope"),))
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
        (t, b), (left, r) = layer.explicit_padding(shape)
        args = [Arg(None, _pair(layer.pool_size), "kernel_size")]
        if layer.strides != layer.pool_size:
            args.append(Arg("stride", _pair(layer.strides)))
        if (t, b, left, r) == (0, 0, 0, 0):
            return Ctor("nn.MaxPool2d" if kind == "max_pool" else "nn.AvgPool2d", tuple(args))
        args.append(Arg("padding", ((t, b), (left, r))))
        return Ctor("MaxPool2dSame" if kind == "max_pool" else "AvgPool2dSame", tuple(args))
    if kind == "upsample":
        args = [Arg("scale_factor", _pair(layer.size))]
        if layer.interpolation == "bilinear":
            args += [Arg("mode", "bilinear"), Arg("align_corners", False)]
        return Ctor("nn.Upsample", tuple(args))
    if kind == "attention":
        return Ctor("SpatialSelfAttention", tuple(attention_args(layer, shape)))
    if kind in ("gdn", "igdn"):
        return Ctor("GeneralizedDivisiveNorm", tuple(gdn_args(layer, shape)))
    if kind == "entropy_bottleneck":
        return Ctor("EntropyBottleneck", tuple(entropy_bottleneck_args(layer, shape)))
    if kind == "vae_sampling":
        if layer.inference == "mean":
            return Ctor("VaeSampling")
        return Ctor("VaeSampling", (Arg("inference", layer.inference),))
    if kind == "diagonal_gaussian":
        return Ctor("DiagonalGaussian")
    if kind == "vector_quantizer":
        args = [
            Arg(None, layer.num_embeddings, "num_embeddings"),
            Arg(None, shape[-1], "embedding_dim"),
            Arg("commitment_cost", layer.commitment_cost),
        ]
        if layer.loss_weighting != "vqvae":
            args.append(Arg("loss_weighting", layer.loss_weighting))
        return Ctor("VectorQuantizer", tuple(args))
    raise _unsupported(node, f"layer kind '{kind}'")  # pragma: no cover - registry is closed


# ----------------------------------------------------------------------------------------------
# Printing


def shape_comment(shape: tuple[int, ...] | None) -> str:
    """NCHW without the batch: ``(C, H, W)``."""
    if shape is None:
        return ""
    if len(shape) == 3:
        h, w, c = shape
        return f"({c}, {h}, {w})"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(map(str, shape)) + ")"


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
    elif s.op == "flatten":
        src = graph.shape(s.node.inputs[0])
        expr = f"torch.flatten({ins[0]}.permute(0, 2, 3, 1), 1)" if len(src) == 3 else ins[0]
    elif s.op == "reshape":
        src = graph.shape(s.node.inputs[0])
        x = f"{ins[0]}.permute(0, 2, 3, 1)" if len(src) == 3 else ins[0]
        dims = ", ".join(str(d) for d in s.node.layer.target_shape)
        expr = f"{x}.reshape(-1, {dims})"
        if len(s.node.layer.target_shape) == 3:
            expr += ".permute(0, 3, 1, 2)"
    elif s.op == "crop2d":
        (t, b), (left, r) = s.node.layer.cropping
        h, w = graph.shape(s.node.inputs[0])[:2]
        expr = f"{ins[0]}[:, :, {t}:{h - b}, {left}:{w - r}]"
    else:  # pragma: no cover - every inline op is handled above
        raise AssertionError(s.op)
    return f"{target} = {expr}"


class TorchTarget(Target):
    forward = "forward"
    annotation = ": torch.Tensor"
    helpers = HELPERS

    def ctor(self, node: Node, graph: ModelGraph) -> Ctor:
        return torch_ctor(node, graph)

    def statement(self, s: Statement, graph: ModelGraph) -> str:
        return render_statement(s, graph)

    def shape_comment(self, shape):
        return shape_comment(shape)


#: Helpers written with ``torch.nn.functional``.
_FUNCTIONAL = {
    "PaddedConv2d",
    "CroppedConvTranspose2d",
    "MaxPool2dSame",
    "AvgPool2dSame",
    "VectorQuantizer",
    "SpatialSelfAttention",
    "GeneralizedDivisiveNorm",
    "EntropyBottleneck",
}


def render_torch(graph: ModelGraph, spec_label: str, header: str) -> str:
    """The text of ``torch_model.py``."""
    view = ViewBuilder(TorchTarget(), graph).file_view(spec_label, header)
    h, w, c = view.input_shape
    return render(
        "torch/model.py.j2",
        v=view,
        input_shape_nchw=(c, h, w),
        uses_functional=bool(_FUNCTIONAL & set(view.helpers)),
    )
