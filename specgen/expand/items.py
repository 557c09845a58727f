"""Items and loops: layers, groups, block uses, ``for``/``in`` loops and ``levels``.

A list of items is expanded in order, each one starting from the previous one's output (or from
its ``inputs``). An item whose ``when`` is false is skipped. Loops and levels open one group per
iteration (``name0``, ``name1``, ...) with the loop variable bound; a block use opens one group per
instance with the block's parameters bound. Every item visited and every iteration is one step of
the :class:`~specgen.expand.budget.Budget`.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import expr
from ..errors import Path, choices_hint, suggest
from ..graph import TensorRef
from ..layers import REGISTRY
from ..schema import (
    BlockItem,
    GroupItem,
    LayerItem,
    LevelsItem,
    LoopItem,
    SpecDocument,
)
from .budget import Budget
from .evaluate import FAILED, Evaluator, extend
from .nodes import DraftGraph
from .outputs import Outputs
from .scopes import Names, Scope

if TYPE_CHECKING:  # pragma: no cover
    from .skips import Skips


class Items:
    """Expands lists of items into nodes and groups of the draft graph."""

    def __init__(
        self,
        doc: SpecDocument,
        params: Mapping[str, Any],
        budget: Budget,
        evaluator: Evaluator,
        names: Names,
        draft: DraftGraph,
        rejected: set[Path],
    ):
        self.doc = doc
        self.params = params
        self.budget = budget
        self.evaluator = evaluator
        self.names = names
        self.draft = draft
        #: key paths of layer items the pre-pass rejected (unknown fields)
        self.rejected = rejected
        #: joins skip paths into a tensor when it is complete (set once both exist)
        self.skips: Skips | None = None
        #: the model outputs that block instances declare
        self.outputs = Outputs(budget, evaluator, names, draft)

    def expand_items(
        self, items: list, scope: Scope, path: Path, current: TensorRef | None | object = ...
    ) -> TensorRef | None:
        """Expand ``items`` in ``scope``, starting from ``current`` (the scope's input by
        default); returns the last output."""
        if current is ...:
            current = scope.input
        if not items:
            return current
        self.budget.enter_items(scope.prefix, path, scope.notes)
        try:
            return self._expand_items(items, scope, path, current)
        finally:
            self.budget.leave_items()

    def _expand_items(self, items: list, scope: Scope, path: Path, current) -> TensorRef | None:
        self.budget.check_errors()
        ev = self.evaluator
        env = extend(scope.env, self.draft.shape_variables(scope.input))
        for i, item in enumerate(items):
            ipath = path + (i,)
            self.budget.step(ipath, scope.notes)
            if not ev.eval_bool(item.when, env, ipath + ("when",), scope.notes):
                continue
            if not isinstance(item, LayerItem) and item.inputs is not None:
                # a group, loop, block use or levels item may start from another tensor
                refs = self.item_inputs(item, scope, current, env, ipath, scope.prefix)
                if refs is not None and len(refs) != 1:
                    self.budget.error(
                        f"a group takes one input, got {len(refs)}",
                        ipath + ("inputs",),
                        hint="merge them first with an add or concat layer",
                        notes=scope.notes,
                    )
                    refs = None
                current = refs[0] if refs else None
            if isinstance(item, LayerItem):
                current = self.expand_layer(item, scope, current, env, ipath)
            elif isinstance(item, BlockItem):
                current = self.expand_block_use(item, scope, current, env, ipath)
            elif isinstance(item, LoopItem):
                current = self.expand_loop(item, scope, current, env, ipath)
            elif isinstance(item, GroupItem):
                current = self.expand_group(item, scope, current, env, ipath)
            elif isinstance(item, LevelsItem):
                current = self.expand_levels(item, scope, current, env, ipath)
        return current

    def publish(self, scope: Scope, local: str, ref: TensorRef | None) -> TensorRef | None:
        """Record ``local``'s output, then join any skip paths that target it."""
        full = self.names.record(scope, local, ref)
        if full in self.skips.pending:
            ref = self.skips.join(full, ref)
            self.names.record(scope, local, ref)
        return ref

    def item_inputs(self, item, scope: Scope, current, env, ipath, consumer) -> list | None:
        if item.inputs is None:
            return [current]
        refs = self.evaluator.try_evaluate(item.inputs, env, ipath + ("inputs",), scope.notes)
        if refs is FAILED:
            return None
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            self.budget.error(
                f"'inputs' must be a list of names, got {refs!r}",
                ipath + ("inputs",),
                notes=scope.notes,
            )
            return None
        if not refs:
            self.budget.error(
                "'inputs' is empty: the layer would have no input",
                ipath + ("inputs",),
                notes=scope.notes,
            )
            return None
        out: list = []
        for j, text in enumerate(refs):
            ref, ok = self.names.resolve(text, scope, consumer, ipath + ("inputs", j), scope.notes)
            out.append(ref)
        return out

    # -- layers and groups ---------------------------------------------------------------------
    def local_name(self, item, scope: Scope, env, ipath, stem: str) -> str | None:
        if item.name is None:
            n = scope.counters.get(stem, 0) + 1
            scope.counters[stem] = n
            return f"{stem}{n}"
        return self.evaluator.eval_name(item.name, env, ipath + ("name",), scope.notes, scope=scope)

    def expand_layer(self, item: LayerItem, scope: Scope, current, env, ipath) -> TensorRef | None:
        cls = REGISTRY.get(item.kind)
        if cls is None:  # already reported by the pre-pass
            if item.name is not None and not expr.is_template(item.name):
                scope.names.setdefault(item.name, None)
            return None
        local = self.local_name(item, scope, env, ipath, cls.short_name)
        if local is None:
            return None
        full = self.names.claim(
            scope, local, ipath + ("name",) if item.name else ipath, scope.notes
        )
        if full is None:
            return None
        inputs = self.item_inputs(item, scope, current, env, ipath, full)
        fields: dict[str, Any] = {}
        failed: set[str] = set()
        for key, value in (item.model_extra or {}).items():
            got = self.evaluator.try_evaluate(value, env, ipath + (key,), scope.notes)
            if got is FAILED:
                failed.add(key)
            else:
                fields[key] = got
        if ipath in self.rejected:  # unknown fields, reported by the pre-pass
            return self.publish(scope, local, None)
        layer = self.draft.make_layer(cls, fields, ipath, scope.notes, skip=failed)
        if failed or inputs is None:
            return self.publish(scope, local, None)
        ref = self.draft.add_node(full, layer, inputs, scope, ipath)
        return self.publish(scope, local, ref)

    def expand_group(self, item: GroupItem, scope: Scope, current, env, ipath):
        local = self.evaluator.eval_name(item.name, env, ipath + ("name",), scope.notes)
        full = local and self.names.claim(scope, local, ipath + ("name",), scope.notes)
        if not full:
            return None
        self.draft.add_group(full, scope, ipath, item.origin)
        child = scope.child(full, current, scope.env)
        out = self.expand_items(item.layers, child, ipath + ("layers",))
        return self.publish(scope, local, out)

    # -- loops ---------------------------------------------------------------------------------
    def expand_loop(self, item: LoopItem, scope: Scope, current, env, ipath):
        def body(child: Scope, start):
            return self.expand_items(item.layers, child, ipath + ("layers",), start)

        return self.loop(item, item.in_, "in", body, scope, current, env, ipath)

    def expand_levels(self, item: LevelsItem, scope: Scope, current, env, ipath):
        if item.block is not None and item.block not in self.doc.blocks:
            return None  # reported by the pre-pass

        def body(child: Scope, start):
            out = self.expand_items(item.before, child, ipath + ("before",), start)
            if item.block is not None:
                full = self.names.claim(child, "blocks", ipath + ("block",), child.notes)
                if full is None:
                    return None
                self.draft.add_group(full, child, ipath)
                inner = child.child(full, out, child.env)
                use = BlockItem(block=item.block, name="block", args=item.args, repeat=item.repeat)
                block_env = extend(child.env, self.draft.shape_variables(out))
                out = self.publish(
                    child, "blocks", self.expand_block_use(use, inner, out, block_env, ipath)
                )
            return self.expand_items(item.after, child, ipath + ("after",), out)

        return self.loop(item, item.levels, "levels", body, scope, current, env, ipath)

    def loop(self, item, count, key: str, body, scope: Scope, current, env, ipath):
        """Groups ``name0``, ``name1``, ... with the loop variable bound; ``body`` fills each."""
        ev = self.evaluator
        values = ev.eval_count(count, env, ipath + (key,), scope.notes, what=key)
        stem = ev.eval_name(item.name, env, ipath + ("name",), scope.notes)
        loop_vars = ev.eval_loop_vars(item.for_, item.index, ipath, scope.notes)
        if values is None or stem is None or loop_vars is None:
            return None
        var, index = loop_vars
        for k, value in enumerate(values):
            self.budget.step(ipath, scope.notes)
            local = f"{stem}{k}"
            full = self.names.claim(scope, local, ipath + ("name",), scope.notes)
            if full is None:
                return None
            self.draft.add_group(full, scope, ipath)
            loop_env = extend(scope.env, {var: value})
            if index:
                loop_env[index] = k
            child = scope.child(full, current, loop_env)
            current = self.publish(scope, local, body(child, current))
        return current

    # -- block uses ----------------------------------------------------------------------------
    def expand_block_use(self, item: BlockItem, scope: Scope, current, env, ipath):
        bdef = self.doc.blocks.get(item.block)
        if bdef is None:  # reported by the pre-pass
            if item.name is not None and not expr.is_template(item.name) and item.repeat is None:
                scope.names.setdefault(item.name, None)
            return None
        block_stack = self.budget.block_stack
        if item.block in block_stack:
            return None  # recursion, reported by the pre-pass
        ev = self.evaluator
        args = ev.try_evaluate(dict(item.args), env, ipath + ("args",), scope.notes)
        if args is FAILED:
            return None
        block_env = ChainMap({}, self.params)
        ok = True
        for pname, default in bdef.params.items():
            if pname in args:
                block_env[pname] = args[pname]
            elif default is None:
                if suggest(pname, [a for a in args if a not in bdef.params]):
                    ok = False  # a misspelling of it is reported below
                    continue
                self.budget.error(
                    f"block '{item.block}' needs parameter '{pname}'",
                    ipath + ("args",),
                    hint=f"add it: args: {{{pname}: ...}}",
                    notes=scope.notes,
                )
                ok = False
            else:
                got = ev.try_evaluate(
                    default, block_env, ("blocks", item.block, "params", pname), scope.notes
                )
                if got is FAILED:
                    ok = False
                block_env[pname] = got
        for aname in args:
            if aname not in bdef.params:
                self.budget.error(
                    f"block '{item.block}' has no parameter '{aname}'",
                    ipath + ("args", aname),
                    hint=choices_hint(aname, bdef.params, "its parameters"),
                    key=True,
                    notes=scope.notes,
                )
                ok = False
        if not ok:
            return None
        note = f"in block '{item.block}' used at {self.budget.where(ipath)}"
        if item.inline:
            if item.repeat is not None or item.name is not None:
                self.budget.error(
                    "an inlined block use makes no group, so it takes no 'name' or 'repeat'",
                    ipath + ("inline",),
                    hint="leave them out, or use the block without 'inline: true'",
                    key=True,
                    notes=scope.notes,
                )
                return None
            self.budget.step(ipath, scope.notes)
            block_stack.append(item.block)
            try:
                view = scope.inline(current, block_env, notes=(note,) + scope.notes)
                return self.instance(bdef, item.block, view)
            finally:
                block_stack.pop()
        repeat = None
        if item.repeat is not None:
            repeat = ev.eval_count(item.repeat, env, ipath + ("repeat",), scope.notes)
            if repeat is None:
                return None
        stem = item.name if item.name is not None else item.block
        stem = ev.eval_name(stem, env, ipath + ("name",), scope.notes)
        if stem is None:
            return None
        locals_ = [stem] if repeat is None else [f"{stem}{k}" for k in range(len(repeat))]
        block_stack.append(item.block)
        try:
            for local in locals_:
                self.budget.step(ipath, scope.notes)
                full = self.names.claim(scope, local, ipath, scope.notes)
                if full is None:
                    return None
                self.draft.add_group(full, scope, ipath, item.block)
                child = scope.child(full, current, block_env, notes=(note,) + scope.notes)
                current = self.publish(scope, local, self.instance(bdef, item.block, child))
        finally:
            block_stack.pop()
        return current

    def instance(self, bdef, block: str, child: Scope) -> TensorRef | None:
        """One instance of ``block`` in ``child`` (its group, or the enclosing scope when it is
        inlined): its requirements, its items, then the model outputs it declares."""
        env = extend(child.env, self.draft.shape_variables(child.input))
        if not self.requirements(bdef, block, env, child.notes):
            return None
        out = self.expand_items(bdef.layers, child, ("blocks", block, "layers"))
        if bdef.outputs:
            self.outputs.declare(
                bdef.outputs, child, env, ("blocks", block, "outputs"), child.notes
            )
        return out

    def requirements(self, bdef, block: str, env, notes) -> bool:
        """Whether an instance meets the block's ``require`` conditions, checked in order; the
        first unmet one is reported with its message (and hint), and the instance is left out."""
        ev = self.evaluator
        for i, req in enumerate(bdef.require):
            path = ("blocks", block, "require", i)
            got = ev.try_evaluate(req.that, env, path + ("that",), notes)
            if got is FAILED:
                return False
            if not isinstance(got, bool):
                self.budget.error(
                    f"a requirement must be true or false, got {got!r}",
                    path + ("that",),
                    notes=notes,
                )
                return False
            if got:
                continue
            message = ev.try_evaluate(req.message, env, path + ("message",), notes)
            hint = req.hint and ev.try_evaluate(req.hint, env, path + ("hint",), notes)
            if message is FAILED or hint is FAILED:
                return False
            self.budget.error(
                str(message), path + ("that",), hint=str(hint) if hint else None, notes=notes
            )
            return False
        return True
