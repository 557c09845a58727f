"""The view-model of a generated Python model file, for any framework.

A :class:`Target` says what each node becomes (its constructor), how a statement prints, how a
shape is written in comments and what the framework calls things (``forward`` or ``call``, the
tensor annotation). Everything else — classes, their constructors and forward passes, the
bottleneck's methods by kind, the model's ``encode``/``decode``/``forward`` — is built here the
same way for every target, which is what keeps the PyTorch and Keras files parallel: the same
classes, attributes and statements in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..framework_attributes import FRAMEWORK_ATTRIBUTES
from ..graph import INPUT, ModelGraph, Node, TensorRef
from ..render import templates_dir
from .layout import template_classes
from .namespace import Namespace, camel_case
from .plugin_layers import PluginLayers
from .program import (
    ClassDef,
    Ctor,
    ModuleInstance,
    ParamRef,
    Program,
    Statement,
    build_program,
    sanitize,
)
from .pyformat import LINE_LENGTH, commented, wrap_call
from .pyliteral import comment_lines, literal

#: The classes of the model's parts, by part.
PART_CLASSES = {"encoder": "Encoder", "bottleneck": "Bottleneck", "decoder": "Decoder"}

#: What the generated model files bind at module level besides the classes named after the spec,
#: in either framework: imports, constants and switches, functions, the base class of Keras
#: layers, the parts' classes. Helper classes are added from the templates' ``_helpers`` folders.
#: Classes are named around all of them, so the PyTorch and Keras files name their classes alike.
FILE_NAMES = frozenset(
    {
        # imports
        "annotations",
        "math",
        "torch",
        "nn",
        "F",
        "keras",
        "layers",
        "ops",
        # constants and switches
        "INPUT_SHAPE",
        "TRAINABLE_PARAMETERS",
        "NON_TRAINABLE_PARAMETERS",
        "CHANNELS_LAST",
        "COMPILE",
        "AUTOCAST_DTYPE",
        "JIT_COMPILE",
        "MIXED_PRECISION",
        "INITIALIZERS",
        "_SCALES",
        # functions
        "_fans",
        "_initialize",
        "initialize",
        "build_model",
        "_smoke_test",
        # classes
        "Composite",
        *PART_CLASSES.values(),
    }
)

#: What the methods of generated classes are called besides the frameworks' own.
METHOD_NAMES = frozenset({"encode", "decode", "reparameterize"})


@lru_cache(maxsize=1)
def helper_names() -> frozenset[str]:
    """Every helper class a generated model file may define, in any framework."""
    names: set[str] = set()
    for path in templates_dir().glob("*/_helpers/*.py.j2"):
        names.update(template_classes(path.name.split(".")[0]))
    return frozenset(names)


def file_namespace() -> Namespace:
    """The module scope of a generated model file, before any class is named."""
    return Namespace(FILE_NAMES | helper_names())


class Target:
    """What a framework target supplies; subclasses fill these in."""

    #: method holding the forward pass
    forward: str = "forward"
    #: annotation of tensor parameters, e.g. ": torch.Tensor" (empty for none)
    annotation: str = ""
    #: helper classes the file may define, in the order they are printed
    helpers: tuple[str, ...] = ()
    #: the framework, as plugins name their implementations ("torch", "keras")
    framework: str = ""
    #: parameters the model's forward method takes after its input, e.g. ", training=None"
    model_extra_params: str = ""

    def ctor(self, node: Node, graph: ModelGraph) -> Ctor:  # pragma: no cover - abstract
        raise NotImplementedError

    def statement(self, s: Statement, graph: ModelGraph) -> str:  # pragma: no cover
        raise NotImplementedError

    def shape_comment(self, shape: tuple[int, ...] | None) -> str:  # pragma: no cover
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Printing helpers


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


def call_statement(s: Statement) -> str:
    """``x = self.<attr>(inputs)`` — the same in every framework."""
    return "\n".join(wrap_call(f"{', '.join(s.targets)} = self.{s.attr}", list(s.inputs), indent=8))


# ----------------------------------------------------------------------------------------------
# View-model


@dataclass
class Method:
    name: str
    params: list[str]
    lines: list[str]
    returns: str


@dataclass
class ClassView:
    name: str
    doc: str
    init: list[str]  # the ``def __init__`` line(s)
    attrs: list[str]  # lines of the constructor body
    forward_def: list[str]  # the ``def forward``/``def call`` line(s); empty for containers
    forward: list[str]  # lines of the forward body
    returns: str = "x"
    methods: list[Method] = field(default_factory=list)  # other methods (the bottleneck's)


@dataclass
class FileView:
    header: str
    description: list[str]
    spec_name: str
    class_name: str
    part_classes: dict[str, str]
    helpers: list[str]
    classes: list[ClassView]
    parts: list[ClassView]
    bottleneck: str
    bottleneck_text: str
    model_methods: list[str]
    forward_doc: str
    input_shape: tuple[int, int, int]  # (H, W, C)
    output_names: tuple[str, ...]
    initializers: list[tuple[str, str, str]]
    counts: tuple[int, int]
    model_doc: str
    #: imports of plugin layers' implementations, and docstring lines naming their plugins
    plugin_imports: list[tuple[str, str, str | None]] = field(default_factory=list)
    plugin_requirements: list[str] = field(default_factory=list)


def _return_lines(values: list[str], indent: int = 8) -> list[str]:
    """``return a, b`` as the formatter lays it out."""
    one = f"return {', '.join(values)}"
    if indent + len(one) <= LINE_LENGTH:
        return [one]
    inner = ", ".join(values)
    if indent + 4 + len(inner) <= LINE_LENGTH:
        return ["return (", f"    {inner}", ")"]
    return ["return (", *(f"    {v}," for v in values), ")"]


def forward_names(graph: ModelGraph) -> tuple[str, ...]:
    """What the model's forward pass returns, in order: the model's outputs but the code."""
    return graph.forward_outputs()


#: What the latent is in inference, by the sampling node's ``inference``.
INFERENCE_LATENT = {
    "mean": "z = mu in inference.",
    "sample": "and in inference too.",
    "mean_plus_std": "z = mu + exp(logvar / 2) in inference.",
}

DEFAULT_KERNEL_INIT = "glorot_uniform"
DEFAULT_BIAS_INIT = "zeros"


def initializers(graph: ModelGraph) -> list[tuple[str, str, str]]:
    """(node, kernel initializer, bias initializer) where they differ from the defaults."""
    out = []
    for n in graph.nodes:
        kinit = getattr(n.layer, "kernel_initializer", None)
        binit = getattr(n.layer, "bias_initializer", DEFAULT_BIAS_INIT)
        if kinit is None or (kinit, binit) == (DEFAULT_KERNEL_INIT, DEFAULT_BIAS_INIT):
            continue
        out.append((n.name, kinit, binit))
    return out


class ViewBuilder:
    def __init__(self, target: Target, graph: ModelGraph):
        self.t = target
        self.g = graph

    def tensor(self, name: str) -> str:
        return f"{name}{self.t.annotation}"

    def forward_lines(self, inst: ModuleInstance, comments: bool) -> list[str]:
        lines = []
        for s in inst.statements:
            text = self.t.statement(s, self.g)
            if comments and s.shape is not None:
                text = commented(text, self.t.shape_comment(s.shape))
            lines.extend(text.split("\n"))
        return lines

    def class_view(self, cls: ClassDef) -> ClassView:
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
        forward = self.forward_lines(cls.sample, comments=n == 1)
        ret = self.t.annotation[2:] or None
        fdef = def_lines(self.t.forward, [self.tensor("x")], ret)
        return ClassView(cls.name, doc, init, attrs, fdef, forward, cls.sample.outputs[0])

    def part_view(self, name: str, inst: ModuleInstance) -> ClassView:
        forward = self.forward_lines(inst, comments=True)
        fdef = def_lines(self.t.forward, [self.tensor(p) for p in inst.inputs], None)
        return ClassView(
            PART_CLASSES[name],
            f"The {name}.",
            def_lines("__init__", [], "None"),
            attr_lines(inst.attrs),
            fdef,
            forward,
            ", ".join(inst.outputs),
        )

    # -- the bottleneck's methods, by kind ----------------------------------------------------
    def _stmt(self, local: str, targets: list[str], inputs: list[str]) -> str:
        node = self.g.node(f"bottleneck.{local}")
        op = "layer" if node.kind not in ("flatten", "reshape") else node.kind
        s = Statement(tuple(targets), op, local, tuple(inputs), node, node.shape, node.name)
        return commented(self.t.statement(s, self.g), self.t.shape_comment(node.shape))

    def bottleneck_methods(self) -> list[Method]:
        g = self.g
        kind = g.bottleneck.kind
        has = {n.local_name for n in g.part_nodes("bottleneck")}
        if kind == "vector_quantized":
            outs = ["quantized", "loss", "perplexity", "indices"]
            return [
                Method(
                    self.t.forward,
                    ["x"],
                    [self._stmt("pre_quant", ["x"], ["x"]), self._stmt("quantizer", outs, ["x"])],
                    ", ".join(outs),
                )
            ]
        if kind == "none":
            return []
        if kind == "diagonal_gaussian":
            return [
                Method(
                    "encode",
                    ["x"],
                    [
                        self._stmt("quant_conv", ["x"], ["x"]),
                        self._stmt("posterior", ["mu", "logvar"], ["x"]),
                    ],
                    "mu, logvar",
                ),
                Method(
                    "reparameterize",
                    ["mu", "logvar"],
                    [self._stmt("sample", ["z"], ["mu", "logvar"])],
                    "z",
                ),
                Method("decode", ["z"], [self._stmt("post_quant_conv", ["x"], ["z"])], "x"),
            ]
        decode = [self._stmt("expand", ["x"], ["z"])]
        if "expand_activation" in has:
            decode.append(self._stmt("expand_activation", ["x"], ["x"]))
        decode.append(self._stmt("reshape", ["x"], ["x"]))
        flat = self._stmt("flatten", ["x"], ["x"])
        if kind == "dense":
            encode = [flat, self._stmt("code", ["x"], ["x"])]
            if "code_activation" in has:
                encode.append(self._stmt("code_activation", ["x"], ["x"]))
            return [Method("encode", ["x"], encode, "x"), Method("decode", ["z"], decode, "x")]
        encode = [flat, self._stmt("mu", ["mu"], ["x"]), self._stmt("logvar", ["logvar"], ["x"])]
        return [
            Method("encode", ["x"], encode, "mu, logvar"),
            Method(
                "reparameterize",
                ["mu", "logvar"],
                [self._stmt("sample", ["z"], ["mu", "logvar"])],
                "z",
            ),
            Method("decode", ["z"], decode, "x"),
        ]

    # -- the model's methods ------------------------------------------------------------------
    def model_methods(self, encoder_extra: list[str]) -> tuple[list[str], str]:
        """Lines of the model's encode/decode/forward methods, and what forward returns."""
        kind = self.g.bottleneck.kind
        feats = bool(encoder_extra)
        x = self.tensor("x")
        enc_call = "h, *features = self.encoder(x)" if feats else "h = self.encoder(x)"
        dec_args = "z, *features" if feats else "z"
        star = ", *features" if feats else ""
        first = "[0])" if feats else ")"
        fwd = f"{self.t.forward}(self, {x}{self.t.model_extra_params})"
        lines: list[str] = []

        def method(signature: str, body: list[str], doc: str) -> None:
            lines.append("")
            lines.append(f"    def {signature}:")
            lines.append(f'        """{doc}"""')
            lines.extend(f"        {b}" for b in body)

        if kind == "none":
            method(
                f"encode(self, {x})",
                ["return self.encoder(x)"],
                "The code" + (" and the encoder features the decoder joins." if feats else "."),
            )
            method(
                f"decode(self, {dec_args})",
                [f"return self.decoder(z{star})"],
                "The reconstruction from a code.",
            )
            method(fwd, [enc_call, f"return self.decoder(h{star})"], "The reconstruction.")
            return lines, "the reconstruction"
        if kind == "diagonal_gaussian":
            kind = "variational"  # the same methods, on a spatial latent
        if kind in ("dense", "variational"):
            doc = "The code." if kind == "dense" else "The posterior's mean and log-variance."
            method(
                f"encode(self, {x})", ["return self.bottleneck.encode(self.encoder(x)" + first], doc
            )
            method(
                f"decode(self, {dec_args})",
                [f"return self.decoder(self.bottleneck.decode(z){star})"],
                "The reconstruction from a code."
                if kind == "dense"
                else "The reconstruction from a latent sample.",
            )
        if kind == "dense":
            method(
                fwd,
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
                fwd,
                [
                    enc_call,
                    "mu, logvar = self.bottleneck.encode(h)",
                    "z = self.bottleneck.reparameterize(mu, logvar)",
                    f"return self.decoder(self.bottleneck.decode(z){star}), mu, logvar",
                ],
                "(reconstruction, mu, logvar); z is sampled in training mode, "
                + INFERENCE_LATENT[self.g.node("bottleneck.sample").layer.inference],
            )
            return lines, "(reconstruction, mu, logvar)"
        method(
            f"encode(self, {x})",
            ["return self.bottleneck(self.encoder(x)" + first],
            "(quantized, vq_loss, perplexity, indices).",
        )
        method(
            f"decode(self, {dec_args})",
            [f"return self.decoder(z{star})"],
            "The reconstruction from quantized codes.",
        )
        method(
            fwd,
            [
                enc_call,
                "quantized, loss, perplexity, indices = self.bottleneck(h)",
                f"return loss, self.decoder(quantized{star}), perplexity, indices",
            ],
            "(vq_loss, reconstruction, perplexity, indices).",
        )
        return lines, "(vq_loss, reconstruction, perplexity, indices)"

    def written_model_methods(self, program: Program) -> tuple[list[str], str]:
        """The model's methods when the bottleneck is written as items: ``forward`` calls each
        part with the tensors it reads and returns the outputs the spec declares; ``encode`` and
        ``decode`` where the parts form a plain chain. Returns the lines and what forward
        returns."""
        g = self.g
        names = dict(g.outputs)
        by_ref: dict = {}
        for name, ref in g.outputs:
            by_ref.setdefault(ref, name)
        local = Namespace(["x"])
        var = {TensorRef(INPUT): "x"}
        main = {"encoder": "h", "bottleneck": "z", "decoder": "reconstruction"}
        body: list[str] = []
        chain = True
        # what the forward pass reads again: the parts' inputs and what it returns
        needed = {r for p in g.parts for r in program.parts[p.name].input_refs}
        needed |= {names[n] for n in forward_names(g)}
        for ref, name in by_ref.items():  # the outputs keep their names
            if ref in needed and ref != TensorRef(INPUT):
                var[ref] = local.fresh(name, sep="_")
        for part in g.parts:
            inst = program.parts[part.name]
            if not inst.statements:  # an empty part passes its input through
                var[part.output] = var[part.input]
                continue
            targets = []
            for ref in inst.output_refs:
                if ref not in needed:  # e.g. the code, which encode() returns
                    targets.append("_")
                    continue
                if ref in var:
                    targets.append(var[ref])
                    continue
                if ref == part.output:
                    wanted = main[part.name]
                else:
                    wanted = sanitize(str(ref).replace(":", "_"))
                var[ref] = local.fresh(wanted, sep="_")
                targets.append(var[ref])
            args = [var[r] for r in inst.input_refs]
            chain = chain and len(inst.input_refs) == 1 and inst.input_refs[0] == part.input
            body += wrap_call(f"{', '.join(targets)} = self.{part.name}", args, indent=8)
        returned = [var[names[n]] for n in forward_names(g)]
        body += _return_lines(returned)
        described = ", ".join(forward_names(g))
        doc = f"({described})." if len(returned) > 1 else "The reconstruction."
        x = self.tensor("x")
        lines: list[str] = []

        def method(signature: str, statements: list[str], text: str) -> None:
            lines.extend(["", f"    def {signature}:", f'        """{text}"""'])
            lines.extend(f"        {b}" for b in statements)

        has_bottleneck = bool(program.parts["bottleneck"].statements)
        encoder_single = len(program.parts["encoder"].output_refs) <= 1
        if chain and encoder_single and has_bottleneck:
            method(
                f"encode(self, {x})",
                ["return self.bottleneck(self.encoder(x))"],
                "What the bottleneck returns: the decoder's input, then the outputs it hands on.",
            )
            decoder_args = program.parts["decoder"].input_refs
            if len(decoder_args) == 1 and len(program.parts["bottleneck"].output_refs) == 1:
                method("decode(self, z)", ["return self.decoder(z)"], "The decoder's output.")
        method(f"{self.t.forward}(self, {x}{self.t.model_extra_params})", body, doc)
        return lines, (f"({described})" if len(returned) > 1 else "the reconstruction")

    # -- the file ------------------------------------------------------------------------------
    def file_view(self, spec_label: str, header: str) -> FileView:
        g = self.g
        module = file_namespace()
        plugins = PluginLayers(g, module)  # imported names first: no class may hide them
        cname = module.fresh(camel_case(g.name) or "Model", suffix="Model")
        program: Program = build_program(
            g,
            plugins.ctor(self.t.framework, self.t.ctor),
            module=module,
            attribute_words=FRAMEWORK_ATTRIBUTES | METHOD_NAMES | {self.t.forward},
        )
        callees = {c.callee for cls in program.classes for _, c in cls.attrs}
        callees |= {c.callee for inst in program.parts.values() for _, c in inst.attrs}
        helpers = [h for h in self.t.helpers if h in callees]
        classes = [self.class_view(c) for c in program.classes]
        parts = []
        for part in ("encoder", "decoder"):
            inst = program.parts[part]
            if inst.statements:
                parts.append(self.part_view(part, inst))
        if g.bottleneck is None:  # written as items: a part like the others
            kind = "items" if program.parts["bottleneck"].statements else "none"
            if kind == "items":
                parts.insert(1, self.part_view("bottleneck", program.parts["bottleneck"]))
            methods, forward_doc = self.written_model_methods(program)
            text = "a bottleneck written in the spec" if kind == "items" else "no bottleneck"
        else:
            kind = g.bottleneck.kind
            text = "no bottleneck" if kind == "none" else f"{kind.replace('_', '-')} bottleneck"
        if g.bottleneck is not None and kind != "none":
            parts.insert(
                1,
                ClassView(
                    PART_CLASSES["bottleneck"],
                    f"The {kind.replace('_', '-')} bottleneck.",
                    def_lines("__init__", [], "None"),
                    attr_lines(program.parts["bottleneck"].attrs),
                    [],
                    [],
                    methods=self.bottleneck_methods(),
                ),
            )
        if g.bottleneck is not None:
            methods, forward_doc = self.model_methods(program.parts["encoder"].outputs[1:])
        t, nt, _ = g.counts()
        return FileView(
            header=header,
            description=comment_lines(g.description),
            spec_name=g.name,
            class_name=cname,
            part_classes=dict(PART_CLASSES),
            helpers=helpers,
            classes=classes,
            parts=parts,
            bottleneck=kind,
            bottleneck_text=text,
            model_methods=methods,
            forward_doc=forward_doc,
            input_shape=tuple(g.input_shape),
            output_names=forward_names(g),
            initializers=initializers(g),
            counts=(t, nt),
            model_doc=spec_label,
            plugin_imports=plugins.imports(self.t.framework),
            plugin_requirements=plugins.requirements(self.t.framework),
        )
