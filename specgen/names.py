"""What a name in a spec may be.

Node, group, parameter, block and loop-variable names become Python identifiers and attribute
names in generated code, keys in diagrams and parts of file names, so they are held to one rule:
ASCII letters, digits and underscores, starting with a letter, at most 64 characters, and none of
the words that would shadow something in generated code.
"""

from __future__ import annotations

import builtins
import keyword
import re

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

#: Words that are attributes or methods of torch.nn.Module / keras.Model / keras.Layer, names the
#: generated files import, or names specgen binds itself.
RESERVED = frozenset(
    {
        # bound by specgen
        "input",
        "inputs",
        "output",
        "outputs",
        "in_channels",
        "in_height",
        "in_width",
        # modules generated code imports
        "torch",
        "nn",
        "F",
        "keras",
        "tf",
        "layers",
        "ops",
        "np",
        "math",
        "os",
        "sys",
        # framework attributes and methods
        "forward",
        "call",
        "build",
        "training",
        "trainable",
        "parameters",
        "modules",
        "children",
        "state_dict",
        "load_state_dict",
        "apply",
        "to",
        "cpu",
        "cuda",
        "eval",
        "train",
        "half",
        "float",
        "double",
        "type",
        "register_buffer",
        "register_parameter",
        "add_module",
        "zero_grad",
        "weights",
        "variables",
        "summary",
        "compile",
        "fit",
        "predict",
        "evaluate",
        "encode",
        "decode",
        "name",
        "dtype",
        # further keras.Layer / keras.Model attributes
        "losses",
        "metrics",
        "built",
        "path",
        "add_weight",
        "add_loss",
        "get_config",
        "from_config",
        "count_params",
        "optimizer",
        "loss",
        "input_spec",
        "trainable_weights",
        "non_trainable_weights",
        "submodules",
        "stateless",
        "seed_generator",
        "noise",
        "codebook",
        # further torch.nn.Module attributes
        "buffers",
        "named_modules",
        "get_submodule",
        "extra_repr",
        "embedding",
        "self",
        "cls",
        "super",
    }
)

_BUILTINS = frozenset(dir(builtins))


def check_identifier(name: object, *, allow_reserved: bool = False) -> str | None:
    """Why ``name`` cannot be a spec name, or None when it can."""
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
    if not allow_reserved and name in RESERVED:
        return f"'{name}' is reserved in generated code"
    return None
