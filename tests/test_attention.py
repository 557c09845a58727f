"""The ``attention`` layer kind: diffusers' spatial self-attention block.

A table of shapes and counts (the parameter counts checked against diffusers' own ``Attention``),
the shape and option errors, a tiny model using it built in both frameworks (``specgen verify``,
inference and training mode), and the generated PyTorch layer loaded with the weights of
diffusers' ``Attention``, as ``AutoencoderKL``'s mid-block uses it, computing what that computes.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from specgen.api import build_graph, load_spec
from specgen.graph import ModelGraph
from specgen.layers import AnyLayer, ShapeError

ADAPTER = TypeAdapter(AnyLayer)

# Constructors only: a test that tried to reach a hub fails instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make(config: dict):
    return ADAPTER.validate_python(config)


# ----------------------------------------------------------------------------------------------
# Shapes and counts: (config, input shape, trainable parameters, MACs)


def _params(channels: int, inner: int) -> int:
    """Group norm, the q, k and v projections and the output projection, all with biases."""
    return 2 * channels + 3 * (channels * inner + inner) + inner * channels + channels


def _macs(positions: int, channels: int, inner: int) -> int:
    return 4 * positions * channels * inner + 2 * positions * positions * inner


# fmt: off
CASES = [
    ({"kind": "attention", "norm_groups": 4}, (8, 8, 16), _params(16, 16), _macs(64, 16, 16)),
    ({"kind": "attention", "norm_groups": 32}, (64, 64, 512),
     _params(512, 512), _macs(4096, 512, 512)),
    ({"kind": "attention", "norm_groups": 2, "heads": 4}, (4, 6, 8),
     _params(8, 8), _macs(24, 8, 8)),
    ({"kind": "attention", "norm_groups": 1, "heads": 2, "head_dim": 5}, (3, 5, 6),
     _params(6, 10), _macs(15, 6, 10)),
    ({"kind": "attention", "norm_groups": 3, "heads": 3, "head_dim": 1, "residual": False,
      "rescale_output_factor": 2.0, "epsilon": 1e-5}, (1, 1, 3), _params(3, 3), _macs(1, 3, 3)),
]
# fmt: on


@pytest.mark.parametrize(("config", "shape", "params", "macs"), CASES)
def test_shapes_and_counts(config, shape, params, macs):
    layer = make(config)
    assert layer.output_shapes([shape]) == [shape]
    assert layer.param_counts([shape]) == (params, 0)
    assert layer.macs([shape], [shape]) == macs


def test_defaults():
    layer = make({"kind": "attention", "norm_groups": 8})
    assert (layer.heads, layer.head_dim, layer.epsilon) == (1, None, 1e-6)
    assert (layer.residual, layer.rescale_output_factor) == (True, 1.0)
    assert layer.dims(64) == (1, 64)
    assert make({"kind": "attention", "norm_groups": 8, "heads": 4}).dims(64) == (4, 16)
    assert make({"kind": "attention", "norm_groups": 8, "heads": 4, "head_dim": 3}).dims(64) == (
        4,
        3,
    )
    assert type(layer).short_name == "attn"


def shape_error(config: dict, shape: tuple[int, ...]) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        make(config).output_shapes([shape])
    return info.value


def test_norm_groups_must_divide_channels():
    err = shape_error({"kind": "attention", "norm_groups": 5}, (8, 8, 32))
    assert err.field == "norm_groups"
    assert "multiple of 5, got 32 channels" in err.message
    assert err.hint == "choose norm_groups among the divisors of 32"


def test_heads_must_divide_channels_without_head_dim():
    err = shape_error({"kind": "attention", "norm_groups": 2, "heads": 3}, (8, 8, 32))
    assert err.field == "heads"
    assert "32 channels are not a multiple of 3" in err.message
    assert "give head_dim" in err.hint
    # with head_dim, the heads need not divide the channels
    layer = make({"kind": "attention", "norm_groups": 2, "heads": 3, "head_dim": 8})
    assert layer.param_counts([(8, 8, 32)]) == (_params(32, 24), 0)


@pytest.mark.parametrize("shape", [(32,), (8, 8)])
def test_needs_an_image(shape):
    err = shape_error({"kind": "attention", "norm_groups": 1}, shape)
    assert "attention expects an image (H,W,C) input" in err.message


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "attention"},
        {"kind": "attention", "norm_groups": 0},
        {"kind": "attention", "norm_groups": 2, "heads": 0},
        {"kind": "attention", "norm_groups": 2, "head_dim": 2.0},
        {"kind": "attention", "norm_groups": 2, "epsilon": 0.0},
        {"kind": "attention", "norm_groups": 2, "residual": 1},
        {"kind": "attention", "norm_groups": 2, "rescale_output_factor": 0},
        {"kind": "attention", "norm_groups": 2, "rescale_output_factor": float("inf")},
        {"kind": "attention", "norm_groups": 2, "heads": 1024, "head_dim": 1025},
        {"kind": "attention", "norm_groups": 2, "dropout": 0.1},
    ],
)
def test_invalid_options(config):
    with pytest.raises(ValidationError):
        make(config)


# ----------------------------------------------------------------------------------------------
# A tiny model in both frameworks

SPEC = """\
specgen: 1
name: tiny_attention
input:
  shape: [8, 8, 16]
encoder:
  - {kind: conv2d, filters: 16, kernel_size: 3}
  - {kind: attention, name: single, norm_groups: 4}
  - {kind: conv2d, filters: 8, kernel_size: 3, strides: 2}
  - kind: attention
    name: multi
    norm_groups: 2
    heads: 2
    head_dim: 6
    residual: false
    rescale_output_factor: 2.0
decoder:
  - {kind: conv2d_transpose, filters: 16, kernel_size: 3, strides: 2}
  - {kind: attention, name: split, norm_groups: 8, heads: 4, epsilon: 1.0e-5}
  - {kind: conv2d, filters: 16, kernel_size: 3}
"""

#: The diffusers ``Attention`` arguments of each attention node of :data:`SPEC`.
DIFFUSERS_ARGS = {
    "encoder.single": dict(query_dim=16, heads=1, dim_head=16, norm_num_groups=4, eps=1e-6),
    "encoder.multi": dict(
        query_dim=8,
        heads=2,
        dim_head=6,
        norm_num_groups=2,
        eps=1e-6,
        residual_connection=False,
        rescale_output_factor=2.0,
    ),
    "decoder.split": dict(query_dim=16, heads=4, dim_head=4, norm_num_groups=8, eps=1e-5),
}


@pytest.fixture(scope="module")
def graph() -> ModelGraph:
    return build_graph(load_spec(text=SPEC, filename="tiny_attention.yaml"))


def _models(graph: ModelGraph):
    from specgen.codegen.compiled import compile_module

    return (
        compile_module(graph, "torch").build_model(),
        compile_module(graph, "keras").build_model(),
    )


@pytest.mark.frameworks
def test_counts_and_equivalence(graph):
    from specgen.verify import verify

    trainable, frozen, _ = graph.counts()
    assert frozen == 0
    tmodel, kmodel = _models(graph)
    assert sum(p.numel() for p in tmodel.parameters()) == trainable
    assert sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights) == trainable
    assert not kmodel.non_trainable_weights
    report = verify(graph)
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}
    # agreement within float32 rounding, not merely within verify's tolerance
    assert max(r.max_abs for r in report.rows) < 1e-5, report.table()


# ----------------------------------------------------------------------------------------------
# The generated layer against diffusers' Attention


def diffusers_attention(**kwargs):
    """diffusers' ``Attention`` as ``AutoencoderKL``'s mid-block builds it, with random weights
    (the group norm's too, which start at 1 and 0)."""
    from diffusers.models.attention_processor import Attention

    import torch

    kwargs = {
        "residual_connection": True,
        "bias": True,
        "upcast_softmax": True,
        "_from_deprecated_attn_block": True,
        **kwargs,
    }
    module = Attention(**kwargs).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return module


@pytest.mark.frameworks
@pytest.mark.parametrize("name", sorted(DIFFUSERS_ARGS))
def test_generated_layers_compute_diffusers_attention(graph, name):
    import keras
    import torch
    from specgen.convert import keras_layer, torch_state_to_keras

    torch.manual_seed(0)
    tmodel, kmodel = _models(graph)
    ours = tmodel.get_submodule(name).eval()
    theirs = diffusers_attention(**DIFFUSERS_ARGS[name])

    # the submodules are named alike: diffusers' state dict loads with no renaming
    state = theirs.state_dict()
    assert set(state) == set(ours.state_dict())
    ours.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in theirs.parameters()) == graph.node(name).trainable

    channels = DIFFUSERS_ARGS[name]["query_dim"]
    x = torch.randn(2, channels, 4, 4) * 3.0
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    assert got.shape == expected.shape == x.shape
    torch_diff = float((got - expected).abs().max())
    assert torch_diff <= 1e-5

    # the Keras layer, given the same weights through specgen.convert, computes it too
    torch_state_to_keras(graph, tmodel.state_dict(), kmodel)
    x_nhwc = x.permute(0, 2, 3, 1).numpy()
    k_out = keras.ops.convert_to_numpy(keras_layer(kmodel, name)(x_nhwc))
    keras_diff = float(np.abs(k_out - expected.permute(0, 2, 3, 1).numpy()).max())
    assert keras_diff <= 1e-5


@pytest.mark.frameworks
def test_autoencoder_kl_mid_block_attention_is_an_attention_layer():
    """The attention of a (tiny) AutoencoderKL's mid-block is ``attention`` with
    ``norm_groups: norm_num_groups`` and the defaults; counts and outputs agree."""
    from diffusers import AutoencoderKL

    import torch
    from specgen.codegen.compiled import compile_module

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1,
        latent_channels=2,
        norm_num_groups=4,
    ).eval()
    theirs = vae.encoder.mid_block.attentions[0]
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    spec = """\
specgen: 1
name: mid_block
input:
  shape: [4, 4, 16]
encoder:
  - {kind: attention, name: attention, norm_groups: 4}
decoder:
  - {kind: conv2d, filters: 16, kernel_size: 1}
"""
    graph = build_graph(load_spec(text=spec, filename="mid_block.yaml"))
    assert graph.node("encoder.attention").trainable == sum(p.numel() for p in theirs.parameters())
    ours = compile_module(graph, "torch").build_model().get_submodule("encoder.attention").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        assert float((ours(x) - theirs(x)).abs().max()) <= 1e-5


@pytest.mark.frameworks
@pytest.mark.parametrize(
    ("channels", "groups", "heads", "head_dim"),
    [(16, 4, 1, 16), (512, 32, 1, 512), (32, 8, 4, 8), (12, 3, 3, 7)],
)
def test_parameter_counts_match_diffusers(channels, groups, heads, head_dim):
    from diffusers.models.attention_processor import Attention

    theirs = Attention(
        query_dim=channels,
        heads=heads,
        dim_head=head_dim,
        norm_num_groups=groups,
        residual_connection=True,
        bias=True,
        upcast_softmax=True,
        _from_deprecated_attn_block=True,
    )
    layer = make({"kind": "attention", "norm_groups": groups, "heads": heads, "head_dim": head_dim})
    shape = (4, 4, channels)
    assert layer.param_counts([shape]) == (sum(p.numel() for p in theirs.parameters()), 0)


def test_generated_files_are_lint_clean(graph, tmp_path):
    from test_primitives import generated_files_lint_clean

    generated_files_lint_clean(graph, tmp_path)
