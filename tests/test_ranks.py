"""Spatial ranks 1, 2 and 3: every spatial layer works on sequences ``(L, C)``, images ``(H, W, C)``
and volumes ``(D, H, W, C)`` under the same kind name, its rank taken from the spec's input shape.

For 1-D and 3-D: a table of shapes and counts per spatial kind; tiny models in both frameworks
whose per-node parameter counts and output shapes are the graph's (the frameworks' own modules
counting), and whose PyTorch and Keras models compute the same function (``specgen verify``, in
inference and training mode); weights that convert between the frameworks and back unchanged.
Then what a spec's rank changes in the language: per-axis options and their errors, the
rank-specific aliases, the shape variables, expansion round trips, summaries and figures.
"""

from __future__ import annotations

import math
import textwrap
from functools import partial

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from specgen.api import build_graph, load_spec
from specgen.errors import SpecErrors
from specgen.graph import ModelGraph
from specgen.layers import RANK_CONTEXT, AnyLayer, ShapeError
from specgen.to_spec import dump_spec, graph_to_spec

ADAPTER = TypeAdapter(AnyLayer)


def make(config: dict, rank: int):
    """A layer config validated in a spec of spatial rank ``rank``."""
    return ADAPTER.validate_python(config, context={RANK_CONTEXT: rank})


# ----------------------------------------------------------------------------------------------
# Shape and count tables: (config, input shapes, output shapes, (trainable, non_trainable), macs)

# fmt: off
CASES = {
    1: [
        ({"kind": "conv", "filters": 4, "kernel_size": 3, "strides": 2}, [(16, 3)], [(8, 4)],
         (40, 0), 8 * 3 * 3 * 4),
        ({"kind": "conv", "filters": 2, "kernel_size": 5, "padding": [[1, 2]],
          "padding_mode": "reflect"}, [(10, 2)], [(9, 2)], (22, 0), 9 * 5 * 2 * 2),
        ({"kind": "conv", "filters": 4, "kernel_size": 3, "dilation_rate": 2, "groups": 2,
          "padding": "valid"}, [(9, 2)], [(5, 4)], (16, 0), 5 * 3 * 1 * 4),
        ({"kind": "conv_transpose", "filters": 3, "kernel_size": 4, "strides": 2, "padding": 1},
         [(8, 2)], [(16, 3)], (27, 0), 8 * 4 * 2 * 3),
        ({"kind": "conv_transpose", "filters": 1, "kernel_size": 3, "strides": 2,
          "padding": "valid"}, [(5, 2)], [(11, 1)], (7, 0), 5 * 3 * 2),
        ({"kind": "max_pool", "pool_size": 3, "strides": 2, "padding": "same"}, [(9, 4)],
         [(5, 4)], (0, 0), 0),
        ({"kind": "avg_pool", "pool_size": 2}, [(9, 4)], [(4, 4)], (0, 0), 0),
        ({"kind": "upsample", "size": 3, "interpolation": "linear"}, [(5, 2)], [(15, 2)], (0, 0),
         0),
        ({"kind": "pad", "padding": [[1, 2]], "mode": "replicate"}, [(5, 2)], [(8, 2)], (0, 0),
         0),
        ({"kind": "crop", "cropping": [[0, 3]]}, [(8, 2)], [(5, 2)], (0, 0), 0),
        ({"kind": "batch_norm"}, [(16, 6)], [(16, 6)], (12, 12), 0),
        ({"kind": "layer_norm"}, [(16, 6)], [(16, 6)], (12, 0), 0),
        ({"kind": "group_norm", "groups": 3}, [(16, 6)], [(16, 6)], (12, 0), 0),
        ({"kind": "instance_norm", "affine": True}, [(16, 6)], [(16, 6)], (12, 0), 0),
        ({"kind": "prelu"}, [(16, 6)], [(16, 6)], (6, 0), 0),
        ({"kind": "prelu", "shared": True}, [(16, 6)], [(16, 6)], (1, 0), 0),
        ({"kind": "attention", "norm_groups": 2, "heads": 2}, [(10, 4)], [(10, 4)],
         (2 * 4 + 4 * (16 + 4), 0), 4 * 10 * 4 * 4 + 2 * 100 * 4),
        ({"kind": "gdn"}, [(16, 6)], [(16, 6)], (6 + 36, 0), 16 * 36),
        ({"kind": "igdn"}, [(16, 6)], [(16, 6)], (6 + 36, 0), 16 * 36),
        ({"kind": "entropy_bottleneck"}, [(16, 6)], [(16, 6)] * 2, (6 * 61, 0), 0),
        ({"kind": "vector_quantizer", "num_embeddings": 8}, [(16, 4)],
         [(16, 4), (), (), (16,)], (32, 0), 16 * 8 * 4),
        ({"kind": "diagonal_gaussian"}, [(16, 6)], [(16, 3)] * 2, (0, 0), 0),
        ({"kind": "flatten"}, [(16, 6)], [(96,)], (0, 0), 0),
        ({"kind": "reshape", "target_shape": [16, 6]}, [(96,)], [(16, 6)], (0, 0), 0),
        ({"kind": "concat"}, [(16, 6), (16, 2)], [(16, 8)], (0, 0), 0),
        ({"kind": "add"}, [(16, 6)] * 2, [(16, 6)], (0, 0), 0),
        ({"kind": "multiply"}, [(16, 6)] * 2, [(16, 6)], (0, 0), 0),
        ({"kind": "dropout", "rate": 0.5}, [(16, 6)], [(16, 6)], (0, 0), 0),
        ({"kind": "vae_sampling"}, [(16, 6)] * 2, [(16, 6)], (0, 0), 0),
    ],
    3: [
        ({"kind": "conv", "filters": 4, "kernel_size": 3, "strides": 2}, [(8, 8, 8, 2)],
         [(4, 4, 4, 4)], (220, 0), 64 * 27 * 2 * 4),
        ({"kind": "conv", "filters": 2, "kernel_size": [1, 3, 3], "padding": [0, [0, 2], 1],
          "padding_mode": "replicate"}, [(4, 6, 6, 1)], [(4, 6, 6, 2)], (20, 0),
         144 * 9 * 2),
        ({"kind": "conv", "filters": 4, "kernel_size": [3, 1, 1], "strides": [1, 2, 2],
          "padding": "valid", "groups": 2}, [(6, 8, 8, 2)], [(4, 4, 4, 4)], (16, 0),
         64 * 3 * 1 * 4),
        ({"kind": "conv_transpose", "filters": 2, "kernel_size": [2, 4, 3], "strides": 2,
          "padding": [0, 1, 1], "output_padding": [0, 0, 1]}, [(3, 4, 4, 3)],
         [(6, 8, 8, 2)], (146, 0), 48 * 24 * 3 * 2),
        ({"kind": "conv_transpose", "filters": 2, "kernel_size": 3, "strides": [1, 2, 2]},
         [(4, 4, 4, 2)], [(4, 8, 8, 2)], (110, 0), 64 * 27 * 2 * 2),
        ({"kind": "max_pool", "pool_size": [1, 2, 2]}, [(4, 8, 8, 3)], [(4, 4, 4, 3)], (0, 0),
         0),
        ({"kind": "avg_pool", "pool_size": 3, "strides": 2, "padding": "same"},
         [(5, 5, 5, 3)], [(3, 3, 3, 3)], (0, 0), 0),
        ({"kind": "upsample", "size": [1, 2, 2]}, [(4, 4, 4, 2)], [(4, 8, 8, 2)], (0, 0), 0),
        ({"kind": "upsample", "interpolation": "linear"}, [(2, 3, 4, 1)], [(4, 6, 8, 1)],
         (0, 0), 0),
        ({"kind": "pad", "padding": [1, [0, 2], 0], "mode": "reflect"}, [(4, 4, 4, 2)],
         [(6, 6, 4, 2)], (0, 0), 0),
        ({"kind": "crop", "cropping": [[1, 0], 0, 2]}, [(4, 4, 8, 2)], [(3, 4, 4, 2)], (0, 0),
         0),
        ({"kind": "batch_norm", "center": False}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (8, 16), 0),
        ({"kind": "layer_norm"}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (16, 0), 0),
        ({"kind": "group_norm", "groups": 4}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (16, 0), 0),
        ({"kind": "instance_norm"}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (0, 0), 0),
        ({"kind": "prelu"}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (8, 0), 0),
        ({"kind": "prelu", "shared": True}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (1, 0), 0),
        ({"kind": "attention", "norm_groups": 4, "heads": 2, "head_dim": 3}, [(2, 3, 4, 8)],
         [(2, 3, 4, 8)], (2 * 8 + 3 * (8 * 6 + 6) + 6 * 8 + 8, 0),
         4 * 24 * 8 * 6 + 2 * 24 * 24 * 6),
        ({"kind": "gdn"}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (8 + 64, 0), 64 * 64),
        ({"kind": "igdn"}, [(4, 4, 4, 8)], [(4, 4, 4, 8)], (8 + 64, 0), 64 * 64),
        ({"kind": "entropy_bottleneck", "filters": [2]}, [(2, 2, 2, 4)], [(2, 2, 2, 4)] * 2,
         (4 * ((1 * 2 + 2 * 1) + 3 + 2 + 3), 0), 0),
        ({"kind": "vector_quantizer", "num_embeddings": 16}, [(2, 4, 4, 8)],
         [(2, 4, 4, 8), (), (), (2, 4, 4)], (128, 0), 32 * 16 * 8),
        ({"kind": "diagonal_gaussian"}, [(2, 4, 4, 8)], [(2, 4, 4, 4)] * 2, (0, 0), 0),
        ({"kind": "flatten"}, [(2, 4, 4, 8)], [(256,)], (0, 0), 0),
        ({"kind": "reshape", "target_shape": [2, 4, 4, 8]}, [(256,)], [(2, 4, 4, 8)], (0, 0),
         0),
        ({"kind": "concat"}, [(2, 4, 4, 8), (2, 4, 4, 1)], [(2, 4, 4, 9)], (0, 0), 0),
        ({"kind": "add"}, [(2, 4, 4, 8)] * 3, [(2, 4, 4, 8)], (0, 0), 0),
        ({"kind": "multiply"}, [(2, 4, 4, 8)] * 2, [(2, 4, 4, 8)], (0, 0), 0),
        ({"kind": "dropout", "rate": 0.1}, [(2, 4, 4, 8)], [(2, 4, 4, 8)], (0, 0), 0),
        ({"kind": "vae_sampling"}, [(2, 4, 4, 8)] * 2, [(2, 4, 4, 8)], (0, 0), 0),
    ],
}
# fmt: on

#: The kinds that work on feature maps, which both tables must cover.
SPATIAL_KINDS = {
    *("conv", "conv_transpose", "max_pool", "avg_pool", "upsample", "pad", "crop"),
    *("batch_norm", "layer_norm", "group_norm", "instance_norm", "prelu", "attention"),
    *("gdn", "igdn", "entropy_bottleneck", "vector_quantizer", "diagonal_gaussian"),
    *("flatten", "reshape", "concat", "add", "multiply", "dropout", "vae_sampling"),
}


def _table() -> list:
    return [
        pytest.param(rank, *case, id=f"{rank}d-{case[0]['kind']}-{i}")
        for rank, rows in CASES.items()
        for i, case in enumerate(rows)
    ]


@pytest.mark.parametrize(("rank", "config", "inputs", "outputs", "params", "macs"), _table())
def test_shape_rule(rank, config, inputs, outputs, params, macs):
    layer = make(config, rank)
    assert layer.spatial_rank == rank
    assert layer.output_shapes(inputs) == outputs
    assert layer.param_counts(inputs) == params
    assert layer.macs(inputs, outputs) == macs


@pytest.mark.parametrize("rank", sorted(CASES))
def test_tables_cover_every_spatial_kind(rank):
    assert {c[0]["kind"] for c in CASES[rank]} == SPATIAL_KINDS


@pytest.mark.parametrize(
    ("rank", "config", "inputs"),
    [
        # a feature map of another rank, or a vector, is no feature map of the spec
        (3, {"kind": "conv", "filters": 1, "kernel_size": 3}, [(8, 8, 2)]),
        (1, {"kind": "conv_transpose", "filters": 1, "kernel_size": 3}, [(8, 8, 2)]),
        (1, {"kind": "max_pool", "pool_size": 2}, [(16,)]),
        (3, {"kind": "group_norm", "groups": 1}, [(4, 4, 2)]),
        (1, {"kind": "batch_norm"}, [(4, 4, 2)]),
        (3, {"kind": "attention", "norm_groups": 1}, [(8,)]),
        (1, {"kind": "vector_quantizer", "num_embeddings": 2}, [(8,)]),
        (3, {"kind": "flatten"}, [(4, 4, 2)]),
        # sizes that do not fit
        (
            3,
            {"kind": "conv", "filters": 1, "kernel_size": [1, 5, 1], "padding": "valid"},
            [(4, 4, 4, 1)],
        ),
        (1, {"kind": "crop", "cropping": 4}, [(8, 1)]),
        (3, {"kind": "pad", "padding": [0, 4, 0], "mode": "reflect"}, [(4, 4, 4, 1)]),
        (1, {"kind": "instance_norm"}, [(1, 4)]),
        (3, {"kind": "reshape", "target_shape": [2, 2, 2, 3]}, [(16,)]),
    ],
)
def test_shape_errors(rank, config, inputs):
    with pytest.raises(ShapeError):
        make(config, rank).output_shapes(inputs)


def test_rank_error_messages():
    err = pytest.raises(
        ShapeError, make({"kind": "conv", "filters": 1, "kernel_size": 3}, 1).output_shapes, [(64,)]
    ).value
    assert err.message == "conv expects a sequence (L,C) input, got a vector (N,) of shape (64,)"
    assert err.hint == "insert a reshape layer before it to make an (L,C) sequence"
    err = pytest.raises(
        ShapeError, make({"kind": "attention", "norm_groups": 1}, 3).output_shapes, [(4, 4, 2)]
    ).value
    assert "expects a volume (D,H,W,C) input, got an index map (D,H,W)" in err.message
    config = {"kind": "conv", "filters": 1, "kernel_size": [1, 5, 1], "padding": "valid"}
    err = pytest.raises(ShapeError, make(config, 3).output_shapes, [(4, 4, 4, 1)]).value
    assert err.message == "kernel 1x5x1 does not fit a 4x4x4 input with padding 'valid'"
    config = {"kind": "conv", "filters": 1, "kernel_size": 7, "padding": [[1, 2]]}
    err = pytest.raises(ShapeError, make(config, 1).output_shapes, [(3, 1)]).value
    assert err.message == "kernel 7 does not fit a length-3 input padded by 1+2 positions"
    err = pytest.raises(
        ShapeError,
        make({"kind": "crop", "cropping": [1, 0, [2, 2]]}, 3).output_shapes,
        [(4, 4, 4, 1)],
    ).value
    assert err.message == (
        "cropping 1+1 planes, 0+0 rows and 2+2 columns from a 4x4x4 input leaves nothing"
    )


# ----------------------------------------------------------------------------------------------
# Per-axis options and the rank of a config


def test_per_axis_options_are_normalised_to_the_rank():
    conv = make({"kind": "conv", "filters": 1, "kernel_size": 3, "padding": 1}, 3)
    assert conv.kernel_size == (3, 3, 3) and conv.strides == (1, 1, 1)
    assert conv.padding == ((1, 1),) * 3
    conv = make({"kind": "conv", "filters": 1, "kernel_size": [5], "padding": [[0, 2]]}, 1)
    assert conv.kernel_size == (5,) and conv.padding == ((0, 2),)
    deconv = make(
        {
            "kind": "conv_transpose",
            "filters": 1,
            "kernel_size": 3,
            "strides": 2,
            "padding": [1, 0, 1],
            "output_padding": 1,
        },
        3,
    )
    assert deconv.padding == (1, 0, 1) and deconv.output_padding == (1, 1, 1)
    assert deconv.output_crop((4, 4, 4, 1)) == ((1, 0), (0, -1), (1, 0))
    pool = make({"kind": "avg_pool", "pool_size": [1, 2, 2]}, 3)
    assert pool.strides == (1, 2, 2)
    assert make({"kind": "upsample"}, 1).size == (2,)
    assert make({"kind": "pad", "padding": [1, [2, 3], 0]}, 3).padding == ((1, 1), (2, 3), (0, 0))
    # an int default stands for that value on every axis
    assert conv.is_default("strides") and conv.is_default("dilation_rate")
    assert not conv.is_default("kernel_size")


@pytest.mark.parametrize(
    ("rank", "config", "message"),
    [
        (
            3,
            {"kind": "conv", "filters": 1, "kernel_size": [3, 3]},
            "this spec is 3-D; kernel_size has 2 entries",
        ),
        (
            1,
            {"kind": "conv", "filters": 1, "kernel_size": 3, "strides": [2, 2]},
            "this spec is 1-D; strides has 2 entries",
        ),
        (
            1,
            {"kind": "conv", "filters": 1, "kernel_size": 3, "padding": [1, 2]},
            "this spec is 1-D; padding has 2 entries",
        ),
        (
            2,
            {
                "kind": "conv_transpose",
                "filters": 1,
                "kernel_size": 3,
                "strides": 2,
                "padding": 1,
                "output_padding": [1, 1, 1],
            },
            "this spec is 2-D; output_padding has 3 entries",
        ),
        (3, {"kind": "max_pool", "pool_size": [2]}, "this spec is 3-D; pool_size has 1 entry"),
        (2, {"kind": "upsample", "size": [2, 2, 2]}, "this spec is 2-D; size has 3 entries"),
        (3, {"kind": "crop", "cropping": [1, 1]}, "this spec is 3-D; cropping has 2 entries"),
        (
            1,
            {"kind": "reshape", "target_shape": [2, 2, 2]},
            "this spec is 1-D; target_shape has 3 entries, at most 2",
        ),
        (
            3,
            {"kind": "conv2d", "filters": 1, "kernel_size": 3},
            "conv2d is a 2-D layer, but this spec is 3-D; kind conv takes the spec's rank",
        ),
        (
            2,
            {"kind": "conv1d_transpose", "filters": 1, "kernel_size": 3},
            "conv1d_transpose is a 1-D layer, but this spec is 2-D; kind conv_transpose takes the "
            "spec's rank",
        ),
        (
            1,
            {"kind": "crop2d", "cropping": 1},
            "crop2d is a 2-D layer, but this spec is 1-D; kind crop takes the spec's rank",
        ),
        (
            3,
            {"kind": "upsample", "interpolation": "bilinear"},
            "interpolation 'bilinear' is for 2-D specs and this spec is 3-D; 'linear' "
            "interpolates along every axis",
        ),
    ],
)
def test_rank_mismatch_is_an_error_in_words(rank, config, message):
    with pytest.raises(ValidationError) as info:
        make(config, rank)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("rank", "config", "hint"),
    [
        (
            3,
            {"kind": "avg_pool", "pool_size": 2, "strides": [2, 2]},
            "a list with one entry per spatial axis (depth, height, width)",
        ),
        (
            2,
            {"kind": "conv", "filters": 1, "kernel_size": 3, "dilation_rate": [1]},
            "a list with one entry per spatial axis (height, width)",
        ),
        (
            1,
            {"kind": "pad", "padding": [1, 2]},
            "(length); an entry may be a [before, after] pair, as in [[1, 2]]",
        ),
        (
            3,
            {"kind": "crop", "cropping": [[1, 2], 0]},
            "an entry may be a [before, after] pair, as in [[1, 2], [1, 2], [1, 2]]",
        ),
    ],
)
def test_a_per_axis_list_of_the_wrong_length_has_a_hint(rank, config, hint):
    """The located error of the spec names the axes the list should have one entry for."""
    from specgen.validate import spec_errors

    with pytest.raises(ValidationError) as info:
        make(config, rank)
    (error,) = spec_errors(info.value, config)
    assert error.message.startswith(f"this spec is {rank}-D; ")
    assert hint in error.hint


def test_aliases_fix_their_rank():
    assert make({"kind": "conv3d", "filters": 1, "kernel_size": 3}, 3).kernel_size == (3, 3, 3)
    # validated without a spec, an alias takes its own rank, and a neutral kind 2-D
    assert (
        ADAPTER.validate_python({"kind": "conv1d", "filters": 1, "kernel_size": 3}).spatial_rank
        == 1
    )
    assert (
        ADAPTER.validate_python({"kind": "conv", "filters": 1, "kernel_size": 3}).spatial_rank == 2
    )
    assert make({"kind": "crop2d", "cropping": 1}, 2).neutral_kind == "crop"
    assert make({"kind": "conv", "filters": 1, "kernel_size": 1}, 3).ranked_kind == "conv3d"


# ----------------------------------------------------------------------------------------------
# Tiny models in both frameworks

HEADS = {1: "input: {shape: [16, 3]}", 3: "input: {shape: [4, 8, 8, 2]}"}

#: Specs using every spatial kind, per rank.
SPECS = {
    1: {
        "layers": """\
encoder:
  - {kind: conv1d, name: stem, filters: 6, kernel_size: 5, padding: [[1, 3]], padding_mode: reflect}
  - {kind: batch_norm, momentum: 0.9}
  - {kind: prelu}
  - {kind: conv, name: down, filters: 6, kernel_size: 3, strides: 2, groups: 3}
  - {kind: group_norm, groups: 3}
  - {kind: pad, padding: [[0, 1]], mode: replicate}
  - {kind: conv, name: dilated, filters: 4, kernel_size: 2, padding: valid, dilation_rate: 1}
  - {kind: instance_norm, affine: true}
  - {kind: layer_norm, name: ln}
  - {kind: attention, name: attn, norm_groups: 2, heads: 2}
  - {kind: gdn, name: gdn}
  - {kind: multiply, inputs: [attn, gdn]}
  - {kind: max_pool, pool_size: 3, strides: 2, padding: same}
  - {kind: dropout, rate: 0.2}
bottleneck: {kind: dense, units: 6}
decoder:
  - {kind: upsample, name: up, size: 2, interpolation: linear}
  - {kind: conv_transpose, name: deconv, filters: 4, kernel_size: 4, strides: 2, padding: 1}
  - {kind: igdn}
  - {kind: crop, name: cropped, cropping: [[1, 1]]}
  - {kind: avg_pool, name: smooth, inputs: [cropped], pool_size: 3, strides: 1, padding: same}
  - {kind: concat, inputs: [cropped, smooth]}
  - {kind: pad, padding: 2, mode: reflect}
  - {kind: conv1d_transpose, name: valid, filters: 4, kernel_size: 3, padding: valid}
  - {kind: prelu, shared: true, init: 0.1}
  - {kind: conv, name: out, filters: 3, kernel_size: 5, padding: valid}
  - {kind: conv, name: side, inputs: [valid], filters: 3, kernel_size: 5, padding: valid}
  - {kind: add, inputs: [out, side]}
""",
        "vq": """\
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2}
  - {kind: entropy_bottleneck, filters: [2]}
bottleneck: {kind: vector_quantized, embedding_dim: 3, num_embeddings: 5}
decoder:
  - {kind: upsample, size: 2}
  - {kind: conv, filters: 3, kernel_size: 3}
""",
        "gaussian": """\
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2}
bottleneck: {kind: diagonal_gaussian, latent_channels: 2, inference: sample}
decoder:
  - {kind: conv_transpose, filters: 3, kernel_size: 3, strides: 2}
""",
    },
    3: {
        "layers": """\
encoder:
  - kind: conv3d
    name: stem
    filters: 4
    kernel_size: [1, 3, 3]
    padding: [0, 1, [0, 2]]
    padding_mode: replicate
  - {kind: batch_norm, momentum: 0.9}
  - {kind: prelu}
  - {kind: conv, name: down, filters: 6, kernel_size: 3, strides: [1, 2, 2], groups: 2}
  - {kind: group_norm, groups: 3}
  - {kind: pad, padding: [[0, 1], 1, 0], mode: reflect}
  - {kind: conv, name: squeeze, filters: 4, kernel_size: [2, 3, 1], padding: valid}
  - {kind: instance_norm, affine: true}
  - {kind: layer_norm, name: ln}
  - {kind: attention, name: attn, norm_groups: 2, heads: 2, head_dim: 3}
  - {kind: gdn, name: gdn}
  - {kind: multiply, inputs: [attn, gdn]}
  - {kind: max_pool, pool_size: [1, 2, 2]}
  - {kind: dropout, rate: 0.2}
bottleneck: {kind: variational, units: 6}
decoder:
  - {kind: upsample, name: up, size: [1, 2, 2], interpolation: linear}
  - kind: conv_transpose
    name: deconv
    filters: 4
    kernel_size: [3, 4, 3]
    strides: [1, 2, 1]
    padding: [1, 1, 1]
    output_padding: [0, 1, 0]
  - {kind: igdn}
  - {kind: crop, name: cropped, cropping: [0, [0, 1], 0]}
  - {kind: avg_pool, name: smooth, inputs: [cropped], pool_size: 3, strides: 1, padding: same}
  - {kind: concat, inputs: [cropped, smooth]}
  - {kind: pad, padding: [1, 0, [0, 4]]}
  - {kind: conv3d_transpose, name: valid, filters: 4, kernel_size: 1, padding: valid}
  - {kind: conv, name: squash, filters: 4, kernel_size: [3, 1, 1], padding: valid}
  - {kind: prelu, shared: true, init: 0.1}
  - {kind: conv, name: out, filters: 2, kernel_size: 3}
  - {kind: conv, name: side, inputs: [squash], filters: 2, kernel_size: 1}
  - {kind: add, inputs: [out, side]}
""",
        "vq": """\
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2}
  - {kind: entropy_bottleneck, filters: [2]}
bottleneck: {kind: vector_quantized, embedding_dim: 3, num_embeddings: 5}
decoder:
  - {kind: upsample, size: 2}
  - {kind: conv, filters: 2, kernel_size: 3}
""",
        "gaussian": """\
encoder:
  - {kind: conv, filters: 4, kernel_size: 3, strides: 2}
bottleneck: {kind: diagonal_gaussian, latent_channels: 2, inference: mean_plus_std}
decoder:
  - {kind: conv_transpose, filters: 2, kernel_size: 3, strides: 2}
""",
    },
}

MODELS = [(rank, name) for rank in sorted(SPECS) for name in SPECS[rank]]


def graph_of(rank: int, name: str) -> ModelGraph:
    text = f"specgen: 1\nname: tiny_{name}_{rank}d\n{HEADS[rank]}\n{SPECS[rank][name]}"
    return build_graph(load_spec(text=text, filename=f"{name}_{rank}d.yaml"))


def _models(graph: ModelGraph):
    from specgen.codegen.compiled import compile_module

    return (
        compile_module(graph, "torch").build_model(),
        compile_module(graph, "keras").build_model(),
    )


def _keep_shape(seen: dict, name: str, module, args, output) -> None:
    """A forward hook noting the shape of a module's (first) output, batch left out."""
    first = output[0] if isinstance(output, tuple) else output
    seen.setdefault(name, tuple(first.shape[1:]))


def test_specs_use_every_spatial_kind():
    for rank in SPECS:
        kinds = set()
        for name in SPECS[rank]:
            kinds |= {n.layer.neutral_kind for n in graph_of(rank, name).nodes}
        assert kinds >= SPATIAL_KINDS, SPATIAL_KINDS - kinds


@pytest.mark.frameworks
@pytest.mark.parametrize(("rank", "name"), MODELS, ids=[f"{r}d-{n}" for r, n in MODELS])
def test_counts_and_shapes_are_the_frameworks(rank, name):
    """Every node's parameters are its module's (PyTorch) and its layer's (Keras), and every
    node's output has the shape the graph gives it (channels first in PyTorch)."""
    import torch
    from specgen.convert import keras_layer

    graph = graph_of(rank, name)
    tmodel, kmodel = _models(graph)
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for node in graph.nodes:
        try:
            module = tmodel.get_submodule(node.name)
        except AttributeError:  # an inline op (add, concat, crop, flatten, reshape)
            assert (node.trainable, node.non_trainable) == (0, 0)
            continue
        tensors = [
            *module.parameters(),
            *(b for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")),
        ]
        assert sum(t.numel() for t in tensors) == node.trainable + node.non_trainable, node.name
        layer = keras_layer(kmodel, node.name)
        assert sum(math.prod(w.shape) for w in layer.weights) == node.trainable + node.non_trainable
        hooks.append(module.register_forward_hook(partial(_keep_shape, seen, node.name)))
    x = torch.rand(2, graph.input_shape[-1], *graph.input_shape[:-1])
    tmodel.eval()
    with torch.no_grad():
        tmodel(x)
    for hook in hooks:
        hook.remove()
    for node_name, shape in seen.items():
        want = graph.node(node_name).shape
        if len(want) == rank + 1:  # a feature map, channels first in PyTorch
            want = (want[-1], *want[:-1])
        assert shape == want, node_name
    trainable, frozen, _ = graph.counts()
    assert sum(p.numel() for p in tmodel.parameters()) == trainable
    assert sum(math.prod(w.shape) for w in kmodel.trainable_weights) == trainable
    assert sum(math.prod(w.shape) for w in kmodel.non_trainable_weights) == frozen


@pytest.mark.frameworks
@pytest.mark.parametrize(("rank", "name"), MODELS, ids=[f"{r}d-{n}" for r, n in MODELS])
def test_torch_and_keras_agree(rank, name):
    from specgen.verify import verify

    report = verify(graph_of(rank, name))
    assert report.ok, report.table()
    assert {r.mode for r in report.rows} == {"inference", "training"}


@pytest.mark.frameworks
@pytest.mark.parametrize("rank", sorted(SPECS))
def test_generated_modules_are_the_ranks(rank):
    from torch import nn

    graph = graph_of(rank, "layers")
    tmodel, kmodel = _models(graph)
    suffix = f"{rank}d"
    stem = tmodel.get_submodule("encoder.stem")
    assert type(stem).__name__ == f"PaddedConv{suffix}"
    assert isinstance(stem, getattr(nn, f"Conv{suffix}"))
    assert isinstance(tmodel.get_submodule("encoder.down"), getattr(nn, f"Conv{suffix}"))
    assert isinstance(tmodel.get_submodule("encoder.bn1"), getattr(nn, f"BatchNorm{suffix}"))
    assert isinstance(tmodel.get_submodule("encoder.inorm1"), getattr(nn, f"InstanceNorm{suffix}"))
    assert isinstance(tmodel.get_submodule("decoder.deconv"), getattr(nn, f"ConvTranspose{suffix}"))
    mode = {1: "linear", 3: "trilinear"}[rank]
    assert tmodel.get_submodule("decoder.up").mode == mode
    assert type(kmodel.encoder.down).__name__ == f"Conv{rank}D"
    assert type(kmodel.encoder.stem).__name__ == f"PaddedConv{rank}D"
    assert type(kmodel.decoder.up).__name__ == "UpsampleLinear"


@pytest.mark.frameworks
@pytest.mark.parametrize("rank", sorted(SPECS))
def test_keras_linear_upsampling_is_pytorchs(rank):
    """The Keras layer of a linear upsampling in 1-D or 3-D is PyTorch's ``nn.Upsample`` with
    ``mode`` linear or trilinear and ``align_corners=False``, for factors 1 to 3."""
    import keras
    import torch
    from specgen.codegen.compiled import compile_module

    module = compile_module(graph_of(rank, "layers"), "keras")
    rng = np.random.default_rng(2)
    spatial = (5,) if rank == 1 else (3, 4, 5)
    size = (3,) if rank == 1 else (1, 2, 3)
    x = rng.standard_normal((2, *spatial, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(module.UpsampleLinear(size)(x))
    mode = {1: "linear", 3: "trilinear"}[rank]
    up = torch.nn.Upsample(scale_factor=size, mode=mode, align_corners=False)
    want = up(torch.from_numpy(np.moveaxis(x, -1, 1))).numpy()
    assert np.allclose(got, np.moveaxis(want, 1, -1), atol=1e-6)


@pytest.mark.frameworks
@pytest.mark.parametrize("rank", sorted(SPECS))
def test_weights_convert_both_ways(rank):
    """Kernels of every rank move PyTorch -> Keras -> PyTorch unchanged."""
    from specgen.convert import keras_to_torch_state, torch_state_to_keras

    graph = graph_of(rank, "layers")
    tmodel, kmodel = _models(graph)
    state = {k: v.detach().numpy() for k, v in tmodel.state_dict().items()}
    torch_state_to_keras(graph, state, kmodel)
    back = keras_to_torch_state(graph, kmodel)
    for key, value in back.items():
        if not key.endswith("num_batches_tracked"):
            assert np.array_equal(value, state[key]), key
    weight = state["encoder.down.weight"]
    assert weight.shape == (6, 2 if rank == 3 else 2, *((3,) * rank))
    assert tuple(kmodel.encoder.down.kernel.shape) == (*((3,) * rank), weight.shape[1], 6)


def test_generated_files_are_lint_clean(tmp_path):
    from test_primitives import generated_files_lint_clean

    for rank, name in MODELS:
        generated_files_lint_clean(graph_of(rank, name), tmp_path)


# ----------------------------------------------------------------------------------------------
# The language at each rank


def test_aliases_generate_the_same_code():
    """``conv``/``conv_transpose``/``crop`` and their 2-D aliases give the same PyTorch and Keras
    files and summaries; only the expanded spec keeps the kind as written."""
    from specgen.codegen.compiled import render
    from specgen.summary import summary_table

    body = """\
specgen: 1
name: aliases
input: {{shape: [16, 16, 3]}}
encoder:
  - {{kind: {conv}, filters: 4, kernel_size: 3, strides: 2, padding: [[0, 1], 1]}}
  - {{kind: {crop}, cropping: [1, 0]}}
decoder:
  - {{kind: pad, padding: [1, 0]}}
  - {{kind: {deconv}, filters: 3, kernel_size: 4, strides: 2, padding: 1}}
"""
    neutral = build_graph(
        load_spec(
            text=body.format(conv="conv", crop="crop", deconv="conv_transpose"), filename="a.yaml"
        )
    )
    pinned = build_graph(
        load_spec(
            text=body.format(conv="conv2d", crop="crop2d", deconv="conv2d_transpose"),
            filename="a.yaml",
        )
    )
    for target in ("torch", "keras"):
        assert render(neutral, target, "a.yaml") == render(pinned, target, "a.yaml")
    assert summary_table(neutral) == summary_table(pinned)
    assert "conv2d 3x3/2, 4" in summary_table(neutral)
    assert "kind: conv," in dump_spec(graph_to_spec(neutral))
    assert "kind: conv2d," in dump_spec(graph_to_spec(pinned))


@pytest.mark.parametrize(("rank", "name"), MODELS, ids=[f"{r}d-{n}" for r, n in MODELS])
def test_expanded_specs_round_trip(rank, name):
    graph = graph_of(rank, name)
    expanded = dump_spec(graph_to_spec(graph))
    again = build_graph(load_spec(text=expanded, filename="expanded.yaml"))
    assert again.structure() == graph.structure()
    assert dump_spec(graph_to_spec(again)) == expanded


def test_expanded_spec_writes_per_axis_options_compactly():
    expanded = dump_spec(graph_to_spec(graph_of(3, "layers")))
    assert "kernel_size: [1, 3, 3], padding: [[0, 0], [1, 1], [0, 2]]" in expanded
    assert "strides: [1, 2, 2], groups: 2" in expanded
    assert "dilation_rate" not in expanded  # the default, at any rank


def test_shape_variables_name_the_axes_of_each_rank():
    text = """\
specgen: 1
name: variables
parameters: {{input_shape: {shape}}}
input: {{shape: "${{input_shape}}"}}
encoder:
  - name: stage
    layers:
      - kind: conv
        filters: "${{{expr}}}"
        kernel_size: 1
decoder:
  - {{kind: conv, filters: "${{input_shape[-1]}}", kernel_size: 1}}
"""
    cases = [
        ("[5, 7, 9, 2]", "in_depth * 100 + in_height * 10 + in_width", 579),
        ("[6, 3]", "in_length", 6),
        ("[6, 4, 3]", "in_height + in_width", 10),
        ("[2, 3, 4, 5]", "prod(in_shape[:-1]) + len(in_shape)", 28),
    ]
    for shape, expr, filters in cases:
        graph = build_graph(load_spec(text=text.format(shape=shape, expr=expr), filename="v.yaml"))
        assert graph.node("encoder.stage.conv1").layer.filters == filters
    with pytest.raises(SpecErrors, match="unknown name 'in_height'"):
        build_graph(
            load_spec(text=text.format(shape="[6, 3]", expr="in_height"), filename="v.yaml")
        )


def test_summary_and_figure_labels_name_the_rank():
    from specgen.diagram import dims, op_label
    from specgen.summary import summary_dict, summary_table

    graph = graph_of(3, "layers")
    table = summary_table(graph)
    assert "conv3d 3x3x3/1x2x2, 6" in table
    assert "conv3d_transpose 3x4x3/1x2x1, 4" in table
    assert "(4, 8, 8, 2)" in table
    assert summary_dict(graph)["input_shape"] == [4, 8, 8, 2]
    assert op_label(graph.node("encoder.down")) == "conv 3×3×3/1×2×2, 6"
    assert op_label(graph.node("decoder.up")) == "upsample ×1 trilinear"
    assert dims((32, 32, 32, 16)) == "32³×16"
    assert dims((8, 32, 32, 16)) == "8×32×32×16"
    assert dims((32, 32, 16)) == "32²×16"
    assert dims((32, 16, 16)) == "32×16×16"
    assert "conv1d 5, 6" in summary_table(graph_of(1, "layers"))


def test_resolution_root_cause_names_the_axis():
    text = textwrap.dedent("""\
        specgen: 1
        name: odd
        input: {shape: [8, 10, 8, 1]}
        encoder:
          - {kind: conv, name: a, filters: 2, kernel_size: 3, strides: 2}
          - {kind: conv, name: b, filters: 2, kernel_size: 3, strides: 2}
          - {kind: conv, name: c, filters: 2, kernel_size: 3, inputs: [a]}
          - {kind: concat, inputs: [b, c]}
        decoder:
          - {kind: conv_transpose, filters: 1, kernel_size: 3, strides: 4}
        """)
    with pytest.raises(SpecErrors) as info:
        build_graph(load_spec(text=text, filename="odd.yaml"))
    assert "input height 10 is not divisible by 4" in info.value.render()


def test_memory_counts_attention_over_every_position():
    from specgen.memory import inner_values

    graph = graph_of(3, "layers")
    node = graph.node("encoder.attn")
    positions = math.prod(node.shape[:-1])
    assert inner_values(node) == 2 * 2 * positions**2


def test_verify_says_when_float64_cannot_recheck(monkeypatch, specs_dir):
    """A float32 difference is rechecked in float64; where the backend has no float64 kernel for
    a layer (TensorFlow's 3-D max pooling), the report says so instead of failing with it."""
    import specgen.verify as verify_module

    def run(graph, dtype, *args, **kwargs):
        if dtype == "float64":
            raise RuntimeError("Value for attr 'T' of double is not in the list\nNodeDef: ...")
        return [verify_module.Row("inference", "decoder", "reconstruction", 3e-4, 3e-4, False)]

    monkeypatch.setattr(verify_module, "_run", run)
    graph = build_graph(specs_dir / "conv_autoencoder.yaml")
    report = verify_module.verify(graph)
    (row,) = report.rows
    assert not row.ok
    assert row.note == "no float64 recheck here: Value for attr 'T' of double is not in the list"
