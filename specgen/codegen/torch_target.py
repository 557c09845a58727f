"""The PyTorch target: what each node becomes in ``torch``, and the view-model of the file.

Tensors are NCHW in the generated code; the spec's semantics are channels-last, so everything
that depends on the layout (flatten order, reshape, concatenation axis) converts explicitly.
'same' padding is TensorFlow's (extra row/column after), so where it is asymmetric the generated
code pads explicitly; transposed convolutions are cut to their target size the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SpecError, SpecErrors
from ..graph import ModelGraph, Node
from .program import (
    Arg,
    ClassDef,
    Ctor,
    ModuleInstance,
    ParamRef,
    Program,
    Statement,
    build_program,
)
from .pyformat import wrap_call
from .pyliteral import comment_lines, literal

#: Helper classes defined in the generated file (templates/torch/_helpers/<name>.py.j2).
HELPERS = (
    "PaddedConv2d",
    "CroppedConvTranspose2d",
    "ChannelLayerNorm",
    "MaxPool2dSame",
    "AvgPool2dSame",
    "VaeSampling",
    "VectorQuantizer",
)

DEFAULT_KERNEL_INIT = "glorot_uniform"
DEFAULT_BIAS_INIT = "zeros"


def _pair(p: tuple[int, int]) -> Any:
    return p[0] if p[0] == p[1] else tuple(p)


def _unsupported(node: Node, what: str) -> SpecErrors:
    return SpecErrors(
        [SpecError(f"the PyTorch target cannot express {what} ('{node.name}')", node.origin)]
    )


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
        for (before, after), s, d in zip(crops, layer.strides, layer.dilation_rate, strict=True):
            if before == after >= 0:
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
    if kind == "relu":
        return Ctor("nn.ReLU")
    if kind == "leaky_relu":
        return Ctor("nn.LeakyReLU", (Arg(None, layer.negative_slope, "negative_slope"),))
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
    if kind == "vae_sampling":
        return Ctor("VaeSampling")
    if kind == "vector_quantizer":
        return Ctor(
            "VectorQuantizer",
            (
                Arg(None, layer.num_embeddings, "num_embeddings"),
                Arg(None, shape[-1], "embedding_dim"),
                Arg("commitment_cost", layer.commitment_cost),
            ),
        )
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


def ctor_args(ctor: Ctor) -> list[str]:
    parts = []
    for a in ctor.args:
        value = a.value.name if isinstance(a.value, ParamRef) else literal(a.value)
        parts.append(value if a.keyword is None else f"{a.keyword}={value}")
    return parts


def attr_lines(attrs: list[tuple[str, Ctor]], indent: int = 8) -> list[str]:
    """``self.<attr> = <ctor>`` assignments, laid out by the formatter's rules."""
    lines: list[str] = []
    for attr, ctor in attrs:
        lines += wrap_call(f"self.{attr} = {ctor.callee}", ctor_args(ctor), indent=indent)
    return lines


def def_lines(name: str, params: list[str], returns: str | None, indent: int = 4) -> list[str]:
    tail = f" -> {returns}:" if returns else ":"
    return wrap_call(f"def {name}", ["self", *params], tail, indent=indent)


def render_statement(s: Statement, graph: ModelGraph) -> str:
    target = ", ".join(s.targets)
    ins = list(s.inputs)
    if s.op in ("layer", "call"):
        return "\n".join(wrap_call(f"{target} = self.{s.attr}", ins, indent=8))
    elif s.op == "add":
        expr = " + ".join(ins)
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


# ----------------------------------------------------------------------------------------------
# View-model


@dataclass
class ClassView:
    name: str
    doc: str
    init: list[str]  # the ``def __init__`` line(s)
    attrs: list[str]  # lines of the constructor body
    forward_def: list[str]  # the ``def forward`` line(s); empty for containers
    forward: list[str]  # lines of the forward body
    returns: str = "x"


@dataclass
class FileView:
    header: str
    description: list[str]
    spec_name: str
    class_name: str
    helpers: list[str]
    classes: list[ClassView]
    parts: list[ClassView]
    bottleneck: str
    input_shape_nchw: tuple[int, ...]
    outputs: list[tuple[str, str]]
    output_names: tuple[str, ...]
    initializers: list[tuple[str, str, str]]
    counts: tuple[int, int]
    encoder_extra: list[str]
    model_doc: str
    uses_functional: bool
    bottleneck_text: str
    bottleneck_methods: list[Method]


def _forward_lines(inst: ModuleInstance, graph: ModelGraph, comments: bool) -> list[str]:
    lines = []
    for s in inst.statements:
        text = render_statement(s, graph)
        if comments and s.shape is not None:
            text += f"  # {shape_comment(s.shape)}"
        lines.extend(text.split("\n"))
    return lines


def _class_view(cls: ClassDef, graph: ModelGraph) -> ClassView:
    n = len(cls.instances)
    what = f"Block '{cls.block}'" if cls.block else "Group"
    if n == 1:
        doc = f"{what} {cls.instances[0]}."
    else:
        doc = f"{what}: {cls.instances[0]} and {n - 1} more like it."
    init = def_lines("__init__", [f"{p.name}: int" for p in cls.params], "None")
    attrs = attr_lines(cls.attrs)
    if not cls.closed:
        doc += " It holds its layers; the enclosing module calls them."
        return ClassView(cls.name, doc, init, attrs, [], [], "")
    forward = _forward_lines(cls.sample, graph, comments=n == 1)
    fdef = def_lines("forward", ["x: torch.Tensor"], "torch.Tensor")
    return ClassView(cls.name, doc, init, attrs, fdef, forward, cls.sample.outputs[0])


def _part_view(name: str, inst: ModuleInstance, graph: ModelGraph) -> ClassView:
    forward = _forward_lines(inst, graph, comments=True)
    fdef = def_lines("forward", [f"{p}: torch.Tensor" for p in inst.inputs], None)
    return ClassView(
        name.capitalize(),
        f"The {name}.",
        def_lines("__init__", [], "None"),
        attr_lines(inst.attrs),
        fdef,
        forward,
        ", ".join(inst.outputs),
    )


def _forward_names(graph: ModelGraph) -> tuple[str, ...]:
    kind = graph.bottleneck.kind
    if kind == "variational":
        return ("reconstruction", "mu", "logvar")
    if kind == "vector_quantized":
        return ("vq_loss", "reconstruction", "perplexity", "indices")
    return ("reconstruction",)


def _initializers(graph: ModelGraph) -> list[tuple[str, str, str]]:
    out = []
    for n in graph.nodes:
        layer = n.layer
        kinit = getattr(layer, "kernel_initializer", None)
        binit = getattr(layer, "bias_initializer", DEFAULT_BIAS_INIT)
        if kinit is None or (kinit, binit) == (DEFAULT_KERNEL_INIT, DEFAULT_BIAS_INIT):
            continue
        out.append((n.name, kinit, binit))
    return out


def file_view(graph: ModelGraph, spec_label: str, header: str) -> FileView:
    from .pyliteral import model_class_name

    cname = model_class_name(graph.name)
    program: Program = build_program(
        graph,
        torch_ctor,
        part_class=str.capitalize,
        reserved_classes=(cname, "Encoder", "Decoder", "Bottleneck", *HELPERS),
    )
    callees = {c.callee for cls in program.classes for _, c in cls.attrs}
    callees |= {c.callee for inst in program.parts.values() for _, c in inst.attrs}
    helpers = [h for h in HELPERS if h in callees]
    classes = [_class_view(c, graph) for c in program.classes]
    parts = []
    for part in ("encoder", "decoder"):
        inst = program.parts[part]
        if inst.statements:
            parts.append(_part_view(part, inst, graph))
    bott = program.parts["bottleneck"]
    bview = ClassView(
        "Bottleneck",
        f"The {graph.bottleneck.kind.replace('_', '-')} bottleneck.",
        def_lines("__init__", [], "None"),
        attr_lines(bott.attrs),
        [],
        [],
    )
    kind = graph.bottleneck.kind
    if kind != "none":
        parts.insert(1, bview)
    h, w, c = graph.input_shape
    enc = program.parts["encoder"]
    t, nt, _ = graph.counts()
    return FileView(
        header=header,
        description=comment_lines(graph.description),
        spec_name=graph.name,
        class_name=cname,
        helpers=helpers,
        classes=classes,
        parts=parts,
        bottleneck=kind,
        input_shape_nchw=(c, h, w),
        outputs=[(name, shape_comment(graph.shape(ref))) for name, ref in graph.outputs],
        output_names=_forward_names(graph),
        initializers=_initializers(graph),
        counts=(t, nt),
        encoder_extra=enc.outputs[1:],
        model_doc=spec_label,
        uses_functional=any(
            h in helpers for h in HELPERS if h not in ("ChannelLayerNorm", "VaeSampling")
        ),
        bottleneck_text="no bottleneck"
        if kind == "none"
        else f"{kind.replace('_', '-')} bottleneck",
        bottleneck_methods=bottleneck_methods(graph),
    )


# ----------------------------------------------------------------------------------------------
# The bottleneck's methods, by kind


@dataclass
class Method:
    name: str
    params: list[str]
    lines: list[str]
    returns: str


def _stmt(graph: ModelGraph, local: str, targets: list[str], inputs: list[str]) -> str:
    node = graph.node(f"bottleneck.{local}")
    op = "layer" if node.kind not in ("flatten", "reshape") else node.kind
    s = Statement(tuple(targets), op, local, tuple(inputs), node, node.shape, node.name)
    return render_statement(s, graph) + f"  # {shape_comment(node.shape)}"


def bottleneck_methods(graph: ModelGraph) -> list[Method]:
    kind = graph.bottleneck.kind
    has = {n.local_name for n in graph.part_nodes("bottleneck")}
    if kind == "vector_quantized":
        return [
            Method(
                "forward",
                ["x"],
                [
                    _stmt(graph, "pre_quant", ["x"], ["x"]),
                    _stmt(
                        graph, "quantizer", ["quantized", "loss", "perplexity", "indices"], ["x"]
                    ),
                ],
                "quantized, loss, perplexity, indices",
            )
        ]
    if kind == "none":
        return []
    decode = [_stmt(graph, "expand", ["x"], ["z"])]
    if "expand_activation" in has:
        decode.append(_stmt(graph, "expand_activation", ["x"], ["x"]))
    decode.append(_stmt(graph, "reshape", ["x"], ["x"]))
    flat = _stmt(graph, "flatten", ["x"], ["x"])
    if kind == "dense":
        encode = [flat, _stmt(graph, "code", ["x"], ["x"])]
        if "code_activation" in has:
            encode.append(_stmt(graph, "code_activation", ["x"], ["x"]))
        return [Method("encode", ["x"], encode, "x"), Method("decode", ["z"], decode, "x")]
    encode = [
        flat,
        _stmt(graph, "mu", ["mu"], ["x"]),
        _stmt(graph, "logvar", ["logvar"], ["x"]),
    ]
    return [
        Method("encode", ["x"], encode, "mu, logvar"),
        Method(
            "reparameterize",
            ["mu", "logvar"],
            [_stmt(graph, "sample", ["z"], ["mu", "logvar"])],
            "z",
        ),
        Method("decode", ["z"], decode, "x"),
    ]


# ----------------------------------------------------------------------------------------------
# The model class's methods, by bottleneck kind


def model_methods(graph: ModelGraph, encoder_extra: list[str]) -> tuple[list[str], str]:
    """Lines of the model's encode/decode/forward methods, and what forward returns."""
    kind = graph.bottleneck.kind
    feats = bool(encoder_extra)
    enc_call = "h, *features = self.encoder(x)" if feats else "h = self.encoder(x)"
    dec_args = "z, *features" if feats else "z"
    star = ", *features" if feats else ""
    lines: list[str] = []

    def method(signature: str, body: list[str], doc: str) -> None:
        lines.append("")
        lines.append(f"    def {signature}:")
        lines.append(f'        """{doc}"""')
        lines.extend(f"        {b}" for b in body)

    if kind == "none":
        method(
            "encode(self, x: torch.Tensor)",
            ["return self.encoder(x)"],
            "The code" + (" and the encoder features the decoder joins." if feats else "."),
        )
        method(
            f"decode(self, {dec_args})",
            [f"return self.decoder(z{star})"],
            "The reconstruction from a code.",
        )
        method(
            "forward(self, x: torch.Tensor)",
            [enc_call, f"return self.decoder(h{star})"],
            "The reconstruction.",
        )
        return lines, "the reconstruction"
    if kind == "dense":
        method(
            "encode(self, x: torch.Tensor)",
            ["return self.bottleneck.encode(self.encoder(x)" + (")[0]" if feats else ")")],
            "The code.",
        )
        method(
            f"decode(self, {dec_args})",
            [f"return self.decoder(self.bottleneck.decode(z){star})"],
            "The reconstruction from a code.",
        )
        method(
            "forward(self, x: torch.Tensor)",
            [
                enc_call,
                "z = self.bottleneck.encode(h)",
                f"return self.decoder(self.bottleneck.decode(z){star})",
            ],
            "The reconstruction.",
        )
        return lines, "the reconstruction"
    if kind == "variational":
        method(
            "encode(self, x: torch.Tensor)",
            ["return self.bottleneck.encode(self.encoder(x)" + (")[0]" if feats else ")")],
            "The posterior's mean and log-variance.",
        )
        method(
            f"decode(self, {dec_args})",
            [f"return self.decoder(self.bottleneck.decode(z){star})"],
            "The reconstruction from a latent sample.",
        )
        method(
            "forward(self, x: torch.Tensor)",
            [
                enc_call,
                "mu, logvar = self.bottleneck.encode(h)",
                "z = self.bottleneck.reparameterize(mu, logvar)",
                f"return self.decoder(self.bottleneck.decode(z){star}), mu, logvar",
            ],
            "(reconstruction, mu, logvar); z is sampled in training mode, z = mu in eval.",
        )
        return lines, "(reconstruction, mu, logvar)"
    method(
        "encode(self, x: torch.Tensor)",
        ["return self.bottleneck(self.encoder(x)" + (")[0]" if feats else ")")],
        "(quantized, vq_loss, perplexity, indices).",
    )
    method(
        f"decode(self, {dec_args})",
        [f"return self.decoder(z{star})"],
        "The reconstruction from quantized codes.",
    )
    method(
        "forward(self, x: torch.Tensor)",
        [
            enc_call,
            "quantized, loss, perplexity, indices = self.bottleneck(h)",
            f"return loss, self.decoder(quantized{star}), perplexity, indices",
        ],
        "(vq_loss, reconstruction, perplexity, indices).",
    )
    return lines, "(vq_loss, reconstruction, perplexity, indices)"


def render_torch(graph: ModelGraph, spec_label: str, header: str) -> str:
    from ..render import render

    view = file_view(graph, spec_label, header)
    methods, forward_doc = model_methods(graph, view.encoder_extra)
    return render(
        "torch/model.py.j2",
        v=view,
        model_methods=methods,
        forward_doc=forward_doc,
    )
