"""Expansion: a validated spec document -> the explicit graph of primitive layers.

One pass over the spec in order. Loops are unrolled, blocks instantiated, ``when`` conditions
applied and every expression evaluated; each layer is validated by its kind's config model and its
output shape inferred on the spot (by the kind's own shape rule in :mod:`specgen.layers`), so
later expressions can read the shape of their scope's input (``in_channels``, ``in_height``,
``in_width``). Skip paths are joined when their target is complete.

All user errors are collected, each with the key path it comes from, and raised together. After
one error a tensor's shape is unknown and nothing downstream of it reports again.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import BaseModel, ValidationError

from . import expr
from .errors import Path, Source, SpecError, SpecErrors, choices_hint, format_path, suggest
from .graph import INPUT, Group, ModelGraph, Node, Part, SkipPath, TensorRef, find_cycle
from .layers import REGISTRY, LayerConfig, Shape, ShapeError, fmt_shape
from .names import check_identifier, identifier_hint
from .schema import (
    BUILTIN_VARIABLES,
    BlockItem,
    Bottleneck,
    GroupItem,
    InputSpec,
    LayerItem,
    LevelsItem,
    LoopItem,
    OutputSpec,
    SkipSpec,
    SpecDocument,
    TrainingSpec,
)
from .validate import spec_errors, validate_model

#: Hints for required layer fields whose absence needs explaining.
REQUIRED_HINTS = {
    ("leaky_relu", "negative_slope"): "there is no default because frameworks disagree "
    "(PyTorch 0.01, Keras 0.3); e.g. negative_slope: 0.2",
}

#: Limits on the work one spec may ask for (checked while expanding, before anything is emitted).
MAX_NODES = 100_000
MAX_REPEAT = 10_000
MAX_PARAMETERS = 10**10
#: The widest dense layer a bottleneck may need to rebuild the encoder's output.
MAX_DENSE_WIDTH = 1 << 20
#: How deep groups may nest (``encoder.a.b`` is 2 deep): each group, loop or levels iteration,
#: block instance and skip path is one; a block's groups count where the block is used. Lists of
#: items may nest one deeper (a part's own list is the first).
MAX_NESTING = 64
#: Expansion steps one spec may take: every item visited (also one whose ``when`` is false),
#: every loop or levels iteration and every block instance counts, whether or not it makes layers.
MAX_STEPS = 500_000
#: Errors collected while expanding (expansion then stops).
MAX_ERRORS = 200


class _Abort(Exception):
    """Raised to stop expansion when continuing would be unbounded or meaningless."""


@dataclass
class _Scope:
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


@dataclass
class _SkipInstance:
    name: str
    part: str
    source: str
    target: str
    merge: str
    merge_name: str
    layers: list
    env: Mapping[str, Any]
    path: Path


@dataclass
class _Draft:
    name: str
    layer: LayerConfig
    inputs: tuple[TensorRef, ...]
    shapes: tuple[Shape, ...] | None
    trainable: int
    non_trainable: int
    macs: int
    part: str
    role: str
    skip: str | None
    origin: Path


class Expander:
    def __init__(self, doc: SpecDocument, params: dict[str, Any], source: Source | None):
        self.doc = doc
        self.params = params
        self.source = source
        self.errors: list[SpecError] = []
        self.drafts: dict[str, _Draft] = {}
        self.tensors: dict[str, TensorRef | None] = {}
        self.defined_at: dict[str, Path] = {}
        self.groups: list[Group] = []
        self.skip_paths: list[SkipPath] = []
        self.pending: dict[str, list[_SkipInstance]] = {}
        self.unresolved: list[tuple[str, str, Path, tuple[str, ...]]] = []
        self.part_scopes: dict[str, _Scope] = {}
        self.block_stack: list[str] = []
        self.input_shape: Shape | None = None
        #: key paths of layer items the pre-pass rejected (unknown fields)
        self.rejected: set[Path] = set()
        #: expansion steps taken so far, and how deep lists of items are nested now
        self.steps = 0
        self.depth = 0
        #: the drafts' edges, for explaining references that make a cycle
        self.draft_graph: nx.DiGraph | None = None

    # -- errors and locations ------------------------------------------------------------------
    def error(
        self,
        message: str,
        path: Path,
        hint: str | None = None,
        *,
        key: bool = False,
        notes: Iterable[str] = (),
    ) -> None:
        self.errors.append(SpecError(message, path, hint=hint, key=key, notes=tuple(notes)))
        if len(self.errors) >= MAX_ERRORS:
            raise _Abort

    def step(self, path: Path, notes=()) -> None:
        """Count one expansion step; past :data:`MAX_STEPS` expansion stops with an error."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.error(
                f"expanding the spec takes more than {MAX_STEPS:,} steps (items, loop "
                "iterations and block instances, also those that make no layers)",
                path,
                hint="loops, levels and repeats nested in each other multiply their counts",
                notes=notes,
            )
            raise _Abort

    def where(self, path: Path) -> str:
        if self.source is None:
            return format_path(path)
        pos, _ = self.source.locate(path)
        return f"{self.source.filename}:{pos.line}:{pos.col}"

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, value: Any, env: dict[str, Any], path: Path, notes=()) -> Any:
        """Evaluate every ``${...}`` in ``value`` (recursively); errors are recorded, not raised."""
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                out[k] = self.evaluate(v, env, path + (k,), notes)
            return out
        if isinstance(value, list):
            return [self.evaluate(v, env, path + (i,), notes) for i, v in enumerate(value)]
        if isinstance(value, str) and expr.is_template(value):
            try:
                return expr.evaluate(value, env)
            except expr.ExprError as exc:
                if env.get(_UNKNOWN_SHAPE) and any(v in exc.message for v in BUILTIN_VARIABLES):
                    raise _EvalFailed from None  # a consequence of an earlier error
                self.error(exc.message, path, exc.hint, notes=notes)
                raise _EvalFailed from None
        return value

    def try_evaluate(self, value: Any, env: dict[str, Any], path: Path, notes=()) -> Any:
        try:
            return self.evaluate(value, env, path, notes)
        except _EvalFailed:
            return _FAILED

    def eval_bool(self, value: Any, env, path, notes=()) -> bool | None:
        if value is None:
            return True
        got = self.try_evaluate(value, env, path, notes)
        if got is _FAILED:
            return None
        if not isinstance(got, bool):
            self.error(f"'when' must be true or false, got {got!r}", path, notes=notes)
            return None
        return got

    def eval_name(
        self, value: str, env, path, notes=(), *, what="name", scope: _Scope | None = None
    ) -> str | None:
        """An evaluated, valid name; an invalid one is reported (and, given ``scope``, still
        reserved there so that references to it do not report again)."""
        got = self.try_evaluate(value, env, path, notes)
        if got is _FAILED:
            return None
        if what in ("loop variable", "index variable") and got in BUILTIN_VARIABLES:
            self.error(f"'{got}' is bound by specgen itself", path, notes=notes)
            return None
        problem = check_identifier(got)
        if problem:
            self.error(
                f"invalid {what} {got!r}: {problem}", path, identifier_hint(got), notes=notes
            )
            if scope is not None and isinstance(got, str):
                scope.names.setdefault(got, None)
            return None
        return got

    def eval_count(self, value: Any, env, path, notes=(), *, what="repeat") -> list | None:
        """A loop's values: an int n means 0..n-1; a list is iterated as it is."""
        got = self.try_evaluate(value, env, path, notes)
        if got is _FAILED:
            return None
        if isinstance(got, bool) or not isinstance(got, (int, list)):
            self.error(f"'{what}' must be a count or a list, got {got!r}", path, notes=notes)
            return None
        if isinstance(got, int):
            if got < 0:
                self.error(f"'{what}' must not be negative, got {got}", path, notes=notes)
                return None
            got = list(range(min(got, MAX_REPEAT + 1)))
        if len(got) > MAX_REPEAT:
            self.error(f"'{what}' asks for more than {MAX_REPEAT} repetitions", path, notes=notes)
            return None
        return got

    @staticmethod
    def shape_env(shape: Shape | None) -> dict[str, Any]:
        if shape is None:
            return {_UNKNOWN_SHAPE: True}
        if len(shape) == 3:
            return {"in_height": shape[0], "in_width": shape[1], "in_channels": shape[2]}
        if len(shape) >= 1:
            return {"in_channels": shape[-1]}
        return {}

    def shape_of(self, ref: TensorRef | None) -> Shape | None:
        if ref is None:
            return None
        if ref.node == INPUT:
            return self.input_shape
        draft = self.drafts.get(ref.node)
        if draft is None or draft.shapes is None:
            return None
        return draft.shapes[ref.port]

    # -- names ---------------------------------------------------------------------------------
    def claim(self, scope: _Scope, local: str, path: Path, notes=()) -> str | None:
        """Reserve ``local`` in ``scope``; duplicate (or case-folded duplicate) names are errors."""
        full = scope.full(local)
        if local in scope.names or full in self.defined_at:
            first = self.defined_at.get(full)
            at = f" (first defined at {self.where(first)})" if first is not None else ""
            self.error(f"duplicate name '{local}' in {scope.prefix}{at}", path, notes=notes)
            return None
        folded = local.lower()
        if folded in scope.folded:
            self.error(
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

    def publish(self, scope: _Scope, local: str, ref: TensorRef | None) -> TensorRef | None:
        """Record ``local``'s output, then join any skip paths that target it."""
        full = scope.full(local)
        scope.names[local] = ref
        self.tensors[full] = ref
        if full in self.pending:
            ref = self.join_skips(full, ref)
            scope.names[local] = ref
            self.tensors[full] = ref
        return ref

    def resolve(self, text: str, scope: _Scope, consumer: str, path: Path, notes=()):
        """A reference in ``inputs``/``from``: sibling, ``input``, relative or absolute dotted."""
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

    # -- items ---------------------------------------------------------------------------------
    def expand_items(
        self, items: list, scope: _Scope, path: Path, current: TensorRef | None | object = ...
    ) -> TensorRef | None:
        """Expand ``items`` in ``scope``, starting from ``current`` (the scope's input by
        default); returns the last output."""
        if current is ...:
            current = scope.input
        if not items:
            return current
        if self.depth > MAX_NESTING:
            self.error(
                f"items nest more than {MAX_NESTING} levels deep, in "
                f"'{_chain(scope.prefix.split('.'), '.')}'",
                path,
                hint=f"blocks in use: {_chain(self.block_stack)}" if self.block_stack else None,
                notes=scope.notes[:3],
            )
            raise _Abort
        self.depth += 1
        try:
            return self._expand_items(items, scope, path, current)
        finally:
            self.depth -= 1

    def _expand_items(self, items: list, scope: _Scope, path: Path, current) -> TensorRef | None:
        if len(self.errors) >= MAX_ERRORS:
            raise _Abort
        env = _extend(scope.env, self.shape_env(self.shape_of(scope.input)))
        for i, item in enumerate(items):
            ipath = path + (i,)
            self.step(ipath, scope.notes)
            if not self.eval_bool(item.when, env, ipath + ("when",), scope.notes):
                continue
            if not isinstance(item, LayerItem) and item.inputs is not None:
                # a group, loop, block use or levels item may start from another tensor
                refs = self.item_inputs(item, scope, current, env, ipath, scope.prefix)
                if refs is not None and len(refs) != 1:
                    self.error(
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

    def item_inputs(self, item, scope, current, env, ipath, consumer) -> list | None:
        if item.inputs is None:
            return [current]
        refs = self.try_evaluate(item.inputs, env, ipath + ("inputs",), scope.notes)
        if refs is _FAILED:
            return None
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            self.error(
                f"'inputs' must be a list of names, got {refs!r}",
                ipath + ("inputs",),
                notes=scope.notes,
            )
            return None
        if not refs:
            self.error(
                "'inputs' is empty: the layer would have no input",
                ipath + ("inputs",),
                notes=scope.notes,
            )
            return None
        out: list = []
        for j, text in enumerate(refs):
            ref, ok = self.resolve(text, scope, consumer, ipath + ("inputs", j), scope.notes)
            out.append(ref)
        return out

    def local_name(self, item, scope, env, ipath, stem: str) -> str | None:
        if item.name is None:
            n = scope.counters.get(stem, 0) + 1
            scope.counters[stem] = n
            return f"{stem}{n}"
        return self.eval_name(item.name, env, ipath + ("name",), scope.notes, scope=scope)

    def expand_layer(self, item: LayerItem, scope, current, env, ipath) -> TensorRef | None:
        cls = REGISTRY.get(item.kind)
        if cls is None:  # already reported by the pre-pass
            if item.name is not None and not expr.is_template(item.name):
                scope.names.setdefault(item.name, None)
            return None
        local = self.local_name(item, scope, env, ipath, cls.short_name)
        if local is None:
            return None
        full = self.claim(scope, local, ipath + ("name",) if item.name else ipath, scope.notes)
        if full is None:
            return None
        inputs = self.item_inputs(item, scope, current, env, ipath, full)
        fields: dict[str, Any] = {}
        failed: set[str] = set()
        for key, value in (item.model_extra or {}).items():
            got = self.try_evaluate(value, env, ipath + (key,), scope.notes)
            if got is _FAILED:
                failed.add(key)
            else:
                fields[key] = got
        if ipath in self.rejected:  # unknown fields, reported by the pre-pass
            return self.publish(scope, local, None)
        layer = self.make_layer(cls, fields, ipath, scope.notes, skip=failed)
        if failed or inputs is None:
            return self.publish(scope, local, None)
        ref = self.add_node(full, layer, inputs, scope, ipath)
        return self.publish(scope, local, ref)

    def make_layer(
        self, cls, fields: dict, path: Path, notes=(), skip: set[str] = frozenset()
    ) -> LayerConfig | None:
        """Validate one layer's fields; errors about the fields in ``skip`` (whose expressions
        failed) are left out, and a missing required field gets the kind's own hint."""
        kind = cls.model_fields["kind"].default
        data = {"kind": kind, **fields}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            for err in spec_errors(exc, data, path, cls):
                field = err.message.split("'")[1] if "required key '" in err.message else None
                if err.path[len(path) : len(path) + 1] and err.path[len(path)] in skip:
                    continue
                if field in skip:
                    continue
                if field is not None:
                    err = SpecError(
                        f"{kind} needs '{field}'",
                        err.path,
                        REQUIRED_HINTS.get((kind, field)),
                        err.key,
                        err.notes,
                    )
                self.errors.append(
                    SpecError(err.message, err.path, err.hint, err.key, err.notes + tuple(notes))
                )
            return None

    def add_node(self, full, layer, inputs, scope, path, *, role=None) -> TensorRef | None:
        if len(self.drafts) >= MAX_NODES:
            self.error(f"the spec expands to more than {MAX_NODES} layers", path, notes=scope.notes)
            raise _Abort
        role = role or scope.role
        if layer is None:
            return None
        problem = layer.check_arity(len(inputs))
        if problem:
            self.error(f"{layer.kind} '{full}': {problem}", path, notes=scope.notes)
            return None
        in_shapes = [self.shape_of(r) for r in inputs]
        shapes = None
        counts = (0, 0)
        macs = 0
        if all(s is not None for s in in_shapes) and all(r is not None for r in inputs):
            try:
                shapes = tuple(tuple(s) for s in layer.output_shapes(list(in_shapes)))
                counts = layer.param_counts(list(in_shapes))
                macs = layer.macs(list(in_shapes), list(shapes))
            except ShapeError as exc:
                self.shape_error(exc, full, layer, inputs, in_shapes, scope, path)
                shapes = None
            if shapes is not None and any(d > 1 << 24 for s in shapes for d in s):
                self.error(
                    f"'{full}' would produce a tensor of shape {fmt(shapes[0])}, larger "
                    "than specgen supports",
                    path,
                    notes=scope.notes,
                )
                shapes = None
        self.drafts[full] = _Draft(
            full,
            layer,
            tuple(r or TensorRef("?") for r in inputs),
            shapes,
            counts[0],
            counts[1],
            macs,
            scope.part,
            role,
            scope.skip,
            path,
        )
        # a node whose shape is unknown (after an error) still exists, so that what it feeds
        # stays connected for the cycle check, and reports nothing further
        return TensorRef(full, 0)

    def describe(self, ref: TensorRef) -> str:
        if ref.node == INPUT:
            return "the model input"
        return str(ref)

    def shape_error(self, exc: ShapeError, full, layer, inputs, in_shapes, scope, path):
        notes = list(scope.notes)
        if layer.kind in ("add", "concat") and len(inputs) >= 2:
            verb = "add" if layer.kind == "add" else "concatenate"
            operands = " and ".join(
                f"{self.describe(r)} {fmt(s)}" for r, s in zip(inputs, in_shapes, strict=True)
            )
            message = f"'{full}' cannot {verb} {operands}"
            if layer.kind == "concat":
                message += " (all but the channel axis must match)"
            for r in inputs:
                origin = self.drafts[r.node].origin if r.node in self.drafts else None
                if origin is not None:
                    notes.append(f"{self.describe(r)} comes from {self.where(origin)}")
            self.errors.append(SpecError(message, path, hint=exc.hint, notes=tuple(notes)))
            return
        fpath = path + (exc.field,) if exc.field else path
        shape_txt = ", ".join(fmt(s) for s in in_shapes)
        self.errors.append(
            SpecError(
                f"{layer.kind} '{full}' on input {shape_txt}: {exc.message}",
                fpath,
                hint=exc.hint,
                notes=tuple(notes),
            )
        )

    def child_scope(self, scope: _Scope, full: str, current, env, *, notes=None) -> _Scope:
        return _Scope(
            full,
            scope.part,
            current,
            env,
            notes=scope.notes if notes is None else notes,
            role=scope.role,
            skip=scope.skip,
        )

    def add_group(self, full: str, scope: _Scope, path: Path, block: str | None = None) -> None:
        if full.count(".") > MAX_NESTING:
            self.error(
                f"groups nest more than {MAX_NESTING} levels deep: "
                f"'{_chain(full.split('.'), '.')}'",
                path,
                hint=f"blocks in use: {_chain(self.block_stack)}" if self.block_stack else None,
                notes=scope.notes[:3],
            )
            raise _Abort
        self.groups.append(
            Group(full, scope.part, block, scope.role == "skip", len(self.drafts), path)
        )

    def expand_group(self, item: GroupItem, scope, current, env, ipath):
        local = self.eval_name(item.name, env, ipath + ("name",), scope.notes)
        full = local and self.claim(scope, local, ipath + ("name",), scope.notes)
        if not full:
            return None
        self.add_group(full, scope, ipath, item.origin)
        child = self.child_scope(scope, full, current, scope.env)
        out = self.expand_items(item.layers, child, ipath + ("layers",))
        return self.publish(scope, local, out)

    def expand_loop(self, item: LoopItem, scope, current, env, ipath):
        def body(child: _Scope, start):
            return self.expand_items(item.layers, child, ipath + ("layers",), start)

        return self.loop(item, item.in_, "in", body, scope, current, env, ipath)

    def expand_levels(self, item: LevelsItem, scope, current, env, ipath):
        if item.block is not None and item.block not in self.doc.blocks:
            return None  # reported by the pre-pass

        def body(child: _Scope, start):
            out = self.expand_items(item.before, child, ipath + ("before",), start)
            if item.block is not None:
                full = self.claim(child, "blocks", ipath + ("block",), child.notes)
                if full is None:
                    return None
                self.add_group(full, child, ipath)
                inner = self.child_scope(child, full, out, child.env)
                use = BlockItem(block=item.block, name="block", args=item.args, repeat=item.repeat)
                block_env = _extend(child.env, self.shape_env(self.shape_of(out)))
                out = self.publish(
                    child, "blocks", self.expand_block_use(use, inner, out, block_env, ipath)
                )
            return self.expand_items(item.after, child, ipath + ("after",), out)

        return self.loop(item, item.levels, "levels", body, scope, current, env, ipath)

    def loop(self, item, count, key: str, body, scope, current, env, ipath):
        """Groups ``name0``, ``name1``, ... with the loop variable bound; ``body`` fills each."""
        values = self.eval_count(count, env, ipath + (key,), scope.notes, what=key)
        stem = self.eval_name(item.name, env, ipath + ("name",), scope.notes)
        var = self.eval_name(item.for_, {}, ipath + ("for",), scope.notes, what="loop variable")
        index = item.index and self.eval_name(
            item.index, {}, ipath + ("index",), scope.notes, what="index variable"
        )
        if values is None or stem is None or var is None or (item.index and index is None):
            return None
        for var_name, where in ((var, "for"), (index, "index")):
            if var_name in BUILTIN_VARIABLES:
                self.error(f"'{var_name}' is bound by specgen itself", ipath + (where,))
                return None
        for k, value in enumerate(values):
            self.step(ipath, scope.notes)
            local = f"{stem}{k}"
            full = self.claim(scope, local, ipath + ("name",), scope.notes)
            if full is None:
                return None
            self.add_group(full, scope, ipath)
            loop_env = _extend(scope.env, {var: value})
            if index:
                loop_env[index] = k
            child = self.child_scope(scope, full, current, loop_env)
            current = self.publish(scope, local, body(child, current))
        return current

    def expand_block_use(self, item: BlockItem, scope, current, env, ipath):
        bdef = self.doc.blocks.get(item.block)
        if bdef is None:  # reported by the pre-pass
            if item.name is not None and not expr.is_template(item.name) and item.repeat is None:
                scope.names.setdefault(item.name, None)
            return None
        if item.block in self.block_stack:
            return None  # recursion, reported by the pre-pass
        args = self.try_evaluate(dict(item.args), env, ipath + ("args",), scope.notes)
        if args is _FAILED:
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
                self.error(
                    f"block '{item.block}' needs parameter '{pname}'",
                    ipath + ("args",),
                    hint=f"add it: args: {{{pname}: ...}}",
                    notes=scope.notes,
                )
                ok = False
            else:
                got = self.try_evaluate(
                    default, block_env, ("blocks", item.block, "params", pname), scope.notes
                )
                if got is _FAILED:
                    ok = False
                block_env[pname] = got
        for aname in args:
            if aname not in bdef.params:
                self.error(
                    f"block '{item.block}' has no parameter '{aname}'",
                    ipath + ("args", aname),
                    hint=choices_hint(aname, bdef.params, "its parameters"),
                    key=True,
                    notes=scope.notes,
                )
                ok = False
        if not ok:
            return None
        repeat = None
        if item.repeat is not None:
            repeat = self.eval_count(item.repeat, env, ipath + ("repeat",), scope.notes)
            if repeat is None:
                return None
        stem = item.name if item.name is not None else item.block
        stem = self.eval_name(stem, env, ipath + ("name",), scope.notes)
        if stem is None:
            return None
        locals_ = [stem] if repeat is None else [f"{stem}{k}" for k in range(len(repeat))]
        note = f"in block '{item.block}' used at {self.where(ipath)}"
        self.block_stack.append(item.block)
        try:
            for local in locals_:
                self.step(ipath, scope.notes)
                full = self.claim(scope, local, ipath, scope.notes)
                if full is None:
                    return None
                self.add_group(full, scope, ipath, item.block)
                child = self.child_scope(
                    scope, full, current, block_env, notes=(note,) + scope.notes
                )
                out = self.expand_items(bdef.layers, child, ("blocks", item.block, "layers"))
                current = self.publish(scope, local, out)
        finally:
            self.block_stack.pop()
        return current

    # -- skip paths ----------------------------------------------------------------------------
    def collect_skips(self) -> None:
        for s, spec in enumerate(self.doc.skips):
            spath = ("skips", s)
            env = self.params
            if spec.for_ is not None or spec.in_ is not None:
                if spec.for_ is None or spec.in_ is None:
                    self.error("a looping skip needs both 'for' and 'in'", spath)
                    continue
                values = self.eval_count(spec.in_, env, spath + ("in",), what="in")
                var = self.eval_name(spec.for_, {}, spath + ("for",), what="loop variable")
                index = spec.index and self.eval_name(
                    spec.index, {}, spath + ("index",), what="index variable"
                )
                if values is None or var is None or (spec.index and index is None):
                    continue
                iterations = [
                    (k, _extend(env, {var: v, **({spec.index: k} if spec.index else {})}))
                    for k, v in enumerate(values)
                ]
                numbered = True
            else:
                iterations = [(0, env)]
                numbered = False
            instances = []
            for k, ienv in iterations:
                self.step(spath, ())
                inst = self.skip_instance(spec, spath, ienv, k if numbered else None)
                if inst is not None:
                    instances.append(inst)
            targets = {i.target for i in instances}
            for inst in instances:
                if not inst.merge_name:
                    base = spec_name = inst.name
                    if len(targets) == 1 and numbered:
                        spec_name = self.eval_name(spec.name, inst.env, spath + ("name",)) or base
                        base = spec_name
                    inst.merge_name = f"{base}_{inst.merge}"
                self.pending.setdefault(inst.target, []).append(inst)

    def skip_instance(self, spec: SkipSpec, spath: Path, env, k: int | None):
        if not self.eval_bool(spec.when, env, spath + ("when",)):
            return None
        name = self.eval_name(spec.name, env, spath + ("name",))
        source = self.try_evaluate(spec.from_, env, spath + ("from",))
        target = self.try_evaluate(spec.to, env, spath + ("to",))
        merge = self.try_evaluate(spec.merge, env, spath + ("merge",))
        merge_name = None
        if spec.merge_name is not None:
            merge_name = self.eval_name(spec.merge_name, env, spath + ("merge_name",))
            if merge_name is None:
                return None
        if _FAILED in (source, target, merge) or name is None:
            return None
        if k is not None and not expr.is_template(spec.name):
            name = f"{name}{k}"
        if merge not in ("add", "concat"):
            self.error(f"invalid merge {merge!r}", spath + ("merge",), hint="use add or concat")
            return None
        part = str(target).split(".", 1)[0]
        if part not in ("encoder", "decoder"):
            self.error(
                f"skip target {target!r} must be in the encoder or the decoder",
                spath + ("to",),
                hint="skip paths join the encoder or the decoder, e.g. encoder.level3 or "
                "decoder.level0",
            )
            return None
        return _SkipInstance(
            name,
            part,
            str(source),
            str(target),
            merge,
            merge_name or "",
            list(spec.layers),
            env,
            spath,
        )

    def join_skips(self, target: str, current: TensorRef | None) -> TensorRef | None:
        instances = self.pending.pop(target)
        scope = self.part_scopes[instances[0].part]
        by_kind: dict[str, list[_SkipInstance]] = {}
        for inst in instances:
            by_kind.setdefault(inst.merge, []).append(inst)
        for kind, group in by_kind.items():
            outs: list[TensorRef | None] = [current]
            merge_local = group[0].merge_name
            merge_full = f"{scope.prefix}.{merge_local}"
            for inst in group:
                if inst.part != scope.part:
                    continue
                if inst.source == target:
                    self.error(
                        f"skip '{inst.name}' starts and ends at '{target}'", inst.path + ("from",)
                    )
                    outs.append(None)
                    continue
                src, found = self.resolve(
                    inst.source,
                    _Scope(inst.part, inst.part, TensorRef(INPUT), {}),
                    merge_full,
                    inst.path + ("from",),
                )
                full = self.claim(scope, inst.name, inst.path + ("name",))
                if full is None:
                    outs.append(None)
                    continue
                self.add_group(full, _Scope(full, scope.part, None, {}, role="skip"), inst.path)
                env = _extend(inst.env, self.shape_env(self.shape_of(src)))
                child = _Scope(full, scope.part, src, env, role="skip", skip=full)
                out = self.expand_items(inst.layers, child, inst.path + ("layers",))
                scope.names[inst.name] = out
                self.tensors[full] = out
                outs.append(out)
                if src is not None and out is not None:
                    self.skip_paths.append(
                        SkipPath(full, src, target, merge_full, kind, out, inst.path)
                    )
                elif found and src is None:
                    pass
            mfull = self.claim(scope, merge_local, group[0].path)
            if mfull is None:
                return None
            layer = REGISTRY[kind](kind=kind)
            merge_scope = _Scope(scope.prefix, scope.part, None, {}, role="merge", skip=mfull)
            if any(o is None for o in outs):
                self.drafts[mfull] = _Draft(
                    mfull, layer, (), None, 0, 0, 0, scope.part, "merge", mfull, group[0].path
                )
                current = None
            else:
                current = self.add_node(
                    mfull, layer, outs, merge_scope, group[0].path, role="merge"
                )
            scope.names[merge_local] = current
            self.tensors[mfull] = current
        return current

    # -- parts ---------------------------------------------------------------------------------
    def build_bottleneck(self, current: TensorRef | None) -> tuple[TensorRef | None, dict]:
        raw = self.doc.bottleneck.model_dump(by_alias=True)
        scope = _Scope("bottleneck", "bottleneck", current, self.params, role="bottleneck")
        self.part_scopes["bottleneck"] = scope
        outputs: dict[str, TensorRef | None] = {}
        try:
            data = self.evaluate(raw, self.params, ("bottleneck",))
        except _EvalFailed:
            return None, outputs
        try:
            cfg = validate_model(Bottleneck, data, ("bottleneck",))
        except SpecErrors as exc:
            self.errors.extend(exc.errors)
            return None, outputs
        self.bottleneck_cfg = cfg
        path = ("bottleneck",)
        enc_shape = self.shape_of(current)

        def node(local: str, kind: str, inputs, **fields) -> TensorRef | None:
            full = self.claim(scope, local, path)
            layer = self.make_layer(REGISTRY[kind], fields, path)
            ref = self.add_node(full, layer, inputs, scope, path) if full else None
            scope.names[local] = ref
            self.tensors[full] = ref
            return ref

        if cfg.kind == "none":
            outputs["code"] = current
            return current, outputs
        if cfg.kind == "vector_quantized":
            if enc_shape is not None and len(enc_shape) != 3:
                self.error(
                    f"a vector-quantized bottleneck needs an image-shaped encoder output, "
                    f"got {fmt(enc_shape)}",
                    path,
                )
                return None, outputs
            pre = node(
                "pre_quant",
                "conv2d",
                [current],
                filters=cfg.embedding_dim,
                kernel_size=1,
                kernel_initializer=cfg.kernel_initializer,
            )
            q = node(
                "quantizer",
                "vector_quantizer",
                [pre],
                num_embeddings=cfg.num_embeddings,
                commitment_cost=cfg.commitment_cost,
            )
            if q is None:
                return None, outputs
            outputs["vq_loss"] = TensorRef(q.node, 1)
            outputs["perplexity"] = TensorRef(q.node, 2)
            outputs["indices"] = TensorRef(q.node, 3)
            return q, outputs
        dense_args = dict(use_bias=cfg.use_bias, kernel_initializer=cfg.kernel_initializer)
        flat = node("flatten", "flatten", [current])
        if cfg.kind == "dense":
            code = node("code", "dense", [flat], units=cfg.units, **dense_args)
            if cfg.activation != "linear":
                code = node("code_activation", cfg.activation, [code])
            outputs["code"] = code
            latent = code
        else:
            mu = node("mu", "dense", [flat], units=cfg.units, **dense_args)
            logvar = node("logvar", "dense", [flat], units=cfg.units, **dense_args)
            outputs["mu"], outputs["logvar"] = mu, logvar
            latent = node("sample", "vae_sampling", [mu, logvar])
        if enc_shape is None:
            return None, outputs
        if len(enc_shape) != 3:
            self.error(
                f"the bottleneck expects an image-shaped encoder output, got {fmt(enc_shape)}", path
            )
            return None, outputs
        width = math.prod(enc_shape)
        if width > MAX_DENSE_WIDTH:
            self.error(
                f"the encoder output {fmt(enc_shape)} has {width:,} values, too many for a "
                f"dense bottleneck (at most {MAX_DENSE_WIDTH:,})",
                path,
                hint="add encoder levels or strides, reduce the encoder's last width, or use "
                "bottleneck kind none",
            )
            return None, outputs
        expand = node("expand", "dense", [latent], units=width, **dense_args)
        if cfg.expand_activation != "linear":
            expand = node("expand_activation", cfg.expand_activation, [expand])
        out = node("reshape", "reshape", [expand], target_shape=list(enc_shape))
        return out, outputs

    def build(self) -> ModelGraph:
        try:
            return self._build()
        except _Abort:
            raise SpecErrors(self.errors, self.source) from None

    def _build(self) -> ModelGraph:
        doc = self.doc
        self.prepass()
        shape = self.try_evaluate(doc.input.model_dump(by_alias=True), self.params, ("input",))
        if shape is not _FAILED:
            try:
                self.input_shape = tuple(validate_model(InputSpec, shape, ("input",)).shape)
            except SpecErrors as exc:
                self.errors.extend(exc.errors)
        if self.input_shape is None:  # nothing can be checked without it
            raise SpecErrors(self.errors, self.source)
        self.collect_skips()
        inp = TensorRef(INPUT)
        enc = _Scope("encoder", "encoder", inp, self.params)
        self.part_scopes["encoder"] = enc
        self.part_scopes["decoder"] = _Scope("decoder", "decoder", None, self.params)
        enc_out = self.expand_items(doc.encoder, enc, ("encoder",))
        enc_out = self.finish_part("encoder", enc_out)
        self.bottleneck_cfg = None
        bott_out, outputs = self.build_bottleneck(enc_out)
        dec = self.part_scopes["decoder"]
        dec.input = bott_out
        dec_out = self.expand_items(doc.decoder, dec, ("decoder",))
        dec_out = self.finish_part("decoder", dec_out)
        activation = self.try_evaluate(doc.output.model_dump(), self.params, ("output",))
        out_cfg = None
        if activation is not _FAILED:
            try:
                out_cfg = validate_model(OutputSpec, activation, ("output",))
            except SpecErrors as exc:
                self.errors.extend(exc.errors)
        if out_cfg is not None and out_cfg.activation != "linear":
            local = "output_activation"
            full = self.claim(dec, local, ("output", "activation"))
            if full:
                layer = REGISTRY[out_cfg.activation](kind=out_cfg.activation)
                dec_out = self.add_node(full, layer, [dec_out], dec, ("output", "activation"))
                self.tensors[full] = dec_out
        training = None
        if doc.training is not None:
            data = self.try_evaluate(
                doc.training.model_dump(by_alias=True), self.params, ("training",)
            )
            if data is not _FAILED:
                try:
                    training = validate_model(TrainingSpec, data, ("training",))
                except SpecErrors as exc:
                    self.errors.extend(exc.errors)
        self.report_leftovers()
        all_outputs = {"reconstruction": dec_out, **outputs}
        if self.bottleneck_cfg is not None and self.bottleneck_cfg.kind == "vector_quantized":
            order = ["vq_loss", "reconstruction", "perplexity", "indices"]
            all_outputs = {k: all_outputs[k] for k in order if k in all_outputs}
        if self.errors:
            from .checks import explain_resolution

            raise SpecErrors(explain_resolution(self, self.errors), self.source)
        graph = self.freeze(enc_out, bott_out, dec_out, all_outputs, out_cfg, training)
        trainable, non_trainable, _ = graph.counts()
        if trainable + non_trainable > MAX_PARAMETERS:
            raise SpecErrors(
                [
                    SpecError(
                        f"the model would have {trainable + non_trainable:,} parameters, more "
                        f"than specgen supports ({MAX_PARAMETERS:,})",
                        ("input",),
                    )
                ],
                self.source,
            )
        from .checks import check_graph

        problems = check_graph(graph, self)
        if problems:
            raise SpecErrors(problems, self.source)
        return graph

    def finish_part(self, part: str, out: TensorRef | None) -> TensorRef | None:
        scope = self.part_scopes[part]
        if part in self.pending:  # skips joining the whole part's output
            out = self.join_skips(part, out)
        self.tensors[part] = out
        del scope
        return out

    def prepass(self) -> None:
        """Checks that need no evaluation: names, kinds, keys, block references and recursion."""
        for name, bdef in self.doc.blocks.items():
            problem = check_identifier(name)
            if problem:
                self.error(
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
                    self.error(
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
            chain = " -> ".join(u[1] for u in cycle)
            self.error(
                f"blocks use each other in a cycle: {chain}", ("blocks", cycle[0][1]), key=True
            )
            raise _Abort  # expanding them would not end
        deepest = [u[1] for u in nx.dag_longest_path(blocks)]
        if len(deepest) > MAX_NESTING:
            self.error(
                f"blocks use each other {len(deepest)} deep, more than the limit of "
                f"{MAX_NESTING}: {_chain(deepest)}",
                ("blocks", deepest[0]),
                hint="each block here uses the next one in its layers",
                key=True,
            )
            raise _Abort

    def item_lists(self):
        yield ("encoder",), self.doc.encoder
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
                    self.error(
                        f"unknown layer kind '{item.kind}'",
                        ipath + ("kind",),
                        hint=choices_hint(item.kind, REGISTRY, "layer kinds"),
                    )
                    continue
                allowed = set(cls.model_fields) - {"kind"}
                for key in item.model_extra or {}:
                    if key not in allowed:
                        self.rejected.add(ipath)
                        self.error(
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
            self.error(
                f"unknown block '{block}'",
                ipath + ("block",),
                hint=choices_hint(block, self.doc.blocks, "defined blocks")
                if self.doc.blocks
                else "define it under 'blocks:'",
            )
        else:
            uses.add_edge(owner, ("block", block))

    def report_leftovers(self) -> None:
        """Skip targets never reached and references that never resolved."""
        known = set(self.tensors) | {INPUT}
        for target, instances in sorted(self.pending.items()):
            for inst in instances:
                self.error(
                    f"skip '{inst.name}' joins '{target}', which does not exist",
                    inst.path + ("to",),
                    hint=_near(target, known),
                )
        seen_paths: set[Path] = set()
        by_path: dict[Path, list] = {}
        for name, consumer, path, notes in self.unresolved:
            by_path.setdefault(path, []).append((name, consumer, notes))
        for path, cands in by_path.items():
            if path in seen_paths:
                continue
            seen_paths.add(path)
            later = [c for c in cands if c[0] in self.drafts or c[0] in self.tensors]
            name, consumer, notes = (later or cands)[-1] if not later else later[0]
            shown = cands[-1][0]
            if later:
                cycle = self.cycle_through(name, consumer)
                if cycle:
                    self.error(
                        "this reference makes a cycle: " + " -> ".join(cycle), path, notes=notes
                    )
                else:
                    self.error(
                        f"'{name}' is defined after it is used here; references must "
                        "point to earlier tensors",
                        path,
                        hint=f"'{name}' is defined at {self.where(self.defined_at[name])}"
                        if name in self.defined_at
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
                self.error(
                    f"unknown reference '{shown}'",
                    path,
                    hint=_near(shown, siblings | known),
                    notes=notes,
                )

    def cycle_through(self, source: str, consumer: str) -> list[str] | None:
        g = self.draft_graph
        if g is None:  # built once: every reference reported after expansion asks
            g = self.draft_graph = nx.DiGraph()
            for d in self.drafts.values():
                for r in d.inputs:
                    g.add_edge(r.node, d.name)
        # a group name stands for its last node
        src = source
        if src not in g and self.tensors.get(src) is not None:
            src = self.tensors[src].node
        if consumer not in g or src not in g:
            return None
        try:
            path = nx.shortest_path(g, consumer, src)
        except nx.NetworkXNoPath:
            return None
        return path + [consumer]

    def freeze(self, enc_out, bott_out, dec_out, outputs, out_cfg, training) -> ModelGraph:
        nodes = tuple(
            Node(
                d.name,
                d.layer,
                d.inputs,
                d.shapes,
                d.trainable,
                d.non_trainable,
                d.macs,
                d.part,
                d.role,
                d.skip,
                d.origin,
            )
            for d in self.drafts.values()
        )
        inp = TensorRef(INPUT)
        parts = (
            Part("encoder", inp, enc_out),
            Part("bottleneck", enc_out, bott_out),
            Part("decoder", bott_out, dec_out),
        )
        return ModelGraph(
            name=self.doc.name,
            description=self.doc.description,
            spec_file=self.source.filename if self.source else "<spec>",
            input_shape=self.input_shape,
            parameters=dict(self.params),
            nodes=nodes,
            groups=tuple(self.groups),
            skips=tuple(self.skip_paths),
            parts=parts,
            outputs=tuple(outputs.items()),
            bottleneck=self.bottleneck_cfg,
            output_activation=out_cfg.activation if out_cfg else "linear",
            training=training,
        )


class _EvalFailed(Exception):
    pass


_FAILED = object()
#: Set in an environment whose scope input has no known shape (after an earlier error).
_UNKNOWN_SHAPE = "__unknown_shape__"


def _extend(env: Mapping[str, Any], values: dict[str, Any]) -> ChainMap:
    """``env`` with ``values`` bound on top of it; ``env`` is shared, not copied (copying
    every parameter into every scope would make expansion quadratic)."""
    if not values:
        return env
    if isinstance(env, ChainMap):
        return env.new_child(values)
    return ChainMap(values, env)


def _chain(names: list[str], glue: str = " -> ") -> str:
    """``a -> b -> c``, with the middle of a long chain left out."""
    gap = "[...]" if glue == "." else "..."
    shown = names if len(names) <= 8 else [*names[:4], gap, *names[-3:]]
    return glue.join(shown)


def _near(name: str, known: Iterable[str]) -> str | None:
    near = suggest(name, known)
    return f"did you mean '{near}'?" if near else None


def fmt(shape: Shape | None) -> str:
    return "(?)" if shape is None else fmt_shape(shape)


def expand(doc: SpecDocument, params: dict[str, Any], source: Source | None) -> ModelGraph:
    return Expander(doc, params, source).build()


__all__ = ["expand", "Expander", "MAX_NODES", "MAX_REPEAT", "BaseModel"]
