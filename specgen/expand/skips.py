"""Skip paths: from a tensor, through optional layers, merged into a later tensor.

The spec's ``skips`` are evaluated before the parts are expanded (:meth:`Skips.collect`, a looping
skip giving one instance per iteration) and wait for their target. When the target is complete,
:meth:`Skips.join` expands each skip's layers in a group of its own, starting from its source, and
merges them into the target with one ``add`` or ``concat`` node per merge kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import expr
from ..errors import Path
from ..graph import INPUT, Node, SkipPath, TensorRef
from ..layers import REGISTRY
from ..schema import SkipSpec, SpecDocument
from .budget import Budget
from .evaluate import FAILED, Evaluator, extend
from .nodes import DraftGraph
from .scopes import Names, Scope


@dataclass
class SkipInstance:
    name: str
    part: str
    source: str
    target: str
    merge: str
    merge_name: str
    layers: list
    env: Mapping[str, Any]
    path: Path


class Skips:
    """The skip instances waiting for their target (:attr:`pending`), and joining them."""

    def __init__(
        self,
        doc: SpecDocument,
        params: Mapping[str, Any],
        budget: Budget,
        evaluator: Evaluator,
        names: Names,
        draft: DraftGraph,
        expand_items: Callable[..., TensorRef | None],
    ):
        self.doc = doc
        self.params = params
        self.budget = budget
        self.evaluator = evaluator
        self.names = names
        self.draft = draft
        #: expands a skip's layers (``items, scope, path``) and returns their output
        self.expand_items = expand_items
        #: target name -> the instances that join it, in spec order
        self.pending: dict[str, list[SkipInstance]] = {}

    def collect(self) -> None:
        """Evaluate every skip of the spec into instances waiting for their targets."""
        ev = self.evaluator
        for s, spec in enumerate(self.doc.skips):
            spath = ("skips", s)
            env = self.params
            if spec.for_ is not None or spec.in_ is not None:
                if spec.for_ is None or spec.in_ is None:
                    self.budget.error("a looping skip needs both 'for' and 'in'", spath)
                    continue
                values = ev.eval_count(spec.in_, env, spath + ("in",), what="in")
                loop_vars = ev.eval_loop_vars(spec.for_, spec.index, spath)
                if values is None or loop_vars is None:
                    continue
                var = loop_vars[0]
                iterations = [
                    (k, extend(env, {var: v, **({spec.index: k} if spec.index else {})}))
                    for k, v in enumerate(values)
                ]
                numbered = True
            else:
                iterations = [(0, env)]
                numbered = False
            instances = []
            for k, ienv in iterations:
                self.budget.step(spath, ())
                inst = self.instance(spec, spath, ienv, k if numbered else None)
                if inst is not None:
                    instances.append(inst)
            targets = {i.target for i in instances}
            for inst in instances:
                if not inst.merge_name:
                    base = spec_name = inst.name
                    if len(targets) == 1 and numbered:
                        spec_name = ev.eval_name(spec.name, inst.env, spath + ("name",)) or base
                        base = spec_name
                    inst.merge_name = f"{base}_{inst.merge}"
                self.pending.setdefault(inst.target, []).append(inst)

    def instance(self, spec: SkipSpec, spath: Path, env, k: int | None) -> SkipInstance | None:
        ev = self.evaluator
        if not ev.eval_bool(spec.when, env, spath + ("when",)):
            return None
        name = ev.eval_name(spec.name, env, spath + ("name",))
        source = ev.try_evaluate(spec.from_, env, spath + ("from",))
        target = ev.try_evaluate(spec.to, env, spath + ("to",))
        merge = ev.try_evaluate(spec.merge, env, spath + ("merge",))
        merge_name = None
        if spec.merge_name is not None:
            merge_name = ev.eval_name(spec.merge_name, env, spath + ("merge_name",))
            if merge_name is None:
                return None
        if FAILED in (source, target, merge) or name is None:
            return None
        if k is not None and not expr.is_template(spec.name):
            name = f"{name}{k}"
        if merge not in ("add", "concat", "multiply"):
            self.budget.error(
                f"invalid merge {merge!r}", spath + ("merge",), hint="use add, concat or multiply"
            )
            return None
        part = str(target).split(".", 1)[0]
        if part not in ("encoder", "decoder"):
            self.budget.error(
                f"skip target {target!r} must be in the encoder or the decoder",
                spath + ("to",),
                hint="skip paths join the encoder or the decoder, e.g. encoder.level3 or "
                "decoder.level0",
            )
            return None
        return SkipInstance(
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

    def join(self, target: str, current: TensorRef | None) -> TensorRef | None:
        """Merge the skips waiting for ``target`` (whose output is ``current``) into it; returns
        the merged tensor."""
        names, draft = self.names, self.draft
        instances = self.pending.pop(target)
        scope = names.parts[instances[0].part]
        by_kind: dict[str, list[SkipInstance]] = {}
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
                    self.budget.error(
                        f"skip '{inst.name}' starts and ends at '{target}'", inst.path + ("from",)
                    )
                    outs.append(None)
                    continue
                src, found = names.resolve(
                    inst.source,
                    Scope(inst.part, inst.part, TensorRef(INPUT), {}),
                    merge_full,
                    inst.path + ("from",),
                )
                full = names.claim(scope, inst.name, inst.path + ("name",))
                if full is None:
                    outs.append(None)
                    continue
                draft.add_group(full, Scope(full, scope.part, None, {}, role="skip"), inst.path)
                env = extend(inst.env, draft.shape_variables(src))
                child = Scope(full, scope.part, src, env, role="skip", skip=full)
                out = self.expand_items(inst.layers, child, inst.path + ("layers",))
                names.record(scope, inst.name, out)
                outs.append(out)
                if src is not None and out is not None:
                    draft.skip_paths.append(
                        SkipPath(full, src, target, merge_full, kind, out, inst.path)
                    )
            mfull = names.claim(scope, merge_local, group[0].path)
            if mfull is None:
                return None
            layer = draft.validate_layer(REGISTRY[kind], {"kind": kind})
            merge_scope = Scope(scope.prefix, scope.part, None, {}, role="merge", skip=mfull)
            if any(o is None for o in outs):
                draft.nodes[mfull] = Node(
                    mfull, layer, (), None, 0, 0, 0, scope.part, "merge", mfull, group[0].path
                )
                current = None
            else:
                current = draft.add_node(
                    mfull, layer, outs, merge_scope, group[0].path, role="merge"
                )
            names.record(scope, merge_local, current)
        return current
