"""The source model of a port, built from the user's own code: ``--reference FILE.py:Class`` or
``package.module:Class``, with keyword arguments from ``--reference-kwargs`` (a JSON object).

This runs code the user names on the command line, as a plugin does; a spec never names it.
:func:`call_order` gives the model's state-dict names in the order their modules are called in a
forward pass (traced with forward pre-hooks), and :func:`max_difference` runs the reference and
the generated model on the same seeded input.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from .errors import Source, SpecError, SpecErrors

#: The most characters ``--reference-kwargs`` may have, and how deeply its values may nest.
MAX_KWARGS_CHARS = 65_536
_MAX_DEPTH = 16
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _fail(what: str, message: str, hint: str | None = None) -> SpecErrors:
    where = Source(what, "", has_lines=False)
    return SpecErrors([SpecError(message, hint=hint, source=where)], where)


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--reference-kwargs``: a JSON object of at most :data:`MAX_KWARGS_CHARS` characters."""
    if text is None:
        return {}
    where = "--reference-kwargs"
    if len(text) > MAX_KWARGS_CHARS:
        raise _fail(where, f"it has {len(text):,} characters, more than {MAX_KWARGS_CHARS:,}")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(
            where, f"not valid JSON: {str(exc)[:200]}", 'write a JSON object: {"a": 1}'
        ) from None
    if not isinstance(value, dict):
        raise _fail(where, f"it gives a {type(value).__name__}, not a JSON object of arguments")
    if _depth(value) > _MAX_DEPTH:
        raise _fail(where, f"its values nest more than {_MAX_DEPTH} levels deep")
    return value


def load_class(text: str):
    """The class named ``FILE.py:Class`` or ``package.module:Class``."""
    where = f"--reference {text}"
    hint = "write FILE.py:Class or package.module:Class"
    module_name, sep, class_name = text.rpartition(":")
    if not sep or not module_name or not class_name.isidentifier():
        raise _fail(where, "cannot tell the module and the class apart", hint)
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise _fail(where, f"there is no file {module_name}", hint)
        unique = "specgen_reference_" + re.sub(r"\W", "_", str(path.resolve()))
        spec = importlib.util.spec_from_file_location(unique, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[unique]
            raise _fail(
                where, f"running {module_name} fails: {type(exc).__name__}: {exc}"
            ) from None
    else:
        if not _DOTTED.fullmatch(module_name):
            raise _fail(where, f"'{module_name}' is not a module name", hint)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise _fail(
                where, f"cannot import {module_name}: {type(exc).__name__}: {exc}"
            ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise _fail(where, f"{module_name} has no {class_name}")
    import torch

    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise _fail(where, f"{class_name} is not a PyTorch module class (torch.nn.Module)")
    return cls


def build(text: str, kwargs: dict[str, Any], state: dict[str, Any]):
    """The reference model, built with ``kwargs``, holding ``state`` (strictly), in eval mode."""
    cls = load_class(text)
    where = f"--reference {text}"
    try:
        model = cls(**kwargs)
    except Exception as exc:
        raise _fail(
            where,
            f"building {cls.__name__} fails: {type(exc).__name__}: {exc}",
            "give its arguments with --reference-kwargs",
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise _fail(
            where,
            "the checkpoint does not load into it: " + " ".join(first[:3])[:500],
            "is the checkpoint that of this class with these arguments?",
        ) from None
    return model.eval()


def sample_input(graph, batch: int = 2):
    """The seeded sample of the spec's input shape, channels first as PyTorch takes it."""
    import torch

    *spatial, channels = graph.input_shape
    return torch.randn(batch, channels, *spatial, generator=torch.Generator().manual_seed(0))


def _run(model, x, where: str):
    import torch

    try:
        with torch.no_grad():
            return model(x)
    except Exception as exc:
        raise _fail(
            where,
            f"its forward pass on an input of shape {tuple(x.shape)} fails: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
        ) from None


def call_order(model, graph, text: str) -> list[str]:
    """``model``'s persistent state-dict names, module by module in the order the modules are
    first called in a forward pass; the tensors of modules never called follow, in registration
    order."""
    called: list[str] = []
    seen: set[int] = set()
    handles = []
    for name, module in model.named_modules():

        def hook(module, _args, name=name) -> None:
            if id(module) not in seen:
                seen.add(id(module))
                called.append(name)

        handles.append(module.register_forward_pre_hook(hook))
    try:
        _run(model, sample_input(graph), f"--reference {text}")
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    order = called + [n for n in modules if n not in set(called)]
    names: list[str] = []
    for prefix in order:
        module = modules[prefix]
        own = [k for k, v in module._parameters.items() if v is not None]
        own += [
            k
            for k, v in module._buffers.items()
            if v is not None and k not in module._non_persistent_buffers_set
        ]
        names += [f"{prefix}.{k}" if prefix else k for k in own]
    state = set(model.state_dict())
    return [n for n in names if n in state]


def _first_tensor(output):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    if isinstance(values, (tuple, list)) or isinstance(output, dict):
        for value in values:
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def max_difference(reference, generated, graph, text: str) -> float:
    """The largest |difference| of the first tensor outputs of both models on one seeded input."""
    x = sample_input(graph)
    theirs = _first_tensor(_run(reference, x, f"--reference {text}"))
    ours = _first_tensor(_run(generated.eval(), x, "the generated model"))
    if theirs is None or ours is None or theirs.shape != ours.shape:
        raise _fail(
            f"--reference {text}",
            "its output cannot be compared with the generated model's: "
            f"{None if theirs is None else tuple(theirs.shape)} against "
            f"{None if ours is None else tuple(ours.shape)}",
        )
    return float((theirs.float() - ours.float()).abs().max())
