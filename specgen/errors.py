"""User errors, located in the spec source, and their rendering.

A *user error* (:class:`SpecError`) is something the person who wrote the spec can fix. It carries
the key path of the offending value inside the spec document (``("encoder", 1, "filters")``) and is
rendered as ``file:line:col`` with the source line, a caret and a hint. Several user errors travel
together as :class:`SpecErrors`, so that one run reports all of them.

Anything else that escapes the pipeline is a bug in specgen and is shown with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

PathItem = str | int
Path = tuple[PathItem, ...]

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

    def __str__(self) -> str:  # pragma: no cover - convenience for debugging
        return self.message

    def with_note(self, note: str) -> SpecError:
        return SpecError(
            self.message, self.path, self.hint, self.key, self.notes + (note,), self.source
        )

    def render(self, source: Source | None) -> str:
        src = self.source or source
        lines: list[str] = []
        if src is None:
            where = format_path(self.path)
            lines.append(f"<spec>: error: {self.message}")
            if self.path:
                lines.append(f"  at {where}")
        else:
            pos, _ = src.locate(self.path, key=self.key)
            lines.append(f"{src.filename}:{pos.line}:{pos.col}: error: {self.message}")
            if self.path and not all(isinstance(p, int) for p in self.path):
                lines.append(f"  at {format_path(self.path)}")
            text = src.line_text(pos.line)
            if text:
                gutter = f"{pos.line:>5} | "
                lines.append(gutter + text.rstrip("\n"))
                lines.append(" " * (len(gutter) - 2) + "| " + " " * (pos.col - 1) + "^")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
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
