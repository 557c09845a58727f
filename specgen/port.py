"""Weights of another library's model, ported into a spec's generated models.

A spec's ``weights_from`` section says how the library names the tensors of the same network:
renaming steps (regular expressions) from its names to the generated PyTorch model's state-dict
names, the tensors it keeps that the spec's model has no counterpart for (``ignore``), and the
tensors it stores in another layout (``layout``). :func:`port_file` reads a checkpoint
(``.safetensors``, or a PyTorch ``.pt``/``.pth``/``.bin`` loaded with ``weights_only``), renames
every tensor, checks every name, shape and dtype against the generated PyTorch model, and only
then writes the PyTorch state dict (``.safetensors``) or the Keras weights (``.weights.h5``). The
report names every tensor left out on either side; floating-point tensors of another precision
are converted to the model's dtype and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import LoadedSpec
from .convert import (
    _SAFETENSORS_FLOATS,
    _TORCH_ONLY_SUFFIX,
    _atomic,
    _check_paths,
    _Converted,
    _count,
    _dtype_name,
    _listed,
    _quoted,
    _read_header,
    _weights_file,
    _widened,
    torch_state_to_keras,
    weight_map,
)
from .errors import SpecError, SpecErrors, terminal_safe
from .extras import needs_extra
from .graph import ModelGraph
from .schema import WeightsFrom

with needs_extra("all", "specgen.port"):
    import numpy as np

#: Checkpoint suffixes read with ``torch.load(weights_only=True)``.
TORCH_PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
#: Floating-point dtypes a PyTorch checkpoint may hold, and whether float32 holds each exactly.
_TORCH_FLOATS = {
    "float32": True,
    "float16": True,
    "bfloat16": True,
    "float8_e4m3fn": True,
    "float8_e5m2": True,
    "float64": False,
}


def _fail(path: Path, message: str, hint: str | None = None) -> SpecErrors:
    where = _weights_file(path)
    return SpecErrors([SpecError(message, hint=hint, source=where)], where)


@dataclass
class _Tensor:
    """One checkpoint tensor, read lazily: its dtype name (numpy/PyTorch's), shape and reader."""

    dtype: str
    shape: tuple[int, ...]
    read: Any  # () -> numpy array of the stored values (floats widened, not yet rounded)
    exact: bool = True  # whether float32 holds every value of the dtype


# ----------------------------------------------------------------------------------------------
# Reading checkpoints.


def _safetensors_tensors(path: Path) -> dict[str, _Tensor]:
    entries, start = _read_header(path)
    out: dict[str, _Tensor] = {}
    for name, entry in entries.items():

        def read(entry=entry) -> np.ndarray:
            with open(path, "rb") as handle:
                handle.seek(start + entry.begin)
                data = handle.read(entry.end - entry.begin)
            if entry.dtype in _SAFETENSORS_FLOATS:
                kind = _SAFETENSORS_FLOATS[entry.dtype]
                raw = np.frombuffer(data, dtype=kind.storage).reshape(entry.shape)
                return kind.widen(raw) if kind.widen is not None else raw
            return np.frombuffer(data, dtype=_dtype_name(entry.dtype)).reshape(entry.shape)

        exact = (
            _SAFETENSORS_FLOATS[entry.dtype].exact if entry.dtype in _SAFETENSORS_FLOATS else True
        )
        out[name] = _Tensor(_dtype_name(entry.dtype), entry.shape, read, exact)
    return out


def _torch_tensors(path: Path) -> dict[str, _Tensor]:
    """A PyTorch checkpoint's tensors, loaded with ``weights_only=True`` (no code is run): the
    state dict itself, or the one under its ``state_dict`` key."""
    with needs_extra("all", "specgen.port (PyTorch checkpoints)"):
        import torch
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # an unsafe pickle, a truncated file, a foreign format: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _fail(
            path,
            f"cannot read this PyTorch checkpoint safely: {first[:300]}",
            "only tensors are read from .pt files (weights_only=True); save the state dict, "
            "or convert the checkpoint to .safetensors",
        ) from None
    state = loaded
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise _fail(path, f"the checkpoint holds a {type(state).__name__}, not a state dict")
    out: dict[str, _Tensor] = {}
    others = []
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            others.append(_quoted(str(name)))
            continue
        dtype = str(value.dtype).removeprefix("torch.")

        def read(value=value, dtype=dtype) -> np.ndarray:
            tensor = value.detach().cpu()
            if dtype in _TORCH_FLOATS and dtype not in ("float32", "float64", "float16"):
                tensor = tensor.float()  # exact: numpy has no bfloat16 or float8
            return tensor.numpy()

        out[name] = _Tensor(dtype, tuple(value.shape), read, _TORCH_FLOATS.get(dtype, True))
    if others:
        raise _fail(
            path,
            f"the state dict has {_count(len(others), 'entries')} that are not tensors: "
            f"{_listed(others)}",
        )
    return out


def read_checkpoint(path: Path) -> dict[str, _Tensor]:
    if path.name.endswith(".safetensors"):
        return _safetensors_tensors(path)
    if path.name.endswith(TORCH_PICKLE_SUFFIXES):
        return _torch_tensors(path)
    raise _fail(
        path,
        "cannot tell the format of this checkpoint from its name",
        "port-weights reads .safetensors and PyTorch .pt, .pth or .bin files",
    )


# ----------------------------------------------------------------------------------------------
# The port.


@dataclass
class PortReport:
    """What a port did: every tensor accounted for."""

    library: str
    target: Path
    framework: str  # "PyTorch" or "Keras"
    written: int = 0
    matched: int = 0
    renamed: list[tuple[str, str]] = field(default_factory=list)
    transposed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    not_in_framework: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    converted: _Converted = field(default_factory=_Converted)

    def lines(self) -> list[str]:
        out = [
            f"matched {_count(self.matched, 'tensors')} of the "
            f"{self.library} checkpoint ({len(self.renamed)} renamed)"
        ]
        if self.transposed:
            out.append(
                f"transposed {_count(len(self.transposed), 'tensors')}: " + _all(self.transposed)
            )
        out += self.converted.lines()
        if self.ignored:
            out.append(
                f"left out {_count(len(self.ignored), 'tensors')} of the checkpoint that the "
                f"spec ignores: {_all(self.ignored)}"
            )
        if self.not_in_framework:
            out.append(
                f"left out {_count(len(self.not_in_framework), 'tensors')} that the Keras model "
                f"does not hold: {_all(self.not_in_framework)}"
            )
        if self.filled:
            out.append(
                f"set {_count(len(self.filled), 'counters')} the checkpoint lacks to 0: "
                f"{_all(self.filled)}"
            )
        out.append(
            f"wrote {self.target} ({_count(self.written, 'tensors')}) for the "
            f"{self.framework} model"
        )
        return [terminal_safe(line) for line in out]


def _all(names: list[str]) -> str:
    return ", ".join(_quoted(n) for n in names)


def _renamer(mapping: WeightsFrom):
    steps = [(re.compile(step.match), step.to) for step in mapping.rename]

    def rename(name: str) -> str:
        for pattern, to in steps:
            name = pattern.sub(to, name)
        return name

    return rename


def _spec_problem(loaded: LoadedSpec, message: str, path=(), hint: str | None = None):
    return SpecErrors([SpecError(message, path, hint=hint)], loaded.source)


def _renamed(
    loaded: LoadedSpec, mapping: WeightsFrom, tensors: dict[str, _Tensor], report: PortReport
) -> dict[str, tuple[str, _Tensor, bool]]:
    """``target name -> (source name, tensor, transposed)`` for every tensor not ignored."""
    rename = _renamer(mapping)
    ignore = [re.compile(p) for p in mapping.ignore]
    layouts = [(re.compile(entry.match), entry.layout) for entry in mapping.layout]
    out: dict[str, tuple[str, _Tensor, bool]] = {}
    for name in sorted(tensors):
        if any(p.fullmatch(name) for p in ignore):
            report.ignored.append(name)
            continue
        try:
            target = rename(name)
        except (re.error, IndexError) as exc:  # a replacement naming a group the match lacks
            raise _spec_problem(
                loaded,
                f"renaming tensor '{name}' fails: {exc}",
                ("weights_from", "rename"),
            ) from None
        if target in out:
            raise _spec_problem(
                loaded,
                f"tensors '{out[target][0]}' and '{name}' of the checkpoint are both renamed "
                f"'{target}'",
                ("weights_from", "rename"),
                "make the renaming steps tell them apart",
            )
        transposed = any(p.search(name) for p, _ in layouts)
        if target != name:
            report.renamed.append((name, target))
        out[target] = (name, tensors[name], transposed)
    return out


def _torch_state_shapes(graph: ModelGraph) -> dict[str, tuple[tuple[int, ...], str]]:
    """The generated PyTorch model's state dict: name -> (shape, dtype name)."""
    from .codegen.compiled import compile_module

    model = compile_module(graph, "torch").build_model()
    return {
        name: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for name, t in model.state_dict().items()
    }


def _check(
    graph: ModelGraph,
    source: Path,
    given: dict[str, tuple[str, _Tensor, bool]],
    wanted: dict[str, tuple[tuple[int, ...], str]],
    report: PortReport,
) -> list[SpecError]:
    where = _weights_file(source)
    note = f"the model is that of {graph.spec_file} with the parameter values given"
    hint = (
        f"does the checkpoint come from {report.library}'s model with the same settings? "
        "the spec's weights_from section says how its names map"
    )
    problems = []
    missing = [n for n in sorted(wanted) if n not in given and not n.endswith(_TORCH_ONLY_SUFFIX)]
    if missing:
        problems.append(
            SpecError(
                f"the checkpoint lacks {_count(len(missing), 'tensors')} that the model needs: "
                f"{_listed([_quoted(n) for n in missing])}",
                hint=hint,
                notes=(note,),
                source=where,
            )
        )
    extra = [f"'{given[n][0]}' (as '{n}')" for n in sorted(given) if n not in wanted]
    if extra:
        problems.append(
            SpecError(
                f"the checkpoint has {_count(len(extra), 'tensors')} that the model lacks: "
                f"{_listed(extra)}",
                hint=hint + "; list tensors the spec does not hold under weights_from.ignore",
                notes=(note,),
                source=where,
            )
        )
    for name in sorted(set(given) & set(wanted)):
        source_name, tensor, transposed = given[name]
        shape, dtype = wanted[name]
        label = _quoted(source_name) + ("" if source_name == name else f" (as '{name}')")
        have = tuple(reversed(tensor.shape)) if transposed else tuple(tensor.shape)
        if transposed and len(tensor.shape) != 2:
            problems.append(
                SpecError(
                    f"{label} has {len(tensor.shape)} axes; only 2-D tensors are transposed",
                    source=where,
                )
            )
        elif have != shape:
            problems.append(
                SpecError(
                    f"{label} has shape {tuple(tensor.shape)}"
                    + (" (transposed)" if transposed else "")
                    + f", but the spec's model needs {shape}",
                    source=where,
                )
            )
        float_needed = dtype in _TORCH_FLOATS
        float_given = tensor.dtype in _TORCH_FLOATS
        if float_needed != float_given or (not float_needed and tensor.dtype != dtype):
            problems.append(
                SpecError(
                    f"{label} is {tensor.dtype}, but the spec's model holds it as {dtype}",
                    source=where,
                )
            )
    return problems


@needs_extra("all", "specgen.port.port_file", check=("torch", "safetensors"))
def port_file(loaded: LoadedSpec, graph: ModelGraph, source: Path, target: Path) -> PortReport:
    """Port the checkpoint ``source`` into ``target`` (``.safetensors`` for the generated
    PyTorch model, ``.weights.h5`` for the Keras one); nothing is written unless every tensor
    is accounted for."""
    mapping = loaded.document.weights_from
    if mapping is None:
        raise _spec_problem(
            loaded,
            "this spec has no weights_from section, so port-weights cannot tell how a "
            "checkpoint's tensors are named",
            hint="add weights_from: {library: ..., rename: [...]} (see the spec language, "
            "'Weights from other libraries')",
        )
    if target.name.endswith(".safetensors"):
        framework = "PyTorch"
    elif target.name.endswith(".weights.h5"):
        framework = "Keras"
    else:
        raise _fail(
            target,
            "cannot tell which model the output is for from its name",
            "use .safetensors for the PyTorch model and .weights.h5 for the Keras model",
        )
    _check_paths(source, target)
    report = PortReport(mapping.library, target, framework)
    tensors = read_checkpoint(source)
    given = _renamed(loaded, mapping, tensors, report)
    wanted = _torch_state_shapes(graph)
    problems = _check(graph, source, given, wanted, report)
    where = _weights_file(source)
    if problems:
        raise SpecErrors(problems, where)
    report.matched = len(set(given) & set(wanted))
    state: dict[str, np.ndarray] = {}
    for name in sorted(wanted):
        if name not in given:  # a batch counter: the checkpoint's library keeps none
            report.filled.append(name)
            state[name] = np.zeros(wanted[name][0], dtype=wanted[name][1])
            continue
        source_name, tensor, transposed = given[name]
        array = tensor.read()
        if tensor.dtype in _TORCH_FLOATS:
            if tensor.dtype != "float32":
                report.converted.add(tensor.dtype, tensor.exact)
            array = _widened(_quoted(source_name), array, tensor.exact, where)
        if transposed:
            array = array.T
            report.transposed.append(source_name)
        state[name] = np.ascontiguousarray(array)
    if framework == "PyTorch":
        from safetensors.numpy import save_file

        _atomic(target, ".safetensors", lambda tmp: save_file(state, tmp))
        report.written = len(state)
    else:
        from .codegen.compiled import compile_module

        keras_names = {key for _, key, _, _ in weight_map(graph)}
        report.not_in_framework = sorted(
            n for n in state if n not in keras_names and n not in report.filled
        )
        keras_model = compile_module(graph, "keras").build_model()
        kept = {n: a for n, a in state.items() if n in keras_names}
        torch_state_to_keras(graph, kept, keras_model, where)
        _atomic(target, ".weights.h5", lambda tmp: keras_model.save_weights(tmp))
        report.written = len(kept)
    return report
