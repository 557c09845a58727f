"""Weights between the PyTorch and Keras models of one spec.

Both generated models hold every layer at the node's dotted name, so weights move node by node,
each in its framework's layout:

=====================  ===========================  ===============================
node kind              PyTorch                      Keras
=====================  ===========================  ===============================
conv                   weight (out, in/g, *k)       kernel (*k, in/g, out)
conv_transpose         weight (in, out, *k)         kernel (*k, out, in)
dense                  weight (out, in)             kernel (in, out)
batch_norm             weight, bias,                gamma, beta,
                       running_mean, running_var    moving_mean, moving_variance
layer_norm/group_norm  weight, bias                 gamma, beta
instance_norm          weight, bias (if affine)     gamma, beta
prelu                  weight (C,) or (1,)          alpha (1, 1, C), (N,) or (1, ...)
vector_quantizer       embedding.weight (K, D)      codebook (K, D)
attention              group_norm.weight, .bias     gamma, beta
                       to_q.weight (inner, C)       query_kernel (C, inner)
                       to_k, to_v likewise          key_*, value_* likewise
                       to_out.0.weight (C, inner)   output_kernel (inner, C)
                       to_*.bias                    *_bias
gdn/igdn               beta (C,), gamma (C, C)      beta, gamma (both as they are,
                                                    reparametrized)
entropy_bottleneck     matrices.<i>, biases.<i>,    matrix<i>, bias<i>, factor<i>,
                       factors.<i>, quantiles       quantiles (all as they are)
=====================  ===========================  ===============================

A plugin layer's weights move as its plugin says (:meth:`specgen.plugins.LayerPlugin.weights`),
or, by default, paired in order, each copied or transposed as a kernel as the shapes show.

No flatten-order permutation is needed in front of dense layers: both models flatten in the
spec's order, (H, W, C) or, where a flatten says ``order: channels_first``, (C, H, W). A
transposed convolution's ``constant_kernel`` is a tensor of neither model. Files are read without
unpickling anything: PyTorch weights as safetensors, Keras weights as ``.weights.h5`` (HDF5).

Before anything is written, every tensor of the file is checked against the spec's model: its
name, its shape and its dtype. The models compute in float32: float16, bfloat16 and float8 tensors
are widened exactly, float64 tensors are rounded, and the output says which it converted; integer,
boolean and complex tensors are refused. The output file is written beside its final name and
renamed into place, so a failed run leaves no partial file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Source, SpecError, SpecErrors, terminal_safe
from .extras import needs_extra
from .graph import ModelGraph, Node

with needs_extra("all", "specgen.convert"):
    import numpy as np

#: Tensors PyTorch keeps that the Keras model has no counterpart for.
_TORCH_ONLY_SUFFIX = "num_batches_tracked"
#: A safetensors header larger than this is not a weights file of a spec's model.
_MAX_HEADER_BYTES = 100 * 2**20
#: Missing or unexpected tensors named in one message before the rest are counted.
_LISTED = 8


def keras_layer(model: Any, name: str) -> Any:
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def keras_variable(model: Any, node: str, attr: str | int) -> Any:
    """The variable ``attr`` of node ``node``'s Keras layer: an attribute path, or (for plugin
    layers paired in order) an index into the layer's ``weights``."""
    layer = keras_layer(model, node)
    return layer.weights[attr] if isinstance(attr, int) else keras_layer(layer, attr)


def _pairs(node: Node) -> list[tuple[str, str, str]]:
    """(torch tensor name, keras attribute, layout) for one node's weights."""
    kind = node.kind
    layer = node.layer
    if layer.neutral_kind in ("conv", "conv_transpose"):
        # a constant kernel is no tensor of either model
        fixed = getattr(layer, "constant_kernel", None) is not None
        out = [] if fixed else [("weight", "kernel", "conv")]
        if layer.use_bias:
            out.append(("bias", "bias", "copy"))
        return out
    if kind == "dense":
        out = [("weight", "kernel", "transpose")]
        if layer.use_bias:
            out.append(("bias", "bias", "copy"))
        return out
    if kind in ("batch_norm", "layer_norm", "group_norm"):
        out = []
        if layer.scale:
            out.append(("weight", "gamma", "copy"))
        if layer.center:
            out.append(("bias", "beta", "copy"))
        if kind == "batch_norm":
            out += [
                ("running_mean", "moving_mean", "copy"),
                ("running_var", "moving_variance", "copy"),
            ]
        return out
    if kind == "vector_quantizer":
        return [("embedding.weight", "codebook", "copy")]
    if kind == "attention":
        out = [("group_norm.weight", "gamma", "copy"), ("group_norm.bias", "beta", "copy")]
        for tname, kname in (("to_q", "query"), ("to_k", "key"), ("to_v", "value")):
            out += [(f"{tname}.weight", f"{kname}_kernel", "transpose")]
            out += [(f"{tname}.bias", f"{kname}_bias", "copy")]
        out += [("to_out.0.weight", "output_kernel", "transpose")]
        out += [("to_out.0.bias", "output_bias", "copy")]
        return out
    if kind == "prelu":
        return [("weight", "alpha", "flat")]
    if kind in ("gdn", "igdn"):
        return [("beta", "beta", "copy"), ("gamma", "gamma", "copy")]
    if kind == "entropy_bottleneck":
        depth = len(layer.filters) + 1
        out = [(f"matrices.{i}", f"matrix{i}", "copy") for i in range(depth)]
        out += [(f"biases.{i}", f"bias{i}", "copy") for i in range(depth)]
        out += [(f"factors.{i}", f"factor{i}", "copy") for i in range(depth - 1)]
        return out + [("quantiles", "quantiles", "copy")]
    if kind == "instance_norm":
        return [("weight", "gamma", "copy"), ("bias", "beta", "copy")] if layer.affine else []
    return []


def _keras_axes(layout: str, ndim: int) -> tuple[int, ...] | None:
    """The axis order taking a PyTorch weight of ``ndim`` axes to its Keras layout, None for
    "copy" and "flat" (a vector in PyTorch that Keras holds with axes of length 1 around it): a
    convolution kernel of any rank, ``(out, in, *k)`` -> ``(*k, in, out)``; a dense one swaps."""
    if layout == "conv":
        return (*range(2, ndim), 1, 0)
    return (1, 0) if layout == "transpose" else None


def _torch_axes(layout: str, ndim: int) -> tuple[int, ...] | None:
    """The inverse of :func:`_keras_axes`: ``(*k, in, out)`` -> ``(out, in, *k)``."""
    if layout == "conv":
        return (ndim - 1, ndim - 2, *range(ndim - 2))
    return (1, 0) if layout == "transpose" else None


def _to_keras(array: np.ndarray, layout: str) -> np.ndarray:
    """``array`` in the Keras axis order; a "flat" one still needs its Keras shape."""
    axes = _keras_axes(layout, array.ndim)
    return array if axes is None else np.transpose(array, axes)


def _to_torch(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "flat":
        return array.reshape(-1)
    axes = _torch_axes(layout, array.ndim)
    return array if axes is None else np.transpose(array, axes)


def _torch_shape(keras_shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The PyTorch shape of a weight whose Keras variable has ``keras_shape``."""
    if layout == "flat":
        return (math.prod(keras_shape),)
    axes = _torch_axes(layout, len(keras_shape))
    return tuple(keras_shape) if axes is None else tuple(keras_shape[a] for a in axes)


def weight_map(graph: ModelGraph) -> Iterator[tuple[Node, str, str | int, str]]:
    """(node, torch state-dict key, keras attribute, layout) for every weight of the model."""
    from .plugins import is_plugin, weight_pairs

    for node in graph.nodes:
        pairs = weight_pairs(node, graph) if is_plugin(node.layer) else _pairs(node)
        for tname, kattr, layout in pairs:
            yield node, f"{node.name}.{tname}", kattr, layout


def _weights_file(path: Path) -> Source:
    """Errors about a weights file name the file alone (it has no lines to point into)."""
    return Source(str(path), "", has_lines=False)


def _quoted(name: str) -> str:
    return f"'{name}'"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n != 1 else f"1 {what[:-1]}"


def _listed(labels: list[str]) -> str:
    shown = ", ".join(labels[:_LISTED])
    more = len(labels) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _name_problems(
    graph: ModelGraph,
    expected: set[str],
    given: set[str],
    where: Source | None,
    what: str,
    label: Callable[[str], str] = _quoted,
) -> list[SpecError]:
    """Errors for the ``what`` (tensors, datasets) the model needs that the file lacks, and
    the reverse; each is shown as ``label(name)``."""
    note = f"the model is that of {graph.spec_file} with the parameter values given"
    hint = "were the weights made with this spec and the same --set values?"
    problems = []
    missing = [label(n) for n in sorted(expected - given)]
    if missing:
        problems.append(
            SpecError(
                f"the file lacks {_count(len(missing), what)} that the model needs: "
                f"{_listed(missing)}",
                hint=hint,
                notes=(note,),
                source=where,
            )
        )
    extra = [label(n) for n in sorted(given - expected)]
    if extra:
        problems.append(
            SpecError(
                f"the file has {_count(len(extra), what)} that the model lacks: {_listed(extra)}",
                hint=hint,
                notes=(note,),
                source=where,
            )
        )
    return problems


def _shape_problem(
    label: str, shape: tuple[int, ...], needed: tuple[int, ...], where: Source | None
) -> SpecError | None:
    if tuple(shape) == tuple(needed):
        return None
    return SpecError(
        f"{label} has shape {tuple(shape)}, but the spec's layer needs {tuple(needed)}",
        source=where,
    )


def torch_state_to_keras(
    graph: ModelGraph, state: dict[str, Any], keras_model: Any, where: Source | None = None
) -> None:
    """Assign a PyTorch ``state_dict`` (tensors or arrays) to a built Keras model.

    Every name and shape is checked before any variable is assigned; ``where`` locates the errors
    (the weights file they came from).
    """
    expected = {key for _, key, _, _ in weight_map(graph)}
    given = {k for k in state if not k.endswith(_TORCH_ONLY_SUFFIX)}
    problems = _name_problems(graph, expected, given, where, "tensors")
    assignments = []
    for node, key, kattr, layout in weight_map(graph):
        if key not in state:
            continue
        value = state[key]
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        variable = keras_variable(keras_model, node.name, kattr)
        needed = _torch_shape(tuple(variable.shape), layout)
        problem = _shape_problem(_quoted(key), tuple(array.shape), needed, where)
        if problem is not None:
            problems.append(problem)
            continue
        keras_array = np.reshape(_to_keras(array, layout), tuple(variable.shape))
        assignments.append((variable, keras_array))
    if problems:
        raise SpecErrors(problems, where)
    for variable, array in assignments:
        variable.assign(array.astype(np.float32))


def keras_to_torch_state(graph: ModelGraph, keras_model: Any) -> dict[str, np.ndarray]:
    """The PyTorch ``state_dict`` (as float32 arrays) of a built Keras model's weights."""
    out: dict[str, np.ndarray] = {}
    for node, key, kattr, layout in weight_map(graph):
        variable = keras_variable(keras_model, node.name, kattr)
        out[key] = np.ascontiguousarray(_to_torch(np.asarray(variable.numpy()), layout))
        if node.kind == "batch_norm" and kattr == "moving_variance":
            # PyTorch counts the batches seen; Keras does not keep that count
            out[f"{node.name}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
    return out


# ----------------------------------------------------------------------------------------------
# Floating-point dtypes, widened to float32.


def _float8_table(exponent_bits: int, mantissa_bits: int, ieee: bool) -> np.ndarray:
    """The float32 value of each of the 256 float8 bit patterns (sign, exponent, mantissa).

    ``ieee`` formats (E5M2) keep infinities and NaNs in the top exponent; the others (E4M3FN)
    use it for numbers, except the all-ones pattern, which is NaN.
    """
    bias = 2 ** (exponent_bits - 1) - 1
    top = 2**exponent_bits - 1
    out = np.empty(256, dtype=np.float32)
    for bits in range(256):
        sign = -1.0 if bits & 0x80 else 1.0
        exponent = (bits >> mantissa_bits) & top
        mantissa = bits & (2**mantissa_bits - 1)
        fraction = mantissa / 2**mantissa_bits
        if ieee and exponent == top:
            value = sign * math.inf if mantissa == 0 else math.copysign(math.nan, sign)
        elif not ieee and exponent == top and mantissa == 2**mantissa_bits - 1:
            value = math.copysign(math.nan, sign)
        elif exponent == 0:
            value = sign * fraction * 2.0 ** (1 - bias)
        else:
            value = sign * (1 + fraction) * 2.0 ** (exponent - bias)
        out[bits] = value
    return out


def _bfloat16(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) as float32: they are a float32's upper half."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True)
class _Float:
    name: str  # the dtype as numpy / PyTorch call it
    storage: str  # the numpy dtype the bytes are read as
    widen: Callable[[np.ndarray], np.ndarray] | None  # to float32, for stored bits
    exact: bool  # whether float32 holds every value


_E4M3 = _float8_table(4, 3, ieee=False)
_E5M2 = _float8_table(5, 2, ieee=True)

#: safetensors dtypes the models' float32 weights can be made from.
_SAFETENSORS_FLOATS = {
    "F32": _Float("float32", "<f4", None, True),
    "F16": _Float("float16", "<f2", None, True),
    "BF16": _Float("bfloat16", "<u2", _bfloat16, True),
    "F8_E4M3": _Float("float8_e4m3fn", "u1", lambda raw: _E4M3[raw], True),
    "F8_E5M2": _Float("float8_e5m2", "u1", lambda raw: _E5M2[raw], True),
    "F64": _Float("float64", "<f8", None, False),
}
#: Other safetensors dtypes, by the name numpy and PyTorch give them.
_SAFETENSORS_OTHERS = {
    "BOOL": ("bool", 1),
    "U8": ("uint8", 1),
    "I8": ("int8", 1),
    "I16": ("int16", 2),
    "U16": ("uint16", 2),
    "I32": ("int32", 4),
    "U32": ("uint32", 4),
    "I64": ("int64", 8),
    "U64": ("uint64", 8),
    "C64": ("complex64", 8),
}


def _itemsize(dtype: str) -> int | None:
    if dtype in _SAFETENSORS_FLOATS:
        return np.dtype(_SAFETENSORS_FLOATS[dtype].storage).itemsize
    if dtype in _SAFETENSORS_OTHERS:
        return _SAFETENSORS_OTHERS[dtype][1]
    return None


def _dtype_name(dtype: str) -> str:
    if dtype in _SAFETENSORS_FLOATS:
        return _SAFETENSORS_FLOATS[dtype].name
    if dtype in _SAFETENSORS_OTHERS:
        return _SAFETENSORS_OTHERS[dtype][0]
    return dtype


def _not_float(found: dict[str, list[str]], where: Source) -> list[SpecError]:
    """One error per non-float dtype found (``dtype -> tensor labels``)."""
    out = []
    for dtype, labels in sorted(found.items()):
        what = f"tensor {labels[0]} is" if len(labels) == 1 else f"{len(labels)} tensors are"
        listed = "" if len(labels) == 1 else f" ({_listed(labels)})"
        out.append(
            SpecError(
                f"{what} {dtype}{listed}; the model's weights are floating point",
                hint="save the weights as float32 (float16, bfloat16, float8 and float64 are "
                "converted)",
                source=where,
            )
        )
    return out


class _Converted:
    """Counts of tensors converted to float32, by source dtype, for the closing message."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, bool]] = {}

    def add(self, dtype: str, exact: bool) -> None:
        n, _ = self.counts.get(dtype, (0, exact))
        self.counts[dtype] = (n + 1, exact)

    def lines(self) -> list[str]:
        out = []
        for dtype, (n, exact) in sorted(self.counts.items()):
            how = "exactly" if exact else "rounding to the nearest float32"
            out.append(
                f"converted {n} tensor{'s' if n != 1 else ''} from {dtype} to float32 ({how})"
            )
        return out


def _widened(label: str, array: np.ndarray, exact: bool, where: Source) -> np.ndarray:
    """``array`` as float32; a value that float32 cannot hold is an error, not an infinity."""
    with np.errstate(over="ignore"):  # an overflow is reported below
        out = array.astype(np.float32)
    if not exact and not np.array_equal(np.isfinite(out), np.isfinite(array)):
        raise SpecErrors(
            [
                SpecError(
                    f"tensor {label} has values beyond float32's range (largest 3.4e38)",
                    source=where,
                )
            ],
            where,
        )
    return out


# ----------------------------------------------------------------------------------------------
# safetensors files, read without the safetensors package (which cannot read every dtype).


@dataclass(frozen=True)
class _Entry:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _bad_file(path: Path, why: str) -> SpecErrors:
    where = _weights_file(path)
    return SpecErrors(
        [SpecError(f"not a valid safetensors file: {why}", source=where)],
        where,
    )


def _read_header(path: Path) -> tuple[dict[str, _Entry], int]:
    """The tensors a safetensors file holds, and the offset where their data starts."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise _bad_file(path, f"it has {len(prefix)} bytes, fewer than a header needs")
        length = int.from_bytes(prefix, "little")
        if length > min(size - 8, _MAX_HEADER_BYTES):
            raise _bad_file(path, f"its header claims {length} bytes, more than the file has")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_file(path, f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad_file(path, "its header is not a JSON object")
    data_size = size - 8 - length
    entries: dict[str, _Entry] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
            ok = (
                isinstance(dtype, str)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                and all(isinstance(o, int) and not isinstance(o, bool) for o in (begin, end))
                and 0 <= begin <= end <= data_size
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise _bad_file(path, f"the entry of tensor '{name}' is malformed or out of bounds")
        itemsize = _itemsize(dtype)
        if itemsize is not None and math.prod(shape) * itemsize != end - begin:
            raise _bad_file(
                path, f"tensor '{name}' has {end - begin} bytes of data, not {shape} x {dtype}"
            )
        entries[name] = _Entry(dtype, shape, begin, end)
    return entries, 8 + length


def _read_safetensors(
    graph: ModelGraph, path: Path, keras_model: Any, converted: _Converted
) -> dict[str, np.ndarray]:
    """The file's weights as float32 arrays in the PyTorch layout, every tensor checked first."""
    where = _weights_file(path)
    entries, start = _read_header(path)
    expected = {key: (node, kattr, layout) for node, key, kattr, layout in weight_map(graph)}
    given = {k for k in entries if not k.endswith(_TORCH_ONLY_SUFFIX)}
    problems = _name_problems(graph, set(expected), given, where, "tensors")
    not_float: dict[str, list[str]] = {}
    for key, (node, kattr, layout) in expected.items():
        entry = entries.get(key)
        if entry is None:
            continue
        if entry.dtype not in _SAFETENSORS_FLOATS:
            not_float.setdefault(_dtype_name(entry.dtype), []).append(_quoted(key))
            continue
        variable = keras_variable(keras_model, node.name, kattr)
        needed = _torch_shape(tuple(variable.shape), layout)
        problem = _shape_problem(_quoted(key), entry.shape, needed, where)
        if problem is not None:
            problems.append(problem)
    problems += _not_float(not_float, where)
    if problems:
        raise SpecErrors(problems, where)
    state: dict[str, np.ndarray] = {}
    with open(path, "rb") as handle:
        for key in expected:
            entry = entries[key]
            kind = _SAFETENSORS_FLOATS[entry.dtype]
            handle.seek(start + entry.begin)
            raw = np.frombuffer(handle.read(entry.end - entry.begin), dtype=kind.storage)
            raw = raw.reshape(entry.shape)
            array = kind.widen(raw) if kind.widen is not None else raw
            if entry.dtype != "F32":
                converted.add(kind.name, kind.exact)
            state[key] = _widened(_quoted(key), array, kind.exact, where)
    return state


# ----------------------------------------------------------------------------------------------
# Keras .weights.h5 files.


#: The most datasets and links a Keras weights file may hold, and the most elements of one dataset.
_MAX_H5_LINKS = 1_000_000
_MAX_H5_ELEMENTS = 2**31


def _h5_datasets(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Every dataset of an HDF5 file (its path, shape and dtype), read without following any
    link out of the file: external links, soft links, virtual datasets and datasets stored in
    external files are refused, and so are datasets too large to be weights."""
    import h5py

    found: dict[str, tuple[tuple[int, ...], Any]] = {}
    problem: list[str] = []

    def visit(name: str, link: Any) -> Any:
        if len(found) + len(problem) > _MAX_H5_LINKS:
            problem.append(f"it holds more than {_MAX_H5_LINKS} objects")
        elif isinstance(link, h5py.ExternalLink):
            problem.append(
                f"'{name}' is an external link (to '{link.filename}'); links out of the file "
                "are not followed"
            )
        elif isinstance(link, h5py.SoftLink):
            problem.append(f"'{name}' is a soft link (to '{link.path}'); links are not followed")
        elif not isinstance(link, h5py.HardLink):
            problem.append(f"'{name}' is a link of an unknown kind")
        else:
            obj = handle[name]
            if isinstance(obj, h5py.Dataset):
                shape = obj.shape
                if obj.is_virtual:
                    problem.append(f"'{name}' is a virtual dataset; its data lies in other files")
                elif obj.external:
                    problem.append(f"'{name}' keeps its data in external files")
                elif shape is None or obj.dtype.kind not in "fiub":
                    problem.append(f"'{name}' is not an array of numbers ({obj.dtype})")
                elif math.prod(shape) > _MAX_H5_ELEMENTS:
                    problem.append(
                        f"'{name}' declares the shape {tuple(shape)}, more than "
                        f"{_MAX_H5_ELEMENTS} values"
                    )
                else:
                    found[name] = (tuple(shape), obj.dtype)
        return problem[0] if problem else None  # a value stops the walk

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems_links(visit)
    except Exception as exc:  # h5py raises several kinds for a file that is not HDF5
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _h5_problem(path, f"not a valid Keras weights file (HDF5): {first[:300]}") from None
    if problem:
        raise _h5_problem(
            path,
            f"cannot read this Keras weights file safely: {problem[0]}",
            "specgen reads the weights file that the spec's Keras model saves",
        )
    return found


def _h5_problem(path: Path, message: str, hint: str | None = None) -> SpecErrors:
    where = _weights_file(path)
    return SpecErrors([SpecError(message, hint=hint, source=where)], where)


def _h5_names(graph: ModelGraph, keras_model: Any) -> dict[str, str]:
    """``h5 dataset path -> node.attribute`` for the model's weights (used in messages)."""
    names: dict[str, str] = {}
    for node, _, kattr, _ in weight_map(graph):
        layer = keras_layer(keras_model, node.name)
        variable = keras_variable(keras_model, node.name, kattr)
        label = kattr if isinstance(kattr, str) else variable.name
        for i, candidate in enumerate(layer.weights):
            if candidate is variable:
                names[f"{node.name.replace('.', '/')}/vars/{i}"] = f"{node.name}.{label}"
    return names


def _check_h5(graph: ModelGraph, path: Path, keras_model: Any, converted: _Converted) -> None:
    """Check every dataset of ``path`` against what ``keras_model`` saves, before loading."""
    import tempfile

    where = _weights_file(path)
    given = _h5_datasets(path)
    with tempfile.TemporaryDirectory(prefix="specgen-") as tmp:
        reference = Path(tmp) / "model.weights.h5"
        keras_model.save_weights(str(reference))
        wanted = _h5_datasets(reference)
    names = _h5_names(graph, keras_model)

    def shown(dataset: str) -> str:
        return f"'{dataset}' ({names[dataset]})" if dataset in names else _quoted(dataset)

    problems = _name_problems(graph, set(wanted), set(given), where, "datasets", shown)
    not_float: dict[str, list[str]] = {}
    for dataset, (shape, _) in sorted(wanted.items()):
        if dataset not in given:
            continue
        have_shape, dtype = given[dataset]
        if dtype.kind != "f":
            not_float.setdefault(str(dtype), []).append(shown(dataset))
            continue
        problem = _shape_problem(shown(dataset), have_shape, shape, where)
        if problem is not None:
            problems.append(problem)
    problems += _not_float(not_float, where)
    if problems:
        raise SpecErrors(problems, where)
    import h5py

    with h5py.File(path, "r") as handle:
        for dataset in sorted(wanted):
            dtype = given[dataset][1]
            if dtype.itemsize != 4:
                exact = dtype.itemsize < 4
                _widened(shown(dataset), np.asarray(handle[dataset]), exact, where)
                converted.add(str(dtype), exact)


# ----------------------------------------------------------------------------------------------
# The command.


def _format_of(path: Path) -> str:
    if path.name.endswith(".safetensors"):
        return "torch"
    if path.name.endswith(".weights.h5"):
        return "keras"
    where = _weights_file(path)
    raise SpecErrors(
        [
            SpecError(
                "cannot tell the format of this file from its name",
                hint="use .safetensors for PyTorch weights and .weights.h5 for Keras weights",
                source=where,
            )
        ],
        where,
    )


def _check_paths(source: Path, target: Path) -> None:
    """A readable source file and a target that can be created: one clear error if not."""

    def fail(path: Path, message: str, hint: str | None = None) -> None:
        where = _weights_file(path)
        raise SpecErrors([SpecError(message, hint=hint, source=where)], where)

    if source.is_dir():
        fail(source, "cannot read the weights: this is a folder", "give the weights file")
    try:
        with open(source, "rb"):
            pass
    except OSError as exc:
        fail(source, f"cannot read the weights: {(exc.strerror or str(exc)).lower()}")
    folder = target.parent
    if not folder.exists():
        fail(
            target,
            f"cannot write here: the folder '{folder}' does not exist",
            "create the folder first, or choose another path",
        )
    if not folder.is_dir():
        fail(target, f"cannot write here: '{folder}' is not a folder")
    if target.is_dir() and not target.is_symlink():
        fail(target, "cannot write the weights: this is a folder", "give a file name")


@needs_extra("all", "specgen.convert.convert_file", check=("keras", "h5py", "safetensors"))
def convert_file(
    graph: ModelGraph, source: Path, target: Path, *, allow_large: bool = False
) -> str:
    """Convert ``source`` weights to ``target``'s format (chosen by the file names).

    Returns what was done, one line per conversion of dtype and the line naming the file written.
    A model too large for the memory available is refused unless ``allow_large``.
    """
    from .codegen.compiled import compile_module
    from .memory import check_fits

    src, dst = _format_of(source), _format_of(target)
    if src == dst:
        raise SpecErrors(
            [
                SpecError(
                    "both files have the same format; nothing to convert",
                    hint="convert .safetensors to .weights.h5, or .weights.h5 to .safetensors",
                )
            ]
        )
    _check_paths(source, target)
    check_fits(graph, batch=1, doing="convert-weights", allow_large=allow_large)
    converted = _Converted()
    if src == "torch":
        _read_header(source)  # a corrupt file fails before the model is built
        keras_model = compile_module(graph, "keras").build_model()
        state = _read_safetensors(graph, source, keras_model, converted)
        torch_state_to_keras(graph, state, keras_model, _weights_file(source))
        _atomic(target, ".weights.h5", lambda tmp: keras_model.save_weights(tmp))
        done = f"wrote {target} ({len(state)} tensors) for the Keras model"
    else:
        _h5_datasets(source)  # a corrupt file fails before the model is built
        keras_model = compile_module(graph, "keras").build_model()
        _check_h5(graph, source, keras_model, converted)
        try:
            keras_model.load_weights(str(source))
        except Exception as exc:  # checked above; anything left is still the file's problem
            where = _weights_file(source)
            raise SpecErrors(
                [SpecError(f"cannot load it into this spec's Keras model: {exc}", source=where)],
                where,
            ) from None
        from safetensors.numpy import save_file

        state = keras_to_torch_state(graph, keras_model)
        _atomic(target, ".safetensors", lambda tmp: save_file(state, tmp))
        done = f"wrote {target} ({len(state)} tensors) for the PyTorch model"
    return "\n".join(terminal_safe(line) for line in [*converted.lines(), done])


def _atomic(target: Path, suffix: str, write: Callable[[str], Any]) -> None:
    """Write through a temporary file beside ``target``, then rename it into place.

    The rename replaces ``target`` itself: a symbolic link there is replaced, never written
    through.
    """
    import tempfile

    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".specgen-", suffix=suffix, dir=folder)
    except OSError as exc:
        where = _weights_file(target)
        raise SpecErrors(
            [SpecError(f"cannot write here: {(exc.strerror or str(exc)).lower()}", source=where)],
            where,
        ) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it private; give it a new file's mode
        os.replace(tmp, target)
    except OSError as exc:
        where = _weights_file(target)
        raise SpecErrors(
            [
                SpecError(
                    f"cannot write the weights: {(exc.strerror or str(exc)).lower()}", source=where
                )
            ],
            where,
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
