"""Laying out generated Python the way the pinned formatter does (ruff format, 88 columns).

Generated files are printed already formatted, so that they are stable text (golden-tested) and
pass ``ruff format --check`` unchanged. Only the constructs the templates print need handling:
calls, assignments of calls and ``def`` lines that may be too long for one line.
"""

from __future__ import annotations

from collections.abc import Sequence

LINE_LENGTH = 88


def wrap_call(head: str, args: Sequence[str], tail: str = "", indent: int = 0) -> list[str]:
    """``head(arg, arg)tail`` as one line if it fits, else the formatter's split: all arguments
    on one indented line, else one argument per line with a trailing comma. Lines are returned
    without the leading ``indent`` spaces."""
    one = f"{head}({', '.join(args)}){tail}"
    if indent + len(one) <= LINE_LENGTH:
        return [one]
    inner = ", ".join(args)
    if indent + 4 + len(inner) <= LINE_LENGTH:
        return [f"{head}(", f"    {inner}", f"){tail}"]
    return [f"{head}(", *(f"    {a}," for a in args), f"){tail}"]
