"""Weights between the PyTorch and Keras models of one spec.

Both generated models hold every layer at the node's dotted name, so weights move node by node,
each in its framework's layout:

=====================  ===========================  ===============================
node kind              PyTorch                      Keras
=====================  ===========================  ===============================
conv2d                 weight (out, in/g, kh, kw)   kernel (kh, kw, in/g, out)
conv2d_transpose       weight (in, out, kh, kw)     kernel (kh, kw, out, in)
dense                  weight (out, in)             kernel (in, out)
batch_norm             weight, bias,                gamma, beta,
                       running_mean, running_var    moving_mean, moving_variance
layer_norm/group_norm  weight, bias                 gamma, beta
vector_quantizer       embedding.weight (K, D)      codebook (K, D)
=====================  ===========================  ===============================

No flatten-order permutation is needed in front of dense layers: both models flatten in the
spec's (H, W, C) order. Files are read without unpickling anything: PyTorch weights as
safetensors, Keras weights as ``.weights.h5`` (HDF5).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SpecError, SpecErrors
from .graph import ModelGraph, Node


def keras_layer(model: Any, name: str) -> Any:
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _pairs(node: Node) -> list[tuple[str, str, str]]:
    """(torch tensor name, keras attribute, layout) for one node's weights."""
    kind = node.kind
    layer = node.layer
    if kind in ("conv2d", "conv2d_transpose"):
        out = [("weight", "kernel", "conv")]
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
    return []


def _to_keras(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.transpose(array, (2, 3, 1, 0))
    if layout == "transpose":
        return np.transpose(array)
    return array


def _to_torch(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.transpose(array, (3, 2, 0, 1))
    if layout == "transpose":
        return np.transpose(array)
    return array


def weight_map(graph: ModelGraph) -> Iterator[tuple[Node, str, str, str]]:
    """(node, torch state-dict key, keras attribute, layout) for every weight of the model."""
    for node in graph.nodes:
        for tname, kattr, layout in _pairs(node):
            yield node, f"{node.name}.{tname}", kattr, layout


def torch_state_to_keras(graph: ModelGraph, state: dict[str, Any], keras_model: Any) -> None:
    """Assign a PyTorch ``state_dict`` (tensors or arrays) to a built Keras model."""
    expected = {key for _, key, _, _ in weight_map(graph)}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    problems = []
    for key in sorted(expected - given):
        problems.append(SpecError(f"the weights have no '{key}'"))
    for key in sorted(given - expected):
        problems.append(SpecError(f"the weights have '{key}', which this spec's model lacks"))
    for node, key, kattr, layout in weight_map(graph):
        if key not in state:
            continue
        value = state[key]
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        variable = getattr(keras_layer(keras_model, node.name), kattr)
        converted = _to_keras(array, layout)
        if tuple(converted.shape) != tuple(variable.shape):
            problems.append(
                SpecError(
                    f"'{key}' has shape {tuple(array.shape)}, but the spec's layer needs "
                    f"{tuple(_to_torch(np.zeros(variable.shape), layout).shape)}"
                )
            )
            continue
        variable.assign(converted.astype(np.float32))
    if problems:
        raise SpecErrors(problems)


def keras_to_torch_state(graph: ModelGraph, keras_model: Any) -> dict[str, np.ndarray]:
    """The PyTorch ``state_dict`` (as float32 arrays) of a built Keras model's weights."""
    out: dict[str, np.ndarray] = {}
    for node, key, kattr, layout in weight_map(graph):
        variable = getattr(keras_layer(keras_model, node.name), kattr)
        out[key] = np.ascontiguousarray(_to_torch(np.asarray(variable.numpy()), layout))
        if node.kind == "batch_norm" and kattr == "moving_variance":
            # PyTorch counts the batches seen; Keras does not keep that count
            out[f"{node.name}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
    return out


def convert_file(graph: ModelGraph, source: Path, target: Path) -> str:
    """Convert ``source`` weights to ``target``'s format (chosen by the file names)."""
    from .codegen.compiled import compile_module

    def kind(p: Path) -> str:
        if p.name.endswith(".safetensors"):
            return "torch"
        if p.name.endswith(".weights.h5"):
            return "keras"
        raise SpecErrors(
            [
                SpecError(
                    f"cannot tell the format of '{p}'",
                    hint="use .safetensors for PyTorch weights and .weights.h5 for Keras weights",
                )
            ]
        )

    src, dst = kind(source), kind(target)
    if src == dst:
        raise SpecErrors([SpecError("both files have the same format; nothing to convert")])
    if not source.is_file():
        raise SpecErrors([SpecError(f"cannot read weights file '{source}'")])
    keras_model = compile_module(graph, "keras").build_model()
    if src == "torch":
        from safetensors.numpy import load_file

        try:
            state = load_file(str(source))
        except Exception as exc:  # a malformed file is the user's to fix, not a bug
            raise SpecErrors(
                [SpecError(f"'{source}' is not a valid safetensors file: {exc}")]
            ) from None
        torch_state_to_keras(graph, state, keras_model)
        _atomic(target, ".weights.h5", lambda tmp: keras_model.save_weights(tmp))
        return f"wrote {target} ({len(state)} tensors) for the Keras model"
    try:
        keras_model.load_weights(str(source))
    except Exception as exc:
        raise SpecErrors(
            [SpecError(f"cannot load '{source}' into this spec's Keras model: {exc}")]
        ) from None
    from safetensors.numpy import save_file

    state = keras_to_torch_state(graph, keras_model)
    _atomic(target, ".safetensors", lambda tmp: save_file(state, tmp))
    return f"wrote {target} ({len(state)} tensors) for the PyTorch model"


def _atomic(target: Path, suffix: str, write) -> None:
    """Write through a temporary file beside ``target``, then rename it into place."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".specgen-", suffix=suffix, dir=target.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
