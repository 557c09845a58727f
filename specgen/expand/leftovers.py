"""What is left when every part is expanded: skip paths whose target never came, and references
that never resolved (unknown, defined only later, or making a cycle)."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from ..errors import Path, suggest
from ..graph import INPUT
from .budget import Budget
from .nodes import DraftGraph
from .scopes import Names
from .skips import SkipInstance


def report_leftovers(
    budget: Budget, names: Names, draft: DraftGraph, pending: dict[str, list[SkipInstance]]
) -> None:
    """Report skip targets never reached and references that never resolved."""
    known = set(names.tensors) | {INPUT}
    for target, instances in sorted(pending.items()):
        for inst in instances:
            budget.error(
                f"skip '{inst.name}' joins '{target}', which does not exist",
                inst.path + ("to",),
                hint=_near(target, known),
            )
    cycles = _Cycles(names, draft)
    seen_paths: set[Path] = set()
    by_path: dict[Path, list] = {}
    for name, consumer, path, notes in names.unresolved:
        by_path.setdefault(path, []).append((name, consumer, notes))
    for path, cands in by_path.items():
        if path in seen_paths:
            continue
        seen_paths.add(path)
        later = [c for c in cands if c[0] in draft.nodes or c[0] in names.tensors]
        name, consumer, notes = (later or cands)[-1] if not later else later[0]
        shown = cands[-1][0]
        if later:
            cycle = cycles.through(name, consumer)
            if cycle:
                budget.error(
                    "this reference makes a cycle: " + " -> ".join(cycle), path, notes=notes
                )
            else:
                budget.error(
                    f"'{name}' is defined after it is used here; references must "
                    "point to earlier tensors",
                    path,
                    hint=f"'{name}' is defined at {budget.where(names.defined_at[name])}"
                    if name in names.defined_at
                    else None,
                    notes=notes,
                )
        else:
            scope_prefix = cands[0][0][: -len(shown) - 1] if len(cands) > 1 else ""
            siblings = {
                k[len(scope_prefix) + 1 :]
                for k in known
                if scope_prefix
                and k.startswith(scope_prefix + ".")
                and "." not in k[len(scope_prefix) + 1 :]
            }
            budget.error(
                f"unknown reference '{shown}'",
                path,
                hint=_near(shown, siblings | known),
                notes=notes,
            )


class _Cycles:
    """Cycles that a reference to a later tensor would close, in the draft graph's edges."""

    def __init__(self, names: Names, draft: DraftGraph):
        self.names = names
        self.draft = draft
        self.graph: nx.DiGraph | None = None

    def through(self, source: str, consumer: str) -> list[str] | None:
        g = self.graph
        if g is None:  # built once: every reference reported after expansion asks
            g = self.graph = nx.DiGraph()
            for d in self.draft.nodes.values():
                for r in d.inputs:
                    g.add_edge(r.node, d.name)
        # a group name stands for its last node
        src = source
        tensors = self.names.tensors
        if src not in g and tensors.get(src) is not None:
            src = tensors[src].node
        if consumer not in g or src not in g:
            return None
        try:
            path = nx.shortest_path(g, consumer, src)
        except nx.NetworkXNoPath:
            return None
        return path + [consumer]


def _near(name: str, known: Iterable[str]) -> str | None:
    near = suggest(name, known)
    return f"did you mean '{near}'?" if near else None
