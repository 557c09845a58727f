"""Model outputs: the tensors the model returns besides the reconstruction, each with a role.

Outputs are declared, never inferred: a block's ``outputs`` (one set per instance, ``from``
relative to the instance) and the spec's top-level ``outputs``. The role says what the training
scripts do with an output (:data:`~specgen.schema.OutputRole`). An entry without ``from`` places
an output declared elsewhere — the reconstruction, or (at the top level) an output of a block.

The order of the model's outputs: first the reconstruction and the blocks' outputs, in the order
the blocks are expanded (the reconstruction first unless a block's ``{name: reconstruction}``
places it), leaving out those the top-level list places; then the top-level list in its order.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from ..errors import Path
from ..graph import TensorRef
from ..layers import fmt_shape
from ..schema import OutputDecl, OutputRole
from .budget import Budget
from .evaluate import FAILED, Evaluator
from .nodes import DraftGraph
from .scopes import Names, Scope

ROLES: tuple[str, ...] = typing.get_args(OutputRole)
RECONSTRUCTION = "reconstruction"
#: Roles a model has at most one output of; ``likelihoods`` and ``extra`` may repeat.
SINGLE_ROLES = frozenset(ROLES) - {"likelihoods", "extra"}


@dataclass
class Declared:
    name: str
    #: the tensor; None for an entry that places an output declared elsewhere
    ref: TensorRef | None
    role: str | None
    path: Path
    notes: tuple[str, ...]
    top_level: bool
    #: whether the tensor is known (False after an error upstream)
    ok: bool = True


class Outputs:
    """The model outputs declared while expanding, and their final order and roles."""

    def __init__(self, budget: Budget, evaluator: Evaluator, names: Names, draft: DraftGraph):
        self.budget = budget
        self.evaluator = evaluator
        self.names = names
        self.draft = draft
        self.declared: list[Declared] = []

    def declare(
        self, decls: list[OutputDecl], scope: Scope, env, path: Path, notes=(), *, top_level=False
    ) -> None:
        """Declare ``decls`` (at key path ``path``), their references resolved in ``scope``."""
        ev = self.evaluator
        for i, decl in enumerate(decls):
            dpath = path + (i,)
            name = ev.eval_name(decl.name, env, dpath + ("name",), notes, what="output name")
            if name is None:
                continue
            role = decl.role or (name if name in ROLES else "extra")
            if decl.from_ is None:
                if name != RECONSTRUCTION and not top_level:
                    self.budget.error(
                        f"output '{name}' needs 'from', the tensor it is",
                        dpath,
                        hint="only {name: reconstruction} goes without 'from' in a block: it "
                        "places the reconstruction among the block's outputs",
                        notes=notes,
                    )
                    continue
                if decl.role is not None:
                    self.budget.error(
                        f"output '{name}' has a role but no 'from'",
                        dpath + ("role",),
                        hint="an entry without 'from' places an output declared elsewhere, "
                        "which has its role already; to declare one, give 'from'",
                        key=True,
                        notes=notes,
                    )
                    continue
                self.declared.append(Declared(name, None, None, dpath, tuple(notes), top_level))
                continue
            if role == RECONSTRUCTION or name == RECONSTRUCTION:
                self.budget.error(
                    "the reconstruction is always the decoder's output, so it takes no 'from'",
                    dpath + ("from",),
                    hint="write {name: reconstruction} alone to place it among the outputs",
                    notes=notes,
                )
                continue
            text = ev.try_evaluate(decl.from_, env, dpath + ("from",), notes)
            if text is FAILED:
                continue
            if not isinstance(text, str):
                self.budget.error(
                    f"'from' must be a reference, got {text!r}", dpath + ("from",), notes=notes
                )
                continue
            consumer = f"{scope.prefix}.{name}"
            ref, _ = self.names.resolve(text, scope, consumer, dpath + ("from",), notes)
            self.declared.append(
                Declared(name, ref, role, dpath, tuple(notes), top_level, ok=ref is not None)
            )

    def finish(
        self, reconstruction: TensorRef | None
    ) -> tuple[dict[str, TensorRef | None], dict[str, str]]:
        """The model's outputs by name, in order, and the role of each; errors are recorded."""
        where = self.budget.where
        first: dict[str, Declared] = {}
        placed_in_blocks: Declared | None = None
        placed_top: dict[str, Declared] = {}
        kept: list[Declared] = []
        for d in self.declared:
            if d.role is None:  # places an output
                if not d.top_level:
                    if placed_in_blocks is not None:
                        self._duplicate(d, placed_in_blocks, "places the reconstruction again")
                        continue
                    placed_in_blocks = d
                elif d.name in placed_top:
                    self._duplicate(d, placed_top[d.name], "places it again")
                    continue
                else:
                    placed_top[d.name] = d
                kept.append(d)
                continue
            if d.name in first:
                self._duplicate(d, first[d.name], "is declared again")
                continue
            first[d.name] = d
            kept.append(d)
        for name, d in placed_top.items():
            if name != RECONSTRUCTION and (name not in first or first[name].top_level):
                hint = (
                    f"'{name}' is declared at {where(first[name].path)}, which places it already"
                    if name in first
                    else _declared_hint(first)
                )
                self.budget.error(
                    f"no output '{name}' to place: only the reconstruction and the outputs "
                    "that blocks declare can be placed",
                    d.path + ("name",),
                    hint=hint,
                    notes=d.notes,
                )
        # the reconstruction and the blocks' outputs, then the top-level list
        head: list[Declared] = []
        if placed_in_blocks is None:
            head.append(Declared(RECONSTRUCTION, reconstruction, RECONSTRUCTION, (), (), False))
        for d in kept:
            if d.top_level:
                continue
            if d is placed_in_blocks:
                d = Declared(RECONSTRUCTION, reconstruction, RECONSTRUCTION, d.path, d.notes, False)
            head.append(d)
        head = [d for d in head if d.name not in placed_top]
        tail = []
        for d in kept:
            if not d.top_level:
                continue
            if d.role is None:  # placed here
                if d.name == RECONSTRUCTION:
                    d = Declared(
                        RECONSTRUCTION, reconstruction, RECONSTRUCTION, d.path, d.notes, True
                    )
                elif d.name in first and not first[d.name].top_level:
                    d = first[d.name]
                else:
                    continue
            tail.append(d)
        ordered = head + tail
        self._check_roles(ordered)
        outputs = {d.name: d.ref for d in ordered}
        roles = {d.name: d.role or "extra" for d in ordered}
        return outputs, roles

    def _duplicate(self, d: Declared, before: Declared, what: str) -> None:
        if before.notes:  # declared by a block: name the use site
            at = f" (first declared {before.notes[0]})"
        else:
            at = f" (first at {self.budget.where(before.path)})" if before.path else ""
        hint = "each output has one name and one place; rename one of them"
        if d.notes and before.notes:
            hint = (
                "a block that declares outputs can be used once, unless its outputs take their "
                "names from its parameters"
            )
        self.budget.error(
            f"model output '{d.name}' {what}{at}", d.path + ("name",), hint=hint, notes=d.notes
        )

    def _check_roles(self, ordered: list[Declared]) -> None:
        """One output at most per role (but likelihoods and extra), mu with logvar of the same
        shape, a scalar vq_loss."""
        by_role: dict[str, Declared] = {}
        for d in ordered:
            if d.role in SINGLE_ROLES and d.role != RECONSTRUCTION:
                if d.role in by_role:
                    other = by_role[d.role]
                    self.budget.error(
                        f"outputs '{other.name}' and '{d.name}' both have the role '{d.role}'; "
                        "a model has one",
                        d.path + ("role",) if d.role != d.name else d.path,
                        hint=f"give one of them another role (extra has no part in training); "
                        f"'{other.name}' is declared at {self.budget.where(other.path)}",
                        notes=d.notes,
                    )
                    continue
                by_role[d.role] = d
        mu, logvar = by_role.get("mu"), by_role.get("logvar")
        if (mu is None) != (logvar is None):
            have, missing = (mu, "logvar") if mu is not None else (logvar, "mu")
            self.budget.error(
                f"output '{have.name}' has the role '{have.role}' but no output has the role "
                f"'{missing}': the KL term needs both",
                have.path,
                hint=f"declare the other one too, e.g. {{name: {missing}, from: ...}}",
                notes=have.notes,
            )
        elif mu is not None and mu.ok and logvar.ok:
            a, b = self.draft.shape_of(mu.ref), self.draft.shape_of(logvar.ref)
            if a is not None and b is not None and a != b:
                self.budget.error(
                    f"the outputs '{mu.name}' {fmt_shape(a)} and '{logvar.name}' {fmt_shape(b)} "
                    "must have one shape: the KL term pairs their values",
                    logvar.path,
                    notes=logvar.notes,
                )
        loss = by_role.get("vq_loss")
        if loss is not None and loss.ok:
            shape = self.draft.shape_of(loss.ref)
            if shape is not None and shape != ():
                self.budget.error(
                    f"output '{loss.name}' has the role 'vq_loss', which the loss adds as it is, "
                    f"so it must be a scalar, got {fmt_shape(shape)}",
                    loss.path,
                    hint="a vector_quantizer's loss is its output 1, e.g. from: quantizer:1",
                    notes=loss.notes,
                )


def _declared_hint(first: dict[str, Declared]) -> str:
    names = sorted(n for n, d in first.items() if not d.top_level)
    if not names:
        return "no block declares outputs here; write {name, from, role} to declare one"
    return "outputs declared by blocks: " + ", ".join(names)
