"""Scopes and names: where each node and group gets its dotted name, and how references resolve.

A :class:`Scope` is one group being filled (a part, a group, a loop iteration, a block instance or
a skip path): its dotted prefix, its input, its evaluation environment and the local names defined
in it so far. :class:`Names` holds every name claimed in the whole spec, the tensor each one
stands for, and the references that did not resolve when they were read (reported at the end).
"""

from __future__ import annotations

from collections.abc import Mapping
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


class Names:
    """Every name claimed so far, the tensor each stands for, and unresolved references."""

    def __init__(self, budget: Budget):
        self.budget = budget
        #: the output of each named node or group (None after an error)
        self.tensors: dict[str, TensorRef | None] = {}
        self.defined_at: dict[str, Path] = {}
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
            self.budget.error(f"duplicate name '{local}' in {scope.prefix}{at}", path, notes=notes)
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
        return full

    def record(self, scope: Scope, local: str, ref: TensorRef | None) -> str:
        """Record ``local``'s output in ``scope``; returns its full name."""
        full = scope.full(local)
        scope.names[local] = ref
        self.tensors[full] = ref
        return full

    def resolve(self, text: str, scope: Scope, consumer: str, path: Path, notes=()):
        """A reference in ``inputs``/``from``: sibling, ``input``, relative or absolute dotted.
        Returns ``(tensor, found)``; a reference not found is remembered for the final report."""
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
