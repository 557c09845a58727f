"""Evaluation environments, and evaluating a spec's ``${...}`` expressions in them.

An environment is the spec's parameters with, on top, what a scope binds: block arguments, loop
variables and the shape of the scope's input (``in_channels``, ``in_height``, ``in_width``).
Environments are layered (:func:`extend`), never copied. Evaluation errors are recorded in the
:class:`~specgen.expand.budget.Budget`, not raised; a value that failed is :data:`FAILED`.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import expr
from ..errors import Path
from ..layers import Shape
from ..layers.base import AXIS_NAMES
from ..names import check_identifier, identifier_hint
from ..schema import BUILTIN_VARIABLES
from .budget import MAX_REPEAT, Budget

if TYPE_CHECKING:  # pragma: no cover
    from .scopes import Scope


class EvalFailed(Exception):
    """An expression failed; the error is already recorded."""


#: What :meth:`Evaluator.try_evaluate` returns for a value whose evaluation failed.
FAILED = object()
#: Set in an environment whose scope input has no known shape (after an earlier error).
UNKNOWN_SHAPE = "__unknown_shape__"


def extend(env: Mapping[str, Any], values: dict[str, Any]) -> ChainMap:
    """``env`` with ``values`` bound on top of it; ``env`` is shared, not copied (copying
    every parameter into every scope would make expansion quadratic)."""
    if not values:
        return env
    if isinstance(env, ChainMap):
        return env.new_child(values)
    return ChainMap(values, env)


#: The names of the spatial sizes of a feature map ``(*spatial, C)``, by spatial rank:
#: ``in_height``, ``in_width``...
SPATIAL_VARIABLES = {rank: tuple(f"in_{n}" for n in names) for rank, names in AXIS_NAMES.items()}


def shape_env(shape: Shape | None, rank: int | None = None) -> dict[str, Any]:
    """The variables that describe a scope's input shape: ``in_shape`` (the whole shape) and
    ``in_channels`` (its last axis), and for a feature map of the spec's spatial rank ``rank``
    (taken from the shape when not given) its spatial sizes by name (``in_height``...)."""
    if shape is None:
        return {UNKNOWN_SHAPE: True}
    env: dict[str, Any] = {"in_shape": list(shape)}
    if not shape:
        return env
    env["in_channels"] = shape[-1]
    spatial = len(shape) - 1 if rank is None else rank
    if len(shape) == spatial + 1 and spatial in SPATIAL_VARIABLES:
        env.update(zip(SPATIAL_VARIABLES[spatial], shape[:-1], strict=True))
    return env


class Evaluator:
    """Evaluates values of the spec, recording what fails in ``budget``."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def evaluate(self, value: Any, env: Mapping[str, Any], path: Path, notes=()) -> Any:
        """Evaluate every ``${...}`` in ``value`` (recursively); errors are recorded, then
        :class:`EvalFailed` is raised."""
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
                if env.get(UNKNOWN_SHAPE) and any(v in exc.message for v in BUILTIN_VARIABLES):
                    raise EvalFailed from None  # a consequence of an earlier error
                self.budget.error(exc.message, path, exc.hint, notes=notes)
                raise EvalFailed from None
        return value

    def try_evaluate(self, value: Any, env: Mapping[str, Any], path: Path, notes=()) -> Any:
        """:meth:`evaluate`, or :data:`FAILED`."""
        try:
            return self.evaluate(value, env, path, notes)
        except EvalFailed:
            return FAILED

    def eval_bool(self, value: Any, env, path, notes=()) -> bool | None:
        """A ``when`` condition (absent: true); None if it failed."""
        if value is None:
            return True
        got = self.try_evaluate(value, env, path, notes)
        if got is FAILED:
            return None
        if not isinstance(got, bool):
            self.budget.error(f"'when' must be true or false, got {got!r}", path, notes=notes)
            return None
        return got

    def eval_name(
        self, value: str, env, path, notes=(), *, what="name", scope: Scope | None = None
    ) -> str | None:
        """An evaluated, valid name; an invalid one is reported (and, given ``scope``, still
        reserved there so that references to it do not report again)."""
        got = self.try_evaluate(value, env, path, notes)
        if got is FAILED:
            return None
        if what in ("loop variable", "index variable") and got in BUILTIN_VARIABLES:
            self.budget.error(f"'{got}' is bound by specgen itself", path, notes=notes)
            return None
        problem = check_identifier(got)
        if problem:
            self.budget.error(
                f"invalid {what} {got!r}: {problem}", path, identifier_hint(got), notes=notes
            )
            if scope is not None and isinstance(got, str):
                scope.names.setdefault(got, None)
            return None
        return got

    def eval_loop_vars(
        self, for_: str, index: str | None, path: Path, notes=()
    ) -> tuple[str, str | None] | None:
        """A loop's variable (``for``) and its optional index variable, evaluated without
        bindings; None if either is invalid (both are reported)."""
        var = self.eval_name(for_, {}, path + ("for",), notes, what="loop variable")
        index_name = index and self.eval_name(
            index, {}, path + ("index",), notes, what="index variable"
        )
        if var is None or (index and index_name is None):
            return None
        return var, index_name

    def eval_count(self, value: Any, env, path, notes=(), *, what="repeat") -> list | None:
        """A loop's values: an int n means 0..n-1; a list is iterated as it is."""
        got = self.try_evaluate(value, env, path, notes)
        if got is FAILED:
            return None
        if isinstance(got, bool) or not isinstance(got, (int, list)):
            self.budget.error(f"'{what}' must be a count or a list, got {got!r}", path, notes=notes)
            return None
        if isinstance(got, int):
            if got < 0:
                self.budget.error(f"'{what}' must not be negative, got {got}", path, notes=notes)
                return None
            got = list(range(min(got, MAX_REPEAT + 1)))
        if len(got) > MAX_REPEAT:
            self.budget.error(
                f"'{what}' asks for more than {MAX_REPEAT} repetitions", path, notes=notes
            )
            return None
        return got
