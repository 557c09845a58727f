"""Pydantic validation with errors rewritten to the spec's own key paths.

Pydantic reports locations that include union-branch tags (``'layer'``, ``'int'``,
``'constrained-str'``); these are removed by walking the location against the data that was
validated, so ``('encoder', 0, 'layer', 'filters')`` becomes ``('encoder', 0, 'filters')``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import Path, SpecError, SpecErrors

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


def _message(err: dict[str, Any]) -> tuple[str, str | None]:
    etype = err["type"]
    loc = err["loc"]
    field = loc[-1] if loc else None
    if etype == "extra_forbidden":
        return f"unknown key '{field}'", None
    if etype == "missing":
        return f"missing required key '{field}'", None
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"invalid value {err.get('input')!r}", f"expected {expected}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    inp = err.get("input")
    if not isinstance(inp, (dict, list)) and etype not in ("item_kind",):
        return f"{msg[:1].lower()}{msg[1:]} (got {inp!r})", None
    return f"{msg[:1].lower()}{msg[1:]}", None


def spec_errors(exc: ValidationError, data: Any, base: Path = ()) -> list[SpecError]:
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
        msg, hint = _message(err)
        if err["type"] == "extra_forbidden":
            full = base + path + (err["loc"][-1],)
        else:
            full = base + path
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
        raise SpecErrors(spec_errors(exc, data, base)) from None
