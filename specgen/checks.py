"""Whole-graph checks, and the root cause of resolution errors.

Per-node checks (shapes, arity, fields) happen while the graph is expanded. What remains needs the
whole graph: every node's output used, the graph acyclic, the reconstruction shaped like the input
(unless the spec says the output does not reconstruct the input).
When shapes fail to meet, :func:`explain_resolution` looks for the usual root cause — an input size
the encoder's strides do not divide — and reports that instead of its consequences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import networkx as nx

from .errors import SpecError
from .graph import INPUT, ModelGraph, Node
from .layers import Shape, fmt_shape
from .layers.base import AXIS_NAMES

#: The (rank-neutral) kinds whose strides shrink the resolution.
_STRIDED = ("conv", "max_pool", "avg_pool")


def check_graph(graph: ModelGraph) -> list[SpecError]:
    problems: list[SpecError] = []
    g = graph.nx
    if not nx.is_directed_acyclic_graph(g):  # pragma: no cover - prevented by construction
        cycle = [u for u, _, _ in nx.find_cycle(g)]
        problems.append(SpecError("the graph has a cycle: " + " -> ".join(cycle)))
    used = {(r.node, r.port) for n in graph.nodes for r in n.inputs}
    used |= {(r.node, r.port) for _, r in graph.outputs}
    for n in graph.nodes:
        if (n.name, 0) not in used:
            problems.append(
                SpecError(
                    f"'{n.name}' is computed but never used",
                    n.origin,
                    hint="feed it to a later layer with 'inputs', or remove it",
                )
            )
    problems += _unlossed_samples(graph)
    recon = graph.shape(graph.output("reconstruction"))
    if not graph.part_nodes("decoder"):
        problems.append(
            SpecError(
                "the decoder has no layers",
                ("decoder",),
                hint="an autoencoder's decoder maps the code back to the input's shape",
            )
        )
    elif graph.reconstructs and recon != graph.input_shape:
        mismatch = (
            f"the reconstruction {_fmt(recon)} differ from the input {_fmt(graph.input_shape)}"
        )
        root = _resolution_error(graph.input_shape, graph.nodes)
        if root is not None:
            root = SpecError(root.message, root.path, root.hint, notes=(f"which makes {mismatch}",))
        problems.append(
            root
            or SpecError(
                f"the reconstruction has shape {_fmt(recon)} but the input has shape "
                f"{_fmt(graph.input_shape)}",
                ("decoder",),
                hint="the decoder must undo the encoder's resolution changes and end with as many "
                "channels as the input, or set 'output: {reconstructs: false}' "
                "if the output is not a reconstruction",
            )
        )
    return problems


def _unlossed_samples(graph: ModelGraph) -> list[SpecError]:
    """Sampling nodes whose KL term the training loss would not see: the loss takes it from the
    model outputs with the roles ``mu`` and ``logvar``, which the spec must declare."""
    mu, logvar = graph.with_role("mu"), graph.with_role("logvar")
    declared = (mu[0][1], logvar[0][1]) if mu and logvar else None
    return [
        SpecError(
            f"'{n.name}' samples a latent whose mu and logvar aren't the model's outputs with "
            "the roles 'mu' and 'logvar', so the training loss would have no KL term for it and "
            "training.beta would be ignored",
            n.origin,
            hint="declare them: outputs: [{name: mu, from: ...}, {name: logvar, from: ...}] "
            "(or sample with bottleneck kind variational or diagonal_gaussian)",
        )
        for n in graph.nodes
        if n.kind == "vae_sampling" and n.inputs != declared
    ]


def explain_resolution(
    input_shape: Shape | None, nodes: Iterable[Node], errors: list[SpecError]
) -> list[SpecError]:
    """Replace shape errors caused by an input size the encoder cannot divide by that cause.

    ``nodes`` are those expanded so far (a node's shapes may be unknown after an error)."""
    shape_errors = [
        e for e in errors if "cannot add" in e.message or "cannot concatenate" in e.message
    ]
    if not shape_errors:
        return errors
    root = _resolution_error(input_shape, nodes)
    if root is None:
        return errors
    consequences = tuple(f"which makes this fail: {e.message}" for e in shape_errors[:3])
    rest = [e for e in errors if e not in shape_errors]
    return [SpecError(root.message, root.path, root.hint, notes=consequences)] + rest


def _resolution_error(shape: Shape | None, nodes: Iterable[Node]) -> SpecError | None:
    """'250 is not divisible by 16 (4 stride-2 levels in encoder); ...' or None."""
    if shape is None:
        return None
    g = nx.DiGraph()
    strides: dict[str, tuple[int, ...]] = {}
    for d in nodes:
        if d.part != "encoder" or d.role == "skip":
            continue
        for r in d.inputs:
            g.add_edge(r.node, d.name)
        if d.layer.neutral_kind in _STRIDED:
            s = tuple(d.layer.strides)
            if set(s) != {1}:
                strides[d.name] = s
    if INPUT not in g:
        return None
    # the main path: the longest chain of layers from the input (skips excluded)
    try:
        path = nx.dag_longest_path(g)
    except nx.NetworkXUnfeasible:  # pragma: no cover
        return None
    if not path or path[0] != INPUT:
        return None
    on_path = [v for v in path if v in strides]
    if not on_path:
        return None
    messages = []
    spatial = shape[:-1]
    for axis, label in enumerate(AXIS_NAMES.get(len(spatial), ())):
        factor = math.prod(strides[v][axis] for v in on_path)
        size = shape[axis]
        if size % factor:
            messages.append((label, size, factor, axis))
    if not messages:
        return None
    label, size, factor, axis = messages[0]
    counts: dict[int, list[str]] = {}
    for v in on_path:
        counts.setdefault(strides[v][axis], []).append(v)
    pieces = []
    for stride, names in sorted(counts.items()):
        # strided layers each inside their own top-level group of the encoder are "levels"
        levels = {n.split(".")[1] for n in names if n.count(".") >= 2}
        unit = "levels" if len(levels) == len(names) else "layers"
        if len(names) == 1:
            unit = unit[:-1]
        pieces.append(f"{len(names)} stride-{stride} {unit}")
    lower = size // factor * factor
    options = [str(v) for v in (lower, lower + factor) if v >= factor]
    sizes = "nearest valid sizes " if len(options) > 1 else "nearest valid size "
    every = len(messages) == len(spatial) and all(m[1] == size for m in messages)
    subject = f"{size}" if every or len(set(spatial)) == 1 else f"input {label} {size}"
    message = (
        f"{subject} is not divisible by {factor} ({' and '.join(pieces)} in encoder); "
        f"{sizes}{' and '.join(options)}"
    )
    hint = "change the input size, or the number of levels/strides"
    return SpecError(message, ("input", "shape"), hint=hint)


def _fmt(shape) -> str:
    return fmt_shape(shape)
