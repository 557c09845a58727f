"""Feature-map block figures: one 3-D box per tensor, in oblique projection.

The figure reads left to right along the model's main path: the input, the output of every
top-level item of the encoder (each resolution level, say), the bottleneck's code, the output of
every top-level item of the decoder and the reconstruction. A box's height grows with the
tensor's spatial size and its depth (the oblique axis) with its channel count, both on a log
scale; its label is the tensor's shape (:func:`specgen.diagram.dims`) and its fill says what
produced it. Skip paths are drawn as dashed elbow lines above the boxes, from the box that holds
the skip's source to the box (or the merge symbol between two boxes) where it joins.

:func:`blocks_figure` computes the whole figure, geometry included, as frozen dataclasses in
points (origin at the top left, y pointing down); :func:`to_svg` and :func:`to_tikz` only print
it through their templates. Every string that comes from a spec reaches SVG through
:func:`xml_escape` and LaTeX through :func:`tex_escape`. :func:`run_pdflatex` and
:func:`pdf_to_png` turn the LaTeX document into a PDF and a PNG with ``pdflatex`` and
``pdftoppm``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .diagram import block_title, dims, group_tree
from .graph import INPUT, ModelGraph, Node, TensorRef
from .layers import Shape
from .render import render

# -- what is drawn ------------------------------------------------------------------------------

#: Box kinds, in legend order, with their legend text.
BOX_KINDS = {
    "io": "input / output",
    "conv": "same resolution",
    "down": "downsampled",
    "up": "upsampled",
    "code": "code / latent",
}

#: Front-face fill and outline of each box kind (the top face is lighter, the side darker).
BOX_COLORS = {
    "io": ("#d9d9d9", "#595959"),
    "conv": ("#a6cee3", "#2b6a8f"),
    "down": ("#5b9bd5", "#1f4e79"),
    "up": ("#f4b183", "#a0522d"),
    "code": ("#b4a7d6", "#4b3f72"),
}

#: Skip-path colours by how the skip joins.
SKIP_COLORS = {"add": "#2e8b57", "concat": "#c0392b", "multiply": "#8e44ad", "other": "#2471a3"}
#: Legend text of a skip path by how it joins.
SKIP_TEXT = {
    "add": "skip, added",
    "concat": "skip, concatenated",
    "multiply": "skip, multiplied",
    "other": "skip, read directly",
}
MAIN_LINE = "#595959"
#: The XML namespace of the SVG's own attributes (``specgen:tensor``, ``specgen:skip``, ...),
#: which say what each element draws.
SVG_NAMESPACE = "urn:x-specgen:blocks"
TEXT_COLOR = "#1a1a1a"
MUTED_COLOR = "#595959"

#: Layers that act element by element and keep the shape: a top-level item made of one of them
#: is drawn in the box before it instead of a box of its own.
ELEMENTWISE = frozenset(
    {
        "relu",
        "leaky_relu",
        "prelu",
        "sigmoid",
        "tanh",
        "gelu",
        "silu",
        "elu",
        "linear",
        "softmax",
        "batch_norm",
        "layer_norm",
        "group_norm",
        "instance_norm",
        "dropout",
        "identity",
        "scale",
        "gdn",
        "igdn",
    }
)

#: Layers named in captions, and how.
CAPTION_OPS = {
    "conv": "conv",
    "conv_transpose": "convT",
    "dense": "dense",
    "max_pool": "maxpool",
    "avg_pool": "avgpool",
    "upsample": "upsample",
    "attention": "attention",
    "gdn": "GDN",
    "igdn": "IGDN",
    "vector_quantizer": "VQ",
    "vae_sampling": "sample",
    "diagonal_gaussian": "Gaussian",
    "entropy_bottleneck": "entropy model",
}

#: Layers that produce a model's latent (preferred as the code box, last one on the path).
LATENT_KINDS = ("vae_sampling", "vector_quantizer", "entropy_bottleneck")
MERGE_KINDS = ("add", "concat", "multiply")

#: Oblique projection: the depth axis points up and to the right at this angle.
OBLIQUE_DEG = 40.0
_COS = math.cos(math.radians(OBLIQUE_DEG))
_SIN = math.sin(math.radians(OBLIQUE_DEG))

#: Smallest text on the figure, in points.
MIN_FONT = 6.0
#: Font sizes tried for the shape labels, largest first.
LABEL_FONTS = (7.5, 7.0, 6.5, 6.0)
#: More boxes than this and consecutive boxes of one resolution are drawn as one.
MAX_BOXES = 48


# -- the view model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One tensor. Front face: ``x``, ``y`` (its top left), ``w`` wide and ``h`` high; the depth
    ``d`` goes up and to the right at :data:`OBLIQUE_DEG` (``dx``, ``dy`` across and up)."""

    index: int
    tensor: str
    shape: Shape
    label: str
    kind: str
    caption: str
    short_caption: str
    x: float
    y: float
    w: float
    h: float
    d: float
    label_x: float = 0.0
    label_y: float = 0.0
    caption_x: float = 0.0
    caption_y: float = 0.0
    #: Whether the caption (what made this box from the one before) is drawn, and which text.
    caption_shown: str = ""

    @property
    def dx(self) -> float:
        return self.d * _COS

    @property
    def dy(self) -> float:
        return self.d * _SIN

    @property
    def right(self) -> float:
        """The right end of the drawn box."""
        return self.x + self.w + self.dx

    @property
    def centre(self) -> float:
        return self.x + (self.w + self.dx) / 2

    def top_at(self, x: float) -> float:
        """The y of the box's upper outline above ``x``."""
        if self.dx <= 0 or x >= self.x + self.dx:
            return self.y - self.dy
        return self.y - self.dy * max(0.0, x - self.x) / self.dx


@dataclass(frozen=True)
class Join:
    """A merge drawn between box ``after`` and the next one: where skip paths come in."""

    node: str
    kind: str
    after: int
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Connector:
    """The main path from one box to the next."""

    x1: float
    x2: float
    y: float


@dataclass(frozen=True)
class SkipLine:
    """A skip path as an elbow polyline ending in an arrow. ``name`` is the skip's group; None
    for a connection the spec wires directly (a later item reading an earlier tensor)."""

    name: str | None
    source: str
    target: str
    kind: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class LegendEntry:
    #: "box", "skip" or "join"
    kind: str
    key: str
    text: str
    x: float
    y: float
    text_x: float


@dataclass(frozen=True)
class BlocksFigure:
    name: str
    title: str
    width: float
    height: float
    title_pt: float
    label_pt: float
    caption_pt: float
    legend_pt: float
    title_x: float
    title_y: float
    boxes: tuple[Box, ...]
    joins: tuple[Join, ...]
    connectors: tuple[Connector, ...]
    skips: tuple[SkipLine, ...]
    legend: tuple[LegendEntry, ...]
    #: Boxes folded together because there were more than :data:`MAX_BOXES`.
    note: str = ""

    @property
    def fonts(self) -> tuple[float, ...]:
        return (self.title_pt, self.label_pt, self.caption_pt, self.legend_pt)


# -- text width ---------------------------------------------------------------------------------

_NARROW = set("ijl.,:;'|!I ")
_SEMI = set("frt()[]-/²³")
_WIDE = set("mwMW@%×")


def text_width(text: str, size: float) -> float:
    """An upper estimate of the width of ``text`` at ``size`` points in Helvetica, Arial,
    DejaVu Sans (a common fallback) or Computer Modern Sans."""
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += 0.3
        elif ch in _SEMI:
            em += 0.4
        elif ch in _WIDE:
            em += 0.9
        elif ch.isupper():
            em += 0.72
        else:
            em += 0.64
    return em * size


# -- which tensors get boxes --------------------------------------------------------------------


@dataclass
class _Slot:
    """A box while the figure is built: the tensor and the graph nodes it stands for."""

    ref: TensorRef
    kind: str
    nodes: list[Node]


@dataclass
class _PendingJoin:
    node: Node
    after: int


def _spatial(shape: Shape) -> tuple[int, ...]:
    return tuple(shape[:-1])


def _size(shape: Shape) -> float:
    """The spatial size (geometric mean of the sides), or a vector's length."""
    sp = _spatial(shape)
    if not sp:
        return float(shape[0]) if shape else 1.0
    return math.prod(sp) ** (1 / len(sp))


class _Collector:
    def __init__(self, graph: ModelGraph):
        self.g = graph
        self.index = {n.name: i for i, n in enumerate(graph.nodes)}
        self.groups = {grp.name: grp for grp in graph.groups}
        self.children = group_tree(graph)
        self.slots: list[_Slot] = [_Slot(TensorRef(INPUT), "io", [])]
        self.pending: list[_PendingJoin] = []
        self.joins: list[_PendingJoin] = []
        #: node name -> the box that draws it; merges drawn between boxes are in join_of
        self.cover: dict[str, int] = {}
        self.join_of: dict[str, int] = {}
        self.carry: list[Node] = []

    def members(self, item: str) -> list[Node]:
        if item in self.g:
            return [self.g.node(item)]
        out, stack = [], [item]
        while stack:
            cur = stack.pop()
            for c in self.children.get(cur, []):
                if c in self.g:
                    out.append(self.g.node(c))
                elif not self.groups[c].skip:
                    stack.append(c)
        return sorted(out, key=lambda n: self.index[n.name])

    def top_items(self, part: str) -> list[str]:
        items = []
        for c in self.children.get(part, []):
            if c in self.g:
                if self.g.node(c).role == "skip":
                    continue
            elif self.groups[c].skip:
                continue
            items.append(c)
        return items

    def add_slot(self, ref: TensorRef, nodes: list[Node]) -> None:
        nodes = self.carry + nodes
        self.carry = []
        self.slots.append(_Slot(ref, "", nodes))
        for n in nodes:
            self.cover[n.name] = len(self.slots) - 1
        for p in self.pending:
            self.join_of[p.node.name] = len(self.joins)
            self.joins.append(p)
        self.pending = []

    def item(self, item: str) -> None:
        nodes = self.members(item)
        if not nodes:
            return
        last = nodes[-1]
        if len(nodes) == 1 and last.role == "merge" and last.kind in MERGE_KINDS:
            self.pending.append(_PendingJoin(last, len(self.slots) - 1))
            return
        prev = self.slots[-1]
        if (
            len(nodes) == 1
            and not self.pending
            and len(self.slots) > 1
            and last.layer.neutral_kind in ELEMENTWISE
            and last.shape == self.g.shape(prev.ref)
            and last.inputs == (prev.ref,)
        ):
            prev.ref = TensorRef(last.name)
            prev.nodes.append(last)
            self.cover[last.name] = len(self.slots) - 1
            return
        self.add_slot(TensorRef(last.name), nodes)

    def flush(self) -> None:
        """Merges with no box after them become boxes."""
        pending, self.pending = self.pending, []
        for p in pending:
            self.add_slot(TensorRef(p.node.name), [p.node])

    def code_ref(self) -> TensorRef | None:
        """The bottleneck's code: its last latent layer on the main path, else the output the
        spec calls the code, else the smallest tensor on the path (the last of equals)."""
        part = self.g.part("bottleneck")
        chain: list[Node] = []
        ref = part.output
        seen = set()
        while ref is not None and ref.node != INPUT and ref != part.input and ref not in seen:
            seen.add(ref)
            node = self.g.node(ref.node)
            if node.part != "bottleneck":
                break
            chain.append(node)
            ref = node.inputs[0] if node.inputs else None
        chain.reverse()
        latent = [n for n in chain if n.layer.neutral_kind in LATENT_KINDS]
        if latent:
            return TensorRef(latent[-1].name)
        chain_names = {n.name for n in chain}
        for name, out in self.g.outputs:
            if self.g.role(name) == "code" and (out.node in chain_names or out == part.output):
                return out
        if chain:
            smallest = min(math.prod(n.shape) for n in chain)
            return TensorRef([n for n in chain if math.prod(n.shape) == smallest][-1].name)
        return None

    def collect(self) -> None:
        for item in self.top_items("encoder"):
            self.item(item)
        self.flush()
        code = self.code_ref()
        bottleneck = self.members("bottleneck")
        if code is not None and code.node in {n.name for n in bottleneck}:
            cut = next(i for i, n in enumerate(bottleneck) if n.name == code.node)
            self.add_slot(TensorRef(code.node, code.port), bottleneck[: cut + 1])
            self.carry = bottleneck[cut + 1 :]
            self.slots[-1].kind = "code"
        else:
            self.carry = list(bottleneck)
            target = code or self.g.part("encoder").output
            for slot in reversed(self.slots[1:]):
                if slot.ref == target or target.node in {n.name for n in slot.nodes}:
                    slot.kind = "code"
                    break
        for item in self.top_items("decoder"):
            self.item(item)
        self.flush()
        if self.carry:  # a bottleneck with nothing after it
            self.add_slot(self.g.part("bottleneck").output, [])
        recon = dict(self.g.outputs).get("reconstruction", self.g.part("decoder").output)
        last = self.slots[-1]
        if (
            len(self.slots) > 1
            and last.kind != "code"
            and (last.ref == recon or last.ref == self.g.part("decoder").output)
        ):
            last.kind = "io"
        for i, slot in enumerate(self.slots):
            if slot.kind:
                continue
            prev = self.g.shape(self.slots[i - 1].ref)
            cur = self.g.shape(slot.ref)
            if (
                len(prev) > 1
                and len(cur) > 1
                and math.prod(_spatial(cur)) != math.prod(_spatial(prev))
            ):
                slot.kind = "down" if math.prod(_spatial(cur)) < math.prod(_spatial(prev)) else "up"
            else:
                slot.kind = "conv"

    def coarsen(self) -> str:
        """Past :data:`MAX_BOXES`, keep one box per run of equal spatial size."""
        if len(self.slots) <= MAX_BOXES:
            return ""
        keep: list[int] = []
        for i, slot in enumerate(self.slots):
            shape = self.g.shape(slot.ref)
            if keep and i < len(self.slots) - 1 and slot.kind not in ("io", "code"):
                prev = self.slots[keep[-1]]
                if prev.kind not in ("io", "code") and _spatial(self.g.shape(prev.ref)) == _spatial(
                    shape
                ):
                    keep[-1] = i
                    continue
            keep.append(i)
        if len(keep) > MAX_BOXES:  # still too many: the input, code and output, and a sample
            must = {keep[0], keep[-1]} | {k for k in keep if self.slots[k].kind in ("io", "code")}
            others = [k for k in keep if k not in must]
            room = MAX_BOXES - len(must)
            step = math.ceil(len(others) / room) if room > 0 else len(others) + 1
            keep = sorted(must | set(others[step - 1 :: step]))
        note = f"{len(self.slots)} tensors, {len(keep)} drawn"
        kept_boxes = set(keep)
        remap: dict[int, int] = {}
        new_slots: list[_Slot] = []
        j = 0
        for i, slot in enumerate(self.slots):
            if i in kept_boxes:
                nodes = [n for k in range(j, i + 1) for n in self.slots[k].nodes]
                kind = slot.kind
                new_slots.append(_Slot(slot.ref, kind, nodes))
                for k in range(j, i + 1):
                    remap[k] = len(new_slots) - 1
                j = i + 1
        self.slots = new_slots
        self.cover = {name: remap[i] for name, i in self.cover.items()}
        # a merge stays between two boxes when the box before it ends a run; one inside a
        # run is drawn by the box of that run
        kept, join_of = [], {}
        for p in self.joins:
            if p.after in kept_boxes:
                join_of[p.node.name] = len(kept)
                kept.append(_PendingJoin(p.node, remap[p.after]))
            else:
                self.cover[p.node.name] = remap[p.after]
        self.joins, self.join_of = kept, join_of
        return note

    # -- where skip paths start and end -------------------------------------------------------
    def box_of(self, name: str) -> int:
        """The box that holds node ``name`` (for a node no box holds, its main input's)."""
        seen = set()
        while name != INPUT and name not in self.cover and name not in seen:
            seen.add(name)
            node = self.g.node(name)
            if name in self.join_of:
                return self.joins[self.join_of[name]].after
            if not node.inputs:
                return 0
            name = node.inputs[0].node
        return self.cover.get(name, 0)

    def links(self) -> list[tuple[str | None, int, tuple[str, int], str]]:
        """(skip name or None, source box, target, merge kind): one per skip path of the graph,
        then one per other connection that jumps over a box. A target is ("box", i) or
        ("join", i)."""
        out: list[tuple[str | None, int, tuple[str, int], str]] = []
        direct = set()
        for s in self.g.skips:
            src = self.box_of(s.source.node)
            if s.merge in self.join_of:
                tgt = ("join", self.join_of[s.merge])
            else:
                tgt = ("box", self.box_of(s.merge))
            out.append((s.name, src, tgt, s.merge_kind))
            direct.add((s.merge, s.output))
        seen = set()
        for n in self.g.nodes:
            if n.name in self.join_of:
                tgt: tuple[str, int] = ("join", self.join_of[n.name])
                before = self.joins[self.join_of[n.name]].after
            elif n.name in self.cover:
                tgt = ("box", self.cover[n.name])
                before = tgt[1] - 1
            else:
                continue
            for r in n.inputs:
                if (n.name, r) in direct or (r.node != INPUT and r.node not in self.cover):
                    continue
                src = self.box_of(r.node)
                if src >= before or (src, tgt) in seen:
                    continue
                seen.add((src, tgt))
                out.append((None, src, tgt, n.kind if n.kind in MERGE_KINDS else "other"))
        return out


# -- captions -----------------------------------------------------------------------------------


def _tokens(c: _Collector, nodes: list[Node]) -> list[str]:
    """What made a box, one word per layer or block instance, in order."""
    out: list[str] = []
    done: set[str] = set()
    for n in nodes:
        # the outermost block instance holding the node names it
        parts = n.name.split(".")
        token = None
        for k in range(2, len(parts)):
            grp = c.groups.get(".".join(parts[:k]))
            if grp is not None and grp.block is not None:
                if grp.name in done:
                    token = ""
                else:
                    done.add(grp.name)
                    token = block_title(grp.block)
                break
        if token is None:
            token = CAPTION_OPS.get(n.layer.neutral_kind, "")
        if token:
            out.append(token)
    return out


def _caption(c: _Collector, nodes: list[Node], prev: Shape, cur: Shape) -> tuple[str, str]:
    """The full and the short caption of a box: ``ResBlock ×8, conv ↓2`` and ``ResBlock ↓2``."""
    runs: list[list] = []
    for t in _tokens(c, nodes):
        if runs and runs[-1][0] == t:
            runs[-1][1] += 1
        else:
            runs.append([t, 1])
    words = [f"{t} ×{k}" if k > 1 else t for t, k in runs]
    arrow = ""
    ps, cs = _spatial(prev), _spatial(cur)
    if ps and cs and len(ps) == len(cs) and ps != cs:
        big, small, sign = (ps, cs, "↓") if math.prod(cs) < math.prod(ps) else (cs, ps, "↑")
        ratios = {b / s for b, s in zip(big, small, strict=True) if s}
        factor = ratios.pop() if len(ratios) == 1 else None
        arrow = sign + (f"{factor:g}" if factor and factor == int(factor) else "")
    full = ", ".join(words[:2]) + (", …" if len(words) > 2 else "")
    short = words[0].split(" ×")[0] if words else ""
    join = " " if full and arrow else ""
    return full + join + arrow, short + (" " if short and arrow else "") + arrow


# -- layout -------------------------------------------------------------------------------------


def _rows(centres: list[float], widths: list[float], gap: float, limit: int) -> int | None:
    """The fewest rows (items in turn) in which no two texts of a row overlap, up to ``limit``."""
    for rows in range(1, limit + 1):
        ok = True
        for i in range(rows, len(centres)):
            j = i - rows
            if centres[j] + widths[j] / 2 + gap > centres[i] - widths[i] / 2:
                ok = False
                break
        if ok:
            return rows
    return None


def _norm(value: float, top: float) -> float:
    """``value`` on a log scale where ``top`` maps to 1."""
    return (math.log2(max(value, 1.0)) + 1) / (math.log2(max(top, 1.0)) + 1)


def blocks_figure(graph: ModelGraph, *, width_in: float = 7.0) -> BlocksFigure:
    """The feature-map block figure of ``graph``, laid out to fit ``width_in`` inches."""
    if not width_in > 0:
        raise ValueError("width_in must be positive")
    c = _Collector(graph)
    c.collect()
    note = c.coarsen()
    slots = c.slots
    n = len(slots)
    shapes = [graph.shape(s.ref) for s in slots]
    width = width_in * 72.0
    margin = 4.0

    # heights by spatial size, depths by channels; vectors are thin tall bars
    sizes = [_size(s) for s in shapes]
    chans = [s[-1] if len(s) > 1 else 1 for s in shapes]
    fh = [max(0.16, _norm(v, max(sizes))) for v in sizes]
    fd = [
        max(0.1, _norm(v, max(chans))) if len(s) > 1 else 0.08
        for v, s in zip(chans, shapes, strict=True)
    ]

    labels = [dims(s) for s in shapes]
    captions = [("", "")] + [
        _caption(c, slots[i].nodes, shapes[i - 1], shapes[i]) for i in range(1, n)
    ]

    gap_min = 12.0 if c.joins else 8.0
    pitch = (width - 2 * margin) / max(n, 1)
    w0 = min(9.0, max(3.0, 0.2 * pitch))
    d0 = min(40.0, max(6.0, 0.9 * pitch))
    h_max = min(84.0, max(30.0, 1.9 * pitch))
    ext0 = [w0 + d0 * f * _COS for f in fd]

    # label fonts: the largest that fits in two rows; else the smallest, in as many as needed
    def place(scale: float, gap: float, left: float) -> list[float]:
        xs, x = [], left
        for e in ext0:
            xs.append(x)
            x += e * scale + gap
        return xs

    def fit(left_pad: float, right_pad: float) -> tuple[float, float]:
        room = width - left_pad - right_pad
        total0 = sum(ext0)
        if n == 1:
            return min(1.0, room / total0), 0.0
        gap = (room - total0) / (n - 1)
        if gap >= gap_min:
            return 1.0, min(gap, 40.0)
        g = gap_min
        scale = (room - (n - 1) * g) / total0
        if scale < 0.25:
            g = max(3.0, min(gap_min, (room - 0.25 * total0) / (n - 1)))
            scale = max(0.05, (room - (n - 1) * g) / total0)
        return scale, g

    # label font and rows: one row at the largest font that fits, else two rows, ...
    layouts = {}
    for size in LABEL_FONTS:
        widths = [text_width(t, size) for t in labels]
        left_pad = right_pad = margin
        for _ in range(3):  # room for the outer labels' overhang
            scale, gap = fit(left_pad, right_pad)
            xs = place(scale, gap, left_pad)
            centres = [x + e * scale / 2 for x, e in zip(xs, ext0, strict=True)]
            left_pad = max(margin, margin + widths[0] / 2 - (centres[0] - left_pad))
            right_pad = max(
                margin, margin + widths[-1] / 2 - (xs[-1] + ext0[-1] * scale - centres[-1])
            )
        scale, gap = fit(left_pad, right_pad)
        xs = place(scale, gap, left_pad)
        centres = [x + e * scale / 2 for x, e in zip(xs, ext0, strict=True)]
        layouts[size] = (centres, widths, scale, gap, left_pad, right_pad)
    chosen = None
    for rows in range(1, 9):
        for size in LABEL_FONTS:
            centres, widths, *_ = layouts[size]
            if _rows(centres, widths, 3.0, rows) is not None:
                chosen = size, rows
                break
        if chosen:
            break
    label_pt, rows = chosen or (MIN_FONT, 8)
    _, _, scale, gap, left_pad, right_pad = layouts[label_pt]
    w = w0 * scale
    ds = [d0 * f * scale for f in fd]
    hs = [h_max * f for f in fh]
    xs = place(scale, gap, left_pad)
    used_width = xs[-1] + w + ds[-1] * _COS + right_pad

    # captions: centred under the connector before their box; full or short, in one row or
    # two, or none
    caption_pt = max(MIN_FONT, min(6.5, label_pt - 0.5))
    cap_centres: list[float] = []
    cap_texts: list[str] = []
    cap_rows = 0
    inline = False
    if n > 1:
        mids = [(xs[i - 1] + w + ds[i - 1] * _COS + xs[i]) / 2 for i in range(1, n)]
        gaps = [xs[i] - (xs[i - 1] + w + ds[i - 1] * _COS) for i in range(1, n)]
        # above the arrow between the boxes when every caption fits there
        for pick in () if c.joins else (0, 1):
            texts = [captions[i][pick] for i in range(1, n)]
            wid = [text_width(t, caption_pt) for t in texts]
            if any(texts) and all(x <= g - 4 for x, g in zip(wid, gaps, strict=True)):
                cap_centres, cap_texts, inline = mids, texts, True
                break
    if n > 1 and not inline:
        for limit, pick in ((1, 0), (1, 1), (2, 0), (2, 1)):
            texts = [captions[i][pick] for i in range(1, n)]
            wid = [text_width(t, caption_pt) for t in texts]
            inside = all(
                m - x / 2 >= 1 and m + x / 2 <= width - 1
                for m, x in zip(mids, wid, strict=True)
                if x
            )
            got = _rows(mids, wid, 4.0, limit)
            if inside and got is not None and any(texts):
                cap_centres, cap_texts, cap_rows = mids, texts, got
                break

    # skip paths: lanes above the boxes, shortest spans lowest
    links = c.links()
    ys_top = [hs[i] / 2 + ds[i] * _SIN for i in range(n)]
    joins_x = []
    for p in c.joins:
        a = p.after
        joins_x.append((xs[a] + w + ds[a] * _COS + xs[a + 1]) / 2)

    def anchor(target: tuple[str, int]) -> float:
        if target[0] == "join":
            return joins_x[target[1]]
        i = target[1]
        return xs[i] + (w + ds[i] * _COS) / 2

    outgoing = {i for _, i, _, _ in links}
    incoming = {t[1] for _, _, t, _ in links if t[0] == "box"}
    spans = []
    for k, (_, src, tgt, _) in enumerate(links):
        sx = anchor(("box", src))
        tx = anchor(tgt)
        shift = min(2.0, (w + ds[src] * _COS) / 4)
        if src in incoming:
            sx += shift
        if tgt[0] == "box" and tgt[1] in outgoing:
            tx -= min(2.0, (w + ds[tgt[1]] * _COS) / 4)
        spans.append((abs(tx - sx), min(sx, tx), k, sx, tx))
    lanes: list[list[tuple[float, float]]] = []
    lane_of: dict[int, int] = {}
    for _, lo, k, sx, tx in sorted(spans):
        hi = max(sx, tx)
        for li, taken in enumerate(lanes):
            if all(hi + 3 < a or lo - 3 > b for a, b in taken):
                taken.append((lo, hi))
                lane_of[k] = li
                break
        else:
            lanes.append([(lo, hi)])
            lane_of[k] = len(lanes) - 1
    lane_gap = 5.0

    # vertical layout
    title_pt = 8.0
    y = margin
    title_y = y + title_pt * 0.8
    y += title_pt * 1.3
    lanes_top = y + (4.0 if lanes else 0.0)
    y = lanes_top + len(lanes) * lane_gap + (3.0 if lanes else 0.0)
    y0 = y + max(ys_top)  # the front faces' centre line
    bottom = y0 + max(hs) / 2
    label_base = [bottom + 3 + label_pt * 0.8 + (i % rows) * label_pt * 1.2 for i in range(n)]
    y = bottom + 3 + rows * label_pt * 1.2
    cap_base: list[float] = []
    if inline:
        cap_base = [y0 - 2.5] * (n - 1)
    elif cap_rows:
        y += 1.5
        cap_base = [y + caption_pt * 0.8 + (i % cap_rows) * caption_pt * 1.2 for i in range(n - 1)]
        y += cap_rows * caption_pt * 1.2
    lane_y = [y0 - max(ys_top) - 3 - li * lane_gap for li in range(len(lanes))]

    boxes = []
    for i, slot in enumerate(slots):
        shown = ""
        cx = cy = 0.0
        if (cap_rows or inline) and i > 0:
            shown = cap_texts[i - 1]
            cx, cy = cap_centres[i - 1], cap_base[i - 1]
        boxes.append(
            Box(
                index=i,
                tensor=str(slot.ref),
                shape=shapes[i],
                label=labels[i],
                kind=slot.kind,
                caption=captions[i][0],
                short_caption=captions[i][1],
                x=xs[i],
                y=y0 - hs[i] / 2,
                w=w,
                h=hs[i],
                d=ds[i],
                label_x=xs[i] + (w + ds[i] * _COS) / 2,
                label_y=label_base[i],
                caption_x=cx,
                caption_y=cy,
                caption_shown=shown,
            )
        )
    r = min(3.5, max(2.0, gap / 2 - 1))
    joins = tuple(
        Join(p.node.name, p.node.kind, p.after, joins_x[k], y0, r) for k, p in enumerate(c.joins)
    )
    connectors = []
    for i in range(1, n):
        x1 = xs[i - 1] + w
        x2 = xs[i]
        if x2 - boxes[i - 1].right >= 3:
            connectors.append(Connector(x1, x2, y0))

    skips = []
    for k, (name, src, tgt, kind) in enumerate(links):
        _, _, _, sx, tx = spans[k]
        ly = lane_y[lane_of[k]]
        sy = boxes[src].top_at(sx)
        if tgt[0] == "join":
            ty = y0 - joins[tgt[1]].r
            target = joins[tgt[1]].node
        else:
            ty = boxes[tgt[1]].top_at(tx)
            target = boxes[tgt[1]].tensor
        pts = ((sx, sy), (sx, ly), (tx, ly), (tx, ty))
        kind = kind if kind in SKIP_COLORS else "other"
        skips.append(SkipLine(name, boxes[src].tensor, target, kind, pts))

    # legend: the box kinds, skip kinds and merge symbols used, in rows
    entries: list[tuple[str, str, str]] = []
    used = {b.kind for b in boxes}
    entries += [("box", k, t) for k, t in BOX_KINDS.items() if k in used]
    skip_kinds = {s.kind for s in skips}
    entries += [("skip", k, SKIP_TEXT[k]) for k in SKIP_COLORS if k in skip_kinds]
    join_kinds = {j.kind for j in joins}
    names = {"add": "add", "concat": "concatenate", "multiply": "multiply"}
    entries += [("join", k, names[k]) for k in MERGE_KINDS if k in join_kinds]
    legend_pt = 6.5
    legend = []
    lx, y = margin, y + 6
    row_h = legend_pt * 1.6
    for kind, key, text in entries:
        swatch = 14.0 if kind == "skip" else 8.0
        need = swatch + 3 + text_width(text, legend_pt) + 9
        if lx > margin and lx + need > width - margin:
            lx, y = margin, y + row_h
        legend.append(LegendEntry(kind, key, text, lx, y + row_h / 2, lx + swatch + 3))
        lx += need
    height = y + row_h + margin if entries else y + margin

    title = graph.name + (f" ({note})" if note else "")
    while len(title) > 1 and text_width(title, title_pt) > width - 2 * margin:
        title = title[:-2] + "…"
    return BlocksFigure(
        name=graph.name,
        title=title,
        width=round(
            min(
                width,
                max(
                    used_width,
                    _legend_right(legend, legend_pt),
                    margin * 2 + text_width(title, title_pt),
                ),
            ),
            2,
        ),
        height=round(height, 2),
        title_pt=title_pt,
        label_pt=label_pt,
        caption_pt=caption_pt,
        legend_pt=legend_pt,
        title_x=margin,
        title_y=title_y,
        boxes=tuple(boxes),
        joins=joins,
        connectors=tuple(connectors),
        skips=tuple(skips),
        legend=tuple(legend),
        note=note,
    )


def _legend_right(legend: list[LegendEntry], size: float) -> float:
    return max((e.text_x + text_width(e.text, size) + 4 for e in legend), default=0.0)


# -- escaping -----------------------------------------------------------------------------------

#: Controls, line separators and bidirectional controls (which reorder how a text reads).
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]"
)


def xml_escape(text: str) -> str:
    """``text`` as XML character data or an attribute value (in double quotes): markup
    characters as entities, control characters as spaces."""
    text = _CONTROL.sub(" ", str(text))
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


#: How the characters TeX treats specially, and the few others figures use, are written.
_TEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': "''",
    "-": "-{}",
    "[": "{[}",
    "]": "{]}",
    "×": r"\ensuremath{\times}",
    "²": r"\textsuperscript{2}",
    "³": r"\textsuperscript{3}",
    "↓": r"\ensuremath{\downarrow}",
    "↑": r"\ensuremath{\uparrow}",
    "→": r"\ensuremath{\rightarrow}",
    "·": r"\ensuremath{\cdot}",
    "…": r"\ldots{}",
    "—": "---",
    "–": "--",
}


def tex_escape(text: str) -> str:
    """``text`` as inert LaTeX text: TeX's special characters escaped, control characters as
    spaces, the figures' own symbols (× ² ³ ↓ ↑ …) as commands and any other non-ASCII character
    as ``?`` (the document is plain ASCII)."""
    out = []
    for ch in _CONTROL.sub(" ", str(text)):
        if ch in _TEX:
            out.append(_TEX[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


# -- colours and numbers ------------------------------------------------------------------------


def _mix(color: str, other: str, t: float) -> str:
    a = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _faces(kind: str) -> tuple[str, str, str, str]:
    """(front, top, side, outline) colours of a box kind."""
    front, line = BOX_COLORS[kind]
    return front, _mix(front, "#ffffff", 0.45), _mix(front, "#000000", 0.18), line


def _num(v: float) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# -- SVG ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SvgBox:
    tensor: str
    kind: str
    side: str
    top: str
    front: tuple[str, str, str, str]
    fills: tuple[str, str, str, str]
    label: str
    label_x: str
    label_y: str


@dataclass(frozen=True)
class _SvgText:
    text: str
    x: str
    y: str


@dataclass(frozen=True)
class _SvgPath:
    cls: str
    attrs: str
    d: str
    color: str
    marker: str


@dataclass(frozen=True)
class _SvgJoin:
    node: str
    kind: str
    cx: str
    cy: str
    r: str
    glyph: str


@dataclass(frozen=True)
class _SvgLegend:
    kind: str
    key: str
    shapes: tuple[str, ...]
    text: str
    x: str
    y: str


@dataclass(frozen=True)
class _SvgView:
    header: str
    comment: str  # the header in an XML comment, where "--" may not appear
    namespace: str
    title: str
    name: str
    width: str
    height: str
    title_x: str
    title_y: str
    title_pt: str
    label_pt: str
    caption_pt: str
    legend_pt: str
    markers: tuple[tuple[str, str], ...]
    main_line: str
    text_color: str
    muted_color: str
    boxes: tuple[_SvgBox, ...]
    connectors: tuple[_SvgPath, ...]
    joins: tuple[_SvgJoin, ...]
    skips: tuple[_SvgPath, ...]
    captions: tuple[_SvgText, ...]
    legend: tuple[_SvgLegend, ...]


def _points(pts) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in pts)


def _box_polys(b: Box, x: float, y: float) -> tuple[list, list, tuple[float, float, float, float]]:
    """Side and top faces as point lists and the front face as (x, y, w, h), for a box drawn
    with its front face's top left at (x, y)."""
    dx, dy = b.dx, b.dy
    side = [(x + b.w, y), (x + b.w + dx, y - dy), (x + b.w + dx, y + b.h - dy), (x + b.w, y + b.h)]
    top = [(x, y), (x + dx, y - dy), (x + b.w + dx, y - dy), (x + b.w, y)]
    return side, top, (x, y, b.w, b.h)


def _glyph_segments(kind: str, cx: float, cy: float, r: float):
    """The strokes of the symbol inside a merge circle: + for add, || for concat, × for
    multiply."""
    a = r * 0.55
    if kind == "concat":
        return (
            ((cx - a / 2, cy - a), (cx - a / 2, cy + a)),
            ((cx + a / 2, cy - a), (cx + a / 2, cy + a)),
        )
    if kind == "multiply":
        return (((cx - a, cy - a), (cx + a, cy + a)), ((cx - a, cy + a), (cx + a, cy - a)))
    return (((cx - a, cy), (cx + a, cy)), ((cx, cy - a), (cx, cy + a)))


def _glyph(kind: str, cx: float, cy: float, r: float) -> str:
    return "".join(
        f"M{_num(a[0])},{_num(a[1])}L{_num(b[0])},{_num(b[1])}"
        for a, b in _glyph_segments(kind, cx, cy, r)
    )


def _legend_box(kind: str) -> Box:
    return Box(0, "", (), "", kind, "", "", 0.0, 0.0, 5.0, 7.0, 4.0)


def svg_view(fig: BlocksFigure, header: str) -> _SvgView:
    boxes = []
    for b in fig.boxes:
        side, top, front = _box_polys(b, b.x, b.y)
        f, t, s, line = _faces(b.kind)
        boxes.append(
            _SvgBox(
                xml_escape(b.tensor),
                b.kind,
                _points(side),
                _points(top),
                tuple(_num(v) for v in front),
                (f, t, s, line),
                xml_escape(b.label),
                _num(b.label_x),
                _num(b.label_y),
            )
        )
    connectors = tuple(
        _SvgPath(
            "main",
            "",
            f"M{_num(cn.x1)},{_num(cn.y)}H{_num(cn.x2 - 0.6)}",
            MAIN_LINE,
            "arrow-main",
        )
        for cn in fig.connectors
    )
    skips = []
    for sk in fig.skips:
        d = "M" + "L".join(f"{_num(x)},{_num(y)}" for x, y in sk.points)
        attrs = (
            f' specgen:source="{xml_escape(sk.source)}" specgen:target="{xml_escape(sk.target)}"'
        )
        if sk.name is not None:
            attrs = f' specgen:skip="{xml_escape(sk.name)}"' + attrs
        cls = "skip" if sk.name is not None else "skip wired"
        skips.append(
            _SvgPath(cls, attrs, d, SKIP_COLORS.get(sk.kind, MAIN_LINE), f"arrow-{sk.kind}")
        )
    joins = tuple(
        _SvgJoin(
            xml_escape(j.node),
            j.kind,
            _num(j.x),
            _num(j.y),
            _num(j.r),
            _glyph(j.kind, j.x, j.y, j.r),
        )
        for j in fig.joins
    )
    captions = tuple(
        _SvgText(xml_escape(b.caption_shown), _num(b.caption_x), _num(b.caption_y))
        for b in fig.boxes
        if b.caption_shown
    )
    legend = []
    for e in fig.legend:
        y = e.y
        if e.kind == "box":
            side, top, front = _box_polys(_legend_box(e.key), e.x, y - 2.0)
            f, t, s, line = _faces(e.key)
            shapes = (
                f'<polygon points="{_points(side)}" fill="{s}" stroke="{line}" '
                'stroke-width="0.4" stroke-linejoin="round"/>',
                f'<polygon points="{_points(top)}" fill="{t}" stroke="{line}" '
                'stroke-width="0.4" stroke-linejoin="round"/>',
                f'<rect x="{_num(front[0])}" y="{_num(front[1])}" width="{_num(front[2])}" '
                f'height="{_num(front[3])}" fill="{f}" stroke="{line}" stroke-width="0.4"/>',
            )
        elif e.kind == "skip":
            color = SKIP_COLORS[e.key]
            shapes = (
                f'<path d="M{_num(e.x)},{_num(y)}H{_num(e.x + 13)}" fill="none" '
                f'stroke="{color}" stroke-width="0.8" stroke-dasharray="2.5 1.5" '
                f'marker-end="url(#arrow-{e.key})"/>',
            )
        else:
            cx, r = e.x + 4, 3.2
            shapes = (
                f'<circle cx="{_num(cx)}" cy="{_num(y)}" r="{_num(r)}" fill="#ffffff" '
                f'stroke="{MAIN_LINE}" stroke-width="0.6"/>',
                f'<path d="{_glyph(e.key, cx, y, r)}" fill="none" stroke="{MAIN_LINE}" '
                'stroke-width="0.6"/>',
            )
        legend.append(
            _SvgLegend(
                e.kind,
                e.key,
                shapes,
                xml_escape(e.text),
                _num(e.text_x),
                _num(y + fig.legend_pt * 0.35),
            )
        )
    used = sorted({sk.kind for sk in fig.skips} | {e.key for e in fig.legend if e.kind == "skip"})
    markers = (("arrow-main", MAIN_LINE),) + tuple(
        (f"arrow-{k}", SKIP_COLORS.get(k, MAIN_LINE)) for k in used
    )
    return _SvgView(
        header=xml_escape(header),
        comment=xml_escape(header).replace("-", "&#45;"),
        namespace=SVG_NAMESPACE,
        title=xml_escape(fig.title),
        name=xml_escape(fig.name),
        width=_num(fig.width),
        height=_num(fig.height),
        title_x=_num(fig.title_x),
        title_y=_num(fig.title_y),
        title_pt=_num(fig.title_pt),
        label_pt=_num(fig.label_pt),
        caption_pt=_num(fig.caption_pt),
        legend_pt=_num(fig.legend_pt),
        markers=markers,
        main_line=MAIN_LINE,
        text_color=TEXT_COLOR,
        muted_color=MUTED_COLOR,
        boxes=tuple(boxes),
        connectors=connectors,
        joins=joins,
        skips=tuple(skips),
        captions=captions,
        legend=tuple(legend),
    )


def to_svg(fig: BlocksFigure, header: str) -> str:
    """The figure as a standalone SVG 1.1 document, sized in points."""
    return render("diagram/blocks.svg.j2", v=svg_view(fig, header))


# -- TikZ ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TexColor:
    args: str


@dataclass(frozen=True)
class _TexStyle:
    name: str
    body: str


@dataclass(frozen=True)
class _TexBox:
    comment: str
    args: str


@dataclass(frozen=True)
class _TexNode:
    at: str
    text: str


@dataclass(frozen=True)
class _TexPath:
    comment: str
    style: str
    path: str


@dataclass(frozen=True)
class _TexJoin:
    comment: str
    circle: str
    sign: str


@dataclass(frozen=True)
class _TexLegend:
    comment: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _TexView:
    header: str
    title: str
    width: str
    height: str
    colors: tuple[_TexColor, ...]
    styles: tuple[_TexStyle, ...]
    title_node: _TexNode
    boxes: tuple[_TexBox, ...]
    labels: tuple[_TexNode, ...]
    captions: tuple[_TexNode, ...]
    connectors: tuple[_TexPath, ...]
    joins: tuple[_TexJoin, ...]
    skips: tuple[_TexPath, ...]
    legend: tuple[_TexLegend, ...]


def _tex_name(kind: str) -> str:
    return "".join(p.capitalize() for p in kind.split("_"))


def _tex_font(size: float, extra: str = "") -> str:
    return f"\\fontsize{{{_num(size)}bp}}{{{_num(size * 1.2)}bp}}\\selectfont\\sffamily{extra}"


_ARROW = "-{Stealth[length=3bp, width=2.6bp]}"


def _tex_styles(fig: BlocksFigure) -> tuple[tuple[_TexColor, ...], tuple[_TexStyle, ...]]:
    colors, styles = [], []
    for kind in BOX_KINDS:
        name = _tex_name(kind)
        for face, color in zip(("Front", "Top", "Side", "Line"), _faces(kind), strict=True):
            colors.append(_TexColor(f"{{box{name}{face}}}{{HTML}}{{{color[1:].upper()}}}"))
        for face in ("front", "top", "side"):
            styles.append(
                _TexStyle(
                    f"box {kind} {face}",
                    f"{{fill=box{name}{face.capitalize()}, draw=box{name}Line}}",
                )
            )
    for kind, color in SKIP_COLORS.items():
        name = _tex_name(kind)
        colors.append(_TexColor(f"{{skip{name}}}{{HTML}}{{{color[1:].upper()}}}"))
        styles.append(
            _TexStyle(
                f"skip {kind}",
                f"{{draw=skip{name}, line width=0.8bp, line join=round, "
                f"dash pattern=on 2.5bp off 1.5bp, {_ARROW}}}",
            )
        )
    colors += [
        _TexColor(f"{{mainPath}}{{HTML}}{{{MAIN_LINE[1:].upper()}}}"),
        _TexColor(f"{{labelText}}{{HTML}}{{{TEXT_COLOR[1:].upper()}}}"),
        _TexColor(f"{{captionText}}{{HTML}}{{{MUTED_COLOR[1:].upper()}}}"),
    ]
    styles += [
        _TexStyle("main path", f"{{draw=mainPath, line width=0.6bp, {_ARROW}}}"),
        _TexStyle("merge", "{draw=mainPath, fill=white, line width=0.6bp}"),
        _TexStyle("merge sign", "{draw=mainPath, line width=0.6bp}"),
        _TexStyle(
            "title",
            f"{{font={_tex_font(fig.title_pt, chr(92) + 'bfseries')}, anchor=base west, "
            "inner sep=0pt, text=labelText}",
        ),
        _TexStyle(
            "shape label",
            f"{{font={_tex_font(fig.label_pt)}, anchor=base, inner sep=0pt, text=labelText}}",
        ),
        _TexStyle(
            "caption",
            f"{{font={_tex_font(fig.caption_pt, chr(92) + 'itshape')}, anchor=base, "
            "inner sep=0pt, text=captionText}",
        ),
        _TexStyle(
            "legend text",
            f"{{font={_tex_font(fig.legend_pt)}, anchor=base west, inner sep=0pt, text=labelText}}",
        ),
    ]
    return tuple(colors), tuple(styles)


def _ascii_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def tikz_view(fig: BlocksFigure, header: str) -> _TexView:
    height = fig.height

    def pt(x: float, y: float) -> str:
        return f"({_num(x)},{_num(height - y)})"

    def node(x: float, y: float, text: str) -> _TexNode:
        return _TexNode(pt(x, y), "{" + tex_escape(text) + "}")

    def box_args(kind: str, x: float, y: float, b: Box) -> str:
        nums = (x, height - y - b.h, b.w, b.h, b.dx, b.dy)
        return f"{{{kind}}}" + "".join(f"{{{_num(v)}}}" for v in nums)

    def segments(segs) -> str:
        return " ".join(f"{pt(*a)} -- {pt(*b)}" for a, b in segs)

    colors, styles = _tex_styles(fig)
    boxes = tuple(
        _TexBox(tex_escape(f"{b.tensor}, {_ascii_shape(b.shape)}"), box_args(b.kind, b.x, b.y, b))
        for b in fig.boxes
    )
    labels = tuple(node(b.label_x, b.label_y, b.label) for b in fig.boxes)
    captions = tuple(
        node(b.caption_x, b.caption_y, b.caption_shown) for b in fig.boxes if b.caption_shown
    )
    connectors = tuple(
        _TexPath("", "main path", f"{pt(cn.x1, cn.y)} -- {pt(cn.x2 - 0.6, cn.y)}")
        for cn in fig.connectors
    )
    joins = tuple(
        _TexJoin(
            tex_escape(f"{j.kind}: {j.node}"),
            f"{pt(j.x, j.y)} circle[radius={_num(j.r)}]",
            segments(_glyph_segments(j.kind, j.x, j.y, j.r)),
        )
        for j in fig.joins
    )
    skips = tuple(
        _TexPath(
            tex_escape(
                f"skip {sk.name}: {sk.source} to {sk.target}"
                if sk.name is not None
                else f"{sk.target} reads {sk.source}"
            ),
            f"skip {sk.kind}",
            " -- ".join(pt(x, y) for x, y in sk.points),
        )
        for sk in fig.skips
    )
    legend = []
    for e in fig.legend:
        if e.kind == "box":
            probe = _legend_box(e.key)
            lines = [f"\\featurebox{box_args(e.key, e.x, e.y - 2.0, probe)}"]
        elif e.kind == "skip":
            lines = [f"\\draw[skip {e.key}] {pt(e.x, e.y)} -- {pt(e.x + 13, e.y)};"]
        else:
            cx, r = e.x + 4, 3.2
            lines = [
                f"\\draw[merge] {pt(cx, e.y)} circle[radius={_num(r)}];",
                f"\\draw[merge sign] {segments(_glyph_segments(e.key, cx, e.y, r))};",
            ]
        text = node(e.text_x, e.y + fig.legend_pt * 0.35, e.text)
        lines.append(f"\\node[legend text] at {text.at} {text.text};")
        legend.append(_TexLegend(tex_escape(e.text), tuple(lines)))
    title = node(fig.title_x, fig.title_y, fig.title)
    return _TexView(
        header=tex_escape(header),
        title=tex_escape(fig.title),
        width=_num(fig.width),
        height=_num(fig.height),
        colors=colors,
        styles=styles,
        title_node=title,
        boxes=boxes,
        labels=labels,
        captions=captions,
        connectors=connectors,
        joins=joins,
        skips=skips,
        legend=tuple(legend),
    )


def to_tikz(fig: BlocksFigure, header: str) -> str:
    """The figure as a complete LaTeX document (TikZ) whose page is the figure's size."""
    return render("diagram/blocks.tex.j2", v=tikz_view(fig, header))


# -- pdflatex and pdftoppm ----------------------------------------------------------------------

#: Seconds pdflatex and pdftoppm may take for one figure.
TOOL_TIMEOUT = 60

LATEX_PACKAGES = "texlive-latex-base texlive-pictures"


class BlocksToolError(Exception):
    """pdflatex or pdftoppm is missing or failed."""


class LatexError(BlocksToolError):
    pass


class PdftoppmError(BlocksToolError):
    pass


def pdflatex_available() -> bool:
    return shutil.which("pdflatex") is not None


def pdftoppm_available() -> bool:
    return shutil.which("pdftoppm") is not None


def _tool_env(folder: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # write only into the run's folder; read no dot files or paths outside the tree
            "TEXMFOUTPUT": folder,
            "openout_any": "p",
            "openin_any": "p",
            "shell_escape": "f",
            # the same PDF bytes on every run
            "SOURCE_DATE_EPOCH": "0",
            "FORCE_SOURCE_DATE": "1",
            "LC_ALL": "C",
        }
    )
    return env


def _latex_error(log: str, fallback: str) -> str:
    """The first error of a TeX log (the ``!`` line and the line it happened on)."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("!"):
            where = next((x.strip() for x in lines[i + 1 : i + 8] if x.startswith("l.")), "")
            return (line + (f" ({where})" if where else ""))[:500]
    tail = [x for x in fallback.splitlines() if x.strip()]
    return (tail[-1] if tail else "pdflatex failed without a message")[:500]


def _run_tool(argv: list[str], folder: str, timeout: int, error: type[BlocksToolError]):
    """Run a drawing tool in ``folder`` (its own environment, no input, output captured),
    within ``timeout`` seconds, or raise ``error``."""
    try:
        return subprocess.run(
            argv,
            cwd=folder,
            env=_tool_env(folder),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        name = Path(argv[0]).name
        raise error(f"{name} took longer than {timeout} s") from None


def run_pdflatex(tex: str, timeout: int = TOOL_TIMEOUT) -> bytes:
    """Compile a LaTeX document with pdflatex (no shell escape, stopping at the first error) in a
    fresh temporary folder; the PDF's bytes."""
    exe = shutil.which("pdflatex")
    if exe is None:
        raise LatexError(
            f"pdflatex is not installed (Debian/Ubuntu: apt-get install {LATEX_PACKAGES})"
        )
    with tempfile.TemporaryDirectory(prefix="specgen-latex-") as folder:
        Path(folder, "figure.tex").write_text(tex, encoding="utf-8")
        argv = [exe, "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error"]
        argv += ["-output-directory", folder, "figure.tex"]
        proc = _run_tool(argv, folder, timeout, LatexError)
        pdf = Path(folder, "figure.pdf")
        if proc.returncode != 0 or not pdf.is_file():
            log_file = Path(folder, "figure.log")
            log = log_file.read_text("utf-8", "replace") if log_file.is_file() else ""
            stdout = proc.stdout.decode("utf-8", "replace")
            raise LatexError(_latex_error(log or stdout, stdout))
        return pdf.read_bytes()


def pdf_to_png(pdf: bytes, dpi: int = 200, timeout: int = TOOL_TIMEOUT) -> bytes:
    """The first page of a PDF as PNG, rendered by poppler's pdftoppm at ``dpi``."""
    if not 1 <= int(dpi) <= 2400:
        raise ValueError("dpi must be between 1 and 2400")
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise PdftoppmError(
            "pdftoppm is not installed (Debian/Ubuntu: apt-get install poppler-utils)"
        )
    with tempfile.TemporaryDirectory(prefix="specgen-png-") as folder:
        Path(folder, "figure.pdf").write_bytes(pdf)
        argv = [exe, "-png", "-r", str(int(dpi)), "-f", "1", "-l", "1", "-singlefile"]
        proc = _run_tool([*argv, "figure.pdf", "figure"], folder, timeout, PdftoppmError)
        png = Path(folder, "figure.png")
        if proc.returncode != 0 or not png.is_file():
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise PdftoppmError((msg[0] if msg else "pdftoppm failed without a message")[:500])
        return png.read_bytes()
