"""Notebook API for the PyTorch target.

    import specgen.torch
    model = specgen.torch.build("specs/resnet_ae.yaml", n_levels=3, input_shape=[64, 64, 3])

The model is built from exactly the source ``specgen generate --target torch`` writes, compiled in
memory; nothing is written to disk.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from .api import LoadedSpec, build_graph
from .generate import display_path, header
from .graph import ModelGraph


def _render(spec: str | os.PathLike | LoadedSpec, overrides: dict[str, Any]):
    from .codegen.torch_target import render_torch

    graph: ModelGraph = build_graph(spec, overrides)
    label = spec.source.filename if isinstance(spec, LoadedSpec) else display_path(Path(spec))
    return graph, render_torch(graph, label, header(label))


def source(spec: str | os.PathLike | LoadedSpec, **overrides: Any) -> str:
    """The generated ``torch_model.py`` text for ``spec`` with parameter ``overrides``."""
    return _render(spec, overrides)[1]


def load_module(spec: str | os.PathLike | LoadedSpec, **overrides: Any) -> types.ModuleType:
    """The generated module, compiled from :func:`source` (its classes, ``build_model``, ...)."""
    graph, text = _render(spec, overrides)
    module = types.ModuleType(f"specgen_generated_{graph.name}")
    module.__file__ = f"<specgen {graph.name}/torch_model.py>"
    # the generated file is executed, never text taken from the spec
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


def build(spec: str | os.PathLike | LoadedSpec, **overrides: Any):
    """The ``torch.nn.Module`` for ``spec``, initialized as the spec says."""
    return load_module(spec, **overrides).build_model()
