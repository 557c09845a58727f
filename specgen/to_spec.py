"""Graph -> spec: the fully expanded spec of a graph.

The expanded spec has no parameters, loops, block uses, conditions or expressions left: every
layer is written out with its full configuration inside the groups the graph has, skip paths are
listed one by one with their merge nodes named, and ``inputs`` appear only where a layer does not
take the previous item's output. Expanding it again gives the same graph (tested).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .expand.outputs import ROLES
from .graph import INPUT, ModelGraph, Node, TensorRef


class _Flow(dict):
    """A mapping written on one line in YAML (layer items)."""


class _FlowList(list):
    """A sequence written on one line in YAML (shapes)."""


class _Dumper(yaml.SafeDumper):
    pass


def _flow_representer(dumper: yaml.SafeDumper, data: _Flow):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_Dumper.add_representer(_Flow, _flow_representer)
_Dumper.add_representer(
    _FlowList,
    lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True),
)


def _int_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _plain(value: Any) -> Any:
    """Tuples to lists, and ``(k, k)`` pairs to ``k``; ``((top, bottom), (left, right))`` sides
    become ``[v, h]`` only when each axis has the same amount on both sides (a half-compacted
    ``[[0, 2], 1]`` is no form the loader reads)."""
    if isinstance(value, tuple):
        if _int_pair(value) and value[0] == value[1]:
            return value[0]
        if len(value) == 2 and all(_int_pair(v) for v in value):
            if any(v[0] != v[1] for v in value):
                return [list(v) for v in value]
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _per_axis(value: Any) -> Any:
    """A per-axis option as a spec writes it: ``(k, k, k)`` as ``k``, and sides ``((b, a), ...)``
    as one amount per axis when every axis pads both sides alike, else every pair."""
    if not isinstance(value, tuple) or not value:
        return value
    if all(_is_int(v) for v in value):
        return value[0] if len(set(value)) == 1 else list(value)
    if all(isinstance(v, tuple) and len(v) == 2 for v in value):
        if all(b == a for b, a in value):
            return [b for b, _ in value]
        return [list(v) for v in value]
    return value


def _listed(value: Any) -> Any:
    """Tuples as lists, nothing compacted (a target shape ``(4, 4)`` stays ``[4, 4]``)."""
    if isinstance(value, (tuple, list)):
        return [_listed(v) for v in value]
    return value


def layer_fields(node: Node) -> dict[str, Any]:
    """The non-default fields of a node's layer config, ready to print: per-axis options as
    compact as the loader reads them, other values as they are."""
    layer = node.layer
    per_axis = layer.per_axis_fields()
    data = layer.model_dump(exclude={"kind"})
    return {
        k: _per_axis(v) if k in per_axis else _listed(v)
        for k, v in data.items()
        if not layer.is_default(k)
    }


class _Emitter:
    def __init__(self, graph: ModelGraph):
        self.g = graph
        self.order: dict[str, tuple[int, int]] = {}
        self.children: dict[str, list[str]] = {}
        self.kind: dict[str, str] = {}
        excluded = {n.name for n in graph.nodes if n.role in ("merge", "bottleneck")}
        if graph.output_activation != "linear":
            excluded.add(graph.part("decoder").output.node)
        # groups precede the nodes created after them; a group and a node with the same index:
        # the group came first.
        node_index = {n.name: i for i, n in enumerate(graph.nodes)}
        for i, n in enumerate(graph.nodes):
            if n.name in excluded:
                continue
            self.kind[n.name] = "node"
            self.order[n.name] = (i, 1)
        for grp in graph.groups:
            self.kind[grp.name] = "group"
            self.order[grp.name] = (grp.index, 0)
        for name in sorted(self.order, key=lambda v: self.order[v]):
            parent = name.rsplit(".", 1)[0]
            self.children.setdefault(parent, []).append(name)
        self.groups = {grp.name: grp for grp in graph.groups}
        self.skip_groups = {s.name for s in graph.skips}
        # the tensor a name stands for once skips have joined it
        self.joined: dict[str, TensorRef] = {}
        self.merge_target: dict[str, str] = {}
        merges = sorted(graph.skips, key=lambda s: node_index[s.merge])
        for s in merges:
            self.joined[s.target] = TensorRef(s.merge)
            self.merge_target[s.merge] = s.target

    def ref_name(
        self,
        ref: TensorRef,
        scope_input: TensorRef | None,
        siblings: dict[TensorRef, str] | None = None,
    ) -> str:
        if scope_input is not None and ref == scope_input:
            return INPUT
        if siblings and ref in siblings:
            return siblings[ref]
        if siblings and ref.port and TensorRef(ref.node) in siblings:
            return f"{siblings[TensorRef(ref.node)]}:{ref.port}"
        if ref.node in self.merge_target:
            return self.merge_target[ref.node]
        return str(ref)

    def scope(self, prefix: str, scope_input: TensorRef | None) -> tuple[list, TensorRef | None]:
        items: list = []
        current = scope_input
        siblings: dict[TensorRef, str] = {}
        for name in self.children.get(prefix, []):
            local = name.rsplit(".", 1)[-1]
            if self.kind[name] == "node":
                node = self.g.node(name)
                item = _Flow(name=local, kind=node.kind)
                if list(node.inputs) != [current]:
                    item["inputs"] = [self.ref_name(r, scope_input, siblings) for r in node.inputs]
                item.update(layer_fields(node))
                out: TensorRef | None = TensorRef(name)
            else:
                grp = self.groups[name]
                if name in self.skip_groups:
                    continue
                sub, out = self.scope(name, current)
                item = {"name": local}
                if grp.block:
                    item["origin"] = grp.block
                item["layers"] = sub
            out = self.joined.get(name, out)
            if out is not None:
                siblings.setdefault(out, local)
            items.append(item)
            current = out
        return items, current

    def skips(self) -> list:
        out = []
        for s in self.g.skips:
            part, local = s.name.split(".", 1)
            layers, _ = self.scope(s.name, s.source)
            out.append(
                {
                    "name": local,
                    "from": self.ref_name(s.source, None),
                    "to": s.target,
                    "merge": s.merge_kind,
                    "merge_name": s.merge.split(".", 1)[1],
                    "layers": layers,
                }
            )
        return out


def graph_to_spec(graph: ModelGraph) -> dict[str, Any]:
    em = _Emitter(graph)
    encoder, _ = em.scope("encoder", TensorRef(INPUT))
    decoder, _ = em.scope("decoder", graph.part("decoder").input)
    doc: dict[str, Any] = {
        "specgen": 1,
        "name": graph.name,
    }
    if graph.description:
        doc["description"] = graph.description
    doc["input"] = {"shape": _FlowList(graph.input_shape)}
    doc["encoder"] = encoder
    if graph.bottleneck is None:
        doc["bottleneck"], _ = em.scope("bottleneck", graph.part("bottleneck").input)
    else:
        doc["bottleneck"] = {"kind": graph.bottleneck.kind} | _plain(
            graph.bottleneck.model_dump(by_alias=True, exclude_defaults=True, exclude={"kind"})
        )
    doc["decoder"] = decoder
    skips = em.skips()
    if skips:
        doc["skips"] = skips
    outputs = _outputs(graph, em)
    if outputs:
        doc["outputs"] = outputs
    output: dict[str, Any] = {}
    if graph.output_activation != "linear":
        output["activation"] = graph.output_activation
    if not graph.reconstructs:
        output["reconstructs"] = False
    if output:
        doc["output"] = output
    if graph.training is not None:
        doc["training"] = _plain(graph.training.model_dump(by_alias=True))
    return doc


def _outputs(graph: ModelGraph, em: _Emitter) -> list:
    """The top-level ``outputs`` that give the graph's outputs, in order: none when the
    bottleneck's shorthand gives them all; else every output, those of the shorthand (and the
    reconstruction) placed by name, the others declared with their tensors."""
    implied = ["reconstruction"]
    if graph.bottleneck is not None:
        from .library import library, shorthand_block

        block = library().blocks[shorthand_block(graph.bottleneck.kind)]
        names = [d.name for d in block.outputs]
        implied = names if "reconstruction" in names else ["reconstruction", *names]
    names = [name for name, _ in graph.outputs]
    given = names[: len(implied)] == implied  # the others follow: declare them, in order
    out: list = []
    for name, ref in graph.outputs:
        if given and name in implied:
            continue
        if name in implied:
            out.append(_Flow(name=name))
            continue
        entry = _Flow(name=name, **{"from": em.ref_name(ref, None)})
        role = graph.role(name)
        if role != (name if name in ROLES else "extra"):
            entry["role"] = role
        out.append(entry)
    return out


def dump_spec(doc: dict[str, Any], *, json_format: bool = False) -> str:
    if json_format:
        return json.dumps(doc, indent=2) + "\n"
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        width=100,
        allow_unicode=False,
        default_flow_style=False,
    )
