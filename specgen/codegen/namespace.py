"""Identifiers of generated code: one namespace per scope, handing out names deterministically.

Every identifier a generated file binds is either fixed by its templates (imports, switches,
helper classes, functions) or derived from a spec's name (classes, local variables, constructor
parameters). A :class:`Namespace` stands for one scope: the module, a class's attributes, or one
function's locals. It knows what the scope cannot bind: Python's keywords and builtins, and the
names its code must still see, which it takes from the scope enclosing it. Derived names are asked
for with :meth:`Namespace.fresh`, which returns the name asked for when it is free and otherwise
the first free one of a fixed series, so the same spec always gets the same names. Names that
must be exactly what they are (attributes, which follow node names) are taken with
:meth:`Namespace.claim`, which fails loudly on a clash: a spec that could cause one is rejected
when it is validated (:mod:`specgen.names`).
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable

#: What no generated identifier may be: keywords, soft keywords and builtins (``None``, ``True``,
#: ``print``, ``type``, ...), and ``self``.
PYTHON_WORDS = frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "self"})


class NameClash(Exception):
    """A name that must be exact is taken: a bug, as validation rules such specs out."""


def identifier(text: str, empty: str = "t") -> str:
    """``text`` as an ASCII identifier: other characters become ``_``, and one starting with a
    digit (or empty) gets a prefix."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    if not name:
        return empty
    return empty + name if name[0].isdigit() else name


class Namespace:
    """The names bound in one scope.

    ``reserved`` are names the scope's code defines itself or must see; ``parent`` is the scope
    whose names (reserved or handed out) this one must not shadow."""

    def __init__(self, reserved: Iterable[str] = (), parent: Namespace | None = None):
        self.reserved = frozenset(reserved)
        self.parent = parent
        self.taken: dict[str, None] = {}  # handed out, in order

    def is_reserved(self, name: str) -> bool:
        """Whether ``name`` is a word this scope never hands out (before anything is taken)."""
        if name in PYTHON_WORDS or name in self.reserved:
            return True
        return self.parent is not None and not self.parent.is_free(name)

    def is_free(self, name: str) -> bool:
        return name not in self.taken and not self.is_reserved(name)

    def claim(self, name: str) -> str:
        """Take exactly ``name``."""
        if not name.isidentifier() or not self.is_free(name):
            raise NameClash(f"{name!r} is not free in generated code")
        self.taken[name] = None
        return name

    def fresh(self, base: str, *, sep: str = "", suffix: str = "") -> str:
        """``base``, made an identifier, if it is free; else, when ``base`` is a reserved word and
        ``suffix`` is given, ``base + suffix``; then the first free of ``<that>{sep}2``,
        ``<that>{sep}3``, ... (e.g. ``ResBlock2``, ``conv_2``; ``None`` -> ``NoneBlock``)."""
        name = identifier(base)
        if suffix and self.is_reserved(name):
            name += suffix
        stem, k = name, 2
        while not self.is_free(name):
            name, k = f"{stem}{sep}{k}", k + 1
        self.taken[name] = None
        return name

    def child(self, reserved: Iterable[str] = ()) -> Namespace:
        """A scope inside this one (a function inside the module)."""
        return Namespace(reserved, parent=self)


def camel_case(name: str, *, drop_number: bool = False) -> str:
    """A class-name stem from a spec name: ``resnet_ae`` -> ``ResnetAe``; with ``drop_number``,
    ``level0`` -> ``Level`` (a group's trailing number counts instances, not kinds)."""
    stem = (re.sub(r"\d+$", "", name) or name) if drop_number else name
    return "".join(part[:1].upper() + part[1:] for part in stem.split("_") if part)


__all__ = ["PYTHON_WORDS", "NameClash", "Namespace", "camel_case", "identifier"]
