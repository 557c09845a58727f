"""The primitives ``prelu``, ``instance_norm``, ``pad``, explicit convolution padding, transposed
convolution ``padding``/``output_padding``/``constant_kernel``, ``multiply``, ``scale`` and the
``order`` of ``flatten`` and ``reshape``.

For each: a table of shapes and counts, then a tiny model that uses it, built in both frameworks,
whose counts match the graph's, whose layer computes what the framework's own module computes,
and whose PyTorch and Keras models compute the same function (``specgen verify``, inference and
training mode).
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from specgen.api import build_graph, load_spec
from specgen.graph import ModelGraph
from specgen.layers import AnyLayer, ShapeError

ADAPTER = TypeAdapter(AnyLayer)


def make(config: dict):
    return ADAPTER.validate_python(config)


# ----------------------------------------------------------------------------------------------
# Shape and count tables: (config, input shapes, output shapes, (trainable, non_trainable), macs)

# fmt: off
CASES = {
    "prelu": [
        ({"kind": "prelu"}, [(8, 8, 16)], [(8, 8, 16)], (16, 0), 0),
        ({"kind": "prelu", "shared": True}, [(8, 8, 16)], [(8, 8, 16)], (1, 0), 0),
        ({"kind": "prelu", "init": 0.0}, [(10,)], [(10,)], (10, 0), 0),
        ({"kind": "prelu", "shared": True}, [(4, 5)], [(4, 5)], (1, 0), 0),
    ],
    "instance_norm": [
        ({"kind": "instance_norm"}, [(8, 8, 16)], [(8, 8, 16)], (0, 0), 0),
        ({"kind": "instance_norm", "affine": True}, [(8, 8, 16)], [(8, 8, 16)], (32, 0), 0),
        ({"kind": "instance_norm", "epsilon": 1e-3}, [(1, 2, 3)], [(1, 2, 3)], (0, 0), 0),
    ],
    "pad": [
        ({"kind": "pad", "padding": 1}, [(8, 8, 3)], [(10, 10, 3)], (0, 0), 0),
        ({"kind": "pad", "padding": [1, 2]}, [(8, 8, 3)], [(10, 12, 3)], (0, 0), 0),
        ({"kind": "pad", "padding": [[0, 1], [2, 3]], "mode": "reflect"}, [(4, 4, 1)],
         [(5, 9, 1)], (0, 0), 0),
        ({"kind": "pad", "padding": 5, "mode": "replicate"}, [(1, 1, 2)], [(11, 11, 2)], (0, 0), 0),
    ],
    "conv2d_transpose": [
        # PyTorch's ConvTranspose2d: out = (H - 1) * s - 2 * padding + k + output_padding
        ({"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3, "strides": 2, "padding": 1,
          "output_padding": 1}, [(8, 8, 2)], [(16, 16, 4)], (76, 0), 64 * 9 * 2 * 4),
        ({"kind": "conv2d_transpose", "filters": 4, "kernel_size": 4, "strides": 2, "padding": 1},
         [(8, 8, 2)], [(16, 16, 4)], (132, 0), 64 * 16 * 2 * 4),
        ({"kind": "conv2d_transpose", "filters": 1, "kernel_size": 3, "strides": 2, "padding": 0,
          "output_padding": 1}, [(4, 4, 1)], [(10, 10, 1)], (10, 0), 16 * 9),
        # a constant kernel is no parameter, but its multiply-accumulates are done all the same
        ({"kind": "conv2d_transpose", "filters": 4, "kernel_size": 2, "strides": 2,
          "use_bias": False, "constant_kernel": 1.0}, [(8, 8, 4)], [(16, 16, 4)], (0, 0),
         64 * 4 * 4 * 4),
    ],
    "conv2d": [
        # PyTorch's Conv2d(k=3, stride=2, padding=1): out = floor((H + 2 - 3) / 2) + 1
        ({"kind": "conv2d", "filters": 8, "kernel_size": 3, "strides": 2, "padding": 1},
         [(16, 16, 3)], [(8, 8, 8)], (224, 0), 64 * 27 * 8),
        ({"kind": "conv2d", "filters": 8, "kernel_size": 3, "strides": 2, "padding": 1},
         [(15, 15, 3)], [(8, 8, 8)], (224, 0), 64 * 27 * 8),
        ({"kind": "conv2d", "filters": 2, "kernel_size": 3, "padding": [[0, 1], [2, 0]],
          "padding_mode": "reflect"}, [(5, 5, 1)], [(4, 5, 2)], (20, 0), 20 * 9 * 2),
        ({"kind": "conv2d", "filters": 2, "kernel_size": 5, "padding": [2, 0],
          "padding_mode": "replicate"}, [(5, 5, 1)], [(5, 1, 2)], (52, 0), 5 * 25 * 2),
        ({"kind": "conv2d", "filters": 2, "kernel_size": 3, "padding": 0}, [(5, 5, 1)],
         [(3, 3, 2)], (20, 0), 9 * 9 * 2),
        ({"kind": "conv2d", "filters": 2, "kernel_size": 4, "padding_mode": "reflect"},
         [(7, 7, 1)], [(7, 7, 2)], (34, 0), 49 * 16 * 2),
    ],
    "flatten": [
        ({"kind": "flatten", "order": "channels_first"}, [(8, 8, 4)], [(256,)], (0, 0), 0),
        ({"kind": "flatten", "order": "channels_first"}, [(10,)], [(10,)], (0, 0), 0),
    ],
    "reshape": [
        ({"kind": "reshape", "target_shape": [4, 4, 2], "order": "channels_first"}, [(32,)],
         [(4, 4, 2)], (0, 0), 0),
        ({"kind": "reshape", "target_shape": [2, 8, 2], "order": "channels_first"}, [(4, 4, 2)],
         [(2, 8, 2)], (0, 0), 0),
    ],
}
# fmt: on

SHAPE_ERRORS = {
    "prelu": [
        ({"kind": "prelu"}, [(4, 5)]),
        ({"kind": "prelu", "shared": True}, [()]),
    ],
    "instance_norm": [
        ({"kind": "instance_norm"}, [(16,)]),
        ({"kind": "instance_norm", "affine": True}, [(1, 1, 8)]),
    ],
    "pad": [
        ({"kind": "pad", "padding": 1}, [(8,)]),
        ({"kind": "pad", "padding": [[0, 4], [0, 0]], "mode": "reflect"}, [(4, 8, 1)]),
        ({"kind": "pad", "padding": [0, 2], "mode": "reflect"}, [(4, 2, 1)]),
    ],
    "conv2d_transpose": [
        ({"kind": "conv2d_transpose", "filters": 1, "kernel_size": 3, "padding": 2}, [(1, 1, 1)]),
    ],
    "conv2d": [
        (
            {
                "kind": "conv2d",
                "filters": 1,
                "kernel_size": 3,
                "padding": 1,
                "padding_mode": "reflect",
            },
            [(1, 4, 1)],
        ),
        (
            {"kind": "conv2d", "filters": 1, "kernel_size": 5, "padding_mode": "reflect"},
            [(2, 8, 1)],
        ),
        ({"kind": "conv2d", "filters": 1, "kernel_size": 7, "padding": 1}, [(4, 4, 1)]),
    ],
    "flatten": [({"kind": "flatten", "order": "channels_first"}, [(4, 4)])],
    "reshape": [
        ({"kind": "reshape", "target_shape": [4, 4, 3], "order": "channels_first"}, [(32,)]),
    ],
}

INVALID = {
    "prelu": [
        {"kind": "prelu", "shared": 1},
        {"kind": "prelu", "init": 1e39},
        {"kind": "prelu", "init": float("nan")},
        {"kind": "prelu", "init": "0.25"},
    ],
    "instance_norm": [
        {"kind": "instance_norm", "affine": 1},
        {"kind": "instance_norm", "epsilon": 0},
        {"kind": "instance_norm", "momentum": 0.1},
        {"kind": "instance_norm", "center": True},
    ],
    "pad": [
        {"kind": "pad"},
        {"kind": "pad", "padding": -1},
        {"kind": "pad", "padding": [[1, 2, 3], [0, 0]]},
        {"kind": "pad", "padding": 1, "mode": "circular"},
        {"kind": "pad", "padding": 4097},
    ],
    "conv2d_transpose": [
        {"kind": "conv2d_transpose", "filters": 1, "kernel_size": 3, "output_padding": 1},
        {
            "kind": "conv2d_transpose",
            "filters": 1,
            "kernel_size": 3,
            "strides": 2,
            "padding": 1,
            "output_padding": 2,
        },
        {"kind": "conv2d_transpose", "filters": 1, "kernel_size": 3, "padding": [1, 1, 1]},
        {"kind": "conv2d_transpose", "filters": 1, "kernel_size": 3, "padding": -1},
        # a constant kernel has no bias and no groups
        {"kind": "conv2d_transpose", "filters": 1, "kernel_size": 2, "constant_kernel": 1.0},
        {
            "kind": "conv2d_transpose",
            "filters": 2,
            "kernel_size": 2,
            "groups": 2,
            "use_bias": False,
            "constant_kernel": 1.0,
        },
        {
            "kind": "conv2d_transpose",
            "filters": 1,
            "kernel_size": 2,
            "use_bias": False,
            "constant_kernel": "ones",
        },
    ],
    "conv2d": [
        {"kind": "conv2d", "filters": 1, "kernel_size": 3, "padding": -1},
        {"kind": "conv2d", "filters": 1, "kernel_size": 3, "padding": "full"},
        {"kind": "conv2d", "filters": 1, "kernel_size": 3, "padding": True},
        {
            "kind": "conv2d",
            "filters": 1,
            "kernel_size": 3,
            "padding_mode": "reflect",
            "padding": "valid",
        },
        {"kind": "conv2d", "filters": 1, "kernel_size": 3, "padding_mode": "circular"},
    ],
    "flatten": [{"kind": "flatten", "order": "nchw"}, {"kind": "flatten", "order": True}],
    "reshape": [{"kind": "reshape", "target_shape": [8], "order": "channels_middle"}],
}


def _table(tables: dict) -> list:
    return [
        pytest.param(*case, id=f"{kind}-{i}")
        for kind, rows in tables.items()
        for i, case in enumerate(rows)
    ]


@pytest.mark.parametrize(("config", "inputs", "outputs", "params", "macs"), _table(CASES))
def test_shape_rule(config, inputs, outputs, params, macs):
    layer = make(config)
    assert layer.output_shapes(inputs) == outputs
    assert layer.param_counts(inputs) == params
    assert layer.macs(inputs, outputs) == macs


@pytest.mark.parametrize(("config", "inputs"), _table(SHAPE_ERRORS))
def test_shape_error(config, inputs):
    with pytest.raises(ShapeError):
        make(config).output_shapes(inputs)


@pytest.mark.parametrize("config", _table({k: [(c,) for c in v] for k, v in INVALID.items()}))
def test_invalid_config(config):
    with pytest.raises(ValidationError):
        make(config)


# ----------------------------------------------------------------------------------------------
# Tiny models in both frameworks

HEAD = """\
specgen: 1
name: {name}
input:
  shape: [16, 16, 3]
"""

SPECS = {
    "prelu": """\
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
  - {kind: prelu, name: per_channel}
  - {kind: conv2d, filters: 4, kernel_size: 3}
  - {kind: prelu, name: shared, shared: true, init: 0.1}
bottleneck: {kind: dense, units: 8}
decoder:
  - {kind: prelu, name: negative, init: -0.5}
  - {kind: conv2d_transpose, filters: 3, kernel_size: 3, strides: 2}
""",
    "instance_norm": """\
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
  - {kind: instance_norm, name: plain}
  - {kind: relu}
  - {kind: conv2d, filters: 6, kernel_size: 3, strides: 2}
  - {kind: instance_norm, name: affine, affine: true, epsilon: 0.001}
decoder:
  - {kind: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2}
  - {kind: instance_norm, affine: true}
  - {kind: conv2d_transpose, filters: 3, kernel_size: 3, strides: 2}
""",
    "conv2d_transpose": """\
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: 1}
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: 1}
bottleneck: {kind: dense, units: 8}
decoder:
  - kind: conv2d_transpose
    name: classic
    filters: 4
    kernel_size: 3
    strides: 2
    padding: 1
    output_padding: 1
  - {kind: conv2d_transpose, name: even, filters: 4, kernel_size: 4, strides: 2, padding: 1}
  - kind: conv2d_transpose
    name: grown
    filters: 4
    kernel_size: 3
    strides: 2
    padding: 0
    output_padding: 1
  - {kind: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: 0}
""",
    "pad": """\
encoder:
  - {kind: conv2d, name: symmetric, filters: 4, kernel_size: 3, strides: 2, padding: 1}
  - {kind: conv2d, name: reflect, filters: 4, kernel_size: 3, padding: 1, padding_mode: reflect}
  - {kind: pad, name: pad_reflect, padding: [[1, 2], [0, 3]], mode: reflect}
  - kind: conv2d
    name: per_side
    filters: 4
    kernel_size: 3
    strides: 2
    padding: [[0, 1], [1, 0]]
    padding_mode: replicate
  - {kind: pad, name: pad_replicate, padding: 1, mode: replicate}
  - {kind: conv2d, name: same_reflect, filters: 4, kernel_size: 4, padding_mode: reflect}
  - {kind: pad, name: pad_zeros, padding: [[1, 0], [0, 1]]}
bottleneck: {kind: dense, units: 8}
decoder:
  - {kind: conv2d_transpose, filters: 3, kernel_size: 2, strides: 2}
""",
    "constant_kernel": """\
encoder:
  - {kind: conv2d, filters: 4, kernel_size: 3, strides: 2}
decoder:
  - kind: conv2d_transpose
    name: ones
    filters: 4
    kernel_size: 2
    strides: 2
    use_bias: false
    constant_kernel: 1.0
  - kind: conv2d_transpose
    name: overlapping
    filters: 3
    kernel_size: 3
    strides: 2
    use_bias: false
    constant_kernel: 0.5
  - kind: conv2d_transpose
    name: cropped
    filters: 3
    kernel_size: 3
    padding: 1
    use_bias: false
    constant_kernel: -0.25
  - {kind: conv2d, filters: 3, kernel_size: 3, strides: 2}
""",
    "flatten_order": """\
encoder:
  - {kind: conv2d, name: conv, filters: 4, kernel_size: 3, strides: 2}
  - {kind: flatten, name: flat, order: channels_first}
  - {kind: reshape, name: regrid, target_shape: [4, 16, 4], order: channels_first}
  - {kind: flatten, name: flat_last}
  - {kind: dense, name: code, units: 8}
decoder:
  - {kind: dense, name: expand, units: 64}
  - {kind: reshape, name: image, target_shape: [4, 4, 4], order: channels_first}
  - {kind: conv2d_transpose, name: up, filters: 3, kernel_size: 3, strides: 4}
""",
}


def graph_of(kind: str) -> ModelGraph:
    text = HEAD.format(name=f"tiny_{kind}") + SPECS[kind]
    return build_graph(load_spec(text=text, filename=f"{kind}.yaml"))


def _torch_input(graph: ModelGraph, seed: int = 0):
    import torch

    h, w, c = graph.input_shape
    return torch.from_numpy(np.random.default_rng(seed).random((2, c, h, w)).astype(np.float32))


def _models(graph: ModelGraph):
    from specgen.codegen.compiled import compile_module

    return (
        compile_module(graph, "torch").build_model(),
        compile_module(graph, "keras").build_model(),
    )


def _node_input(tmodel, graph: ModelGraph, name: str):
    """The input tensor of node ``name`` in the PyTorch model (captured with a hook)."""
    import torch

    seen = {}

    def keep(module, args, output) -> None:
        seen["x"] = args[0]

    handle = tmodel.get_submodule(name).register_forward_hook(keep)
    try:
        tmodel.eval()
        with torch.no_grad():
            tmodel(_torch_input(graph))
    finally:
        handle.remove()
    return seen["x"]


@pytest.mark.frameworks
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_counts_and_equivalence(kind):
    from specgen.verify import verify

    graph = graph_of(kind)
    trainable, frozen, _ = graph.counts()
    tmodel, kmodel = _models(graph)
    assert sum(p.numel() for p in tmodel.parameters()) == trainable
    stats = sum(b.numel() for n, b in tmodel.named_buffers() if "num_batches_tracked" not in n)
    assert stats == frozen
    assert sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights) == trainable
    assert sum(int(np.prod(w.shape)) for w in kmodel.non_trainable_weights) == frozen
    report = verify(graph)
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}


# ----------------------------------------------------------------------------------------------
# Each primitive against the framework's own module


@pytest.mark.frameworks
def test_prelu_is_the_frameworks_prelu():
    import torch
    from torch import nn

    graph = graph_of("prelu")
    tmodel, kmodel = _models(graph)
    per_channel = tmodel.get_submodule("encoder.per_channel")
    assert isinstance(per_channel, nn.PReLU)
    assert per_channel.weight.shape == (4,)
    assert torch.all(per_channel.weight == 0.25)
    shared = tmodel.get_submodule("encoder.shared")
    assert shared.weight.shape == (1,) and shared.weight.item() == pytest.approx(0.1)
    # Keras starts from the same slopes, one per channel or one in all
    k_per_channel = kmodel.encoder.per_channel.alpha.numpy()
    assert k_per_channel.shape == (1, 1, 4) and np.all(k_per_channel == 0.25)
    assert kmodel.encoder.shared.alpha.numpy().shape == (1, 1, 1)
    assert np.allclose(kmodel.decoder.negative.alpha.numpy(), -0.5)
    # the generated layer is nn.PReLU(num_parameters=C)
    reference = nn.PReLU(num_parameters=4)
    reference.load_state_dict(per_channel.state_dict())
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(per_channel(x), reference(x))


@pytest.mark.frameworks
def test_instance_norm_is_the_frameworks_instance_norm():
    import torch
    from torch import nn

    graph = graph_of("instance_norm")
    tmodel, kmodel = _models(graph)
    plain = tmodel.get_submodule("encoder.plain")
    assert isinstance(plain, nn.InstanceNorm2d)
    assert not plain.affine and not plain.track_running_stats
    assert list(plain.parameters()) == [] and kmodel.encoder.plain.weights == []
    affine = tmodel.get_submodule("encoder.affine")
    assert affine.affine and affine.eps == 1e-3
    assert kmodel.encoder.affine.gamma.shape == (6,) and kmodel.encoder.affine.beta.shape == (6,)
    with torch.no_grad():
        affine.weight.uniform_(0.5, 1.5)
        affine.bias.uniform_(-1.0, 1.0)
    reference = nn.InstanceNorm2d(6, eps=1e-3, affine=True)
    reference.load_state_dict(affine.state_dict())
    x = _node_input(tmodel, graph, "encoder.affine")
    for training in (False, True):
        tmodel.train(training)
        reference.train(training)
        with torch.no_grad():
            assert torch.equal(affine(x), reference(x))


@pytest.mark.frameworks
def test_explicit_conv_padding_is_pytorchs():
    import torch
    from torch import nn

    graph = graph_of("pad")
    tmodel, _ = _models(graph)
    # PyTorch-style symmetric padding is the plain module, with no padding op of its own
    for name, mode in (("encoder.symmetric", "zeros"), ("encoder.reflect", "reflect")):
        layer = tmodel.get_submodule(name)
        assert type(layer) is nn.Conv2d and layer.padding == (1, 1)
        assert layer.padding_mode == mode
    layer = tmodel.get_submodule("encoder.reflect")
    reference = nn.Conv2d(4, 4, kernel_size=3, padding=1, padding_mode="reflect")
    reference.load_state_dict(layer.state_dict())
    x = _node_input(tmodel, graph, "encoder.reflect")
    with torch.no_grad():
        assert torch.equal(layer(x), reference(x))
    # per-side padding pads first, in the same mode, then convolves without padding
    layer = tmodel.get_submodule("encoder.per_side")
    x = _node_input(tmodel, graph, "encoder.per_side")
    with torch.no_grad():
        padded = nn.functional.pad(x, (1, 0, 0, 1), mode="replicate")
        assert torch.equal(layer(x), nn.functional.conv2d(padded, layer.weight, layer.bias, 2))


@pytest.mark.frameworks
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])
def test_keras_padding_is_pytorchs(mode):
    """The Keras padding op fills exactly as ``torch.nn.functional.pad`` does: 'reflect'
    mirrors without repeating the edge, 'replicate' repeats it."""
    import keras
    import torch
    from specgen.codegen.compiled import compile_module

    module = compile_module(graph_of("pad"), "keras")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    sides = ((2, 4), (3, 1))
    got = keras.ops.convert_to_numpy(module.Pad2D(sides, mode)(x))
    torch_mode = "constant" if mode == "zeros" else mode
    (t, b), (left, r) = sides
    want = torch.nn.functional.pad(
        torch.from_numpy(x).permute(0, 3, 1, 2), (left, r, t, b), mode=torch_mode
    )
    assert np.array_equal(got, want.permute(0, 2, 3, 1).numpy())


@pytest.mark.frameworks
def test_transposed_padding_is_pytorchs():
    from torch import nn

    graph = graph_of("conv2d_transpose")
    tmodel, _ = _models(graph)
    classic = tmodel.get_submodule("decoder.classic")
    assert type(classic) is nn.ConvTranspose2d
    assert (classic.padding, classic.output_padding) == ((1, 1), (1, 1))
    assert graph.node("decoder.classic").shape == (8, 8, 4)
    assert graph.node("decoder.grown").shape == (34, 34, 4)


@pytest.mark.frameworks
def test_constant_kernel_is_tensorflows_constant_transposed_conv():
    """``constant_kernel: 1.0`` with kernel = stride = 2 is TensorFlow's ``conv2d_transpose`` of a
    ``tf.ones`` kernel: every output channel the sum of the input channels, over each 2x2 block.
    The kernel is no weight of either model, and the other ones compute the same in both."""
    import tensorflow as tf

    import torch

    graph = graph_of("constant_kernel")
    tmodel, kmodel = _models(graph)
    ones = tmodel.get_submodule("decoder.ones")
    assert list(ones.parameters()) == [] and list(ones.buffers()) == []
    assert (graph.node("decoder.ones").trainable, graph.node("decoder.ones").non_trainable) == (
        0,
        0,
    )
    x = _node_input(tmodel, graph, "decoder.ones")
    with torch.no_grad():
        got = ones(x)
    sums = x.sum(1, keepdim=True).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(got, sums.expand(-1, 4, -1, -1), atol=1e-6)
    nhwc = x.permute(0, 2, 3, 1).numpy()
    layer = kmodel.decoder.ones
    original = tf.nn.conv2d_transpose(
        nhwc, tf.ones((2, 2, 4, 4)), (2, 16, 16, 4), strides=2, padding="SAME"
    )
    assert np.allclose(layer(nhwc).numpy(), original.numpy(), atol=1e-6)
    assert layer.weights == []


@pytest.mark.frameworks
def test_channels_first_order_is_pytorchs_view():
    """A channels-first flatten is ``x.view(B, -1)`` of the NCHW tensor and a channels-first
    reshape ``view(B, C, H, W)``, as PyTorch code writes them; a channels-last flatten reads
    the NHWC tensor. (The Keras model computing the same is ``specgen verify``'s part.)"""
    import torch

    graph = graph_of("flatten_order")
    assert graph.node("encoder.regrid").shape == (4, 16, 4)
    tmodel, _ = _models(graph)
    tmodel.eval()
    seen = {}
    for name in ("encoder.conv", "decoder.expand", "decoder.up"):
        tmodel.get_submodule(name).register_forward_hook(
            lambda module, args, out, name=name: seen.update({name: (args[0], out)})
        )
    with torch.no_grad():
        x = _torch_input(graph)
        tmodel(x)
        conv = seen["encoder.conv"][1]
        regrid = conv.reshape(2, -1).view(2, 4, 4, 16)  # (C, H, W) = (4, 4, 16)
        flat_last = regrid.permute(0, 2, 3, 1).reshape(2, -1)
        assert torch.equal(tmodel.encode(x), tmodel.get_submodule("encoder.code")(flat_last))
        expand = seen["decoder.expand"][1]
        assert torch.equal(seen["decoder.up"][0], expand.view(2, 4, 4, 4))


def generated_files_lint_clean(graph: ModelGraph, tmp_path) -> None:
    """The PyTorch and Keras files of ``graph`` (with every helper they pull in) pass the pinned
    linter and formatter with their default settings, as a user's project would run them."""
    import subprocess
    import sys

    from specgen.codegen.compiled import render

    paths = []
    for target in ("torch", "keras"):
        path = tmp_path / f"{graph.name}_{target}_model.py"
        path.write_text(render(graph, target, f"{graph.name}.yaml"))
        paths.append(str(path))
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *paths],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_generated_files_are_lint_clean(kind, tmp_path):
    generated_files_lint_clean(graph_of(kind), tmp_path)
