"""From the graph to a program: modules, statements and variables, for any framework.

The graph's groups become modules. A group is *closed* when exactly one tensor enters it and
exactly one leaves it (its output): it gets a class with its own forward pass, and its parent
calls it as one statement. Other groups are *containers*: they only hold their children as
attributes, and the enclosing module's forward reaches into them (``self.level0.down(x)``), so
every node keeps its dotted name as its attribute path.

Closed groups and containers with the same structure share one class; numbers that differ between
instances become constructor parameters (``ResBlock(channels=16)``). Statements are ordered
topologically, in spec order, except that a skip path's transform runs right after its source when
it shrinks the tensor and right before its merge when it grows it, so that large tensors are not
kept alive longer than needed. Variables are reused along chains (``x``, ``h``) and named after
the node otherwise.

A target (PyTorch, Keras) supplies, per node, its constructor as a class expression plus
arguments (:class:`Ctor`), and how statements print; everything else is decided here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from ..graph import INPUT, ModelGraph, Node, TensorRef
from .namespace import NameClash, Namespace, camel_case

# ----------------------------------------------------------------------------------------------
# Constructors


@dataclass(frozen=True)
class Arg:
    """One constructor argument: ``keyword=value`` (or positional when ``keyword`` is None).

    ``label`` names the argument for parameter naming when it is positional."""

    keyword: str | None
    value: Any
    label: str = ""

    @property
    def name(self) -> str:
        return self.keyword or self.label


@dataclass(frozen=True)
class Ctor:
    """``callee(args...)`` — how one attribute is built."""

    callee: str
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Param:
    name: str
    #: positions (attribute, argument name) whose value this parameter supplies
    positions: tuple[tuple[str, str], ...]


# ----------------------------------------------------------------------------------------------
# Statements and modules


@dataclass(frozen=True)
class Statement:
    """``targets = <op>(inputs)`` — one line of a forward pass."""

    targets: tuple[str, ...]
    #: "layer" (call a child attribute that is a layer), "call" (a closed child module) or an op
    #: kind ("add", "multiply", "concat", "flatten", "reshape", "crop", "crop2d", "identity",
    #: "scale") written inline.
    op: str
    attr: str
    inputs: tuple[str, ...]
    node: Node | None
    #: output shape of the first target (batch excluded, channels last)
    shape: tuple[int, ...] | None
    #: the graph name of what this statement computes (node or group)
    source: str


@dataclass
class ModuleInstance:
    """One closed group, container, or part."""

    name: str
    closed: bool
    attrs: list[tuple[str, Ctor]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    input_refs: list[TensorRef] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    output_refs: list[TensorRef] = field(default_factory=list)
    block: str | None = None


@dataclass
class ClassDef:
    name: str
    closed: bool
    params: list[Param]
    attrs: list[tuple[str, Ctor]]  # values that are parameters hold a ParamRef
    instances: list[str]
    sample: ModuleInstance
    block: str | None = None
    description: str = ""


@dataclass(frozen=True)
class ParamRef:
    name: str


@dataclass
class Program:
    graph: ModelGraph
    classes: list[ClassDef]
    #: graph group name -> (class name, constructor args)
    instantiation: dict[str, Ctor]
    parts: dict[str, ModuleInstance]
    #: names of closed groups
    closed: set[str]


# ----------------------------------------------------------------------------------------------
# The group tree


class _Children(dict):
    """Child names by parent name; remembers each group's nodes once they are asked for."""

    def __init__(self, *args):
        super().__init__(*args)
        self.inside: dict[str, list[Node]] = {}


def _tree(graph: ModelGraph, roots: Sequence[str]) -> tuple[dict[str, list[str]], set[str]]:
    """children[name] = direct child names (nodes and groups) in creation order."""
    groups = {g.name: g for g in graph.groups}
    order: dict[str, tuple[int, int]] = {}
    for i, n in enumerate(graph.nodes):
        order[n.name] = (i, 1)
    for g in graph.groups:
        order[g.name] = (g.index, 0)
    children = _Children({r: [] for r in roots})
    for name in sorted(order, key=lambda v: order[v]):
        parent = name.rsplit(".", 1)[0]
        children.setdefault(parent, []).append(name)
        if name in groups:
            children.setdefault(name, [])
    return children, set(groups)


def _descendant_nodes(children: dict[str, list[str]], name: str, nodes: dict[str, Node]):
    cache = getattr(children, "inside", None)
    if cache is not None and name in cache:
        return cache[name]
    out: list[Node] = []
    stack = [name]
    while stack:
        cur = stack.pop()
        for c in children.get(cur, []):
            if c in nodes:
                out.append(nodes[c])
            else:
                stack.append(c)
    if cache is not None:
        cache[name] = out
    return out


def closed_groups(graph: ModelGraph) -> set[str]:
    """Groups with one tensor in and one tensor out (the group's last output)."""
    children, groups = _tree(graph, [p.name for p in graph.parts])
    nodes = {n.name: n for n in graph.nodes}
    consumers: dict[TensorRef, set[str]] = {}
    for n in graph.nodes:
        for r in n.inputs:
            consumers.setdefault(r, set()).add(n.name)
    model_outputs = {r for _, r in graph.outputs}
    closed: set[str] = set()
    for g in graph.groups:
        inside = _descendant_nodes(children, g.name, nodes)
        if not inside:
            continue
        names = {n.name for n in inside}
        ext_in = {r for n in inside for r in n.inputs if r.node not in names}
        escaping = set()
        for n in inside:
            for port in range(len(n.output_shapes)):
                ref = TensorRef(n.name, port)
                users = consumers.get(ref, set())
                if users - names or ref in model_outputs:
                    escaping.add(ref)
        if len(ext_in) == 1 and len(escaping) == 1:
            closed.add(g.name)
    return closed


# ----------------------------------------------------------------------------------------------
# Scheduling and variables


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _skip_priorities(graph: ModelGraph) -> dict[str, float]:
    """Where a skip path's units go: early (after the source) or late (before the merge)."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    out: dict[str, float] = {}
    for s in graph.skips:
        grow = _numel(graph.shape(s.output)) > _numel(graph.shape(s.source))
        if grow:
            out[s.name] = index[s.merge] - 0.5
        else:
            src = index.get(s.source.node, -1)
            out[s.name] = src + 0.5
    return out


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass
class _Unit:
    name: str  # node or group full name
    attr: str  # attribute path relative to the module
    is_call: bool
    inputs: list[TensorRef]
    outputs: list[TensorRef]
    node: Node | None
    priority: float


def _units(graph, module: str, children, closed, nodes, skip_prio) -> list[_Unit]:
    index = graph.node_index
    units: list[_Unit] = []

    def prio(name: str, first_index: float) -> float:
        for s, p in skip_prio.items():
            if name == s or name.startswith(s + "."):
                return p + first_index / 1e6
        return first_index

    def visit(parent: str, prefix: str):
        for c in children.get(parent, []):
            attr = c[len(module) + 1 :] if c.startswith(module + ".") else c
            if c in nodes:
                n = nodes[c]
                outs = [TensorRef(c, p) for p in range(len(n.output_shapes))]
                units.append(_Unit(c, attr, False, list(n.inputs), outs, n, prio(c, index[c])))
            elif c in closed:
                inside = _descendant_nodes(children, c, nodes)
                names = {n.name for n in inside}
                ext = sorted({r for n in inside for r in n.inputs if r.node not in names})
                last = _group_output(graph, inside)
                first = min(index[n.name] for n in inside)
                units.append(_Unit(c, attr, True, ext, [last], None, prio(c, first)))
            else:
                visit(c, prefix)

    visit(module, "")
    return units


def _group_output(graph: ModelGraph, inside: list[Node]) -> TensorRef:
    names = {n.name for n in inside}
    consumers = graph.consumer_map
    model_outputs = {r for _, r in graph.outputs}
    for n in reversed(inside):
        for port in range(len(n.output_shapes)):
            ref = TensorRef(n.name, port)
            if (consumers.get(ref, set()) - names) or ref in model_outputs:
                return ref
    return TensorRef(inside[-1].name)


def _schedule(units: list[_Unit]) -> list[_Unit]:
    producer = {ref: u.name for u in units for ref in u.outputs}
    g = nx.DiGraph()
    by_name = {u.name: u for u in units}
    for u in units:
        g.add_node(u.name)
        for r in u.inputs:
            if r in producer and producer[r] != u.name:
                g.add_edge(producer[r], u.name)
    order = nx.lexicographical_topological_sort(g, key=lambda v: (by_name[v].priority, v))
    return [by_name[v] for v in order]


CHAIN_VARS = ("x", "h")


def build_body(
    graph: ModelGraph,
    inst: ModuleInstance,
    units: list[_Unit],
    module_inputs: list[TensorRef],
    module_outputs: list[TensorRef],
    input_names: list[str],
    scope: Namespace,
) -> None:
    """Fill ``inst`` with its inputs, statements and variable names.

    ``input_names`` are what the inputs would be called; the variables are the forward pass's
    own namespace inside ``scope`` (what the module defines itself, which a forward pass may
    use)."""
    local = scope.child(CHAIN_VARS)
    input_names = [v if v in CHAIN_VARS else local.fresh(v, sep="_") for v in input_names]
    inst.inputs = input_names
    ordered = _schedule(units)
    last_use: dict[TensorRef, int] = {}
    for i, u in enumerate(ordered):
        for r in u.inputs:
            last_use[r] = i
    for r in module_outputs:
        last_use[r] = len(ordered) + 1
    var_of: dict[TensorRef, str] = dict(zip(module_inputs, input_names, strict=True))
    holder: dict[str, TensorRef] = {v: r for r, v in var_of.items()}
    consumers_at: dict[TensorRef, list[int]] = {}
    for i, u in enumerate(ordered):
        for r in u.inputs:
            consumers_at.setdefault(r, []).append(i)

    def free(var: str, i: int) -> bool:
        ref = holder.get(var)
        return ref is None or last_use.get(ref, -1) <= i

    statements: list[Statement] = []
    for i, u in enumerate(ordered):
        in_vars = tuple(var_of[r] for r in u.inputs)
        targets: list[str] = []
        for port, ref in enumerate(u.outputs):
            uses = consumers_at.get(ref, [])
            final = i == len(ordered) - 1
            # a tensor read again later, or handed out of the module before the end, is named
            # after what computes it; the main chain reuses x and h
            long_lived = (
                port > 0
                or len(uses) > 1
                or any(use > i + 1 for use in uses)
                or (ref in module_outputs and not final)
                or (ref in module_outputs and len(u.outputs) > 1)
            )
            if port > 0 and not uses and ref not in module_outputs:
                name = "_"  # an extra output nothing reads
            elif long_lived:
                name = local.fresh(u.attr + (f"_{port}" if port else ""), sep="_")
            elif in_vars and in_vars[0] in CHAIN_VARS and free(in_vars[0], i):
                name = in_vars[0]
            else:
                name = next((v for v in CHAIN_VARS if free(v, i)), None) or local.fresh(
                    u.attr, sep="_"
                )
            var_of[ref] = name
            holder[name] = ref
            targets.append(name)
        node = u.node
        op = (
            "call"
            if u.is_call
            else ("layer" if node.layer.has_weights or not _inline(node) else node.kind)
        )
        shape = graph.shape(u.outputs[0])
        statements.append(Statement(tuple(targets), op, u.attr, in_vars, node, shape, u.name))
    inst.statements = statements
    inst.outputs = [var_of[r] for r in module_outputs]
    inst.output_refs = list(module_outputs)


#: Parameter-free ops written inline instead of as attributes.
INLINE_OPS = (
    "add",
    "multiply",
    "concat",
    "flatten",
    "reshape",
    "crop",
    "crop2d",
    "identity",
    "scale",
)


def _inline(node: Node) -> bool:
    return node.kind in INLINE_OPS


# ----------------------------------------------------------------------------------------------
# Classes


def claim_attributes(
    owner: str, attrs: Sequence[str], taken: frozenset[str] | set[str]
) -> list[str]:
    """``attrs``, the attribute names of one module, checked against ``taken`` (what the
    frameworks and the generated class itself define) and each other."""
    scope = Namespace(taken)
    try:
        return [scope.claim(a) for a in attrs]
    except NameClash as exc:
        raise NameClash(f"an attribute of {owner}: {exc}") from None


def build_program(
    graph: ModelGraph,
    layer_ctor: Callable[[Node, ModelGraph], Ctor],
    *,
    module: Namespace,
    attribute_words: frozenset[str],
) -> Program:
    """Modules, classes and statements for ``graph``; ``layer_ctor`` builds one node.

    Classes get their names in ``module``, whose reserved words are everything else the file
    defines at module level; attribute names are node names, checked against
    ``attribute_words``; every forward pass names its variables in a namespace of its own under
    the module's reserved words, and every constructor its parameters under all of ``module``."""
    nodes = {n.name: n for n in graph.nodes}
    roots = [p.name for p in graph.parts]
    children, groups = _tree(graph, roots)
    closed = closed_groups(graph)
    group_info = {g.name: g for g in graph.groups}
    skip_prio = _skip_priorities(graph)

    instances: dict[str, ModuleInstance] = {}
    instantiation: dict[str, Ctor] = {}
    classes: list[ClassDef] = []
    by_signature: dict[Any, ClassDef] = {}
    class_of: dict[str, ClassDef] = {}
    # a group's forward pass is named before the classes are (which classes there are depends
    # on it), so it steers clear of the module's own definitions first, and of the classes once
    # they are named (step 1b)
    fixed = Namespace(module.reserved)

    def has_attrs(name: str) -> bool:
        inside = _descendant_nodes(children, name, nodes)
        return (
            bool(inside)
            and any(n.kind not in INLINE_OPS for n in inside)
            or (name in closed and bool(inside))
        )

    def attrs_of(name: str, *, shape_only: bool = False) -> list[tuple[str, Ctor]]:
        out = []
        for c in children.get(name, []):
            local = c.rsplit(".", 1)[-1]
            if c in nodes:
                if nodes[c].kind not in INLINE_OPS:
                    out.append((local, layer_ctor(nodes[c], graph)))
            elif has_attrs(c):
                out.append((local, Ctor(class_of[c].name) if shape_only else instantiation[c]))
        claim_attributes(name, [a for a, _ in out], attribute_words)
        return out

    # 1. which class each group is: deepest groups first, so children are classified first
    ordered_groups = sorted(
        (g for g in groups if g not in roots and has_attrs(g)),
        key=lambda g: (-g.count("."), group_info[g].index, g),
    )
    for gname in ordered_groups:
        inside = _descendant_nodes(children, gname, nodes)
        inst = ModuleInstance(
            gname, gname in closed, attrs_of(gname, shape_only=True), block=group_info[gname].block
        )
        if inst.closed:
            units = _units(graph, gname, children, closed, nodes, skip_prio)
            names = {n.name for n in inside}
            ext = sorted({r for n in inside for r in n.inputs if r.node not in names})
            inst.input_refs = ext
            build_body(graph, inst, units, ext, [_group_output(graph, inside)], ["x"], fixed)
        instances[gname] = inst
        sig = _signature(inst)
        cls = by_signature.get(sig)
        if cls is None:
            stem = group_info[gname].block or gname.rsplit(".", 1)[-1]
            cname = module.fresh(camel_case(stem, drop_number=True) or "Block", suffix="Block")
            cls = ClassDef(cname, inst.closed, [], [], [], inst, block=inst.block)
            by_signature[sig] = cls
            classes.append(cls)
        cls.instances.append(gname)
        class_of[gname] = cls

    # 1b. variables that would hide a class
    for cls in classes:
        _rename_variables(cls.sample, module)

    # 2. constructor parameters: numbers that differ between a class's instances; classes whose
    # instances sit lowest in the tree first, since a parent's numbers include its children's
    def height(g: str) -> int:
        kids = [c for c in children.get(g, []) if c in class_of]
        return 1 + max((height(c) for c in kids), default=0)

    for cls in sorted(
        classes, key=lambda c: (max(height(g) for g in c.instances), classes.index(c))
    ):
        for gname in cls.instances:
            instances[gname].attrs = attrs_of(gname)
        _parameterise(cls, instances, module)
        for gname in cls.instances:
            values = _param_values(cls, instances[gname])
            instantiation[gname] = Ctor(
                cls.name, tuple(Arg(p.name, values[p.name]) for p in cls.params)
            )
    # parts
    parts: dict[str, ModuleInstance] = {}
    labels: dict[TensorRef, str] = {TensorRef(INPUT): "model_input"}
    for part in graph.parts:
        inst = ModuleInstance(part.name, True, attrs_of(part.name))
        units = _units(graph, part.name, children, closed, nodes, skip_prio)
        produced = {r for u in units for r in u.outputs}
        needed = []
        for u in units:
            for r in u.inputs:
                if r not in produced and r not in needed:
                    needed.append(r)
        main = part.input
        extra = sorted(r for r in needed if r != main)
        ins = ([main] if main in needed or not extra else []) + extra
        extra_names = [labels.get(r, sanitize(r.node)) for r in extra]
        names = ["x", *extra_names] if ins and ins[0] == main else extra_names
        outs = [part.output] if part.output in produced else []
        # handed to other parts: its own tensors, and its input (a skip may start at the
        # model input)
        later = {p.name for p in graph.parts[[p.name for p in graph.parts].index(part.name) + 1 :]}
        consumed_elsewhere = sorted(
            {r for n in graph.nodes if n.part != part.name for r in n.inputs if r in produced}
            | {r for n in graph.nodes if n.part in later for r in n.inputs if r in ins}
            | {r for _, r in graph.outputs if r in produced}
        )
        outs += [r for r in consumed_elsewhere if r not in outs]
        inst.input_refs = ins
        build_body(graph, inst, units, ins, outs, names, module)
        for u in units:
            for r in u.outputs:
                labels[r] = sanitize(f"{part.name}.{u.attr}")
        parts[part.name] = inst
    return Program(graph, classes, instantiation, parts, closed)


def _rename_variables(inst: ModuleInstance, module: Namespace) -> None:
    """Give the variables of ``inst``'s forward pass that the module binds new names."""
    names = list(dict.fromkeys([*inst.inputs, *(t for s in inst.statements for t in s.targets)]))
    clashes = [v for v in names if not module.is_free(v)]
    if not clashes:
        return
    local = module.child([*names, *CHAIN_VARS])
    new = {v: local.fresh(v, sep="_") for v in clashes}

    def rename(vs):
        return tuple(new.get(v, v) for v in vs)

    inst.inputs = list(rename(inst.inputs))
    inst.outputs = list(rename(inst.outputs))
    inst.statements = [
        replace(s, targets=rename(s.targets), inputs=rename(s.inputs)) for s in inst.statements
    ]


def _signature(inst: ModuleInstance) -> Any:
    attrs = tuple((a, c.callee, tuple((x.keyword, x.label) for x in c.args)) for a, c in inst.attrs)
    body = tuple((s.targets, s.op, s.attr, s.inputs, _inline_key(s)) for s in inst.statements)
    return (inst.closed, inst.block, attrs, body, tuple(inst.outputs))


def _inline_key(s: Statement) -> Any:
    """What an inline op's printed code depends on (so that equal code means equal classes)."""
    if s.node is None or s.op in ("layer", "call"):
        return None
    layer = s.node.layer
    rank = len(s.shape) if s.shape is not None else None
    if s.op in ("add", "multiply", "concat", "identity"):
        return (s.op, rank)
    if s.op == "flatten":
        return (s.op, layer, s.node.inputs)
    return (s.op, layer, s.shape)


def _param_values(cls: ClassDef, inst: ModuleInstance) -> dict[str, Any]:
    ctor = dict(inst.attrs)
    out = {}
    for p in cls.params:
        attr, argname = p.positions[0]
        arg = next(a for a in ctor[attr].args if a.name == argname)
        out[p.name] = arg.value
    return out


def _parameterise(cls: ClassDef, instances: dict[str, ModuleInstance], module: Namespace) -> None:
    insts = [instances[g] for g in cls.instances]
    sample = insts[0]
    positions: list[tuple[str, str]] = []
    vectors: dict[tuple[str, str], tuple] = {}
    for attr, ctor in sample.attrs:
        for arg in ctor.args:
            key = (attr, arg.name)
            vec = tuple(
                next(a.value for a in dict(i.attrs)[attr].args if a.name == arg.name) for i in insts
            )
            positions.append(key)
            vectors[key] = vec
    clusters: dict[tuple, list[tuple[str, str]]] = {}
    for key in positions:
        vec = vectors[key]
        if len(set(map(repr, vec))) > 1:
            clusters.setdefault(vec, []).append(key)
    params: list[Param] = []
    scope = module.child()  # the constructor's parameters, which must not hide a class
    for keys in clusters.values():
        params.append(Param(_param_name(keys, scope), tuple(keys)))
    cls.params = params
    where = {k: p.name for p in params for k in p.positions}
    cls.attrs = [
        (
            attr,
            Ctor(
                c.callee,
                tuple(
                    Arg(
                        a.keyword,
                        ParamRef(where[(attr, a.name)]) if (attr, a.name) in where else a.value,
                        a.label,
                    )
                    for a in c.args
                ),
            ),
        )
        for attr, c in sample.attrs
    ]
    cls.sample = sample


def _param_name(keys: list[tuple[str, str]], scope: Namespace) -> str:
    argnames = {a for _, a in keys}
    channelish = {
        "in_channels",
        "out_channels",
        "filters",
        "num_features",
        "channels",
        "in_features",
        "out_features",
        "units",
        "num_channels",
    }
    if argnames <= channelish and len(argnames) > 1:
        base = "channels"
    elif len(argnames) == 1:
        base = next(iter(argnames))
        if len({a for a, _ in keys}) == 1 and not scope.is_free(base):
            base = f"{keys[0][0]}_{base}"
    elif scope.is_free(keys[0][1]):
        base = keys[0][1]
    else:
        base = f"{keys[0][0]}_{keys[0][1]}"
    return scope.fresh(base)


__all__ = [
    "Arg",
    "Ctor",
    "ClassDef",
    "ModuleInstance",
    "Param",
    "ParamRef",
    "Program",
    "Statement",
    "build_program",
    "claim_attributes",
    "closed_groups",
    "sanitize",
    "INPUT",
]
