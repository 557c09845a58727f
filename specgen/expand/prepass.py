"""Checks before expansion, which need no evaluation: block and parameter names, layer kinds and
their fields, block references, and blocks that use each other in a cycle or too deep a chain."""

from __future__ import annotations

import networkx as nx

from ..errors import Path, choices_hint
from ..graph import find_cycle
from ..layers import REGISTRY
from ..names import check_identifier, identifier_hint
from ..plugins import UNKNOWN_KIND_HINT
from ..schema import BUILTIN_VARIABLES, BlockItem, LayerItem, LevelsItem, SpecDocument
from .budget import MAX_NESTING, Abort, Budget, chain


def prepass(doc: SpecDocument, budget: Budget) -> set[Path]:
    """Report what can be checked without evaluating; returns the key paths of layer items with
    unknown fields (expansion leaves their nodes out). Stops with :class:`Abort` when blocks use
    each other in a cycle or too deep a chain (expanding them would not end)."""
    return _Prepass(doc, budget).run()


class _Prepass:
    def __init__(self, doc: SpecDocument, budget: Budget):
        self.doc = doc
        self.budget = budget
        self.rejected: set[Path] = set()

    def run(self) -> set[Path]:
        error = self.budget.error
        for name, bdef in self.doc.blocks.items():
            problem = check_identifier(name)
            if problem:
                error(
                    f"invalid block name: {problem}",
                    ("blocks", name),
                    identifier_hint(name),
                    key=True,
                )
            for pname in bdef.params:
                problem = check_identifier(pname, allow_reserved=True)
                if problem is None and pname in BUILTIN_VARIABLES:
                    problem = f"'{pname}' is bound by specgen itself"
                if problem:
                    error(
                        f"invalid block parameter name: {problem}",
                        ("blocks", name, "params", pname),
                        key=True,
                    )
        uses = nx.DiGraph()
        for section, items in self.item_lists():
            self.check_items(items, section, uses)
        for bname in self.doc.blocks:
            uses.add_node(("block", bname))
        blocks = uses.subgraph([n for n in uses if n[0] == "block"])
        cycle = find_cycle(blocks)
        if cycle:
            names = " -> ".join(u[1] for u in cycle)
            error(f"blocks use each other in a cycle: {names}", ("blocks", cycle[0][1]), key=True)
            raise Abort  # expanding them would not end
        deepest = [u[1] for u in nx.dag_longest_path(blocks)]
        if len(deepest) > MAX_NESTING:
            error(
                f"blocks use each other {len(deepest)} deep, more than the limit of "
                f"{MAX_NESTING}: {chain(deepest)}",
                ("blocks", deepest[0]),
                hint="each block here uses the next one in its layers",
                key=True,
            )
            raise Abort
        return self.rejected

    def item_lists(self):
        yield ("encoder",), self.doc.encoder
        if isinstance(self.doc.bottleneck, list):
            yield ("bottleneck",), self.doc.bottleneck
        yield ("decoder",), self.doc.decoder
        for bname, bdef in self.doc.blocks.items():
            yield ("blocks", bname, "layers"), bdef.layers
        for s, spec in enumerate(self.doc.skips):
            yield ("skips", s, "layers"), spec.layers

    def check_items(self, items, path: Path, uses: nx.DiGraph) -> None:
        owner = ("block", path[1]) if path[0] == "blocks" else ("root",)
        for i, item in enumerate(items):
            ipath = path + (i,)
            if isinstance(item, LayerItem):
                cls = REGISTRY.get(item.kind)
                if cls is None:
                    self.budget.error(
                        f"unknown layer kind '{item.kind}'",
                        ipath + ("kind",),
                        hint=choices_hint(item.kind, REGISTRY, "layer kinds")
                        + f"; {UNKNOWN_KIND_HINT}",
                    )
                    continue
                allowed = set(cls.model_fields) - {"kind"}
                for key in item.model_extra or {}:
                    if key not in allowed:
                        self.rejected.add(ipath)
                        self.budget.error(
                            f"{item.kind} has no field '{key}'",
                            ipath + (key,),
                            hint=choices_hint(key, allowed, f"fields of {item.kind}")
                            if allowed
                            else f"{item.kind} has no fields besides kind, name, inputs and when",
                            key=True,
                        )
            elif isinstance(item, BlockItem):
                self.check_block_ref(item.block, ipath, owner, uses)
            elif isinstance(item, LevelsItem):
                if item.block is not None:
                    self.check_block_ref(item.block, ipath, owner, uses)
                self.check_items(item.before, ipath + ("before",), uses)
                self.check_items(item.after, ipath + ("after",), uses)
            else:
                self.check_items(item.layers, ipath + ("layers",), uses)

    def check_block_ref(self, block: str, ipath: Path, owner, uses: nx.DiGraph) -> None:
        if block not in self.doc.blocks:
            self.budget.error(
                f"unknown block '{block}'",
                ipath + ("block",),
                hint=choices_hint(block, self.doc.blocks, "blocks of the spec and the library")
                if self.doc.blocks
                else "define it under 'blocks:'",
            )
        else:
            uses.add_edge(owner, ("block", block))
