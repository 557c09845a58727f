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


def commented(text: str, comment: str, indent: int = 8) -> str:
    """``text`` (one or more lines) with ``# comment`` after its last line when that fits in
    the line length (the formatter would otherwise split the statement), else on a line of its
    own above it."""
    last = text.rsplit("\n", 1)[-1]
    if indent + len(last) + 4 + len(comment) <= LINE_LENGTH:
        return f"{text}  # {comment}"
    return f"# {comment}\n{text}"


def step_lines(target: str, x: str, steps: Sequence[str], comment: str, indent: int = 8) -> str:
    """``target = step_n(... step_1(x))``: each step is a format string with ``{}`` for its input.
    One line if it fits with the ``comment`` that may follow it, else one assignment per step
    (the formatter would split a nested call less readably). No steps: ``target = x``."""
    expr = x
    for step in steps:
        expr = step.format(expr)
    one = f"{target} = {expr}"
    if len(steps) < 2 or indent + len(one) + len(comment) + 4 <= LINE_LENGTH:
        return one
    return "\n".join(
        f"{target} = {step.format(x if i == 0 else target)}" for i, step in enumerate(steps)
    )
