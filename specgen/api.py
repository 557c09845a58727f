"""The pipeline's front half as one call: load -> schema -> parameters -> graph.

``build_graph("specs/resnet_ae.yaml", n_levels=3)`` returns the frozen :class:`ModelGraph` or
raises :class:`SpecErrors` holding every user error found, each located in the spec.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Source, SpecError, SpecErrors, suggest
from .graph import ModelGraph
from .schema import SpecDocument


@dataclass(frozen=True)
class LoadedSpec:
    document: SpecDocument
    source: Source
    data: Any


def load_spec(
    path: str | os.PathLike | None = None, *, text: str | None = None, filename: str | None = None
) -> LoadedSpec:
    """Read and structurally validate a spec file (or ``text``). The layer kinds of installed
    plugins are registered first (:func:`specgen.plugins.load_installed`)."""
    from .load import load_file, load_text
    from .plugins import load_installed
    from .validate import validate_model

    load_installed()

    if text is not None:
        data, source = load_text(text, filename or "<spec>.yaml")
    else:
        data, source = load_file(path)
    try:
        doc = validate_model(SpecDocument, data)
    except SpecErrors as exc:
        raise SpecErrors(exc.errors, source) from None
    return LoadedSpec(doc, source, data)


def build_graph(
    spec: str | os.PathLike | LoadedSpec,
    overrides: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    **kw_overrides: Any,
) -> ModelGraph:
    """Expand a spec (a path or a :class:`LoadedSpec`) with parameter overrides into its graph."""
    from . import params as params_mod
    from .expand import expand

    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    pairs += list(kw_overrides.items())
    # pairs from --set remember their text; the others are Python keyword arguments
    problems = _keyword_problems(loaded, [p for p in pairs if not hasattr(p, "text")])
    if problems:
        raise SpecErrors(problems, loaded.source)
    try:
        values = params_mod.resolve(
            loaded.document.parameters, pairs, spec_name=loaded.document.name
        )
    except SpecErrors as exc:
        raise SpecErrors(exc.errors, loaded.source) from None
    return expand(loaded.document, values, loaded.source)


def _keyword_problems(loaded: LoadedSpec, pairs: Sequence[tuple[str, Any]]) -> list[SpecError]:
    """Keyword arguments that name no parameter of the spec, or give one a value of the wrong
    type: located at the spec's parameters, with the nearest parameter name suggested."""
    from .params import _type_problem

    defaults = loaded.document.parameters
    name_of_spec = loaded.document.name
    problems = []
    for name, value in pairs:
        if name not in defaults:
            listing = ", ".join(sorted(defaults))
            has = f"{name_of_spec} has: {listing}" if defaults else f"{name_of_spec} has none"
            near = suggest(str(name), defaults)
            problems.append(
                SpecError(
                    f"unknown parameter '{name}' given as a keyword argument; {has}",
                    ("parameters",),
                    hint=f"did you mean '{near}'?" if near else None,
                    key=True,
                )
            )
            continue
        problem = _type_problem(defaults[name], value)
        if problem:
            problems.append(
                SpecError(f"keyword argument {name}: {problem}", ("parameters", name), key=True)
            )
    return problems


def port_weights(
    spec: str | os.PathLike | LoadedSpec,
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    overrides: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    *,
    match: str = "names",
    reference: str | None = None,
    reference_kwargs: Mapping[str, Any] | None = None,
    library: str | None = None,
    **kw_overrides: Any,
):
    """Port another library's checkpoint into the spec's generated PyTorch (``output`` ending in
    ``.safetensors``) or Keras (``.weights.h5``) model, by the spec's ``weights_from`` section.

    Returns the :class:`specgen.port.PortReport` (``report.lines()`` says what was done); raises
    :class:`SpecErrors` and writes nothing when any tensor is unmatched or does not fit.
    ``match="order"`` pairs the tensors by order and shape instead of by the spec's names;
    ``reference`` (``"FILE.py:Class"`` or ``"package.module:Class"``, built with
    ``reference_kwargs``) is the source model: it gives the call order and its output is
    compared with the port's (``report.reference_diff``). ``library`` chooses one of the spec's
    ``weights_from`` mappings by its library name; without it, the spec's own names and then
    each mapping for the checkpoint's format are tried in order.
    """
    from pathlib import Path

    from .port import port_file

    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    graph = build_graph(loaded, overrides, **kw_overrides)
    return port_file(
        loaded,
        graph,
        Path(checkpoint),
        Path(output),
        match=match,
        reference=reference,
        reference_kwargs=dict(reference_kwargs or {}),
        library=library,
    )
