"""The expanded model: a frozen graph of primitive layers.

Every node has a stable dotted name (``encoder.level2.block3.conv1``) that later becomes the
attribute path in both generated frameworks and the node id in diagrams. The IR is immutable:
nodes are frozen dataclasses holding frozen layer configs, and :attr:`ModelGraph.nx` is a frozen
networkx view built from them for graph questions (order, reachability, cycles).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx

from .errors import Path
from .layers import LayerConfig, Shape

#: The name of the model's input tensor.
INPUT = "input"
PARTS = ("encoder", "bottleneck", "decoder")


@dataclass(frozen=True, order=True)
class TensorRef:
    """Output ``port`` of node ``node`` (``input`` names the model input)."""

    node: str
    port: int = 0

    def __str__(self) -> str:
        return self.node if self.port == 0 else f"{self.node}:{self.port}"


@dataclass(frozen=True)
class Node:
    name: str
    layer: LayerConfig
    inputs: tuple[TensorRef, ...]
    output_shapes: tuple[Shape, ...]
    trainable: int
    non_trainable: int
    macs: int
    part: str
    #: "layer" for nodes written in the spec, "skip" for a skip path's transform, "merge" for the
    #: add/concat node where skip paths join, "bottleneck" for nodes a bottleneck kind creates.
    role: str = "layer"
    #: The skip path (full group name) a skip/merge node belongs to.
    skip: str | None = None
    #: Key path in the spec document this node was written at.
    origin: Path = ()

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def shape(self) -> Shape:
        return self.output_shapes[0]


@dataclass(frozen=True)
class Group:
    """A named scope: a group, a loop iteration, a block instance or a skip path."""

    name: str
    part: str
    #: The block the group was made from, if any (diagrams collapse repeats of the same block).
    block: str | None = None
    #: The skip path this group is the transform of, if any.
    skip: bool = False
    #: How many nodes existed when the group was opened (orders groups among nodes).
    index: int = 0
    origin: Path = ()

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SkipPath:
    """One skip path: ``source`` through the group ``name`` into the merge node ``merge``."""

    name: str
    source: TensorRef
    target: str
    merge: str
    merge_kind: str
    #: The tensor the transform produces (``source`` itself when there is no transform).
    output: TensorRef
    origin: Path = ()


@dataclass(frozen=True)
class Part:
    name: str
    input: TensorRef
    output: TensorRef


@dataclass(frozen=True)
class ModelGraph:
    name: str
    description: str
    spec_file: str
    input_shape: Shape
    parameters: Mapping[str, Any]
    nodes: tuple[Node, ...]
    groups: tuple[Group, ...]
    skips: tuple[SkipPath, ...]
    parts: tuple[Part, ...]
    #: The model's outputs in order, by name: the reconstruction and those the spec declares.
    outputs: tuple[tuple[str, TensorRef], ...]
    #: The bottleneck's shorthand config (``{kind: ...}`` made of the library's block), or None
    #: for a bottleneck written as items (or with a block of the spec's own).
    bottleneck: Any
    output_activation: str
    training: Any = None
    #: Whether the output reconstructs the input (and so has its shape).
    reconstructs: bool = True
    #: The role of each output, in the order of :attr:`outputs` (what training does with it).
    output_roles: tuple[str, ...] = ()
    _index: Mapping[str, Node] = field(default=None, repr=False, compare=False)  # type: ignore

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n.name: n for n in self.nodes})

    # -- lookups -----------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return self._index[name]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def shape(self, ref: TensorRef) -> Shape:
        if ref.node == INPUT:
            return self.input_shape
        return self._index[ref.node].output_shapes[ref.port]

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)

    def part_nodes(self, part: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.part == part)

    def output(self, name: str) -> TensorRef:
        return dict(self.outputs)[name]

    def role(self, name: str) -> str:
        """The role of the output ``name`` (``reconstruction``, ``mu``, ``likelihoods``, ...)."""
        roles = dict(zip((n for n, _ in self.outputs), self.output_roles, strict=False))
        return roles.get(name, name)

    def with_role(self, role: str) -> list[tuple[str, TensorRef]]:
        """The outputs of one role, in order."""
        return [(n, r) for n, r in self.outputs if self.role(n) == role]

    def forward_outputs(self) -> tuple[str, ...]:
        """What the model's forward pass returns, in order: every output but the code, which
        the generated models return from ``encode``."""
        return tuple(n for n, _ in self.outputs if self.role(n) != "code")

    # -- counts ------------------------------------------------------------------------------
    def counts(self, part: str | None = None) -> tuple[int, int, int]:
        """(trainable, non_trainable, macs) of the whole model or of one part."""
        nodes = self.nodes if part is None else self.part_nodes(part)
        return (
            sum(n.trainable for n in nodes),
            sum(n.non_trainable for n in nodes),
            sum(n.macs for n in nodes),
        )

    def structure(self) -> tuple:
        """Everything that defines the network, without provenance (source paths, parameter
        values, file name): two specs describe the same network when these are equal."""
        nodes = tuple(
            (
                n.name,
                n.layer,
                n.inputs,
                n.output_shapes,
                n.trainable,
                n.non_trainable,
                n.macs,
                n.part,
                n.role,
                n.skip,
            )
            for n in self.nodes
        )
        groups = tuple((g.name, g.part, g.block, g.skip, g.index) for g in self.groups)
        skips = tuple(
            (s.name, s.source, s.target, s.merge, s.merge_kind, s.output) for s in self.skips
        )
        return (
            self.name,
            self.description,
            self.input_shape,
            nodes,
            groups,
            skips,
            self.parts,
            self.outputs,
            self.bottleneck,
            self.output_activation,
            self.training,
            self.reconstructs,
            self.output_roles,
        )

    # -- graph view --------------------------------------------------------------------------
    @cached_property
    def nx(self) -> nx.MultiDiGraph:
        """A frozen networkx view: one vertex per node (plus ``input``), one edge per input."""
        g = nx.MultiDiGraph()
        g.add_node(INPUT, shape=self.input_shape)
        for i, n in enumerate(self.nodes):
            g.add_node(n.name, order=i, kind=n.kind, part=n.part)
        for n in self.nodes:
            for slot, ref in enumerate(n.inputs):
                g.add_edge(ref.node, n.name, port=ref.port, slot=slot)
        return nx.freeze(g)

    def topological_order(self) -> list[str]:
        """Node names in a deterministic topological order (spec order breaks ties)."""
        order = {n.name: i for i, n in enumerate(self.nodes)}
        order[INPUT] = -1
        return [
            v
            for v in nx.lexicographical_topological_sort(self.nx, key=lambda v: order[v])
            if v != INPUT
        ]

    @cached_property
    def node_index(self) -> dict[str, int]:
        """Each node's position in creation (spec) order."""
        return {n.name: i for i, n in enumerate(self.nodes)}

    @cached_property
    def consumer_map(self) -> dict[TensorRef, set[str]]:
        """The names of the nodes that read each tensor."""
        out: dict[TensorRef, set[str]] = {}
        for n in self.nodes:
            for r in n.inputs:
                out.setdefault(r, set()).add(n.name)
        return out

    def consumers(self, name: str) -> list[str]:
        return sorted(set(self.nx.successors(name)))


def find_cycle(g: nx.DiGraph) -> list | None:
    """A cycle of ``g`` as its vertices, the first repeated at the end (``[a, b, a]``); None if
    there is none.

    Linear in the size of ``g`` (networkx's own ``find_cycle`` restarts its search from every
    vertex, which is quadratic on long chains): the cycle is looked for only inside the
    strongly connected component that holds the earliest cyclic vertex, where the first
    depth-first descent from that vertex meets it. Ties are broken by insertion order.
    """
    if nx.is_directed_acyclic_graph(g):
        return None
    order = {v: i for i, v in enumerate(g)}
    cyclic = [
        c
        for c in nx.strongly_connected_components(g)
        if len(c) > 1 or any(g.has_edge(v, v) for v in c)
    ]
    component = min(cyclic, key=lambda c: min(order[v] for v in c))
    start = min(component, key=order.__getitem__)
    edges = nx.find_cycle(g.subgraph(component), source=start)
    return [u for u, _ in edges] + [edges[0][0]]
