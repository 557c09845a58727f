"""The library: blocks written in the spec language that ship with specgen.

Every spec sees the library's blocks by name, as if it had defined them under ``blocks:``; a
spec's own block of the same name replaces the library's. The bottleneck shorthand
``bottleneck: {kind: K, ...}`` is the library block ``K_bottleneck`` with the mapping's other
fields as its arguments, inlined in the bottleneck scope.

The files are read with the spec loader, so an error inside a library block is reported at its
line in the library file (shown as ``specgen/library/<file>``), with a note at the use site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import Source
from ..schema import BlockDef, _Strict

#: The library's files, in the order their blocks are listed.
FILES = ("bottlenecks.yaml",)


class LibraryDocument(_Strict):
    """One library file: a description and its blocks."""

    description: str = ""
    blocks: dict[str, BlockDef]


@dataclass(frozen=True)
class Library:
    blocks: Mapping[str, BlockDef]
    #: the file each block is defined in
    sources: Mapping[str, Source]


def shorthand_block(kind: str) -> str:
    """The library block that ``bottleneck: {kind: ...}`` stands for."""
    return f"{kind}_bottleneck"


@lru_cache(maxsize=1)
def library() -> Library:
    """The library's blocks (read once)."""
    from ..load import load_text
    from ..validate import validate_model

    blocks: dict[str, BlockDef] = {}
    sources: dict[str, Source] = {}
    for name in FILES:
        text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
        data, source = load_text(text, f"specgen/library/{name}")
        doc = validate_model(LibraryDocument, data)
        for bname, bdef in doc.blocks.items():
            if bname in blocks:  # pragma: no cover - a mistake in the library itself
                raise ValueError(f"library block {bname!r} is defined twice")
            blocks[bname] = bdef
            sources[bname] = source
    return Library(blocks, sources)
