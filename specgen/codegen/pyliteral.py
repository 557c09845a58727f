"""Python text from validated values: literals and comments.

Nothing from a spec is pasted into generated code as text. Values become literals through
``repr`` of validated Python values (ints, floats, bools, strings, tuples); free text (a spec's
description) becomes comment lines with every line break and control character neutralised;
identifiers are handed out by :mod:`specgen.codegen.namespace`.
"""

from __future__ import annotations

import math
import re
import textwrap
import unicodedata
from typing import Any

#: Controls, line separators and the bidirectional controls that can make a comment read
#: differently from what Python executes.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]"
)


def literal(value: Any) -> str:
    """A Python literal for a validated value."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no literal for {type(value).__name__}")


def clean_text(text: str) -> str:
    """Text safe to place in a comment: printable, one logical line per line."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    return text


def comment_lines(text: str, width: int = 96) -> list[str]:
    """``text`` wrapped into lines to be printed after ``# `` (never containing a newline)."""
    out: list[str] = []
    for para in clean_text(text).split("\n"):
        para = para.strip()
        if not para:
            if out and out[-1] != "":
                out.append("")
            continue
        out.extend(textwrap.wrap(para, width=width, break_long_words=True) or [""])
    while out and out[-1] == "":
        out.pop()
    return out
