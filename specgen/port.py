"""Weights of another library's model, ported into a spec's generated models.

A spec's ``weights_from`` section says how the library names the tensors of the same network:
renaming steps (regular expressions) from its names to the generated PyTorch model's state-dict
names, the tensors it keeps that the spec's model has no counterpart for (``ignore``), and the
tensors it stores in another layout (``layout``). :func:`port_file` reads a checkpoint
(``.safetensors``, a PyTorch ``.pt``/``.pth``/``.bin`` loaded with ``weights_only``, or the
weights file of the spec's own Keras model, read without following links out of it), renames
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
    _h5_datasets,
    _listed,
    _quoted,
    _read_header,
    _to_torch,
    _torch_shape,
    _weights_file,
    _widened,
    keras_layer,
    keras_variable,
    torch_state_to_keras,
    weight_map,
)
from .errors import SpecError, SpecErrors, terminal_safe
from .expr import ExprError, _format, _split, evaluate, evaluate_expression
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


#: Checkpoint suffixes read as Keras weights files (HDF5).
KERAS_SUFFIXES = (".weights.h5", ".h5")


def _keras_datasets(path: Path) -> dict[str, _Tensor]:
    """Every dataset of a Keras weights file as a tensor in Keras's layout, read without
    following any link out of the file."""
    tensors: dict[str, _Tensor] = {}
    for dataset, (shape, dtype) in _h5_datasets(path).items():

        def read(dataset=dataset) -> np.ndarray:
            import h5py

            with h5py.File(path, "r") as handle:
                return np.asarray(handle[dataset][()])

        name = str(dtype)
        tensors[dataset] = _Tensor(name, tuple(shape), read, _TORCH_FLOATS.get(name, True))
    return tensors


def _keras_slots(graph: ModelGraph, keras_model: Any) -> dict[str, tuple[str, str, int]]:
    """``dataset path -> (state-dict name, layout, rank)`` for every variable the generated
    Keras model saves: the dataset paths of its own weights file."""
    slots: dict[str, tuple[str, str, int]] = {}
    for node, key, kattr, layout in weight_map(graph):
        variable = keras_variable(keras_model, node.name, kattr)
        index = next(
            i for i, w in enumerate(keras_layer(keras_model, node.name).weights) if w is variable
        )
        slots[f"{node.name.replace('.', '/')}/vars/{index}"] = (key, layout, len(variable.shape))
    return slots


def _as_torch(tensor: _Tensor, layout: str, rank: int) -> _Tensor:
    """A Keras variable's tensor in the PyTorch layout (a tensor of the wrong rank is shown as
    stored, and refused by the shape check)."""
    if len(tensor.shape) != rank and layout != "flat":
        return _Tensor(tensor.dtype, tensor.shape, None, tensor.exact)
    return _Tensor(
        tensor.dtype,
        _torch_shape(tensor.shape, layout),
        lambda: _to_torch(tensor.read(), layout),
        tensor.exact,
    )


def read_checkpoint(path: Path) -> dict[str, _Tensor]:
    if path.name.endswith(".safetensors"):
        return _safetensors_tensors(path)
    if path.name.endswith(TORCH_PICKLE_SUFFIXES):
        return _torch_tensors(path)
    raise _fail(
        path,
        "cannot tell the format of this checkpoint from its name",
        "port-weights reads .safetensors, PyTorch .pt, .pth or .bin files, and the spec's "
        "Keras weights (.weights.h5)",
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
    #: tensors stored channels first, reordered to the spec's channels-last flatten
    reordered: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    not_in_framework: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    converted: _Converted = field(default_factory=_Converted)
    #: ``--match order``: what the tensors were paired by; ``None`` when paired by name
    paired_by: str | None = None
    #: with a reference model: the largest |difference| of both models' first outputs
    reference_diff: float | None = None
    reference_input: tuple[int, ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"matched {_count(self.matched, 'tensors')} of the "
            f"{self.library} checkpoint ({len(self.renamed)} renamed)"
        ]
        if self.paired_by is not None:
            out.append(f"paired the tensors by {self.paired_by} and shape")
        if self.transposed:
            out.append(
                f"transposed {_count(len(self.transposed), 'tensors')}: " + _all(self.transposed)
            )
        if self.reordered:
            out.append(
                f"reordered {_count(len(self.reordered), 'tensors')} from channels-first to "
                "the spec's channels-last flatten: " + _all(self.reordered)
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
        if self.reference_diff is not None:
            out.append(
                "ran the reference model and the generated PyTorch model on one seeded input "
                f"of shape {self.reference_input}: max |difference| of the outputs "
                f"{self.reference_diff:.3e}"
            )
        return [terminal_safe(line) for line in out]


def _all(names: list[str]) -> str:
    return ", ".join(_quoted(n) for n in names)


#: The most steps one looping renaming step may expand to.
_MAX_LOOP_STEPS = 4096
#: Longest tensor name, in the checkpoint or after a renaming step (every step is a search
#: over the name, so this bounds the work and the memory of renaming).
_MAX_NAME = 1024


def _filled(text: str, variables: dict[str, Any], escape) -> str:
    """``text`` with each ``${...}`` replaced by its value's text, passed through ``escape``
    (``$${`` is a literal ``${``)."""
    if "${" not in text:
        return text
    out = []
    for is_expr, piece in _split(text):
        if is_expr:
            out.append(escape(_format(evaluate_expression(piece, variables), piece)))
        else:
            out.append(piece)
    return "".join(out)


def _renamer(loaded: LoadedSpec, base: tuple, mapping: WeightsFrom, parameters: dict[str, Any]):
    """The renaming function: every step, its loops unrolled and its expressions evaluated over
    the spec's parameter values (``base`` is the mapping's path in the spec)."""
    steps: list[tuple[re.Pattern, str]] = []
    for j, step in enumerate(mapping.rename):
        path: tuple = (*base, "rename", j)
        bindings = [dict(parameters)]
        if step.for_ is not None:
            try:
                values = evaluate(step.in_, parameters)
            except ExprError as exc:
                raise _spec_problem(loaded, exc.message, (*path, "in"), exc.hint) from None
            if isinstance(values, int) and not isinstance(values, bool):
                values = list(range(values)) if 0 <= values <= _MAX_LOOP_STEPS else values
            if not isinstance(values, list) or len(values) > _MAX_LOOP_STEPS:
                raise _spec_problem(
                    loaded,
                    f"'in' of a renaming step must give a count from 0 to {_MAX_LOOP_STEPS} or a "
                    f"list of at most {_MAX_LOOP_STEPS} values, not {values!r:.80}",
                    (*path, "in"),
                )
            bindings = [{**parameters, step.for_: value} for value in values]
        for variables in bindings:
            try:
                match = _filled(step.match, variables, re.escape)
                to = _filled(step.to, variables, lambda t: t.replace("\\", "\\\\"))
            except ExprError as exc:
                raise _spec_problem(loaded, exc.message, path, exc.hint) from None
            try:
                steps.append((re.compile(match), to))
            except re.error as exc:
                raise _spec_problem(
                    loaded,
                    f"the pattern '{match}' is not a valid regular expression: {exc}",
                    (*path, "match"),
                ) from None

    if len(steps) > _MAX_LOOP_STEPS:
        raise _spec_problem(
            loaded,
            f"the renaming steps unroll to {len(steps)} steps, more than {_MAX_LOOP_STEPS}",
            (*base, "rename"),
        )

    def rename(name: str) -> str:
        for pattern, to in steps:
            name = pattern.sub(to, name)
            if len(name) > _MAX_NAME:
                raise ValueError(f"a step makes it longer than {_MAX_NAME} characters")
        return name

    return rename


def _spec_problem(loaded: LoadedSpec, message: str, path=(), hint: str | None = None):
    return SpecErrors([SpecError(message, path, hint=hint)], loaded.source)


#: What a source tensor becomes: ``target name -> (source name, tensor, layout or None)``.
_Given = dict[str, tuple[str, _Tensor, str | None]]


def _renamed(
    loaded: LoadedSpec,
    base: tuple,
    mapping: WeightsFrom,
    parameters: dict[str, Any],
    tensors: dict[str, _Tensor],
    ignored: list[str],
    renamed: list[tuple[str, str]],
) -> _Given:
    """Every tensor not ignored, under its new name, with the layout the mapping gives it."""
    rename = _renamer(loaded, base, mapping, parameters)
    ignore = [re.compile(p) for p in mapping.ignore]
    layouts = [(re.compile(entry.match), entry.layout) for entry in mapping.layout]
    out: _Given = {}
    for name in sorted(tensors):
        if len(name) > _MAX_NAME:
            raise SpecErrors(
                [
                    SpecError(
                        f"the checkpoint names a tensor with {len(name):,} characters, more "
                        f"than the {_MAX_NAME} a tensor name may have",
                        (),
                    )
                ],
                None,
            )
        if any(p.fullmatch(name) for p in ignore):
            ignored.append(name)
            continue
        try:
            target = rename(name)
        # a replacement naming a group the match lacks, or a name grown too long
        except (re.error, IndexError, ValueError) as exc:
            raise _spec_problem(
                loaded, f"renaming tensor '{name}' fails: {exc}", (*base, "rename")
            ) from None
        if target in out:
            raise _spec_problem(
                loaded,
                f"tensors '{out[target][0]}' and '{name}' of the checkpoint are both renamed "
                f"'{target}'",
                (*base, "rename"),
                "make the renaming steps tell them apart",
            )
        layout = next((kind for p, kind in layouts if p.search(name)), None)
        if target != name:
            renamed.append((name, target))
        out[target] = (name, tensors[name], layout)
    return out


def _in_torch_names(given: _Given, slots: dict[str, tuple[str, str, int]]) -> _Given:
    """Tensors named by the Keras model's dataset paths, under the PyTorch model's names and in
    its layout; a path the Keras model does not save keeps its name (and is refused)."""
    out: _Given = {}
    for dataset, (source_name, tensor, layout) in given.items():
        if dataset in slots:
            key, kind, rank = slots[dataset]
            out[key] = (source_name, _as_torch(tensor, kind, rank), layout)
        else:
            out[dataset] = (source_name, tensor, layout)
    return out


def _paired_in_order(
    source: Path,
    order: list[str],
    tensors: dict[str, _Tensor],
    wanted: dict[str, tuple[tuple[int, ...], str]],
    renamed: list[tuple[str, str]],
) -> _Given:
    """``--match order``: the checkpoint's tensors (in ``order``) paired one by one with the
    generated PyTorch model's state dict in registration order; every pair must have one shape.
    Batch counters are left out of the pairing when the checkpoint keeps none."""
    targets = list(wanted)
    if not any(n.endswith(_TORCH_ONLY_SUFFIX) for n in order):
        targets = [n for n in targets if not n.endswith(_TORCH_ONLY_SUFFIX)]
    where = _weights_file(source)
    hint = (
        "does the checkpoint come from the same network with the same settings? a library that "
        "registers its modules in another order than it calls them needs --reference"
    )
    for i, (theirs, ours) in enumerate(zip(order, targets, strict=False)):
        have, need = tuple(tensors[theirs].shape), wanted[ours][0]
        if have != need:
            raise SpecErrors(
                [
                    SpecError(
                        f"paired by order, tensor {i + 1} of the checkpoint, "
                        f"{_quoted(theirs)} of shape {have}, meets {_quoted(ours)} of the "
                        f"spec's model, of shape {need}",
                        hint=hint,
                        source=where,
                    )
                ],
                where,
            )
    if len(order) != len(targets):
        more, fewer = ("checkpoint", "spec's model")
        if len(order) < len(targets):
            more, fewer = fewer, more
        first = order[len(targets)] if len(order) > len(targets) else targets[len(order)]
        raise SpecErrors(
            [
                SpecError(
                    f"paired by order, the checkpoint has {_count(len(order), 'tensors')} and "
                    f"the spec's model {len(targets)}: the {more} has {_quoted(first)} (tensor "
                    f"{min(len(order), len(targets)) + 1}) and more that the {fewer} lacks",
                    hint=hint,
                    source=where,
                )
            ],
            where,
        )
    out: _Given = {}
    for theirs, ours in zip(order, targets, strict=True):
        if theirs != ours:
            renamed.append((theirs, ours))
        out[ours] = (theirs, tensors[theirs], None)
    return out


def _torch_tensor(tensor: _Tensor):
    """A checkpoint tensor as a PyTorch tensor (its own copy of the values)."""
    import torch

    return torch.from_numpy(np.array(tensor.read()))


def _torch_state_shapes(graph: ModelGraph) -> dict[str, tuple[tuple[int, ...], str]]:
    """The generated PyTorch model's state dict: name -> (shape, dtype name)."""
    from .codegen.compiled import compile_module

    model = compile_module(graph, "torch").build_model()
    return {
        name: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for name, t in model.state_dict().items()
    }


def _channels_first(graph: ModelGraph, key: str, layout: str) -> tuple[int, ...] | None:
    """The ``(*spatial, C)`` shape whose channels-first order a ``channels_first_*`` layout
    reorders for the weight ``key``, or None when the spec's flatten or reshape already reads
    channels first. Raises ValueError (the reason) when the weight is not one it applies to."""
    node_name, _, attr = key.rpartition(".")
    if node_name not in graph or graph.node(node_name).kind != "dense":
        raise ValueError(f"{layout} is for the weights of dense layers, and '{key}' is not one")
    node = graph.node(node_name)
    if layout == "channels_first_inputs":
        if attr != "weight":
            raise ValueError(f"{layout} is for a dense layer's weight, not its {attr}")
        ref = node.inputs[0]
        producer = graph.node(ref.node) if ref.node in graph else None
        if producer is None or producer.kind != "flatten":
            raise ValueError(
                f"{layout} needs a dense layer fed by a flatten; '{node.name}' is fed by "
                f"'{ref.node}'" + (f" ({producer.kind})" if producer is not None else "")
            )
        order, shape = producer.layer.order, graph.shape(producer.inputs[0])
    else:
        current = node
        while True:
            readers = graph.consumers(current.name)
            reader = graph.node(readers[0]) if len(readers) == 1 else None
            if reader is not None and reader.kind == "reshape":
                break
            if reader is None or len(reader.inputs) != 1 or reader.shape != current.shape:
                raise ValueError(
                    f"{layout} needs a dense layer whose output a reshape reads; "
                    f"'{current.name}' is read by "
                    + (", ".join(f"'{r}'" for r in readers) or "no layer")
                )
            current = reader
        order, shape = reader.layer.order, reader.shape
    return None if order == "channels_first" else tuple(shape)


def _from_channels_first(array: np.ndarray, shape: tuple[int, ...], layout: str) -> np.ndarray:
    """A dense weight (or bias) whose inputs (or outputs) are in ``(C, *spatial)`` order,
    reordered to the spec's ``(*spatial, C)`` of ``shape``."""
    spatial, channels = shape[:-1], shape[-1]
    if layout == "channels_first_inputs":
        out = array.reshape(array.shape[0], channels, *spatial)
        return np.moveaxis(out, 1, -1).reshape(array.shape)
    out = array.reshape(channels, *spatial, *array.shape[1:])
    return np.moveaxis(out, 0, len(spatial)).reshape(array.shape)


def _check(
    graph: ModelGraph,
    source: Path,
    given: _Given,
    wanted: dict[str, tuple[tuple[int, ...], str]],
    library: str,
) -> list[SpecError]:
    where = _weights_file(source)
    note = f"the model is that of {graph.spec_file} with the parameter values given"
    hint = (
        f"does the checkpoint come from {library}'s model with the same settings? "
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
        source_name, tensor, layout = given[name]
        shape, dtype = wanted[name]
        label = _quoted(source_name) + ("" if source_name == name else f" (as '{name}')")
        transposed = layout == "transpose"
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
        elif layout is not None and not transposed:
            try:
                _channels_first(graph, name, layout)
            except ValueError as exc:
                problems.append(SpecError(f"{label}: {exc}", source=where))
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


@dataclass
class _Attempt:
    """One way of naming the checkpoint's tensors: the spec's own names, or one mapping."""

    library: str
    given: _Given
    ignored: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    problems: list[SpecError] = field(default_factory=list)
    matched: int = 0
    own: bool = False  # the spec's own names

    def naming(self) -> str:
        return f"the spec's {self.library} model's" if self.own else f"{self.library}'s"


def _chosen_mappings(
    loaded: LoadedSpec, fmt: str, library: str | None
) -> list[tuple[tuple, WeightsFrom]]:
    """The spec's mappings for checkpoints of format ``fmt``, or the one ``library`` names."""
    sources = loaded.document.weights_sources
    if library is None:
        return [(base, m) for base, m in sources if m.format == fmt]
    chosen = [(base, m) for base, m in sources if m.library.casefold() == library.casefold()]
    names = ", ".join(f"'{m.library}'" for _, m in sources) or "none"
    if not chosen:
        raise _spec_problem(
            loaded,
            f"the spec's weights_from section has no mapping for library '{library}'",
            ("weights_from",) if sources else (),
            f"the libraries it maps are: {names}",
        )
    base, mapping = chosen[0]
    if mapping.format != fmt:
        raise _spec_problem(
            loaded,
            f"library '{mapping.library}' maps {mapping.format} checkpoints, and this one is a "
            f"{fmt} file",
            (*base, "format"),
            "choose the library whose checkpoints are of this kind with --library",
        )
    return chosen


@needs_extra("all", "specgen.port.port_file", check=("torch", "safetensors"))
def port_file(
    loaded: LoadedSpec,
    graph: ModelGraph,
    source: Path,
    target: Path,
    match: str = "names",
    reference: str | None = None,
    reference_kwargs: dict[str, Any] | None = None,
    library: str | None = None,
) -> PortReport:
    """Port the checkpoint ``source`` into ``target`` (``.safetensors`` for the generated
    PyTorch model, ``.weights.h5`` for the Keras one); nothing is written unless every tensor
    is accounted for.

    ``match="names"`` names the tensors as the spec's own models do, or by one of the spec's
    ``weights_from`` mappings for checkpoints of the file's format (``library`` chooses one;
    otherwise the first that accounts for every tensor is used). ``"order"`` pairs them by order
    and shape with the generated PyTorch model's state dict (in the checkpoint's order, or with
    ``reference`` in the order the reference model calls its modules). ``reference``
    (``FILE.py:Class`` or ``package.module:Class``, built with ``reference_kwargs``) is the
    user's own model class: it is loaded with the checkpoint, and both models are run on one
    seeded input to report the largest difference of their outputs.
    """
    if match not in ("names", "order"):
        raise ValueError(f"match must be 'names' or 'order', not {match!r}")
    keras_source = source.name.endswith(KERAS_SUFFIXES)
    if keras_source and (match == "order" or reference is not None):
        raise _fail(
            source,
            "Keras weights files are matched by name; --match order and --reference are for "
            "PyTorch checkpoints",
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
    fmt = "keras" if keras_source else "pytorch"
    mappings = _chosen_mappings(loaded, fmt, library) if match == "names" else []
    wanted = _torch_state_shapes(graph)
    tensors = _keras_datasets(source) if keras_source else read_checkpoint(source)
    reference_model = None
    if reference is not None:
        from . import port_reference

        reference_model = port_reference.build(
            reference,
            reference_kwargs or {},
            {n: _torch_tensor(t) for n, t in tensors.items()},
        )
    parameters = dict(graph.parameters)
    report = PortReport("", target, framework)
    if match == "order":
        if reference_model is not None:
            from . import port_reference

            order = port_reference.call_order(reference_model, graph, reference)
            label = reference.rpartition(":")[2]
            report.paired_by = f"the order {label} calls its modules in"
        else:
            order = list(tensors)
            label = "source"
            report.paired_by = "the checkpoint's order"
        attempts = [_Attempt(label, {})]
        attempts[0].given = _paired_in_order(source, order, tensors, wanted, attempts[0].renamed)
    else:
        attempts = []
        if library is None:  # the spec's own names first
            own = "Keras" if keras_source else "PyTorch"
            attempts.append(_Attempt(own, {n: (n, t, None) for n, t in tensors.items()}, own=True))
        for base, mapping in mappings:
            attempt = _Attempt(mapping.library, {})
            attempt.given = _renamed(
                loaded,
                base,
                mapping,
                parameters,
                tensors,
                attempt.ignored,
                attempt.renamed,
            )
            attempts.append(attempt)
        if keras_source:
            from .codegen.compiled import compile_module

            slots = _keras_slots(graph, compile_module(graph, "keras").build_model())
            for attempt in attempts:
                attempt.given = _in_torch_names(attempt.given, slots)
    for attempt in attempts:
        attempt.problems = _check(graph, source, attempt.given, wanted, attempt.library)
        attempt.matched = len(set(attempt.given) & set(wanted))
    chosen = next((a for a in attempts if not a.problems), None)
    where = _weights_file(source)
    if chosen is None:
        if not mappings and match == "names" and not keras_source:
            raise _spec_problem(
                loaded,
                "the checkpoint's tensors are not named as the spec's model names them, and "
                + (
                    "this spec has no weights_from section"
                    if not loaded.document.weights_sources
                    else "this spec's weights_from section maps no library's PyTorch checkpoints"
                )
                + ", so port-weights cannot tell how they are named",
                hint="add weights_from: {library: ..., rename: [...]} (see the spec language, "
                "'Weights from other libraries'), or pair the tensors by order with --match order",
            )
        best = max(attempts, key=lambda a: a.matched)
        others = [
            f"{a.naming()} names ({a.matched} of the {len(wanted)} tensors matched)"
            for a in attempts
            if a is not best
        ]
        problems = best.problems
        if others:
            first = problems[0]
            problems = [
                SpecError(
                    first.message,
                    first.path,
                    hint=first.hint,
                    notes=(
                        *first.notes,
                        f"named by {best.naming()} names, the closest ({best.matched} "
                        "matched); also tried: " + "; ".join(others),
                    ),
                    source=first.source,
                ),
                *problems[1:],
            ]
        raise SpecErrors(problems, where)
    given = chosen.given
    report.library = chosen.library
    report.renamed, report.ignored = chosen.renamed, chosen.ignored
    report.matched = chosen.matched
    state: dict[str, np.ndarray] = {}
    for name in sorted(wanted):
        if name not in given:  # a batch counter: the checkpoint's library keeps none
            report.filled.append(name)
            state[name] = np.zeros(wanted[name][0], dtype=wanted[name][1])
            continue
        source_name, tensor, layout = given[name]
        array = tensor.read()
        if tensor.dtype in _TORCH_FLOATS:
            if tensor.dtype != "float32":
                report.converted.add(tensor.dtype, tensor.exact)
            array = _widened(_quoted(source_name), array, tensor.exact, where)
        if layout == "transpose":
            array = array.T
            report.transposed.append(source_name)
        elif layout is not None:
            shape = _channels_first(graph, name, layout)
            if shape is not None:
                array = _from_channels_first(array, shape, layout)
                report.reordered.append(source_name)
        state[name] = np.ascontiguousarray(array)
    if reference_model is not None:
        from .codegen.compiled import compile_module
        from .port_reference import max_difference, sample_input

        ours = compile_module(graph, "torch").build_model()
        ours.load_state_dict(
            {n: _torch_tensor(_Tensor("", a.shape, lambda a=a: a)) for n, a in state.items()},
            strict=True,
        )
        report.reference_diff = max_difference(reference_model, ours, graph, reference)
        report.reference_input = tuple(sample_input(graph).shape)
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
