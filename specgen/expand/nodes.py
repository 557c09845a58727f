"""The graph under construction, and where each node's output shape is inferred.

A layer's fields are validated by its kind's config model (:meth:`DraftGraph.make_layer`); when it
is added (:meth:`DraftGraph.add_node`) its arity is checked and its output shapes, parameter and
MAC counts come from the kind's own rules in :mod:`specgen.layers`, so later expressions can read
them. A node whose input shape is unknown (after an earlier error) is still added, so that what it
feeds stays connected for the cycle check, and reports nothing further.
"""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import Path, SpecError
from ..graph import INPUT, Group, Node, SkipPath, TensorRef
from ..layers import RANK_CONTEXT, LayerConfig, Shape, ShapeError, fmt_shape
from ..validate import spec_errors
from .budget import MAX_NODES, Abort, Budget
from .evaluate import shape_env
from .scopes import Scope

#: Hints for required layer fields whose absence needs explaining.
REQUIRED_HINTS = {
    ("leaky_relu", "negative_slope"): "there is no default because frameworks disagree "
    "(PyTorch 0.01, Keras 0.3); e.g. negative_slope: 0.2",
}


def fmt(shape: Shape | None) -> str:
    return "(?)" if shape is None else fmt_shape(shape)


class DraftGraph:
    """Nodes, groups and skip paths in the order they are made, and the model's input shape.

    The nodes are the IR's own :class:`~specgen.graph.Node`; until expansion succeeds, one may
    have ``output_shapes`` None (its shape is unknown after an error).
    """

    def __init__(self, budget: Budget):
        self.budget = budget
        self.nodes: dict[str, Node] = {}
        self.groups: list[Group] = []
        self.skip_paths: list[SkipPath] = []
        self.input_shape: Shape | None = None

    @property
    def spatial_rank(self) -> int | None:
        """The spec's spatial rank, from its input shape ``(*spatial, C)``."""
        return None if self.input_shape is None else len(self.input_shape) - 1

    def validate_layer(self, cls, data: dict) -> LayerConfig:
        """``data`` validated by the layer kind ``cls`` at the spec's spatial rank (raises
        pydantic's ValidationError)."""
        return cls.model_validate(data, context={RANK_CONTEXT: self.spatial_rank})

    def shape_variables(self, ref: TensorRef | None) -> dict:
        """The shape variables (``in_channels``, ``in_shape``...) of a scope whose input is
        ``ref``."""
        return shape_env(self.shape_of(ref), self.spatial_rank)

    def shape_of(self, ref: TensorRef | None) -> Shape | None:
        if ref is None:
            return None
        if ref.node == INPUT:
            return self.input_shape
        node = self.nodes.get(ref.node)
        if node is None or node.output_shapes is None:
            return None
        return node.output_shapes[ref.port]

    def port_count(self, name: str) -> int | None:
        """How many outputs node ``name`` has; None while unknown (not a node, or failed)."""
        node = self.nodes.get(name)
        if node is None or node.output_shapes is None:
            return None
        return len(node.output_shapes)

    def make_layer(
        self, cls, fields: dict, path: Path, notes=(), skip: set[str] = frozenset()
    ) -> LayerConfig | None:
        """Validate one layer's fields; errors about the fields in ``skip`` (whose expressions
        failed) are left out, and a missing required field gets the kind's own hint."""
        kind = cls.model_fields["kind"].default
        data = {"kind": kind, **fields}
        try:
            return self.validate_layer(cls, data)
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
                self.budget.errors.append(
                    SpecError(err.message, err.path, err.hint, err.key, err.notes + tuple(notes))
                )
            return None

    def add_node(
        self, full: str, layer, inputs, scope: Scope, path: Path, *, role=None
    ) -> TensorRef | None:
        """Add ``layer`` as node ``full`` reading ``inputs``, inferring its output shapes."""
        if len(self.nodes) >= MAX_NODES:
            self.budget.error(
                f"the spec expands to more than {MAX_NODES} layers", path, notes=scope.notes
            )
            raise Abort
        role = role or scope.role
        if layer is None:
            return None
        problem = layer.check_arity(len(inputs))
        if problem:
            self.budget.error(f"{layer.kind} '{full}': {problem}", path, notes=scope.notes)
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
                self.budget.error(
                    f"'{full}' would produce a tensor of shape {fmt(shapes[0])}, larger "
                    "than specgen supports",
                    path,
                    notes=scope.notes,
                )
                shapes = None
        self.nodes[full] = Node(
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
        return TensorRef(full, 0)

    def describe(self, ref: TensorRef) -> str:
        if ref.node == INPUT:
            return "the model input"
        return str(ref)

    def shape_error(self, exc: ShapeError, full, layer, inputs, in_shapes, scope, path) -> None:
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
                origin = self.nodes[r.node].origin if r.node in self.nodes else None
                if origin is not None:
                    notes.append(f"{self.describe(r)} comes from {self.budget.where(origin)}")
            self.budget.errors.append(SpecError(message, path, hint=exc.hint, notes=tuple(notes)))
            return
        fpath = path + (exc.field,) if exc.field else path
        shape_txt = ", ".join(fmt(s) for s in in_shapes)
        self.budget.errors.append(
            SpecError(
                f"{layer.kind} '{full}' on input {shape_txt}: {exc.message}",
                fpath,
                hint=exc.hint,
                notes=tuple(notes),
            )
        )

    def add_group(self, full: str, scope: Scope, path: Path, block: str | None = None) -> None:
        """Open the group ``full`` (a group, loop iteration, block instance or skip path)."""
        self.budget.check_group(full, path, scope.notes)
        self.groups.append(
            Group(full, scope.part, block, scope.role == "skip", len(self.nodes), path)
        )
