"""Scopes and names: where each node and group gets its dotted name, and how references resolve.

A :class:`Scope` is one group being filled (a part, a group, a loop iteration, a block instance or
a skip path): its dotted prefix, its input, its evaluation environment and the local names defined
in it so far. :class:`Names` holds every name claimed in the whole spec, the tensor each one
stands for, and the references that did not resolve when they were read (reported at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Path
from ..graph import INPUT, TensorRef
from .budget import Budget


@dataclass
class Scope:
    prefix: str
    part: str
    input: TensorRef | None
    env: Mapping[str, Any]
    names: dict[str, TensorRef | None] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    role: str = "layer"
    skip: str | None = None

    def full(self, local: str) -> str:
        return f"{self.prefix}.{local}"

    def child(self, full: str, current, env, *, notes=None) -> Scope:
        """The scope of the group ``full`` opened here, starting from ``current``."""
        return Scope(
            full,
            self.part,
            current,
            env,
            notes=self.notes if notes is None else notes,
            role=self.role,
            skip=self.skip,
        )

    def inline(self, current, env, *, notes) -> Scope:
        """This scope as an inlined block's items see it: the same names, counters and prefix,
        with ``input`` the tensor the block starts from and the block's environment."""
        return Scope(
            self.prefix,
            self.part,
            current,
            env,
            self.names,
            self.folded,
            self.counters,
            notes,
            self.role,
            self.skip,
        )


class Names:
    """Every name claimed so far, the tensor each stands for, and unresolved references."""

    def __init__(self, budget: Budget, port_count: Callable[[str], int | None] | None = None):
        self.budget = budget
        #: how many outputs a node has (None while unknown), to check ``node:k`` references
        self.port_count = port_count
        #: the output of each named node or group (None after an error)
        self.tensors: dict[str, TensorRef | None] = {}
        self.defined_at: dict[str, Path] = {}
        #: the notes (block use sites) of each name's definition
        self.defined_notes: dict[str, tuple[str, ...]] = {}
        #: (candidate name, consumer, key path, notes) of references not found when read
        self.unresolved: list[tuple[str, str, Path, tuple[str, ...]]] = []
        #: the scope of each part (skip paths join into them)
        self.parts: dict[str, Scope] = {}

    def claim(self, scope: Scope, local: str, path: Path, notes=()) -> str | None:
        """Reserve ``local`` in ``scope``; duplicate (or case-folded duplicate) names are errors."""
        full = scope.full(local)
        if local in scope.names or full in self.defined_at:
            first = self.defined_at.get(full)
            at = f" (first defined at {self.budget.where(first)})" if first is not None else ""
            hint = None
            earlier = self.defined_notes.get(full, ())
            if first == path and earlier:  # one item of an inlined block, made twice
                at = f" (first defined at {self.budget.where(first)}, {earlier[0]})"
                hint = (
                    "an inlined block names its nodes in the scope it is used in, so two uses "
                    "of it there make each name twice: drop 'inline: true' from one, or make "
                    "the name depend on a block parameter"
                )
            self.budget.error(
                f"duplicate name '{local}' in {scope.prefix}{at}", path, hint, notes=notes
            )
            return None
        folded = local.lower()
        if folded in scope.folded:
            self.budget.error(
                f"names '{scope.folded[folded]}' and '{local}' in {scope.prefix} differ only by "
                "case; generated file and attribute names need them distinct",
                path,
                notes=notes,
            )
            return None
        scope.folded[folded] = local
        scope.names[local] = None
        self.defined_at[full] = path
        self.defined_notes[full] = tuple(notes)
        return full

    def record(self, scope: Scope, local: str, ref: TensorRef | None) -> str:
        """Record ``local``'s output in ``scope``; returns its full name."""
        full = scope.full(local)
        scope.names[local] = ref
        self.tensors[full] = ref
        return full

    def resolve(self, text: str, scope: Scope, consumer: str, path: Path, notes=()):
        """A reference in ``inputs``/``from``: sibling, ``input``, relative or absolute dotted,
        optionally followed by ``:k``, the node's output ``k``. Returns ``(tensor, found)``; a
        reference not found is remembered for the final report."""
        if ":" in text:
            return self._resolve_port(text, scope, consumer, path, notes)
        if text == INPUT:
            return scope.input, True
        if "." not in text and text in scope.names:
            return scope.names[text], True
        for candidate in (scope.full(text), text):
            if candidate in self.tensors:
                return self.tensors[candidate], True
        for candidate in (scope.full(text), text):
            self.unresolved.append((candidate, consumer, path, tuple(notes)))
        return None, False

    def _resolve_port(self, text: str, scope: Scope, consumer: str, path: Path, notes):
        """``name:k``: output ``k`` of the node ``name`` stands for."""
        head, _, tail = text.rpartition(":")
        if not (tail.isascii() and tail.isdigit()) or not head or ":" in head:
            self.budget.error(
                f"bad reference '{text}': write 'name:k' for output k of a node (k = 0, 1, ...)",
                path,
                notes=notes,
            )
            return None, True
        ref, found = self.resolve(head, scope, consumer, path, notes)
        if ref is None:
            return None, found
        port = int(tail)
        count = self.port_count(ref.node) if self.port_count is not None else None
        if ref.node == INPUT:
            count = 1
        if count is not None and port >= count:
            outputs = "1 output" if count == 1 else f"{count} outputs"
            self.budget.error(
                f"'{head}' has {outputs}, so '{text}' names none of them",
                path,
                hint=f"outputs are numbered from 0 to {count - 1}",
                notes=notes,
            )
            return None, True
        return TensorRef(ref.node, port), True
