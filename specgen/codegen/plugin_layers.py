"""Plugin layers in generated model files: their imports, names and constructors.

Each plugin kind a graph uses is imported from the module its plugin names
(``from example_layers.torch_layers import LearnedScale``) and built with the keyword arguments
its config gives (:func:`specgen.plugins.constructor_arguments`), printed as literals. The
imported names are taken in the module's namespace before any class is named, in both files
alike, so a class of the spec never hides them and the PyTorch and Keras files name their
classes the same; a name already bound (``Encoder``, ``nn``, a helper) is imported under an
alias (``Encoder2``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..graph import ModelGraph, Node
from ..plugins import FRAMEWORKS, PluginInfo, constructor_arguments, is_plugin, plugin_of
from .namespace import Namespace
from .program import Arg, Ctor

#: Width of generated code (ruff format's default).
LINE_WIDTH = 88

#: ``from MODULE import NAME as ALIAS`` (ALIAS None when there is none).
Import = tuple[str, str, str | None]


class PluginLayers:
    """The plugin kinds of one graph and the names their implementations get in one file."""

    def __init__(self, graph: ModelGraph, module: Namespace):
        kinds = sorted({n.kind for n in graph.nodes if is_plugin(n.layer)})
        self.plugins: list[PluginInfo] = []
        for kind in kinds:
            info = plugin_of(kind)
            if info is None:  # pragma: no cover - a plugin node's kind is registered
                raise RuntimeError(f"layer kind {kind!r} is no loaded plugin")
            self.plugins.append(info)
        #: (framework, "module:Class") -> the name the file binds it to
        self.names: dict[tuple[str, str], str] = {}
        # the n-th module providing a class name gets the n-th name handed out for it, in
        # either framework, so that both files reserve the same names
        handed: dict[str, list[str]] = {}
        providers: dict[tuple[str, str], list[str]] = {}
        for info in self.plugins:
            for framework in FRAMEWORKS:
                ref = info.config.implementation(framework)
                if (framework, ref) in self.names:
                    continue
                source, _, name = ref.partition(":")
                modules = providers.setdefault((framework, name), [])
                modules.append(source)
                names = handed.setdefault(name, [])
                while len(names) < len(modules):
                    names.append(module.fresh(name))
                self.names[(framework, ref)] = names[len(modules) - 1]

    def ctor(
        self, framework: str, other: Callable[[Node, ModelGraph], Ctor]
    ) -> Callable[[Node, ModelGraph], Ctor]:
        """The target's constructor function, with plugin nodes built from their plugin."""

        def build(node: Node, graph: ModelGraph) -> Ctor:
            if not is_plugin(node.layer):
                return other(node, graph)
            ref = node.layer.implementation(framework)
            args = constructor_arguments(node, graph, framework)
            return Ctor(self.names[(framework, ref)], tuple(Arg(k, v) for k, v in args.items()))

        return build

    def imports(self, framework: str) -> list[Import]:
        """What the ``framework`` file imports for its plugin layers."""
        out: list[Import] = []
        for (fw, ref), bound in self.names.items():
            if fw == framework:
                source, _, name = ref.partition(":")
                out.append((source, name, None if bound == name else bound))
        return out

    def requirements(self, framework: str) -> list[str]:
        """Docstring lines naming each plugin (distribution and version) the file needs."""
        if not self.plugins:
            return []
        return [
            "It needs these plugin layers installed:",
            "",
            *(f"    {info.requirement(framework)}" for info in self.plugins),
        ]


# ----------------------------------------------------------------------------------------------
# The third-party ``from`` imports of a generated file, as the linter's import sorter lays them
# out: by module (letter case ignored, numbers by value); per module one statement of the plain
# names, then one per aliased name; names ordered constants, classes, then the rest.


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]


def _member_key(name: str) -> tuple:
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return (kind, _natural(name), name)


def from_imports(fixed: Sequence[Import], plugins: Sequence[Import]) -> list[str]:
    """The lines of the framework's own ``fixed`` imports and the plugin layers' together."""
    plain: dict[str, set[str]] = {}
    aliased: dict[str, set[tuple[str, str]]] = {}
    for module, name, alias in [*fixed, *plugins]:
        if alias is None:
            plain.setdefault(module, set()).add(name)
        else:
            aliased.setdefault(module, set()).add((name, alias))
    statements: list[tuple[tuple, str, list[str]]] = []
    for module, names in plain.items():
        ordered = sorted(names, key=_member_key)
        statements.append(((_natural(module), 0, _member_key(ordered[0])), module, ordered))
    for module, pairs in aliased.items():
        for name, alias in pairs:
            key = (_natural(module), 1, _member_key(name), alias)
            statements.append((key, module, [f"{name} as {alias}"]))
    lines: list[str] = []
    for _, module, names in sorted(statements, key=lambda s: s[0]):
        line = f"from {module} import {', '.join(names)}"
        if len(line) <= LINE_WIDTH:
            lines.append(line)
        else:  # the formatter's layout: one name a line
            lines += [f"from {module} import (", *(f"    {n}," for n in names), ")"]
    return lines
