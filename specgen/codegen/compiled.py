"""Generated files compiled in memory, for the notebook APIs, ``verify`` and weight conversion."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from ..api import LoadedSpec, build_graph
from ..graph import ModelGraph


def spec_label(spec: str | os.PathLike | LoadedSpec) -> str:
    from ..generate import display_path

    return spec.source.filename if isinstance(spec, LoadedSpec) else display_path(Path(spec))


def render(graph: ModelGraph, target: str, label: str) -> str:
    from ..generate import header

    if target == "torch":
        from .torch_target import render_torch

        return render_torch(graph, label, header(label))
    from .keras_target import render_keras

    return render_keras(graph, label, header(label))


def compile_module(graph: ModelGraph, target: str, label: str = "<spec>") -> types.ModuleType:
    """The generated ``<target>_model.py`` of ``graph``, executed as a fresh module."""
    from ..plugins import check_implementations

    check_implementations(graph, target)  # a plugin's missing implementation: one clear line
    text = render(graph, target, label)
    module = types.ModuleType(f"specgen_generated_{graph.name}_{target}")
    module.__file__ = f"<specgen {graph.name}/{target}_model.py>"
    # the generated file is executed, never text taken from the spec
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


def load(spec: str | os.PathLike | LoadedSpec, target: str, overrides: dict[str, Any]):
    graph = build_graph(spec, overrides)
    return graph, compile_module(graph, target, spec_label(spec))


def api(target: str):
    """``source``, ``load_module`` and ``build`` for one target (see specgen.torch/keras)."""

    def source(spec: str | os.PathLike | LoadedSpec, **overrides: Any) -> str:
        """The generated model file's text for ``spec`` with parameter ``overrides``."""
        return render(build_graph(spec, overrides), target, spec_label(spec))

    def load_module(spec: str | os.PathLike | LoadedSpec, **overrides: Any) -> types.ModuleType:
        """The generated module (its classes, ``build_model``, ...), compiled in memory."""
        return load(spec, target, overrides)[1]

    def build(spec: str | os.PathLike | LoadedSpec, **overrides: Any):
        """The model for ``spec``, with the spec's initializers applied."""
        return load_module(spec, **overrides).build_model()

    return source, load_module, build
