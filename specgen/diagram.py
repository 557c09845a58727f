"""Architecture figures from the graph: the view-model of each figure.

A figure draws *units*: a layer, a block instance (``ResBlock``), a run of identical block
instances collapsed into one (``ResBlock ×8``), a skip path's transform, a merge (``+`` or
``concat``), and the figure's inputs and outputs. Groups that are not block instances (resolution
levels, containers) become clusters labelled with the name and the tensor shape they work at.
Every edge of the graph between two different units becomes one edge, labelled with the tensor's
shape; edges on a skip path are drawn dashed in their skip's colour.

Figures of one spec: ``overview`` (encoder, bottleneck and decoder, each top-level item one unit),
``encoder`` and ``decoder`` (block granularity, or every layer with ``expand``), and one figure
per block kind used (the layers of its first instance). Units keep the graph's dotted names as
their ids, so a figure, the PyTorch file and the Keras file name the same things.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .codegen.namespace import camel_case
from .graph import INPUT, ModelGraph, Node, TensorRef
from .layers import Shape

#: More units than this and a figure is drawn one level coarser.
MAX_UNITS = 400

SKIP_COLORS = ("#2e8b57", "#c0392b", "#8e44ad", "#d35400", "#2471a3")
PRINT_COLORS = ("#404040", "#707070", "#909090", "#505050", "#808080")


@dataclass
class Unit:
    id: str
    lines: list[str]
    kind: str  # op, block, skip, merge, io
    cluster: str | None = None
    skip: str | None = None
    order: int = 0
    #: units of one group are lined up straight (an arm of the U)
    group: str | None = None
    #: the groups a collapsed unit stands for (each instance of a run), for checking its label
    instances: tuple[str, ...] = ()


@dataclass
class Cluster:
    id: str
    label: str
    parent: str | None
    shape: str = ""  # the tensor shape the cluster works at, which its label names


@dataclass
class Edge:
    src: str
    dst: str
    label: str
    skip: str | None = None
    #: drawn against the figure's downward flow (the decoder climbing the right arm of a U)
    back: bool = False
    #: whether the edge places its ends in rows (a skip drawn across does not)
    constraint: bool = True
    #: how strongly the layout keeps the edge short and straight
    weight: int = 1
    #: False for an edge that only holds the layout together (not drawn)
    visible: bool = True


@dataclass
class Figure:
    name: str
    title: str
    direction: str
    units: list[Unit] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)  # skip families drawn, for the legend
    note: str = ""
    #: units drawn side by side in one row (top to bottom figures)
    ranks: list[list[str]] = field(default_factory=list)


def dims(shape: Shape | None) -> str:
    """``64×32×16``; a square map as ``32²×16``, a cube as ``32³×16``."""
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    if len(shape) == 4 and len(set(shape[:3])) == 1:
        return f"{shape[0]}³×{shape[3]}"
    if len(shape) == 3 and shape[0] == shape[1]:
        return f"{shape[0]}²×{shape[2]}"
    return "×".join(str(d) for d in shape)


def _kxk(window) -> str:
    return "×".join(str(k) for k in window)


#: How a linear upsampling is named at each spatial rank.
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def op_label(node: Node) -> str:
    """``conv 2×2/2, 16``-style label of one layer."""
    layer = node.layer
    kind = layer.neutral_kind
    if kind in ("conv", "conv_transpose"):
        name = "conv" if kind == "conv" else "convT"
        strides = set(layer.strides)
        stride = (
            ""
            if strides == {1}
            else (f"/{layer.strides[0]}" if len(strides) == 1 else f"/{_kxk(layer.strides)}")
        )
        fixed = getattr(layer, "constant_kernel", None)
        constant = "" if fixed is None else f", constant {fixed:g}"
        return f"{name} {_kxk(layer.kernel_size)}{stride}, {layer.filters}{constant}"
    if kind == "dense":
        return f"dense {layer.units}"
    if kind == "batch_norm":
        return "BatchNorm"
    if kind == "layer_norm":
        return "LayerNorm"
    if kind == "instance_norm":
        return "InstanceNorm"
    if kind == "group_norm":
        return f"GroupNorm({layer.groups})"
    if kind == "prelu":
        return "PReLU" if not layer.shared else "PReLU shared"
    if kind == "leaky_relu":
        return f"LeakyReLU {layer.negative_slope:g}"
    if kind in ("relu", "gelu", "silu", "elu"):
        return {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "elu": "ELU"}[kind]
    if kind == "dropout":
        return f"dropout {layer.rate:g}"
    if kind in ("max_pool", "avg_pool"):
        stride = "" if layer.strides == layer.pool_size else f"/{layer.strides[0]}"
        return f"{kind.split('_')[0]}pool {_kxk(layer.pool_size)}{stride}"
    if kind == "upsample":
        how = _LINEAR[layer.spatial_rank] if layer.linear else layer.interpolation
        return f"upsample ×{layer.size[0]} {how}"
    if kind == "reshape":
        first = ", C first" if layer.order == "channels_first" else ""
        return f"reshape {dims(tuple(layer.target_shape))}{first}"
    if kind == "flatten" and layer.order == "channels_first":
        return "flatten, C first"
    if kind == "pad":
        sides = "×".join(f"{before}+{after}" for before, after in layer.padding)
        return f"pad {sides} {layer.mode}"
    if kind == "vae_sampling":
        return "sample z"
    if kind == "diagonal_gaussian":
        return "mean, logvar"
    if kind == "vector_quantizer":
        return f"VQ {layer.num_embeddings} codes"
    if kind == "add":
        return "+"
    if kind == "multiply":
        return "×"
    if kind == "scale":
        return f"×{layer.factor:g}"
    return layer.ranked_kind


def spec_order(graph: ModelGraph) -> dict[str, tuple[int, int]]:
    """Each node and group by its place in the spec (a group before its first layer)."""
    order: dict[str, tuple[int, int]] = {n.name: (i, 1) for i, n in enumerate(graph.nodes)}
    for grp in graph.groups:
        order[grp.name] = (grp.index, 0)
    return order


def group_tree(graph: ModelGraph) -> dict[str, list[str]]:
    """``parent name -> its children`` (nodes and groups, by dotted name), in spec order."""
    order = spec_order(graph)
    children: dict[str, list[str]] = {}
    for name in sorted(order, key=lambda v: order[v]):
        children.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return children


def block_title(block: str) -> str:
    return camel_case(block)


class _Builder:
    def __init__(
        self, graph: ModelGraph, *, expand: bool, shapes: bool, params: bool, layout: bool
    ):
        self.g = graph
        self.layout = layout  # lay figures out as readers know them (U, rows), or as a flow
        self.expand = expand
        self.shapes = shapes
        self.params = params
        self.nodes = {n.name: n for n in graph.nodes}
        self.index = {n.name: i for i, n in enumerate(graph.nodes)}
        self.groups = {g.name: g for g in graph.groups}
        order = spec_order(graph)
        self.children = group_tree(graph)
        # a skip's merge belongs to the group it merges into, wherever the spec placed it
        for skip in graph.skips:
            merge, target = skip.merge, skip.target
            if target in self.nodes:  # merged after a layer: into that layer's group
                target = target.rsplit(".", 1)[0]
            if merge not in self.nodes or target not in self.groups:
                continue
            if merge.startswith(target + ".") or merge in self.children.get(target, ()):
                continue
            self.children[merge.rsplit(".", 1)[0]].remove(merge)
            self.children.setdefault(target, []).append(merge)
            self.children[target].sort(key=lambda v: order[v])
        self.skip_of: dict[str, str] = {}  # skip group / merge node -> family
        self.joins: dict[tuple[str, TensorRef], str] = {}  # (merge node, tensor) -> family
        for s in graph.skips:
            fam = self.family(s.name)
            self.skip_of[s.name] = fam
            self.skip_of[s.merge] = fam
            self.joins[(s.merge, s.output)] = fam

    @staticmethod
    def family(skip_group: str) -> str:
        part, local = skip_group.split(".", 1)
        return f"{part}.{re.sub(r'[0-9]+$', '', local) or local}"

    def inside(self, name: str) -> list[Node]:
        out, stack = [], [name]
        while stack:
            cur = stack.pop()
            for c in self.children.get(cur, []):
                if c in self.nodes:
                    out.append(self.nodes[c])
                else:
                    stack.append(c)
        return sorted(out, key=lambda n: self.index[n.name])

    def counts_line(self, nodes: list[Node]) -> list[str]:
        if not self.params:
            return []
        total = sum(n.trainable + n.non_trainable for n in nodes)
        return [f"{total:,} params"] if total else []

    def main_op(self, nodes: list[Node]) -> str:
        for n in nodes:
            if n.layer.neutral_kind in ("conv", "conv_transpose", "dense", "vector_quantizer"):
                return op_label(n)
        return op_label(nodes[0]) if nodes else ""

    # -- units --------------------------------------------------------------------------------
    def collect(
        self,
        root: str,
        fig: Figure,
        rep: dict[str, str],
        cluster: str | None,
        depth_limit: int | None = None,
        depth: int = 0,
    ) -> None:
        kids = self.children.get(root, [])
        i = 0
        while i < len(kids):
            c = kids[i]
            if c in self.nodes:
                node = self.nodes[c]
                kind = "merge" if node.kind in ("add", "multiply", "concat") else "op"
                lines = [op_label(node)] + self.counts_line([node])
                fig.units.append(Unit(c, lines, kind, cluster, self.skip_of.get(c), self.index[c]))
                rep[c] = c
                i += 1
                continue
            members = self.inside(c)
            if not members:
                i += 1
                continue
            grp = self.groups[c]
            collapse = (
                (grp.block is not None and not self.expand)
                or c in self.skip_of
                or (depth_limit is not None and depth >= depth_limit)
            )
            if not collapse:
                shapes = Counter(n.shape for n in members)
                shape = dims(shapes.most_common(1)[0][0])
                fig.clusters.append(Cluster(c, f"{grp.local_name}  {shape}", cluster, shape))
                self.collect(c, fig, rep, c, depth_limit, depth + 1)
                i += 1
                continue
            run = [c]
            if c not in self.skip_of:
                # consecutive instances of one block (or, when coarsened, groups made of the
                # same layers) that feed each other are drawn as one unit
                kinds = [n.kind for n in members]
                while i + len(run) < len(kids):
                    nxt = kids[i + len(run)]
                    ng = self.groups.get(nxt)
                    if ng is None or not self.inside(nxt) or nxt in self.skip_of:
                        break
                    if grp.block is not None:
                        if ng.block != grp.block:
                            break
                    elif ng.block is not None or [n.kind for n in self.inside(nxt)] != kinds:
                        break
                    first = self.inside(nxt)[0]
                    if first.inputs != (self._output(run[-1]),):
                        break
                    # one unit stands for several only where its label is true of each
                    if self.main_op(self.inside(nxt)) != self.main_op(members):
                        break
                    run.append(nxt)
            nodes = [n for r in run for n in self.inside(r)]
            if c in self.skip_of:
                title = grp.local_name
            elif grp.block is not None:
                title = block_title(grp.block) + (f" ×{len(run)}" if len(run) > 1 else "")
            else:
                stem = re.sub(r"[0-9]+$", "", grp.local_name) or grp.local_name
                title = f"{stem} ×{len(run)}" if len(run) > 1 else grp.local_name
            lines = [title, self.main_op(nodes)] + self.counts_line(nodes)
            kind = "skip" if c in self.skip_of else "block"
            fig.units.append(
                Unit(
                    c,
                    [x for x in lines if x],
                    kind,
                    cluster,
                    self.skip_of.get(c),
                    self.index[nodes[0].name],
                    instances=tuple(run),
                )
            )
            for n in nodes:
                rep[n.name] = c
            i += len(run)

    def _output(self, group: str) -> TensorRef:
        return TensorRef(self.inside(group)[-1].name)

    # -- edges --------------------------------------------------------------------------------
    def connect(self, fig: Figure, rep: dict[str, str], io_label) -> None:
        seen: set[tuple[str, str]] = set()
        ids = {u.id for u in fig.units}
        order = {u.id: u.order for u in fig.units}
        pending: list[Edge] = []
        for n in self.g.nodes:
            if n.name not in rep:
                continue
            dst = rep[n.name]
            for r in n.inputs:
                src = rep.get(r.node)
                if src is None:
                    src = io_label(r)
                    if src not in ids:
                        ids.add(src)
                        fig.units.insert(0, Unit(src, [self.io_text(r)], "io", None, None, -1))
                        order[src] = -1
                if src == dst or (src, dst) in seen:
                    continue
                seen.add((src, dst))
                kinds = {u.id: u.kind for u in fig.units}
                skip = None
                if kinds.get(src) == "skip":
                    skip = self.skip_of[src]
                elif kinds.get(dst) == "skip":
                    skip = self.skip_of[dst]
                elif (n.name, r) in self.joins:
                    skip = self.joins[(n.name, r)]  # a skip with no transform joins directly
                label = dims(self.g.shape(r)) if self.shapes else ""
                pending.append(Edge(src, dst, label, skip))
        pending.sort(key=lambda e: (order.get(e.src, -1), order.get(e.dst, -1), e.src, e.dst))
        fig.edges = pending
        fig.skips = sorted({e.skip for e in pending if e.skip})

    def io_text(self, r: TensorRef) -> str:
        if r.node == INPUT:
            return f"input\n{dims(self.g.input_shape)}"
        part = self.nodes[r.node].part
        if self.g.part(part).output == r:
            return f"{part}\n{dims(self.g.shape(r))}"
        # name the tensor after the outermost group it is the output of
        name = r.node
        while "." in name:
            parent = name.rsplit(".", 1)[0]
            if parent not in self.groups or self._output(parent) != r:
                break
            name = parent
        return f"{name}\n{dims(self.g.shape(r))}"

    def add_output(self, fig: Figure, ref: TensorRef, rep: dict[str, str], label: str) -> None:
        uid = f"{label}"
        fig.units.append(
            Unit(uid, [f"{label}\n{dims(self.g.shape(ref))}"], "io", None, None, 10**9)
        )
        src = rep.get(ref.node, ref.node)
        fig.edges.append(Edge(src, uid, dims(self.g.shape(ref)) if self.shapes else ""))

    @staticmethod
    def prune_clusters(fig: Figure) -> None:
        """A cluster around a single unit only adds a frame: its unit joins the parent."""
        while True:
            held = Counter(u.cluster for u in fig.units if u.cluster)
            parents = Counter(c.parent for c in fig.clusters if c.parent)
            lone = next((c for c in fig.clusters if held[c.id] <= 1 and not parents[c.id]), None)
            if lone is None:
                return
            fig.clusters.remove(lone)
            for u in fig.units:
                if u.cluster == lone.id:
                    u.cluster = lone.parent

    def skips_as_edges(self, fig: Figure) -> None:
        """Each skip transform drawn as its path: one dashed edge from where the skip starts
        to where it merges, labelled with the transform (the overview's economy)."""
        skips = {u.id: u for u in fig.units if u.kind == "skip"}
        if not skips:
            return
        into = {e.dst: e for e in fig.edges if e.dst in skips}
        out_of: dict[str, list[Edge]] = {}
        for e in fig.edges:
            if e.src in skips:
                out_of.setdefault(e.src, []).append(e)
        edges = []
        for e in fig.edges:
            if e.dst in skips:
                continue
            if e.src in skips and e.src in into:
                unit = skips[e.src]
                label = unit.lines[1] if len(unit.lines) > 1 else unit.lines[0]
                src = into[e.src].src
                if self._part_of(src) == self._part_of(e.dst):
                    label = ""  # the part's own figure names it; the overview shows the path
                if src != e.dst:  # a skip within one unit of the overview is inside it
                    edges.append(Edge(src, e.dst, label, e.skip or unit.skip))
                continue
            edges.append(e)
        fig.edges = edges
        fig.units = [u for u in fig.units if u.id not in skips or u.id not in into]

    def fold_ops(self, fig: Figure, rep: dict[str, str], part: str) -> None:
        """A chain of single layers (a norm, an activation, a conv) as one unit that lists
        them, one per line: a figure's rows go to its structure, not to every layer."""
        units = [u for u in fig.units if u.kind == "op" and self._part_of(u.id) == part]
        by_id = {u.id: u for u in units}
        runs: list[list[Unit]] = []
        for u in sorted(units, key=lambda x: x.order):
            node = self.nodes.get(u.id)
            last = runs[-1][-1] if runs else None
            if (
                last is not None
                and node is not None
                and node.inputs == (TensorRef(last.id),)
                and last.cluster == u.cluster
                and len(self.g.consumers(last.id)) == 1
            ):
                runs[-1].append(u)
            else:
                runs.append([u])
        for run in runs:
            if len(run) < 2:
                continue
            head = run[0]
            head.lines = [line for u in run for line in u.lines[:1]]
            for u in run[1:]:
                del by_id[u.id]
                fig.units.remove(u)
                for name, unit in rep.items():
                    if unit == u.id:
                        rep[name] = head.id

    #: A bottleneck of more units than this is one unit of the overview (the bottom of its U).
    MAX_BOTTLENECK_UNITS = 4

    def fold_bottleneck(self, fig: Figure, rep: dict[str, str]) -> None:
        """A long bottleneck as one unit: its kind, and the layers that make the code."""
        units = [u for u in fig.units if u.cluster == "bottleneck"]
        if len(units) <= self.MAX_BOTTLENECK_UNITS:
            return
        nodes = self.inside("bottleneck")
        kind = getattr(self.g.bottleneck, "kind", None)
        title = f"{kind.replace('_', ' ')} bottleneck" if kind else "bottleneck"
        coding = ("dense", "vector_quantizer", "vae_sampling", "diagonal_gaussian", "conv")
        ops = list(dict.fromkeys(op_label(n) for n in nodes if n.layer.neutral_kind in coding))
        lines = [title, " · ".join(ops[:3]) + (" …" if len(ops) > 3 else "")]
        lines += self.counts_line(nodes)
        fig.units = [u for u in fig.units if u.cluster != "bottleneck"]
        fig.units.append(
            Unit(
                "bottleneck",
                [x for x in lines if x],
                "block",
                None,
                None,
                self.index[nodes[0].name],
            )
        )
        fig.clusters = [c for c in fig.clusters if c.id != "bottleneck"]
        for n in nodes:
            rep[n.name] = "bottleneck"

    # -- layouts ------------------------------------------------------------------------------
    @staticmethod
    def _part_of(unit: str) -> str:
        head = unit.split(".", 1)[0]
        return head if head in ("encoder", "bottleneck", "decoder") else unit

    def u_shape(self, fig: Figure) -> None:
        """The overview as a U: the encoder down the left, the bottleneck along the bottom,
        the decoder up the right; an edge from the encoder to the decoder (a skip, or the path
        itself when there is no bottleneck) is drawn straight across."""
        parts = {u.id: self._part_of(u.id) for u in fig.units}
        outputs = {u.id for u in fig.units if u.kind == "io" and u.order > 0}
        rising = {"decoder"} | outputs
        across: list[list[str]] = []
        for e in fig.edges:
            src, dst = parts.get(e.src, e.src), parts.get(e.dst, e.dst)
            if src == "encoder" and dst == "decoder":
                e.constraint = False
                across.append([e.src, e.dst])
            elif dst in rising and (src in rising or src == "bottleneck"):
                e.back = dst == "decoder" or src == "decoder"
            if e.skip is None and src == dst:
                e.weight = 8  # the arms of the U stay straight
        bottom = [u.id for u in fig.units if parts[u.id] == "bottleneck"]
        fig.ranks = ([bottom] if len(bottom) > 1 else []) + across
        for u in fig.units:
            if parts[u.id] in ("encoder", "decoder") and u.kind in ("op", "block"):
                u.group = parts[u.id]

    def rows(self, fig: Figure, part: str) -> None:
        """A part top to bottom, one row per item (a resolution level, a block, a layer), so
        that levels step down the figure; a skip's transform sits in the row of its end that
        it does not share with other skips."""

        def row(unit: str) -> str | None:
            head = unit.split(".")
            return ".".join(head[:2]) if head[0] == part and len(head) > 1 else None

        sources = Counter(s.source for s in self.g.skips)
        moved: dict[str, str | None] = {}
        for s in self.g.skips:
            end = s.target if sources[s.source] > 1 else s.source.node
            moved[s.name] = row(end)
            moved[s.merge] = row(s.target)  # a merge sits in the row it merges into
        rows: dict[str, list[str]] = {}
        row_of: dict[str, str] = {}
        clusters = {c.id for c in fig.clusters}
        kinds_of = {u.id: u.kind for u in fig.units}
        for u in fig.units:
            key = moved[u.id] if u.id in moved else row(u.id)
            if key is not None:
                rows.setdefault(key, []).append(u.id)
                row_of[u.id] = key
                if u.kind == "skip" and key in clusters:
                    u.cluster = key  # drawn in the level it works for
        fig.ranks = [ids for ids in rows.values() if len(ids) > 1]
        # each row starts a little right of the one above (a staircase), not where it ended
        order = {u.id: u.order for u in fig.units}
        firsts = [
            min((i for i in ids if kinds_of[i] != "skip"), key=order.__getitem__, default=None)
            for ids in rows.values()
        ]
        firsts = [f for f in firsts if f is not None]
        for upper, lower in zip(firsts, firsts[1:], strict=False):
            fig.edges.append(Edge(upper, lower, "", weight=3, visible=False))
        # an edge within a row is drawn left to right; a skip's transform joining its merge in
        # the same row stays right of the row, so its edge is drawn back
        kinds = {u.id: u.kind for u in fig.units}
        cluster_of = {u.id: u.cluster for u in fig.units}
        shape_of = {c.id: c.shape for c in fig.clusters}
        for e in fig.edges:
            same = row_of.get(e.src) is not None and row_of.get(e.src) == row_of.get(e.dst)
            if same and kinds.get(e.src) == "skip":
                e.back = True
            # inside a level, the shape its frame names goes without saying
            home = cluster_of.get(e.src)
            if same and home is not None and home == cluster_of.get(e.dst):
                if e.label == shape_of.get(home):
                    e.label = ""

    # -- figures ------------------------------------------------------------------------------
    def part_figure(self, part: str, direction: str) -> Figure:
        fig = Figure(part, f"{self.g.name}: {part}", direction)
        rep: dict[str, str] = {}
        self.collect(part, fig, rep, None)
        if self.layout:
            self.fold_ops(fig, rep, part)
        if len(fig.units) > MAX_UNITS:
            fig = Figure(
                part,
                f"{self.g.name}: {part}",
                direction,
                note=f"collapsed: more than {MAX_UNITS} units at full detail",
            )
            rep = {}
            self.collect(part, fig, rep, None, depth_limit=0)
        self.connect(fig, rep, lambda r: "input" if r.node == INPUT else r.node)
        out = self.g.part(part).output
        if out is not None:
            name = "reconstruction" if part == "decoder" else f"{part} output"
            self.add_output(fig, out, rep, name)
        self.prune_clusters(fig)
        if self.layout:
            self.rows(fig, part)
        return fig

    def overview(self, direction: str) -> Figure:
        fig = Figure("overview", f"{self.g.name}: overview", direction)
        rep: dict[str, str] = {}
        for part in ("encoder", "bottleneck", "decoder"):
            if not self.inside(part):
                continue
            fig.clusters.append(Cluster(part, part, None))
            self.collect(part, fig, rep, part, depth_limit=0)
            if part == "bottleneck" and self.layout:
                self.fold_bottleneck(fig, rep)
            elif self.layout:
                self.fold_ops(fig, rep, part)
        self.connect(fig, rep, lambda r: "input")
        for name, ref in self.g.outputs:
            if name == "reconstruction" or ref.port == 0 and name == "code":
                self.add_output(fig, ref, rep, name)
        if self.layout:
            self.skips_as_edges(fig)
            self.u_shape(fig)
        return fig

    def block_figure(self, block: str, direction: str) -> Figure:
        first = next(g.name for g in self.g.groups if g.block == block and self.inside(g.name))
        fig = Figure(f"block_{block}", f"{block_title(block)} ({block})", direction)
        rep: dict[str, str] = {}
        # the block's own layers; a block used inside it stays one unit (it has its figure)
        self.collect(first, fig, rep, None)
        self.connect(fig, rep, lambda r: "x")
        for u in fig.units:
            if u.id == "x":
                u.lines = ["x"]
        self.add_output(fig, self._output(first), rep, "output")
        # ids relative to the block, so the figure reads the same for every instance
        prefix = first + "."
        for u in fig.units:
            u.id = u.id.removeprefix(prefix)
        for c in fig.clusters:
            c.id = c.id.removeprefix(prefix)
            c.parent = c.parent.removeprefix(prefix) if c.parent else None
        for u in fig.units:
            u.cluster = u.cluster.removeprefix(prefix) if u.cluster else None
        for e in fig.edges:
            e.src = e.src.removeprefix(prefix)
            e.dst = e.dst.removeprefix(prefix)
        return fig


def figures(
    graph: ModelGraph,
    *,
    expand: bool = False,
    shapes: bool = True,
    params: bool = False,
    direction: str = "auto",
) -> list[Figure]:
    """Every figure of a spec, in a stable order. ``direction="auto"`` draws the overview as
    a U and the encoder and decoder one row per item, top to bottom; ``"LR"`` or ``"TB"``
    draw every figure as one flow in that direction."""
    layout = direction == "auto"
    b = _Builder(graph, expand=expand, shapes=shapes, params=params, layout=layout)
    flow = "TB" if layout else direction
    out = [b.overview(flow)]
    for part in ("encoder", "decoder"):
        if b.inside(part):
            out.append(b.part_figure(part, flow))
    used = []
    for grp in graph.groups:
        if grp.block and grp.block not in used and b.inside(grp.name):
            used.append(grp.block)
    for block in used:
        out.append(b.block_figure(block, "LR" if direction == "TB" else "TB"))
    return out
