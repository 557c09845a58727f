"""User errors, located in the spec source, and their rendering.

A *user error* (:class:`SpecError`) is something the person who wrote the spec can fix. It carries
the key path of the offending value inside the spec document (``("encoder", 1, "filters")``) and is
rendered as ``file:line:col`` with the source line, a caret and a hint. Several user errors travel
together as :class:`SpecErrors`, so that one run reports all of them. Rendering passes every piece
of text that came from a spec or a file name through :func:`terminal_safe`, so no message can
print a control or bidirectional character as it is.

Anything else that escapes the pipeline is a bug in specgen and is shown with its traceback.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

PathItem = str | int
Path = tuple[PathItem, ...]

#: Unicode categories never printed as they are: controls (ESC starts sequences that clear the
#: screen or set the window title; BEL, NUL, C1), format characters (the bidirectional controls
#: U+202A-202E, U+2066-2069, U+200E/U+200F and U+061C that reorder what is shown, zero-width
#: characters, U+FEFF), lone surrogates and the line/paragraph separators U+2028/U+2029.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: At most this many errors are printed; the rest are counted.
MAX_PRINTED_ERRORS = 50


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in a source file."""

    line: int
    col: int


@dataclass(frozen=True)
class Source:
    """A loaded spec document: where it came from and where each value sits in it.

    ``value_pos`` maps the key path of every value (mapping values, sequence items and the root
    ``()``) to the position where that value starts; ``key_pos`` maps the key path of every mapping
    entry to the position of its key.
    """

    filename: str
    text: str
    value_pos: Mapping[Path, Pos] = field(default_factory=dict)
    key_pos: Mapping[Path, Pos] = field(default_factory=dict)
    #: ``False`` for files without lines (weights files): errors name the file alone.
    has_lines: bool = True

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        if 1 <= line <= len(lines):
            return lines[line - 1]
        return ""

    def locate(self, path: Path, *, key: bool = False) -> tuple[Pos, Path]:
        """The position of ``path``, or of its longest prefix that has one.

        Returns the position and the prefix actually found. With ``key=True`` the position of the
        mapping key is preferred (used for "unknown key" errors).
        """
        probe = tuple(path)
        while True:
            if key and probe in self.key_pos:
                return self.key_pos[probe], probe
            if probe in self.value_pos:
                return self.value_pos[probe], probe
            if probe in self.key_pos:
                return self.key_pos[probe], probe
            if not probe:
                return Pos(1, 1), ()
            probe = probe[:-1]


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control, bidirectional or invisible format character shown as an
    escape (``\\x1b``, ``\\u202e``), so that it prints as it reads and cannot drive the terminal.

    Everything else (backslashes included) is kept, so applying it twice changes nothing.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)


def display_width(text: str) -> int:
    """Terminal columns that terminal-safe ``text`` takes (wide CJK characters count 2,
    combining marks 0)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def format_path(path: Sequence[PathItem]) -> str:
    """``("encoder", 1, "filters")`` -> ``encoder[1].filters``."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out or "<document>"


@dataclass
class SpecError(Exception):
    """One located user error.

    ``path`` is the key path in the source document; ``key`` says the error is about the mapping key
    itself (e.g. an unknown field); ``hint`` says how to fix it; ``notes`` add context lines such as
    "while expanding block 'res_block' used at specs/x.yaml:12:7"; ``source`` names the document
    when it is not the main spec.
    """

    message: str
    path: Path = ()
    hint: str | None = None
    key: bool = False
    notes: tuple[str, ...] = ()
    source: Source | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
        self.path = tuple(self.path)

    def __str__(self) -> str:
        return self.render(None)

    def with_note(self, note: str) -> SpecError:
        return SpecError(
            self.message, self.path, self.hint, self.key, self.notes + (note,), self.source
        )

    def render(self, source: Source | None) -> str:
        """The located message as printed: every piece of spec or file text made terminal-safe
        (:func:`terminal_safe`), the caret under the escaped source line."""
        src = self.source or source
        safe = terminal_safe
        lines: list[str] = []
        named_path = bool(self.path) and not all(isinstance(p, int) for p in self.path)
        if src is None:
            lines.append(f"specgen: error: {safe(self.message)}")
            if self.path:
                lines.append(f"  at {safe(format_path(self.path))}")
        elif not src.has_lines:
            lines.append(f"{safe(src.filename)}: error: {safe(self.message)}")
            if named_path:
                lines.append(f"  at {safe(format_path(self.path))}")
        else:
            pos, _ = src.locate(self.path, key=self.key)
            lines.append(f"{safe(src.filename)}:{pos.line}:{pos.col}: error: {safe(self.message)}")
            if named_path:
                lines.append(f"  at {safe(format_path(self.path))}")
            text = src.line_text(pos.line).rstrip("\n")
            if text:
                gutter = f"{pos.line:>5} | "
                pad = display_width(safe(text[: pos.col - 1]))
                lines.append(gutter + safe(text))
                lines.append(" " * (len(gutter) - 2) + "| " + " " * pad + "^")
        for note in self.notes:
            lines.append(f"  note: {safe(note)}")
        if self.hint:
            lines.append(f"  hint: {safe(self.hint)}")
        return "\n".join(lines)


class SpecErrors(Exception):
    """All user errors found in one run, in the order they were found."""

    def __init__(self, errors: Iterable[SpecError], source: Source | None = None):
        unique: dict[tuple, SpecError] = {}
        for e in errors:  # the same mistake met in every iteration of a loop is reported once
            unique.setdefault((e.message, e.path, e.notes, id(e.source)), e)
        self.errors = list(unique.values())
        self.source = source
        super().__init__(f"{len(self.errors)} error(s) in spec")

    def __str__(self) -> str:
        return self.render()

    def render(self, source: Source | None = None, limit: int = MAX_PRINTED_ERRORS) -> str:
        src = source or self.source
        shown = self.errors[:limit]
        parts = [e.render(src) for e in shown]
        more = len(self.errors) - len(shown)
        if more > 0:
            parts.append(f"... and {more} more error(s) not shown")
        count = len(self.errors)
        parts.append(f"{count} error{'s' if count != 1 else ''} found; nothing was written.")
        return "\n".join(parts)


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The nearest valid choice to a misspelt ``name``, if one is close enough."""
    import difflib

    found = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return found[0] if found else None


def choices_hint(name: str, choices: Iterable[str], what: str = "valid choices") -> str:
    """``did you mean 'relu'? valid choices: a, b, c`` — the standard hint for a bad name."""
    pool = sorted(set(choices))
    near = suggest(name, pool)
    listed = ", ".join(pool) if len(pool) <= 40 else ", ".join(pool[:40]) + ", ..."
    if near is not None:
        return f"did you mean '{near}'? {what}: {listed}"
    return f"{what}: {listed}"
