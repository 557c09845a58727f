"""Names in a spec never break generated code.

Every name below is tried as a model name, a group name, a loop name, a block name and a node
name. Each either gets a clean, located validation error, or gives PyTorch and Keras files that
compile, bind every identifier once, and (for a representative subset) build and run. The names:
the ones that used to break generated code, Python's keywords (lower-cased) and builtins, the
attributes of ``torch.nn.Module``, ``keras.layers.Layer`` and ``keras.Model``, specgen's reserved
words, and every identifier the generated files define themselves.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import os
import re
import subprocess
import sys
from functools import lru_cache

import pytest
import yaml

from specgen import framework_attributes as fa
from specgen.api import build_graph, load_spec
from specgen.codegen import keras_target, torch_target
from specgen.codegen.compiled import compile_module, render
from specgen.codegen.namespace import NameClash, Namespace
from specgen.codegen.pyview import FILE_NAMES, file_namespace, helper_names
from specgen.errors import SpecErrors
from specgen.names import RESERVED, check_identifier

#: The form of a spec name (before the word lists are consulted).
FORM = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
#: The form of a model name.
MODEL_FORM = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: Names that once broke generated code without an error; these must all work.
WORKING = (
    "none",
    "true",
    "false",
    "encoder",
    "decoder",
    "bottleneck",
    "padded_conv2d",
    "vae_sampling",
    "cropped_conv_transpose2d",
    "vector_quantizer",
    "gelu_tanh",
    "composite",
    "f",
    "F",
    "torch",
    "nn",
    "math",
    "keras",
    "ops",
    "INITIALIZERS",
    "INPUT_SHAPE",
    "build_model",
    "initialize",
    "x",
    "h",
)

#: Names that once broke generated code without an error; these must all be rejected.
REJECTED = (
    "COMPILE",
    "Compile",
    "named_parameters",
    "register_forward_hook",
    "requires_grad_",
    "share_memory",
    "get_parameter",
    "trainable_variables",
    "non_trainable_variables",
    "dtype_policy",
    "save_own_variables",
    "load_own_variables",
)


#: How the helper spec's own nodes are named: no name tried starts like this.
SPEC_PREFIX = "spec_node"


def helper_spec(name: str = "helpers", bottleneck: str = "variational") -> dict:
    """A spec whose generated files define every helper class (with a VAE or a VQ bottleneck)."""
    if bottleneck == "variational":
        code = {"kind": "variational", "units": 4}
    else:
        code = {"kind": "vector_quantized", "embedding_dim": 4, "num_embeddings": 8}
    same = {"padding": "same"}
    layers = [
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, **same},
        {"kind": "layer_norm"},
        {"kind": "gelu", "approximate": True},
        {"kind": "max_pool", "pool_size": 2, "strides": 1, **same},
        {"kind": "avg_pool", "pool_size": 2, "strides": 1, **same},
        {"kind": "attention", "norm_groups": 2},
        {"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3, "strides": 2, **same},
        {"kind": "conv2d", "filters": 2, "kernel_size": 3, **same},
    ]
    for i, layer in enumerate(layers):
        layer["name"] = f"{SPEC_PREFIX}{i}"
    return {
        "specgen": 1,
        "name": name,
        "input": {"shape": [8, 8, 2]},
        "encoder": layers[:6],
        "bottleneck": code,
        "decoder": layers[6:],
    }


def text(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False)


def graph_of(spec: dict):
    return build_graph(load_spec(text=text(spec), filename="names.yaml"))


def bound_names(tree: ast.AST, *, attributes: bool = True) -> set[str]:
    """Every identifier ``tree`` binds anywhere: imports, classes, functions, parameters,
    variables and (with ``attributes``) ``self.<attribute>`` assignments."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif attributes and isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
    return out


def top_level(tree: ast.Module) -> list[str]:
    """The names the module binds at its top level, in order, repeats included."""
    out = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            out.append(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            out += [(a.asname or a.name).split(".")[0] for a in stmt.names]
        elif isinstance(stmt, ast.Assign):
            out += [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out.append(stmt.target.id)
    return out


@lru_cache(maxsize=1)
def file_identifiers() -> frozenset[str]:
    """Every identifier the generated files of the helper specs bind, in both frameworks, but
    those named after the spec's nodes."""
    out: set[str] = set()
    for bottleneck in ("variational", "vector_quantized"):
        graph = graph_of(helper_spec(bottleneck=bottleneck))
        for target in ("torch", "keras"):
            out |= bound_names(ast.parse(render(graph, target, "names.yaml")))
    return frozenset(n for n in out if not n.startswith(SPEC_PREFIX))


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@lru_cache(maxsize=1)
def all_names() -> tuple[str, ...]:
    """Every name tried, in a fixed order."""
    words = set(WORKING) | set(REJECTED)
    words |= {w.lower() for w in (*keyword.kwlist, *keyword.softkwlist)}
    words |= {b for b in dir(builtins)} | {b.lower() for b in dir(builtins)}
    words |= fa.FRAMEWORK_ATTRIBUTES | RESERVED
    words |= file_identifiers() | {snake(n) for n in file_identifiers()}
    return tuple(sorted(w for w in words if FORM.fullmatch(w)))


def casefold_batches(names, size: int = 100) -> list[list[str]]:
    """``names`` split into batches of at most ``size`` (fewer than one spec's errors are
    reported) in which no two names differ only by letter case (one scope can't hold both)."""
    batches: list[list[str]] = []
    for name in names:
        for batch in batches:
            if len(batch) < size and all(name.casefold() != o.casefold() for o in batch):
                batch.append(name)
                break
        else:
            batches.append([name])
    return batches


# ---------------------------------------------------------------------------- the roles ----


def role_spec(role: str, names: list[str]) -> tuple[dict, dict[tuple, str]]:
    """A spec with the helper classes using every name of ``names`` in ``role`` ("group",
    "loop", "block" or "node"), and where each name sits: error path -> name."""
    spec = helper_spec()
    encoder = spec["encoder"]
    where: dict[tuple, str] = {}
    for i, name in enumerate(names):
        # the layers inside each group differ, so that every group gets a class of its own
        inner = [{"kind": "relu", "name": f"n{i}_r"}]
        index = len(encoder)
        if role == "group":
            encoder.append({"name": name, "layers": inner})
            where[("encoder", index, "name")] = name
        elif role == "loop":
            encoder.append({"name": name, "for": "v", "in": 1, "layers": inner})
            where[("encoder", index, "name")] = name
        elif role == "block":
            spec.setdefault("blocks", {})[name] = {"layers": inner}
            encoder.append({"block": name, "name": f"u{i}_b"})
            where[("blocks", name)] = name
        else:
            # read twice, so that the forward pass keeps it in a variable named after it
            encoder += [
                {"kind": "relu", "name": name},
                {"kind": "linear", "name": f"p{i}_a"},
                {"kind": "add", "name": f"p{i}_b", "inputs": [name, f"p{i}_a"]},
            ]
            where[("encoder", index, "name")] = name
    # a concatenation in the same forward pass as the variables named after nodes
    encoder += [
        {"kind": "linear", "name": "z0_a"},
        {"kind": "concat", "name": "z0_b", "inputs": ["z0_a", "z0_a"]},
    ]
    return spec, where


def rejected_names(exc: SpecErrors, where: dict[tuple, str]) -> set[str]:
    """The names ``exc`` rejects; every error must be located and be about one of them."""
    found: set[str] = set()
    for error in exc.errors:
        rendered = error.render(exc.source)
        assert re.match(r"names\.yaml:\d+:\d+: error: ", rendered), rendered
        name = where.get(tuple(error.path))
        if name is None:
            # a consequence of an earlier rejection (a use of a rejected block)
            assert any(repr(n) in error.message for n in found), rendered
            continue
        assert name in error.message, rendered
        found.add(name)
    return found


def functions(tree: ast.Module):
    """The module's functions and its classes' methods."""
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            yield stmt
        elif isinstance(stmt, ast.ClassDef):
            yield from (s for s in stmt.body if isinstance(s, ast.FunctionDef))


def check_generated(graph, *, locals_too: bool = True) -> None:
    """Both files of ``graph`` compile and bind each top-level name once, and (``locals_too``)
    no function binds a name the module binds, which would hide it."""
    for target in ("torch", "keras"):
        tree = ast.parse(render(graph, target, "names.yaml"))
        compile(tree, f"{target}_model.py", "exec")
        names = top_level(tree)
        repeated = sorted({n for n in names if names.count(n) > 1})
        assert not repeated, f"{target}: bound more than once at the top level: {repeated}"
        if not locals_too:
            continue
        for function in functions(tree):
            hidden = bound_names(function, attributes=False) - {function.name}
            assert not hidden & set(names), (target, function.name, hidden & set(names))


def expected_rejections(names) -> set[str]:
    """What must be rejected, whatever the implementation: keywords, builtins, and framework
    attributes and specgen's reserved words in any letter case."""
    reserved = {w.casefold() for w in fa.FRAMEWORK_ATTRIBUTES | RESERVED}
    python = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
    return {n for n in names if n in python or n.casefold() in reserved}


@pytest.mark.parametrize("role", ["group", "loop", "block", "node"])
def test_every_name_in_every_role_is_rejected_or_generates_working_code(role):
    names = all_names()
    rejected: set[str] = set()
    for batch in casefold_batches(names):
        spec, where = role_spec(role, batch)
        try:
            graph_of(spec)
        except SpecErrors as exc:
            rejected |= rejected_names(exc, where)
    assert rejected == {n for n in names if check_identifier(n)}
    assert expected_rejections(names) <= rejected
    assert set(REJECTED) <= rejected
    assert not set(WORKING) & rejected
    for batch in casefold_batches(n for n in names if n not in rejected):
        spec, _ = role_spec(role, batch)
        check_generated(graph_of(spec))


def test_every_name_as_a_model_name_is_rejected_or_generates_working_code():
    for name in all_names():
        spec = helper_spec(name)
        try:
            graph = graph_of(spec)
        except SpecErrors as exc:
            assert not MODEL_FORM.fullmatch(name), exc.render()
            assert "invalid model name" in exc.render()
            continue
        assert MODEL_FORM.fullmatch(name)
        check_generated(graph, locals_too=False)  # a model name names one class


# ----------------------------------------------------------------------------- building ----


@pytest.mark.frameworks
@pytest.mark.parametrize("role", ["group", "loop", "block", "node"])
def test_working_names_build_and_run(role):
    import numpy as np

    import keras
    import torch

    working = [n for n in WORKING if n != "F"]  # 'f' and 'F' can't share a scope
    spec, _ = role_spec(role, working)
    graph = graph_of(spec)
    model = compile_module(graph, "torch").build_model()
    assert type(model).__name__ != "OptimizedModule"  # COMPILE is still False
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 2, 8, 8))
    assert tuple(out[0].shape) == (2, 2, 8, 8)
    kmodel = compile_module(graph, "keras").build_model()
    kout = kmodel(np.random.rand(2, 8, 8, 2).astype("float32"))
    assert tuple(kout[0].shape) == (2, 8, 8, 2)
    # attribute paths are node names, in both frameworks
    if role == "node":
        for name in working:
            assert isinstance(getattr(model.encoder, name), torch.nn.ReLU)
            assert isinstance(getattr(kmodel.encoder, name), keras.layers.ReLU)
    elif role in ("group", "block"):
        attrs = working if role == "group" else [f"u{i}_b" for i in range(len(working))]
        for attr in attrs:
            assert isinstance(getattr(model.encoder, attr), torch.nn.Module)


@pytest.mark.frameworks
@pytest.mark.parametrize("bottleneck", ["variational", "vector_quantized"])
def test_working_model_names_build_and_run(bottleneck):
    import numpy as np

    import torch

    for name in (n for n in WORKING if MODEL_FORM.fullmatch(n)):
        graph = graph_of(helper_spec(name, bottleneck))
        torch_module = compile_module(graph, "torch")
        model = torch_module.build_model().eval()
        with torch.no_grad():
            out = model(torch.rand(2, 2, 8, 8))
        assert tuple(out[1 if bottleneck == "vector_quantized" else 0].shape) == (2, 2, 8, 8)
        keras_module = compile_module(graph, "keras")
        kmodel = keras_module.build_model()
        kout = kmodel(np.random.rand(2, 8, 8, 2).astype("float32"))
        assert tuple(kout[1 if bottleneck == "vector_quantized" else 0].shape) == (2, 8, 8, 2)
        assert torch_module.COMPILE is False
        assert type(model) is not torch_module.Encoder
        assert type(kmodel) is not keras_module.Encoder


# --------------------------------------------------------------------- the word lists ----


def public_attributes(cls, instance) -> set[str]:
    return {n for n in set(dir(cls)) | set(dir(instance)) if not n.startswith("_")}


FRAMEWORK_PROBE = """
import json, torch, keras
class Model(keras.Model):
    def call(self, x):
        return x
class Layer(keras.layers.Layer):
    def call(self, x):
        return x
model, layer = Model(), Layer()
model(keras.ops.zeros((1, 2)))
layer(keras.ops.zeros((1, 2)))
def public(cls, instance):
    return sorted(n for n in set(dir(cls)) | set(dir(instance)) if not n.startswith("_"))
print(json.dumps({
    "torch.nn.Module": public(torch.nn.Module, torch.nn.Module()),
    "keras.layers.Layer": public(keras.layers.Layer, layer),
    "keras.Model": public(keras.Model, model),
}))
"""


def uncovered(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        owner: sorted(set(names) - fa.FRAMEWORK_ATTRIBUTES)
        for owner, names in found.items()
        if set(names) - fa.FRAMEWORK_ATTRIBUTES
    }


@pytest.mark.frameworks
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_framework_attribute_lists_cover_the_installed_frameworks(backend):
    """specgen/framework_attributes.py lists every public attribute of the framework classes
    (and of their instances) that generated modules derive from, under Keras' TensorFlow and
    PyTorch backends; a new framework version that adds one makes this fail, naming it."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", FRAMEWORK_PROBE], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr:
        pytest.skip(f"Keras' {backend} backend is not installed")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(found["torch.nn.Module"]) > 40 and len(found["keras.Model"]) > 60
    assert not uncovered(found), (
        "add these to specgen/framework_attributes.py (and docs/spec-language.md):"
        f" {uncovered(found)}"
    )


def test_framework_attributes_are_described_by_their_owner():
    assert fa.framework_attribute("named_parameters") == (
        "named_parameters",
        "torch.nn.Module method",
    )
    assert fa.framework_attribute("Trainable_Variables") == (
        "trainable_variables",
        "keras.layers.Layer attribute",
    )
    assert fa.framework_attribute("fit") == ("fit", "keras.Model method")
    assert fa.framework_attribute("conv1") is None


def test_file_names_cover_every_top_level_name_of_the_generated_files():
    """pyview.FILE_NAMES plus the helpers are everything a generated file binds at its top
    level besides the classes named after the spec."""
    for bottleneck in ("variational", "vector_quantized"):
        graph = graph_of(helper_spec("helpers", bottleneck))
        for target in ("torch", "keras"):
            tree = ast.parse(render(graph, target, "names.yaml"))
            names = set(top_level(tree)) - {"Helpers"}
            assert names <= FILE_NAMES | helper_names(), names - FILE_NAMES - helper_names()


def test_helper_names_are_the_helper_templates():
    assert set(torch_target.HELPERS) | set(keras_target.HELPERS) == helper_names()
    for target, helpers in (("torch", torch_target.HELPERS), ("keras", keras_target.HELPERS)):
        assert {n for n in helper_names() if (n in helpers)} == set(helpers), target


def test_class_names_are_alike_in_both_frameworks():
    spec, _ = role_spec("group", ["gelu_tanh", "padded_conv2d", "none"])
    graph = graph_of(spec)
    classes = {
        target: [
            c.name
            for c in ast.parse(render(graph, target, "x")).body
            if isinstance(c, ast.ClassDef)
        ]
        for target in ("torch", "keras")
    }
    named = {t: [c for c in cs if c.endswith("Block")] for t, cs in classes.items()}
    assert named["torch"] == named["keras"] == ["GeluTanhBlock", "PaddedConv2dBlock", "NoneBlock"]


# --------------------------------------------------------------------- the namespace ----


def test_namespace_hands_out_free_names_deterministically():
    module = file_namespace()
    assert module.fresh("None", suffix="Block") == "NoneBlock"
    assert module.fresh("None", suffix="Block") == "NoneBlock2"
    assert module.fresh("COMPILE", suffix="Block") == "COMPILEBlock"
    assert module.fresh("Encoder", suffix="Model") == "EncoderModel"
    assert module.fresh("Res") == "Res"
    assert module.fresh("Res") == "Res2"
    local = module.child(["x", "h"])
    assert local.fresh("torch", sep="_") == "torch_2"
    assert local.fresh("x", sep="_") == "x_2"
    assert local.fresh("0conv", sep="_") == "t0conv"
    assert local.fresh("Res", sep="_") == "Res_2"  # a class of the module
    assert local.fresh("level.conv", sep="_") == "level_conv"
    attributes = Namespace(fa.FRAMEWORK_ATTRIBUTES)
    assert attributes.claim("conv1") == "conv1"
    with pytest.raises(NameClash):
        attributes.claim("conv1")
    with pytest.raises(NameClash):
        attributes.claim("named_parameters")
