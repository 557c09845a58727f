"""Summaries of a graph: the per-node table and the JSON that other tools read.

The JSON shape is a contract::

    {"name": str, "input_shape": [*spatial, C],
     "parameters": {"trainable": int, "non_trainable": int, "total": int},
     "macs": int,
     "parts": {"<part>": {"parameters": {...}, "output_shape": [...]}},
     "outputs": {"<output>": [...]},
     "memory": {"parameter_bytes": int, "activation_bytes_per_sample": int}}

``memory`` is the float32 estimate of :mod:`specgen.memory`.
"""

from __future__ import annotations

from typing import Any

from .graph import PARTS, ModelGraph
from .layers import fmt_shape
from .layers.base import fmt_window
from .memory import estimate, fmt_bytes


def _counts(trainable: int, non_trainable: int) -> dict[str, int]:
    return {
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": trainable + non_trainable,
    }


def summary_dict(graph: ModelGraph) -> dict[str, Any]:
    trainable, non_trainable, macs = graph.counts()
    memory = estimate(graph)
    parts = {}
    for name in PARTS:
        t, nt, _ = graph.counts(name)
        parts[name] = {
            "parameters": _counts(t, nt),
            "output_shape": list(graph.shape(graph.part(name).output)),
        }
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "parameters": _counts(trainable, non_trainable),
        "macs": macs,
        "parts": parts,
        "outputs": {name: list(graph.shape(ref)) for name, ref in graph.outputs},
        "memory": {
            "parameter_bytes": memory.parameter_bytes,
            "activation_bytes_per_sample": memory.activation_bytes_per_sample,
        },
    }


def _shape(shape) -> str:
    return fmt_shape(tuple(shape))


def _op(node) -> str:
    layer = node.layer
    kind = layer.ranked_kind
    if layer.neutral_kind in ("conv", "conv_transpose"):
        s = layer.strides
        ss = "" if set(s) == {1} else f"/{s[0]}" if len(set(s)) == 1 else f"/{fmt_window(s)}"
        fixed = getattr(layer, "constant_kernel", None)
        constant = "" if fixed is None else f", constant kernel {fixed:g}"
        return f"{kind} {fmt_window(layer.kernel_size)}{ss}, {layer.filters}{constant}"
    if kind == "dense":
        return f"dense {layer.units}"
    if kind == "leaky_relu":
        return f"leaky_relu {layer.negative_slope:g}"
    if kind == "vector_quantizer":
        return f"vector_quantizer {layer.num_embeddings}"
    if kind == "scale":
        return f"scale {layer.factor:g}"
    return kind


def summary_table(graph: ModelGraph) -> str:
    header = ("node", "op", "output shape", "params", "MACs")
    rows: list[tuple[str, ...]] = []
    lines: list[str] = []
    for part in PARTS:
        nodes = graph.part_nodes(part)
        rows = [
            (n.name, _op(n), _shape(n.shape), f"{n.trainable + n.non_trainable:,}", f"{n.macs:,}")
            for n in nodes
        ]
        t, nt, macs = graph.counts(part)
        rows.append(
            (
                f"{part} total",
                "",
                _shape(graph.shape(graph.part(part).output)),
                f"{t + nt:,}",
                f"{macs:,}",
            )
        )
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

        def line(r, widths=widths):
            cells = zip(r, widths, strict=True)
            return "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(cells)
            ).rstrip()

        lines.append(line(header))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(line(r) for r in rows[:-1])
        lines.append("  ".join("-" * w for w in widths))
        lines.append(line(rows[-1]))
        lines.append("")
    t, nt, macs = graph.counts()
    lines.append(f"model {graph.name}: input {_shape(graph.input_shape)}")
    for name, ref in graph.outputs:
        role = graph.role(name)
        named = name if role == name else f"{name} ({role})"
        lines.append(f"  output {named}: {_shape(graph.shape(ref))}")
    lines.append(f"  trainable parameters:     {t:,}")
    lines.append(f"  non-trainable parameters: {nt:,}")
    lines.append(f"  total parameters:         {t + nt:,}")
    lines.append(f"  multiply-accumulates:     {macs:,}")
    memory = estimate(graph)
    lines.append(
        f"  memory (float32):         {fmt_bytes(memory.parameter_bytes)} parameters + "
        f"{fmt_bytes(memory.activation_bytes_per_sample)} activations per sample"
    )
    return "\n".join(lines) + "\n"
