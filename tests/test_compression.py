"""The learned-compression kinds ``gdn``, ``igdn`` and ``entropy_bottleneck``, and the
element-wise ``multiply`` (a merge, also of skip paths) and ``scale``.

For each: a table of shapes and counts (checked against compressai's own modules), the shape and
option errors, a tiny model using it built in both frameworks (``specgen verify``, inference and
training mode), and the generated layers loaded with the state dict of compressai's module,
computing what that computes.
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


def graph_of(text: str, name: str) -> ModelGraph:
    return build_graph(load_spec(text=text, filename=f"{name}.yaml"))


def models(graph: ModelGraph):
    from specgen.codegen.compiled import compile_module

    return (
        compile_module(graph, "torch").build_model(),
        compile_module(graph, "keras").build_model(),
    )


def keras_numpy(value) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(value)


def nchw(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (0, 3, 1, 2))


def nhwc(a) -> np.ndarray:
    return np.transpose(np.asarray(a), (0, 2, 3, 1))


# ----------------------------------------------------------------------------------------------
# Shapes and counts: (config, input shapes, output shapes, (trainable, non_trainable), macs)

# fmt: off
CASES = [
    ({"kind": "gdn"}, [(8, 8, 16)], [(8, 8, 16)], (16 + 256, 0), 64 * 256),
    ({"kind": "igdn"}, [(8, 8, 16)], [(8, 8, 16)], (16 + 256, 0), 64 * 256),
    ({"kind": "gdn", "beta_min": 1e-4, "gamma_init": 0.0}, [(1, 1, 1)], [(1, 1, 1)], (2, 0), 1),
    ({"kind": "igdn"}, [(16, 16, 192)], [(16, 16, 192)], (192 + 192**2, 0), 256 * 192**2),
    ({"kind": "multiply"}, [(8, 8, 4), (8, 8, 4)], [(8, 8, 4)], (0, 0), 0),
    ({"kind": "multiply"}, [(5,), (5,), (5,)], [(5,)], (0, 0), 0),
    ({"kind": "scale", "factor": 0.5}, [(8, 8, 4)], [(8, 8, 4)], (0, 0), 0),
    ({"kind": "scale", "factor": -3}, [(7,)], [(7,)], (0, 0), 0),
    # per channel: matrices 3+9+9+9+3, biases 3+3+3+3+1, factors 3*4, quantiles 3
    ({"kind": "entropy_bottleneck"}, [(4, 4, 8)], [(4, 4, 8)] * 2, (8 * 61, 0), 0),
    ({"kind": "entropy_bottleneck", "filters": [3, 3, 3]}, [(4, 4, 8)], [(4, 4, 8)] * 2,
     (8 * (3 + 9 + 9 + 3 + 10 + 9 + 3), 0), 0),
    ({"kind": "entropy_bottleneck", "filters": []}, [(2, 3, 5)], [(2, 3, 5)] * 2, (5 * 5, 0), 0),
]
# fmt: on


@pytest.mark.parametrize(("config", "inputs", "outputs", "params", "macs"), CASES)
def test_shapes_and_counts(config, inputs, outputs, params, macs):
    layer = make(config)
    assert layer.output_shapes(inputs) == outputs
    assert layer.param_counts(inputs) == params
    assert layer.macs(inputs, outputs) == macs


def test_gdn_defaults():
    for kind, inverse in (("gdn", False), ("igdn", True)):
        layer = make({"kind": kind})
        assert (layer.beta_min, layer.gamma_init) == (1e-6, 0.1)
        assert type(layer).inverse is inverse
        assert type(layer).short_name == kind


@pytest.mark.parametrize("kind", ["gdn", "igdn"])
@pytest.mark.parametrize("shape", [(16,), (4, 4)])
def test_gdn_needs_an_image(kind, shape):
    with pytest.raises(ShapeError) as info:
        make({"kind": kind}).output_shapes([shape])
    assert f"{kind} expects an image (H,W,C) input" in info.value.message


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "gdn", "beta_min": 0.0},
        {"kind": "gdn", "beta_min": -1e-6},
        {"kind": "igdn", "gamma_init": -0.1},
        {"kind": "gdn", "gamma_init": float("nan")},
        {"kind": "igdn", "beta_min": "1e-6"},
        {"kind": "gdn", "inverse": True},
    ],
)
def test_invalid_options(config):
    with pytest.raises(ValidationError):
        make(config)


def test_multiply_needs_equal_shapes():
    layer = make({"kind": "multiply"})
    with pytest.raises(ShapeError) as info:
        layer.output_shapes([(8, 8, 4), (8, 8, 2), (8, 8, 4)])
    assert info.value.message == (
        "cannot multiply tensors of shapes (8, 8, 4), (8, 8, 2) and (8, 8, 4)"
    )
    assert info.value.mismatch == [1]
    assert layer.check_arity(1) == "multiply takes at least 2 inputs, got 1"


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "scale"},
        {"kind": "scale", "factor": float("inf")},
        {"kind": "scale", "factor": True},
        {"kind": "scale", "factor": "2"},
        {"kind": "scale", "factor": 1e39},
        {"kind": "multiply", "factor": 2.0},
    ],
)
def test_invalid_elementwise_options(config):
    with pytest.raises(ValidationError):
        make(config)


def test_entropy_bottleneck_options():
    layer = make({"kind": "entropy_bottleneck"})
    assert layer.filters == (3, 3, 3, 3)
    assert (layer.init_scale, layer.tail_mass, layer.likelihood_bound) == (10.0, 1e-9, 1e-9)
    assert type(layer).output_names == ("quantized", "likelihoods")
    with pytest.raises(ShapeError) as info:
        layer.output_shapes([(16,)])
    assert "entropy_bottleneck expects an image (H,W,C) input" in info.value.message
    for bad in (
        {"filters": [3, 0]},
        {"filters": 3},
        {"filters": [3] * 17},
        {"tail_mass": 0.0},
        {"tail_mass": 1.0},
        {"init_scale": 0},
        {"likelihood_bound": -1e-9},
    ):
        with pytest.raises(ValidationError):
            make({"kind": "entropy_bottleneck", **bad})


@pytest.mark.frameworks
@pytest.mark.parametrize(
    ("channels", "filters"), [(1, (3, 3, 3, 3)), (192, (3, 3, 3, 3)), (4, (3, 3, 3)), (2, ())]
)
def test_entropy_bottleneck_counts_match_compressai(compressai, channels, filters):
    from compressai.entropy_models import EntropyBottleneck

    theirs = EntropyBottleneck(channels, filters=filters)
    layer = make({"kind": "entropy_bottleneck", "filters": list(filters)})
    total = sum(p.numel() for p in theirs.parameters())
    assert layer.param_counts([(4, 4, channels)]) == (total, 0)
    # the quantiles are compressai's auxiliary parameters, 3 per channel
    aux = [n for n, _ in theirs.named_parameters() if n.endswith("quantiles")]
    assert aux == ["quantiles"] and theirs.quantiles.numel() == 3 * channels


@pytest.mark.frameworks
@pytest.mark.parametrize("channels", [1, 3, 128, 192])
def test_gdn_counts_match_compressai(compressai, channels):
    from compressai.layers import GDN

    for kind, inverse in (("gdn", False), ("igdn", True)):
        theirs = GDN(channels, inverse=inverse)
        layer = make({"kind": kind})
        assert layer.param_counts([(4, 4, channels)]) == (
            sum(p.numel() for p in theirs.parameters()),
            0,
        )


# ----------------------------------------------------------------------------------------------
# Tiny models in both frameworks

GDN_SPEC = """\
specgen: 1
name: tiny_gdn
input:
  shape: [16, 16, 3]
encoder:
  - {kind: conv2d, filters: 8, kernel_size: 5, strides: 2}
  - {kind: gdn, name: gdn1}
  - {kind: conv2d, filters: 4, kernel_size: 5, strides: 2}
  - {kind: gdn, name: gdn2, beta_min: 1.0e-4, gamma_init: 0.5}
decoder:
  - {kind: conv2d_transpose, filters: 8, kernel_size: 5, strides: 2}
  - {kind: igdn, name: igdn1}
  - {kind: conv2d_transpose, filters: 3, kernel_size: 5, strides: 2}
"""

#: compressai ``GDN`` arguments of each gdn/igdn node of :data:`GDN_SPEC`.
GDN_ARGS = {
    "encoder.gdn1": dict(in_channels=8),
    "encoder.gdn2": dict(in_channels=4, beta_min=1e-4, gamma_init=0.5),
    "decoder.igdn1": dict(in_channels=8, inverse=True),
}

#: A gate: a skip path ending in a sigmoid scales the main path (``merge: multiply``), then a
#: three-way product and two constant factors.
MULTIPLY_SPEC = """\
specgen: 1
name: tiny_gate
input:
  shape: [16, 16, 3]
encoder:
  - {kind: conv2d, filters: 8, kernel_size: 3, strides: 2, name: stem}
  - {kind: conv2d, filters: 8, kernel_size: 3, name: body}
  - {kind: scale, factor: 0.5}
  - {kind: conv2d, filters: 8, kernel_size: 3, name: other}
  - {kind: multiply, inputs: [body, other, stem], name: product}
  - {kind: scale, factor: -2}
decoder:
  - {kind: conv2d_transpose, filters: 8, kernel_size: 3, strides: 2}
  - {kind: conv2d, filters: 3, kernel_size: 3}
skips:
  - name: gate
    from: encoder.stem
    to: encoder.body
    merge: multiply
    layers:
      - {kind: conv2d, filters: 8, kernel_size: 1}
      - {kind: sigmoid}
"""

#: Balle et al.'s factorized-prior model in miniature: GDN transforms around an entropy
#: bottleneck (its likelihoods are its second output).
ENTROPY_SPEC = """\
specgen: 1
name: tiny_factorized
input:
  shape: [16, 16, 3]
encoder:
  - {kind: conv2d, filters: 8, kernel_size: 5, strides: 2}
  - {kind: gdn}
  - {kind: conv2d, filters: 4, kernel_size: 5, strides: 2}
  - {kind: scale, factor: 8.0}
  - {kind: entropy_bottleneck, name: entropy}
decoder:
  - {kind: scale, factor: 0.125}
  - {kind: conv2d_transpose, filters: 8, kernel_size: 5, strides: 2}
  - {kind: igdn}
  - {kind: conv2d_transpose, filters: 3, kernel_size: 5, strides: 2}
"""

SPECS = {"gdn": GDN_SPEC, "multiply": MULTIPLY_SPEC, "entropy": ENTROPY_SPEC}


@pytest.fixture(scope="module", params=sorted(SPECS))
def spec_graph(request) -> ModelGraph:
    return graph_of(SPECS[request.param], f"tiny_{request.param}")


@pytest.fixture(scope="module")
def gdn_graph() -> ModelGraph:
    return graph_of(GDN_SPEC, "tiny_gdn")


def randomize(module, seed: int) -> None:
    """Random weights, some below their lower bound (which the bound then lifts)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) * 1.2 - 0.1)


@pytest.mark.frameworks
def test_counts_and_equivalence(spec_graph):
    from specgen.verify import verify

    trainable, frozen, _ = spec_graph.counts()
    tmodel, kmodel = models(spec_graph)
    assert sum(p.numel() for p in tmodel.parameters()) == trainable
    assert sum(b.numel() for b in tmodel.buffers()) == frozen
    assert sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights) == trainable
    assert sum(int(np.prod(w.shape)) for w in kmodel.non_trainable_weights) == frozen
    report = verify(spec_graph)
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}
    assert max(r.max_abs for r in report.rows) < 1e-5, report.table()


@pytest.mark.frameworks
def test_equivalence_with_random_weights(spec_graph):
    """Away from their initial values too (GDN starts close to the identity), both models
    compute the same function once the PyTorch weights are copied into the Keras model."""
    import torch
    from specgen.convert import torch_state_to_keras

    torch.manual_seed(0)
    tmodel, kmodel = models(spec_graph)
    for node in spec_graph.nodes:
        if node.kind in ("gdn", "igdn"):
            randomize(tmodel.get_submodule(node.name), seed=len(node.name))
    torch_state_to_keras(spec_graph, tmodel.state_dict(), kmodel)
    x = np.random.default_rng(0).random((2, *spec_graph.input_shape)).astype("float32")
    with torch.no_grad():
        expected = tmodel.eval()(torch.from_numpy(nchw(x).copy()))
    got = kmodel(x, training=False)
    if not isinstance(expected, tuple):
        expected, got = (expected,), (got,)
    for a, b in zip(expected, got, strict=True):
        a = a.numpy()
        a = nhwc(a) if a.ndim == 4 else a
        assert float(np.abs(a - keras_numpy(b)).max()) <= 1e-5


def test_multiply_and_scale_are_written_inline():
    from specgen.codegen.compiled import render

    graph = graph_of(MULTIPLY_SPEC, "tiny_gate")
    assert graph.node("encoder.gate_multiply").inputs[1].node == "encoder.gate.act1"
    assert [n.kind for n in graph.nodes if n.name == "encoder.product"] == ["multiply"]
    torch_text = render(graph, "torch", "tiny_gate.yaml")
    keras_text = render(graph, "keras", "tiny_gate.yaml")
    for text in (torch_text, keras_text):
        assert "gate_multiply = x * gate" in text
        assert "x = gate_multiply * 0.5" in text
        assert "x = gate_multiply * x * stem" in text
        assert "x = x * -2.0" in text


@pytest.mark.frameworks
def test_multiply_and_scale_compute_the_product():
    import torch

    graph = graph_of(MULTIPLY_SPEC, "tiny_gate")
    torch.manual_seed(0)
    tmodel, _ = models(graph)
    encoder = tmodel.encoder.eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        stem = encoder.stem(x)
        gated = encoder.body(stem) * encoder.gate(stem)
        expected = gated * encoder.other(gated * 0.5) * stem * -2.0
        got = encoder(x)
    assert torch.equal(got, expected)


@pytest.mark.frameworks
@pytest.mark.parametrize("name", sorted(GDN_ARGS))
def test_generated_gdn_computes_compressai_gdn(compressai, gdn_graph, name):
    from compressai.layers import GDN

    import torch
    from specgen.convert import keras_layer, torch_state_to_keras

    torch.manual_seed(0)
    tmodel, kmodel = models(gdn_graph)
    ours = tmodel.get_submodule(name).eval()
    theirs = GDN(**GDN_ARGS[name]).eval()

    # the initial values agree, reparametrized as they are stored
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key
    randomize(theirs, seed=1)
    # compressai's state dict loads as it is (its reparametrizers' constants are dropped)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert set(ours.state_dict()) == {"beta", "gamma"}
    assert sum(p.numel() for p in theirs.parameters()) == gdn_graph.node(name).trainable

    channels = GDN_ARGS[name]["in_channels"]
    x = torch.randn(2, channels, 5, 6, generator=torch.Generator().manual_seed(2)) * 2.0
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    assert float((got - expected).abs().max()) <= 1e-6

    torch_state_to_keras(gdn_graph, tmodel.state_dict(), kmodel)
    k_out = keras_numpy(keras_layer(kmodel, name)(nhwc(x.numpy())))
    # another framework's kernels: float32 rounding, relative to the outputs' magnitude
    scale = max(1.0, float(expected.abs().max()))
    assert float(np.abs(k_out - nhwc(expected.numpy())).max()) <= 1e-6 * scale


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_generated_files_are_lint_clean(kind, tmp_path):
    from test_primitives import generated_files_lint_clean

    generated_files_lint_clean(graph_of(SPECS[kind], f"tiny_{kind}"), tmp_path)


def trained_looking(module, seed: int) -> None:
    """Random weights around the initial ones, and quantiles off their initial values."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            p.add_(noise * (0.5 if name == "quantiles" else 0.3))


@pytest.mark.frameworks
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_generated_entropy_bottleneck_computes_compressai(compressai, training):
    from compressai.entropy_models import EntropyBottleneck

    import torch
    from specgen.convert import keras_layer, torch_state_to_keras

    graph = graph_of(ENTROPY_SPEC, "tiny_factorized")
    torch.manual_seed(0)
    tmodel, kmodel = models(graph)
    ours = tmodel.get_submodule("encoder.entropy")
    theirs = EntropyBottleneck(4)
    trained_looking(theirs, seed=3)
    # compressai's state dict loads as it is (its auxiliary target and coder tables dropped)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert sum(p.numel() for p in theirs.parameters()) == graph.node("encoder.entropy").trainable

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 5, 3, generator=generator) * 6.0
    noise = torch.rand(x.shape, generator=generator) - 0.5
    if training:
        # compressai draws its noise on (C, 1, N*H*W); give it the same values
        flat = noise.transpose(0, 1).reshape(4, 1, -1)
        theirs.quantize = lambda values, mode, means=None: values + flat
        ours.noise = noise
    theirs.train(training)
    ours.train(training)
    with torch.no_grad():
        expected, expected_likelihoods = theirs(x)
        got, likelihoods = ours(x)
    assert float((got - expected).abs().max()) <= 1e-6
    assert float((likelihoods - expected_likelihoods).abs().max()) <= 1e-6
    assert float(likelihoods.min()) >= 1e-9
    if not training:
        medians = theirs.quantiles[:, 0, 1].detach().reshape(1, 4, 1, 1)
        offsets = got - medians
        assert float((offsets - torch.round(offsets)).abs().max()) <= 1e-5
        with torch.no_grad():
            assert float((ours.aux_loss() - theirs.loss()).abs()) <= 1e-4

    torch_state_to_keras(graph, tmodel.state_dict(), kmodel)
    layer = keras_layer(kmodel, "encoder.entropy")
    if training:
        layer.noise = nhwc(noise.numpy())
    k_out, k_likelihoods = layer(nhwc(x.numpy()), training=training)
    assert float(np.abs(keras_numpy(k_out) - nhwc(expected.numpy())).max()) <= 1e-5
    k_diff = np.abs(keras_numpy(k_likelihoods) - nhwc(expected_likelihoods.numpy()))
    assert float(k_diff.max()) <= 1e-6
