"""Custom layer kinds: plugins that the user installs, so that no spec is stuck for want of a kind.

A plugin defines one or more layer kinds. Each is a :class:`LayerPlugin` subclass: a layer config
like the built-in ones (its pydantic fields are the spec's options; ``infer``, ``count_params``
and ``count_macs`` are its shape, parameter and MAC rules), plus where its two implementations
live and how its fields become their constructor arguments::

    class LearnedScale(LayerPlugin):
        kind: Literal["learned_scale"] = "learned_scale"
        init: Finite = 1.0
        has_weights: ClassVar[bool] = True
        torch_class: ClassVar[str] = "my_layers.torch_layers:LearnedScale"
        keras_class: ClassVar[str] = "my_layers.keras_layers:LearnedScale"

        def infer(self, inputs):
            return [inputs[0]]

        def count_params(self, inputs):
            return inputs[0][-1], 0

        def torch_arguments(self, inputs):
            return {"channels": inputs[0][-1], "init": self.init}

The module holding the configs must import neither framework (specgen reads specs without
them); the implementations are imported only by generated code, ``verify`` and
``convert-weights``. A kind is registered by whoever runs specgen, never by a spec:

- an installed distribution's entry point in the group ``specgen.layers`` (its value a module,
  whose ``LayerPlugin`` subclasses are taken, or ``module:Class``), loaded on first use;
- ``--plugin MODULE`` (or ``MODULE:CLASS``) on the command line, :func:`load_plugins` in Python.

A plugin's kind may not shadow a built-in kind or another plugin's, and follows the kind name
rule (:data:`KIND_NAME`). Every problem of a plugin (it does not import, breaks a rule, or its
code fails) is a :class:`PluginError`: one line that names the plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import keyword
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from .errors import terminal_safe
from .layers import REGISTRY, LayerConfig, Shape, ShapeError, fmt_shape
from .layers.base import (
    Count,
    Epsilon,
    Finite,
    NonNegative,
    Pair,
    Positive,
    Rate,
    StrictBool,
    Window,
    expect_rank,
)

if TYPE_CHECKING:
    from .graph import ModelGraph, Node

#: The entry-point group installed plugins register their layer kinds in.
ENTRY_POINT_GROUP = "specgen.layers"

#: What a layer kind may be called: lowercase ASCII letters, digits and ``_``, starting with a
#: letter, at most 64 characters (as every built-in kind is).
KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: The frameworks a plugin implements its layer in.
FRAMEWORKS = ("torch", "keras")
FRAMEWORK_NAMES = {"torch": "PyTorch", "keras": "Keras"}

#: Keys of a spec's layer item that are not the layer's own fields.
ITEM_KEYS = frozenset({"kind", "name", "inputs", "when"})

#: Said with every "unknown layer kind": where kinds beyond the built-in ones come from.
UNKNOWN_KIND_HINT = (
    "a custom layer kind needs its plugin: installed (an entry point in 'specgen.layers') "
    "or loaded with --plugin MODULE"
)

_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")

#: The kinds specgen itself defines (what was registered before any plugin).
BUILTIN_KINDS = frozenset(REGISTRY)


class PluginError(Exception):
    """A plugin cannot be used: it does not import, breaks a rule, or its own code failed.

    The message is one line that names the plugin; the command line prints it and exits 1."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# ----------------------------------------------------------------------------------------------
# What a plugin defines.


class Weight(NamedTuple):
    """One weight of a plugin layer in both frameworks.

    ``torch`` is its key in the PyTorch module's ``state_dict`` (``"conv.weight"``); ``keras``
    is the attribute path of the variable on the Keras layer (``"conv.kernel"``) or its index in
    ``layer.weights``; ``layout`` says how the PyTorch tensor becomes the Keras one: ``"copy"``
    (the same shape), ``"transpose"`` (a dense kernel, ``(out, in)`` -> ``(in, out)``),
    ``"conv"`` (a convolution kernel, ``(out, in, kh, kw)`` -> ``(kh, kw, in, out)``; a
    transposed convolution's ``(in, out, kh, kw)`` -> ``(kh, kw, out, in)`` alike) or
    ``"flat"`` (a vector in PyTorch that Keras holds with axes of length 1 around it)."""

    torch: str
    keras: str | int
    layout: Literal["copy", "transpose", "conv", "flat"] = "copy"


LAYOUTS = ("copy", "transpose", "conv", "flat")


class LayerPlugin(LayerConfig):
    """Base of a layer kind defined outside specgen (see the module's description).

    Besides what every :class:`~specgen.layers.LayerConfig` declares (``kind``, the fields, the
    rules; ``has_weights``, ``min_inputs``, ``max_inputs`` and ``output_names`` when they differ
    from one weightless input and output), a plugin names its implementations and may override
    the hooks below. Both implementations are called as the built-in layers are: the PyTorch
    module on NCHW tensors, the Keras layer on NHWC ones, one positional argument per input.
    """

    #: ``"package.module:Class"`` of the ``torch.nn.Module`` that computes the layer.
    torch_class: ClassVar[str] = ""
    #: ``"package.module:Class"`` of the ``keras.layers.Layer`` that computes the layer.
    keras_class: ClassVar[str] = ""

    def arguments(self, inputs: list[Shape]) -> dict[str, Any]:
        """Keyword arguments of both constructors for the given input shapes (channels last);
        by default the config's fields, by name."""
        return {name: getattr(self, name) for name in type(self).model_fields if name != "kind"}

    def torch_arguments(self, inputs: list[Shape]) -> dict[str, Any]:
        """Keyword arguments of the PyTorch module; by default :meth:`arguments`."""
        return self.arguments(inputs)

    def keras_arguments(self, inputs: list[Shape]) -> dict[str, Any]:
        """Keyword arguments of the Keras layer; by default :meth:`arguments`."""
        return self.arguments(inputs)

    def weights(self, inputs: list[Shape]) -> list[Weight] | None:
        """How the PyTorch weights map to the Keras ones. ``None`` (the default) pairs them in
        order: the module's ``state_dict`` with the layer's ``weights``, each copied when the
        shapes are equal, and transposed as a convolution or dense kernel when they are so."""
        return None

    @classmethod
    def implementation(cls, framework: str) -> str:
        return cls.torch_class if framework == "torch" else cls.keras_class

    # -- the rules, with the plugin's own failures reported as its own ----------------------

    def output_shapes(self, inputs: Sequence[Shape]) -> list[Shape]:
        with _own_code(self, "shape rule", inputs):
            return super().output_shapes(inputs)

    def param_counts(self, inputs: Sequence[Shape]) -> tuple[int, int]:
        with _own_code(self, "parameter count", inputs):
            trainable, frozen = super().param_counts(inputs)
        if trainable < 0 or frozen < 0:
            raise PluginError(
                f"{describe(self.kind)}: its parameter count is negative for input "
                f"{_shapes(inputs)}: ({trainable}, {frozen})"
            )
        return trainable, frozen

    def macs(self, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> int:
        with _own_code(self, "MAC count", inputs):
            return super().macs(inputs, outputs)


def _shapes(inputs: Sequence[Shape]) -> str:
    return ", ".join(fmt_shape(tuple(s)) for s in inputs)


@contextlib.contextmanager
def _own_code(layer: LayerConfig, what: str, inputs: Sequence[Shape]) -> Iterator[None]:
    """Run a plugin's code: its user errors pass, anything else it raises is its own bug."""
    try:
        yield
    except (ShapeError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(
            f"{describe(layer.kind)}: its {what} failed for input {_shapes(inputs)}: "
            f"{_exception(exc)}"
        ) from exc


def _exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------
# The plugins loaded in this process.


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin kind and where it came from."""

    kind: str
    config: type[LayerPlugin]
    #: the distribution that installs it and its version (None for a module that no installed
    #: distribution provides)
    distribution: str | None
    version: str | None
    #: how it was registered: "entry point 'NAME'" or "--plugin MODULE"
    via: str

    @property
    def module(self) -> str:
        return self.config.__module__

    @property
    def package(self) -> str:
        """What to install: ``example-layers 0.1.0``, or the top-level package and the version it
        states."""
        from .generate import safe_label  # metadata is text from outside: printed inertly

        name = safe_label(self.distribution or _top_package(self.module))
        if not self.version:
            return f"{name} (version unknown)"
        return f"{name} {safe_label(self.version)}"

    def requirement(self, framework: str) -> str:
        """The line generated code gives it: ``learned_scale: example-layers 0.1.0
        (example_layers.torch_layers:LearnedScale)``."""
        return f"{self.kind}: {self.package} ({self.config.implementation(framework)})"


_LOADED: dict[str, PluginInfo] = {}
#: whether the installed plugins were loaded, and the error that stopped it
_STATE: dict[str, Any] = {"installed": False, "error": None}


def describe(kind: str) -> str:
    """``plugin layer 'learned_scale' (example-layers 0.1.0)``, for messages."""
    info = _LOADED.get(kind)
    if info is None:
        return f"plugin layer '{kind}'"
    return f"plugin layer '{kind}' ({info.package})"


def is_plugin(layer: LayerConfig) -> bool:
    return isinstance(layer, LayerPlugin)


def plugin_of(kind: str) -> PluginInfo | None:
    return _LOADED.get(kind)


def loaded() -> list[PluginInfo]:
    """The plugin kinds registered so far, by kind."""
    return [_LOADED[k] for k in sorted(_LOADED)]


def load_installed() -> list[PluginInfo]:
    """Register the kinds of every installed distribution's ``specgen.layers`` entry points,
    once per process (a plugin that fails, fails again on every later call)."""
    if _STATE["error"] is not None:
        raise _STATE["error"]
    if not _STATE["installed"]:
        _STATE["installed"] = True
        found: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault((ep.name, ep.value), ep)

        def order(ep: importlib.metadata.EntryPoint) -> tuple[str, str, str]:
            return (_dist_name(ep) or "", ep.name, ep.value)

        try:
            for ep in sorted(found.values(), key=order):
                _load_entry_point(ep)
        except PluginError as exc:
            _STATE["error"] = exc
            raise
    return [i for i in loaded() if i.via.startswith("entry point")]


def load_plugins(*modules: str) -> list[PluginInfo]:
    """Register the installed plugins, then those of ``modules`` (each ``package.module`` or
    ``package.module:Class``), as ``--plugin`` does; returns the kinds the modules define."""
    load_installed()
    out: list[PluginInfo] = []
    for text in modules:
        out += _load_module(text)
    return out


def _dist_name(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    version = dist.version if dist is not None else None
    label = f"plugin '{ep.name}'" + (f" ({name} {version})" if name else "")
    via = f"entry point '{ep.name}'"
    try:
        with _quiet_import():
            obj = ep.load()
    except Exception as exc:
        raise PluginError(
            f"cannot load {label}, entry point '{ep.name} = {ep.value}' in group "
            f"'{ENTRY_POINT_GROUP}': {_exception(exc)}"
        ) from exc
    _register_all(_configs(obj, label, ep.value), label, name, version, via)


def _load_module(text: str) -> list[PluginInfo]:
    label = f"plugin '{text}' (--plugin)"
    module_name, _, attr = text.partition(":")
    folder, _, file = text.replace("\\", "/").rpartition("/")
    stem, _, suffix = file.rpartition(".")
    if suffix.lower() in ("py", "pyc") and stem:  # importing 'layers.py' would run layers.py
        raise PluginError(
            f"{label}: a Python file, but --plugin takes a module name: put its folder "
            f"({folder or '.'}) on PYTHONPATH and give --plugin {stem}"
        )
    if suffix.lower() in ("yaml", "yml", "json") and (folder or os.path.isfile(text)):
        raise PluginError(
            f"{label}: a spec file, but --plugin takes the module name of a plugin "
            "(package.module); give spec files as SPEC arguments"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module_name) or (
        attr and not attr.isidentifier()
    ):
        raise PluginError(
            f"{label}: not a module name (give package.module or package.module:Class)"
        )
    try:
        with _quiet_import():
            module = importlib.import_module(module_name)
        obj = getattr(module, attr) if attr else module
    except Exception as exc:
        raise PluginError(f"cannot load {label}: {_exception(exc)}") from exc
    dist, version = _distribution_of(module)
    return _register_all(_configs(obj, label, text), label, dist, version, f"--plugin {text}")


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """Import a plugin with what it prints sent to stderr: specgen's stdout carries its
    results (``expand``, ``schema``, ``summary``), which a plugin must not corrupt."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _distribution_of(module: Any) -> tuple[str | None, str | None]:
    """The installed distribution providing ``module`` and its version; else no distribution,
    and the version the module (or its top-level package) states, if any."""
    top = module.__name__.partition(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if len(names) == 1:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            dist = importlib.metadata.distribution(names[0])
            return dist.metadata["Name"], dist.version
    for candidate in (module, sys.modules.get(top)):
        version = getattr(candidate, "__version__", None)
        if isinstance(version, str) and version.isprintable():
            return None, version
    return None, None


def _top_package(module: str) -> str:
    return module.partition(".")[0]


def _configs(obj: Any, label: str, where: str) -> list[type[LayerPlugin]]:
    """The plugin classes ``obj`` stands for: itself, or those a module defines."""
    if isinstance(obj, type):
        if not issubclass(obj, LayerPlugin):
            raise PluginError(f"{label}: {where} is not a subclass of specgen.plugins.LayerPlugin")
        return [obj]
    if not hasattr(obj, "__name__") or not hasattr(obj, "__dict__"):
        raise PluginError(f"{label}: {where} is neither a module nor a LayerPlugin subclass")
    found = [
        value
        for value in vars(obj).values()
        if isinstance(value, type)
        and issubclass(value, LayerPlugin)
        and value.__module__ == obj.__name__
        and "kind" in value.model_fields
        and isinstance(value.model_fields["kind"].default, str)
    ]
    if not found:
        raise PluginError(
            f"{label}: module '{obj.__name__}' defines no layer kind (no subclass of "
            "specgen.plugins.LayerPlugin with kind: Literal['...'] = '...')"
        )
    return found


def _register_all(
    classes: list[type[LayerPlugin]],
    label: str,
    dist: str | None,
    version: str | None,
    via: str,
) -> list[PluginInfo]:
    """Check every class first, then register them all (a plugin is taken whole or not at
    all); a class already registered is taken once."""
    infos: list[PluginInfo] = []
    for cls in classes:
        kind = check_plugin(cls, label)
        known = _LOADED.get(kind)
        if known is not None and known.config is cls:
            continue
        if known is not None or any(i.kind == kind for i in infos):
            other = known.via + f" ({known.package})" if known else "the same plugin"
            raise PluginError(
                f"{label} defines layer kind '{kind}', which {other} defines already; "
                "load only one of them"
            )
        infos.append(PluginInfo(kind, cls, dist, version, via))
    for info in infos:
        if "short_name" not in vars(info.config):
            info.config.short_name = info.kind  # auto names: learned_scale1, learned_scale2
        REGISTRY[info.kind] = info.config
        _LOADED[info.kind] = info
    return infos


def check_plugin(cls: type[LayerPlugin], label: str) -> str:
    """The kind ``cls`` defines, after checking it against the rules for plugins."""
    from .names import check_identifier

    name = cls.__name__
    field = cls.model_fields.get("kind")
    kind = field.default if field is not None else None
    if not isinstance(kind, str):
        raise PluginError(f"{label}: {name} must declare kind: Literal['...'] = '...'")
    if not KIND_NAME.fullmatch(kind) or "__" in kind:
        raise PluginError(
            f"{label}: {name}'s kind {kind!r} breaks the kind name rule (lowercase ASCII "
            "letters, digits and '_', starting with a letter, at most 64 characters)"
        )
    if kind in BUILTIN_KINDS:
        raise PluginError(
            f"{label} defines layer kind '{kind}', which is built into specgen; a plugin may "
            "not replace a built-in kind: give it another name"
        )
    if cls.infer is LayerConfig.infer:
        raise PluginError(f"{label}: {name} ('{kind}') has no shape rule: define infer()")
    clash = sorted(ITEM_KEYS & (set(cls.model_fields) - {"kind"}))
    if clash:
        raise PluginError(
            f"{label}: {name} ('{kind}') has a field '{clash[0]}', which every layer item "
            "uses already (kind, name, inputs, when); rename it"
        )
    for framework in FRAMEWORKS:
        ref = cls.implementation(framework)
        if not isinstance(ref, str) or not _REFERENCE.fullmatch(ref):
            attr = f"{framework}_class"
            raise PluginError(
                f"{label}: {name} ('{kind}') must name its {FRAMEWORK_NAMES[framework]} "
                f"implementation as {attr} = 'package.module:Class', got {ref!r}"
            )
    stem = cls.__dict__.get("short_name", kind)
    if not isinstance(stem, str) or check_identifier(f"{stem}1") is not None:
        raise PluginError(f"{label}: {name} ('{kind}') has short_name {stem!r}, not a name stem")
    if not (isinstance(cls.min_inputs, int) and cls.min_inputs >= 1):
        raise PluginError(f"{label}: {name} ('{kind}') must take at least one input")
    return kind


# ----------------------------------------------------------------------------------------------
# Implementations: imported by generated code, verify and convert-weights.

_BASES = {"torch": ("torch.nn", "Module"), "keras": ("keras.layers", "Layer")}


def implementation_class(kind: str, framework: str) -> type:
    """The imported implementation of plugin ``kind`` in ``framework``, checked to be a
    ``torch.nn.Module`` or ``keras.layers.Layer`` subclass."""
    info = _LOADED[kind]
    ref = info.config.implementation(framework)
    what = f"{describe(kind)}: its {FRAMEWORK_NAMES[framework]} implementation {ref}"
    module_name, _, attr = ref.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        raise PluginError(f"{what} cannot be imported: {_exception(exc)}") from exc
    base_module, base_name = _BASES[framework]
    base = getattr(importlib.import_module(base_module), base_name)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"{what} is not a subclass of {base_module}.{base_name}")
    return cls


def check_implementations(graph: ModelGraph, framework: str) -> None:
    """Import the ``framework`` implementation of every plugin kind ``graph`` uses, so that a
    missing or wrong one is one clear line before any generated code runs."""
    for kind in sorted({n.kind for n in graph.nodes if is_plugin(n.layer)}):
        implementation_class(kind, framework)


def constructor_arguments(node: Node, graph: ModelGraph, framework: str) -> dict[str, Any]:
    """The keyword arguments the ``framework`` implementation of ``node`` is built with,
    checked to be names and values generated code can print."""
    from .codegen.pyliteral import literal

    layer = node.layer
    shapes = [graph.shape(r) for r in node.inputs]
    hook = f"{framework}_arguments"
    with _own_code(layer, f"{hook}()", shapes):
        args = getattr(layer, hook)(shapes)
    if not isinstance(args, dict):
        raise PluginError(
            f"{describe(layer.kind)}: {hook}() must return a dict, not {type(args).__name__}"
        )
    for key, value in args.items():
        if not (isinstance(key, str) and key.isidentifier()) or key in _KEYWORDS:
            raise PluginError(
                f"{describe(layer.kind)}: {hook}() gives {key!r}, not an argument name"
            )
        try:
            literal(value)
        except (TypeError, ValueError):
            raise PluginError(
                f"{describe(layer.kind)}: {hook}() gives {key}={terminal_safe(repr(value))}, "
                "which generated code cannot write (use bool, int, float, str, None, or tuples "
                "and lists of them)"
            ) from None
    return dict(args)


_KEYWORDS = frozenset({"self", *keyword.kwlist})


# ----------------------------------------------------------------------------------------------
# Weights: how a plugin layer's PyTorch tensors become its Keras variables.

_PROBED: dict[tuple, list[tuple[str, str | int, str]]] = {}


def weight_pairs(node: Node, graph: ModelGraph) -> list[tuple[str, str | int, str]]:
    """``(torch key, keras attribute or index, layout)`` for each weight of a plugin node: the
    plugin's own :meth:`LayerPlugin.weights`, or both implementations built and paired in
    order."""
    layer = node.layer
    if not layer.has_weights:
        return []
    shapes = [graph.shape(r) for r in node.inputs]
    with _own_code(layer, "weights()", shapes):
        declared = layer.weights(shapes)
    if declared is None:
        key = (type(layer), layer, tuple(shapes))
        if key not in _PROBED:
            _PROBED[key] = _paired_in_order(node, graph)
        return list(_PROBED[key])
    out = []
    for w in declared:
        ok = (
            isinstance(w, tuple)
            and len(w) == 3
            and isinstance(w[0], str)
            and isinstance(w[1], (str, int))
            and not isinstance(w[1], bool)
            and w[2] in LAYOUTS
        )
        if not ok:
            raise PluginError(
                f"{describe(layer.kind)}: weights() must return Weight(torch, keras, layout) "
                f"items with a layout among {', '.join(LAYOUTS)}; got {terminal_safe(repr(w))}"
            )
        out.append((w[0], w[1], w[2]))
    return out


def _layout(torch_shape: tuple[int, ...], keras_shape: tuple[int, ...]) -> str | None:
    t, k = tuple(torch_shape), tuple(keras_shape)
    if t == k:
        return "copy"
    if len(t) == 4 and k == (t[2], t[3], t[1], t[0]):
        return "conv"
    if len(t) == 2 and k == (t[1], t[0]):
        return "transpose"
    if len(t) == 1 and [d for d in k if d != 1] == [d for d in t if d != 1]:
        return "flat"
    return None


def _paired_in_order(node: Node, graph: ModelGraph) -> list[tuple[str, str | int, str]]:
    """Build both implementations of ``node`` alone and pair their weights in order."""
    kind = node.kind
    try:
        import keras
        import torch
    except ImportError as exc:
        raise PluginError(
            f"{describe(kind)} pairs its weights by building both implementations, which needs "
            f"PyTorch and Keras ({_exception(exc)}): install 'specgen[all]', or give the plugin "
            "a weights() rule"
        ) from None
    shapes = [graph.shape(r) for r in node.inputs]
    torch_cls = implementation_class(kind, "torch")
    keras_cls = implementation_class(kind, "keras")
    with _own_code(node.layer, "PyTorch implementation", shapes), torch.random.fork_rng(devices=[]):
        module = torch_cls(**constructor_arguments(node, graph, "torch"))
        state = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    state = [(k, s) for k, s in state if not k.endswith("num_batches_tracked")]
    with _own_code(node.layer, "Keras implementation", shapes):
        layer = keras_cls(**constructor_arguments(node, graph, "keras"))
        layer(*(keras.ops.zeros((1, *s)) for s in shapes))
        variables = [(v.name, tuple(v.shape)) for v in layer.weights]
    if len(state) != len(variables):
        raise PluginError(
            f"{describe(kind)}: its PyTorch module has {len(state)} weights and its Keras layer "
            f"{len(variables)}, so they cannot be paired in order: give the plugin a weights() "
            "rule"
        )
    out: list[tuple[str, str | int, str]] = []
    for index, ((key, tshape), (vname, kshape)) in enumerate(zip(state, variables, strict=True)):
        layout = _layout(tshape, kshape)
        if layout is None:
            raise PluginError(
                f"{describe(kind)}: PyTorch weight '{key}' {tshape} and Keras weight {index} "
                f"'{vname}' {kshape} differ in more than a kernel's axis order: give the "
                "plugin a weights() rule"
            )
        out.append((key, index, layout))
    return out


__all__ = [
    "BUILTIN_KINDS",
    "Count",
    "ENTRY_POINT_GROUP",
    "Epsilon",
    "Finite",
    "KIND_NAME",
    "LayerPlugin",
    "NonNegative",
    "Pair",
    "PluginError",
    "PluginInfo",
    "Positive",
    "Rate",
    "Shape",
    "ShapeError",
    "StrictBool",
    "Weight",
    "Window",
    "check_implementations",
    "describe",
    "expect_rank",
    "is_plugin",
    "load_installed",
    "load_plugins",
    "loaded",
    "plugin_of",
    "weight_pairs",
]
