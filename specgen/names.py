"""What a name in a spec may be.

Node, group, parameter, block and loop-variable names become attribute names in generated code,
keys in diagrams and parts of file names, so they are held to one rule: ASCII letters, digits and
underscores, starting with a letter, at most 64 characters, and none of the words that would
collide with something in generated code. Generated modules are ``torch.nn.Module`` and
``keras.layers.Layer`` subclasses whose attributes are the spec's names, so the frameworks' own
attributes (:mod:`specgen.framework_attributes`) are among those words. Reserved words are
matched regardless of letter case, as names in one scope are (``Compile`` is as reserved as
``compile``); Python's keywords and builtins are matched exactly, as Python does.

Class names, local variables and every other identifier of generated code are derived from the
spec's names by :mod:`specgen.codegen.namespace`, which steers clear of what the generated file
defines itself (``COMPILE``, ``F``, ``build_model``, ...), so those words are free to use here.
"""

from __future__ import annotations

import builtins
import keyword
import re

from .framework_attributes import framework_attribute

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

#: Words specgen binds itself: references and shape variables, the methods and attributes of the
#: classes it generates, and the names every method of a class sees.
RESERVED = frozenset(
    {
        # references and shape variables
        "input",
        "inputs",
        "output",
        "outputs",
        "in_channels",
        "in_height",
        "in_width",
        "in_depth",
        "in_length",
        "in_shape",
        # methods and attributes of generated classes
        "encode",
        "decode",
        "reparameterize",
        "noise",
        "codebook",
        "embedding",
        "seed_generator",
        "stateless",
        "submodules",
        "optimizer",
        # what a method sees
        "self",
        "cls",
        "super",
    }
)

_RESERVED_FOLDED = {word.casefold(): word for word in RESERVED}

_BUILTINS = frozenset(dir(builtins))

#: The hint given with a name that is a framework's attribute.
FRAMEWORK_HINT = (
    "attribute paths in generated code are the spec's node and group names, so they can't "
    "reuse the frameworks' own attributes; rename it"
)


def check_identifier(name: object, *, allow_reserved: bool = False) -> str | None:
    """Why ``name`` cannot be a spec name, or None when it can.

    ``allow_reserved`` admits the reserved words and framework attributes (for parameter names,
    which never reach generated code)."""
    if not isinstance(name, str):
        return f"a name must be a string, not {type(name).__name__}"
    if not _IDENTIFIER.fullmatch(name):
        if not name:
            return "a name cannot be empty"
        if len(name) > 64:
            return "a name may have at most 64 characters"
        if not name.isascii():
            return "a name may use ASCII letters, digits and '_' only"
        return "a name must start with a letter and use only letters, digits and '_'"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"'{name}' is a Python keyword"
    if name.startswith("__") or name.endswith("__"):
        return "a name may not start or end with '__'"
    if name in _BUILTINS:
        return f"'{name}' is a Python builtin"
    if allow_reserved:
        return None
    word = _RESERVED_FOLDED.get(name.casefold())
    if word is not None:
        if word == name:
            return f"'{name}' is reserved in generated code"
        return (
            f"'{name}' differs only by letter case from '{word}', which is reserved in generated "
            "code"
        )
    found = framework_attribute(name)
    if found is not None:
        attribute, what = found
        if attribute == name:
            return f"'{name}' is a {what}, reserved in generated code"
        return (
            f"'{name}' differs only by letter case from '{attribute}', a {what} reserved in "
            "generated code"
        )
    return None


def identifier_hint(name: object) -> str | None:
    """How to fix a name :func:`check_identifier` rejects, where there is more to say."""
    if isinstance(name, str) and framework_attribute(name) is not None:
        return FRAMEWORK_HINT
    return None
