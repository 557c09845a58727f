"""Pydantic validation with errors rewritten to the spec's own key paths.

Pydantic reports locations that include union-branch tags (``'layer'``, ``'int'``,
``'constrained-str'``); these are removed by walking the location against the data that was
validated, so ``('encoder', 0, 'layer', 'filters')`` becomes ``('encoder', 0, 'filters')``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Union

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import Path, SpecError, SpecErrors, choices_hint

# Error types that only say "this is not an expression either"; they are noise when the value
# failed its real type.
_EXPR_NOISE = {"string_pattern_mismatch", "string_type"}


def data_path(data: Any, loc: Iterable[Any]) -> tuple[Path, bool]:
    """Map a pydantic ``loc`` onto ``data``; returns the path and whether it ended on a key
    that is not in the data (an unknown or missing key)."""
    path: list[Any] = []
    cur = data
    items = list(loc)
    for i, item in enumerate(items):
        nxt = items[i + 1] if i + 1 < len(items) else None
        if (
            isinstance(cur, dict)
            and isinstance(item, str)
            and item in cur
            and nxt is not None
            and not isinstance(cur[item], (dict, list))
            and isinstance(nxt, str)
            and nxt in cur
        ):
            continue  # a union tag that is also a key of this item ('block', 'levels')
        if isinstance(cur, dict) and isinstance(item, str) and item in cur:
            path.append(item)
            cur = cur[item]
        elif isinstance(cur, list) and isinstance(item, int) and 0 <= item < len(cur):
            path.append(item)
            cur = cur[item]
        elif isinstance(cur, dict) and isinstance(item, str) and i == len(items) - 1:
            # the last element names a key absent from the data (a missing field)
            return tuple(path), False
        else:
            continue  # a union tag or a branch name
    return tuple(path), True


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives a type annotation allows (Annotated and unions unwrapped)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_unwrap(arg))
        return out
    return [tp]


def _model_keys(model: Any, loc: Iterable[Any]) -> set[str] | None:
    """The keys the model at ``loc`` accepts (best effort, for "did you mean" hints)."""
    current = _unwrap(model)
    for item in loc:
        nxt: list[Any] = []
        for tp in current:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                for name, field in tp.model_fields.items():
                    if item in (name, field.alias):
                        nxt.extend(_unwrap(field.annotation))
            elif origin in (list, tuple) and isinstance(item, int):
                nxt.extend(_unwrap(typing.get_args(tp)[0]))
            elif origin is dict:
                nxt.extend(_unwrap(typing.get_args(tp)[1]))
        if nxt:
            current = nxt
        # otherwise ``item`` is a union tag: keep the alternatives
    keys: set[str] = set()
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys |= {f.alias or n for n, f in tp.model_fields.items()}
    return keys or None


def _expected_choices(err: dict[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))


def _message(err: dict[str, Any], model: Any = None) -> tuple[str, str | None]:
    etype = err["type"]
    loc = err["loc"]
    field = loc[-1] if loc else None
    if etype == "extra_forbidden":
        keys = _model_keys(model, loc[:-1]) if model is not None else None
        hint = choices_hint(str(field), keys, "valid keys here") if keys else None
        return f"unknown key '{field}'", hint
    if etype == "missing":
        return f"missing required key '{field}'", None
    if etype == "literal_error":
        choices = _expected_choices(err)
        value = err.get("input")
        hint = choices_hint(str(value), choices, "valid values") if choices else None
        return f"invalid value {value!r}", hint
    if etype == "union_tag_invalid":
        ctx = err.get("ctx", {})
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        tag = ctx.get("tag")
        return (
            f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} {tag!r}",
            choices_hint(str(tag), choices, "valid values") if choices else None,
        )
    inp = err.get("input")
    if etype == "string_pattern_mismatch" and tuple(loc) == ("name",):
        fixed = re.sub(r"[^a-z0-9_]+", "_", str(inp).lower()).strip("_")
        fixed = fixed if fixed[:1].isalpha() else f"m_{fixed}"
        return (
            f"invalid model name {inp!r}: use lowercase letters, digits and '_', starting with "
            "a letter (at most 64 characters)",
            f"e.g. name: {fixed[:64]}",
        )
    if etype in ("too_short", "too_long") and "shape" in loc:
        n = len(inp) if isinstance(inp, list) else "?"
        return (
            f"the input shape needs 2 to 4 items, (*spatial, channels) of a 1-D, 2-D or 3-D "
            f"spec, got {n}",
            None,
        )
    if etype in ("bool_type", "bool_parsing") and isinstance(inp, str):
        return (
            f"expected true or false, got the string {inp!r}",
            "specs follow YAML 1.2: yes/no/on/off are strings; write true or false",
        )
    msg = err["msg"]
    hint = err.get("ctx", {}).get("hint")
    if isinstance(hint, str):
        # a validator's own error, raised with its hint in the context
        return f"{msg[:1].lower()}{msg[1:]}", hint
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        return f"{msg[:1].lower()}{msg[1:]}", None
    if not isinstance(inp, (dict, list)) and etype not in ("item_kind",):
        return f"{msg[:1].lower()}{msg[1:]} (got {inp!r})", None
    return f"{msg[:1].lower()}{msg[1:]}", None


def spec_errors(
    exc: ValidationError, data: Any, base: Path = (), model: Any = None
) -> list[SpecError]:
    """Located :class:`SpecError` s for a pydantic error raised while validating ``data``."""
    raw = exc.errors(include_url=False)
    by_path: dict[Path, list[dict]] = {}
    located: list[tuple[Path, bool, dict]] = []
    for err in raw:
        path, _ = data_path(data, err["loc"])
        key_error = err["type"] == "extra_forbidden"
        located.append((path, key_error, err))
        by_path.setdefault(path, []).append(err)
    out: list[SpecError] = []
    seen: set[tuple[Path, str]] = set()
    for path, key_error, err in located:
        siblings = by_path[path]
        if err["type"] in _EXPR_NOISE and any(s["type"] not in _EXPR_NOISE for s in siblings):
            continue
        if err["type"] in _EXPR_NOISE and any(
            p[: len(path)] == path and p != path and any(e["type"] not in _EXPR_NOISE for e in es)
            for p, es in by_path.items()
        ):
            continue  # a real error inside this value says more
        msg, hint = _message(err, model)
        full = base + path
        if err["type"] == "union_tag_invalid" and isinstance(_get(data, path), dict):
            full = full + (str(err.get("ctx", {}).get("discriminator", "kind")).strip("'"),)
        if (full, msg) in seen:
            continue
        seen.add((full, msg))
        out.append(SpecError(msg, full, hint=hint, key=key_error))
    return out


def validate_model(model: type[BaseModel] | Any, data: Any, base: Path = ()) -> Any:
    """Validate ``data`` as ``model`` (a model class or any type); raise located SpecErrors."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(data)
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise SpecErrors(spec_errors(exc, data, base, model)) from None


def _get(data: Any, path: Path) -> Any:
    for item in path:
        data = data[item]
    return data
