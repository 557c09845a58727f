"""Spec parameters: defaults, ``--set NAME=VALUE`` overrides, and their evaluation order.

A parameter's default may itself be an expression over other parameters
(``bottleneck_dim: ${z_dim}``); parameters are evaluated in dependency order, found with networkx,
and a cycle among them is an error that names it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from . import expr
from .errors import Pos, Source, SpecError, SpecErrors, suggest
from .graph import find_cycle
from .names import check_identifier
from .schema import BUILTIN_VARIABLES

_CONSTANT_NAMES = {"true", "false", "none", "True", "False", "None"}
#: Characters YAML reads as line breaks: a --set value is one line, so nothing can follow it.
_LINE_BREAKS = "\n\r\x85\u2028\u2029"


class Override(tuple):
    """A ``(name, value)`` pair that remembers the ``--set`` text it came from."""

    text: str

    def __new__(cls, name: str, value: Any, text: str) -> Override:
        obj = super().__new__(cls, (name, value))
        obj.text = text
        return obj


def _show(value: Any) -> str:
    """A value as a spec would write it (true, [64, 64, 3], 'text')."""
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)


def parse_override(text: str) -> tuple[str, Any]:
    """``"n_levels=3"`` -> ``("n_levels", 3)``; the value is read as one YAML scalar or flow
    collection on one line (a line break would let more YAML follow it)."""
    from .load import load_text

    source = Source("--set", text)
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise SpecErrors(
            [SpecError(f"--set expects NAME=VALUE, got {text!r}", hint="e.g. --set n_levels=3")],
            source,
        )
    value = raw.strip()
    if any(char in value for char in _LINE_BREAKS):
        raise SpecErrors(
            [
                SpecError(
                    f"--set {name}: the value must be one YAML scalar or flow list on one line, "
                    f"got {value!r}",
                    hint="one --set gives one value; repeat --set for each parameter",
                )
            ],
            source,
        )
    try:
        data, _ = load_text("value: " + value + "\n", f"--set {name}")
    except SpecErrors as exc:
        msgs = "; ".join(e.message for e in exc.errors)
        raise SpecErrors(
            [SpecError(f"--set {name}: cannot read the value: {msgs}")], source
        ) from None
    if not isinstance(data, dict) or list(data) != ["value"]:  # pragma: no cover - one line
        raise SpecErrors([SpecError(f"--set {name}: cannot read the value {value!r}")], source)
    return Override(name, data["value"], text)


def _type_problem(default: Any, value: Any) -> str | None:
    """Why ``value`` cannot replace ``default`` (overrides keep the parameter's type)."""
    if default is None or expr.is_template(default):
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        want = "a string"
    elif isinstance(default, list):
        ok = isinstance(value, list)
        want = "a list such as [64, 64, 3]"
    else:
        return None
    return None if ok else f"expected {want} (the default is {_show(default)}), got {_show(value)}"


def resolve(
    defaults: Mapping[str, Any],
    overrides: Sequence[tuple[str, Any]] = (),
    *,
    spec_name: str = "spec",
) -> dict[str, Any]:
    """The parameters' values: overrides applied, expressions evaluated in dependency order."""
    errors: list[SpecError] = []
    for name in defaults:
        problem = check_identifier(name, allow_reserved=True)
        if problem is None and (name in BUILTIN_VARIABLES or name in _CONSTANT_NAMES):
            problem = f"'{name}' is bound by specgen itself"
        if problem:
            errors.append(
                SpecError(f"invalid parameter name: {problem}", ("parameters", name), key=True)
            )
    values: dict[str, Any] = dict(defaults)
    texts = [getattr(o, "text", f"{o[0]}={_show(o[1])}") for o in overrides]
    cli = Source(
        "command line",
        "\n".join(f"--set {t}" for t in texts),
        {(i,): Pos(i + 1, 7) for i in range(len(texts))},
    )
    for i, (name, value) in enumerate(overrides):
        if name not in defaults:
            listing = ", ".join(sorted(defaults)) or "(none)"
            close = suggest(name, defaults)
            near = f"did you mean '{close}'?" if close else None
            errors.append(
                SpecError(
                    f"unknown parameter '{name}' in --set; {spec_name} has: {listing}",
                    (i,),
                    hint=near,
                    source=cli,
                )
            )
            continue
        problem = _type_problem(defaults[name], value)
        if problem:
            hint = None
            if isinstance(defaults[name], bool) and isinstance(value, str):
                hint = "yes/no/on/off are strings (YAML 1.2); write true or false"
            errors.append(SpecError(f"--set {name}: {problem}", (i,), hint=hint, source=cli))
            continue
        values[name] = value
    if errors:
        raise SpecErrors(errors)

    deps = nx.DiGraph()
    deps.add_nodes_from(values)
    for name, value in values.items():
        try:
            used = expr.names_used(value)
        except expr.ExprError as exc:
            errors.append(SpecError(exc.message, ("parameters", name), hint=exc.hint))
            continue
        for other in used:
            if other in values:
                deps.add_edge(other, name)
    cycle = find_cycle(deps)
    if cycle:
        errors.append(
            SpecError(
                "parameters depend on each other in a cycle: " + " -> ".join(cycle),
                ("parameters", cycle[0]),
            )
        )
    if errors:
        raise SpecErrors(errors)

    order = {n: i for i, n in enumerate(values)}
    resolved: dict[str, Any] = {}
    for name in nx.lexicographical_topological_sort(deps, key=lambda n: order[n]):
        try:
            resolved[name] = expr.evaluate(values[name], resolved)
        except expr.ExprError as exc:
            errors.append(SpecError(exc.message, ("parameters", name), hint=exc.hint))
            resolved[name] = None
    if errors:
        raise SpecErrors(errors)
    return {n: resolved[n] for n in values}
