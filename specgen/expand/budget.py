"""The limits on the work one spec may ask for, and the errors collected on the way.

Every limit is checked while expanding, before anything is emitted. Errors are collected with the
key path they come from; past :data:`MAX_ERRORS` of them, or past a limit that continuing would
only multiply, expansion stops with :class:`Abort` and what was collected is reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import Path, Source, SpecError, format_path

#: Limits on the work one spec may ask for (checked while expanding, before anything is emitted).
MAX_NODES = 100_000
MAX_REPEAT = 10_000
MAX_PARAMETERS = 10**10
#: The widest dense layer a bottleneck may need to rebuild the encoder's output.
MAX_DENSE_WIDTH = 1 << 20
#: How deep groups may nest (``encoder.a.b`` is 2 deep): each group, loop or levels iteration,
#: block instance and skip path is one; a block's groups count where the block is used. Lists of
#: items may nest one deeper (a part's own list is the first).
MAX_NESTING = 64
#: Expansion steps one spec may take: every item visited (also one whose ``when`` is false),
#: every loop or levels iteration and every block instance counts, whether or not it makes layers.
MAX_STEPS = 500_000
#: Errors collected while expanding (expansion then stops).
MAX_ERRORS = 200


class Abort(Exception):
    """Raised to stop expansion when continuing would be unbounded or meaningless."""


class Budget:
    """The errors collected so far, the steps taken, how deep lists of items nest now and the
    blocks being expanded (innermost last)."""

    def __init__(self, source: Source | None):
        self.source = source
        #: the files of the library blocks the spec uses as they are (not replaced by its own)
        self.library: dict[str, Source] = {}
        self.errors: list[SpecError] = []
        self.steps = 0
        self.depth = 0
        self.block_stack: list[str] = []

    def error(
        self,
        message: str,
        path: Path,
        hint: str | None = None,
        *,
        key: bool = False,
        notes: Iterable[str] = (),
    ) -> None:
        self.errors.append(
            SpecError(
                message,
                path,
                hint=hint,
                key=key,
                notes=tuple(notes),
                source=self.library_source(path),
            )
        )
        if len(self.errors) >= MAX_ERRORS:
            raise Abort

    def library_source(self, path: Path) -> Source | None:
        """The library file ``path`` points into (``blocks.<name>...`` of a library block), or
        None for the spec itself."""
        if len(path) >= 2 and path[0] == "blocks" and path[1] in self.library:
            return self.library[path[1]]
        return None

    def located(self, errors: Iterable[SpecError]) -> list[SpecError]:
        """``errors``, those in library blocks marked with their file."""
        out = []
        for e in errors:
            if e.source is None and self.library_source(e.path) is not None:
                e = SpecError(
                    e.message, e.path, e.hint, e.key, e.notes, self.library_source(e.path)
                )
            out.append(e)
        return out

    def check_errors(self) -> None:
        """Stop once :data:`MAX_ERRORS` errors were collected (also those added directly)."""
        if len(self.errors) >= MAX_ERRORS:
            raise Abort

    def where(self, path: Path) -> str:
        """``file:line:col`` of ``path`` in the spec (its key path when there is no source)."""
        source = self.library_source(path) or self.source
        if source is None:
            return format_path(path)
        pos, _ = source.locate(path)
        return f"{source.filename}:{pos.line}:{pos.col}"

    def step(self, path: Path, notes=()) -> None:
        """Count one expansion step; past :data:`MAX_STEPS` expansion stops with an error."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.error(
                f"expanding the spec takes more than {MAX_STEPS:,} steps (items, loop "
                "iterations and block instances, also those that make no layers)",
                path,
                hint="loops, levels and repeats nested in each other multiply their counts",
                notes=notes,
            )
            raise Abort

    def enter_items(self, prefix: str, path: Path, notes: tuple[str, ...]) -> None:
        """Go one list of items deeper (undo with :meth:`leave_items`); past
        :data:`MAX_NESTING` expansion stops with an error."""
        if self.depth > MAX_NESTING:
            self.error(
                f"items nest more than {MAX_NESTING} levels deep, in "
                f"'{chain(prefix.split('.'), '.')}'",
                path,
                hint=self._blocks_in_use(),
                notes=notes[:3],
            )
            raise Abort
        self.depth += 1

    def leave_items(self) -> None:
        self.depth -= 1

    def check_group(self, full: str, path: Path, notes: tuple[str, ...]) -> None:
        """A group named ``full`` may open; past :data:`MAX_NESTING` expansion stops."""
        if full.count(".") > MAX_NESTING:
            self.error(
                f"groups nest more than {MAX_NESTING} levels deep: '{chain(full.split('.'), '.')}'",
                path,
                hint=self._blocks_in_use(),
                notes=notes[:3],
            )
            raise Abort

    def _blocks_in_use(self) -> str | None:
        return f"blocks in use: {chain(self.block_stack)}" if self.block_stack else None


def parameter_limit(total: int) -> SpecError | None:
    """The error for a model of ``total`` parameters, if that is more than specgen supports."""
    if total <= MAX_PARAMETERS:
        return None
    return SpecError(
        f"the model would have {total:,} parameters, more than specgen supports "
        f"({MAX_PARAMETERS:,})",
        ("input",),
    )


def chain(names: list[str], glue: str = " -> ") -> str:
    """``a -> b -> c``, with the middle of a long chain left out."""
    gap = "[...]" if glue == "." else "..."
    shown = names if len(names) <= 8 else [*names[:4], gap, *names[-3:]]
    return glue.join(shown)
