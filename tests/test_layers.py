"""Tests of the layer vocabulary: configs, shape rules, parameter and MAC counts."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from specgen.layers import (
    INITIALIZERS,
    REGISTRY,
    AnyLayer,
    LayerConfig,
    ShapeError,
    layer_kinds,
    same_padding,
    transpose_crop,
)
from specgen.layers.base import register
from specgen.layers.conv import conv_output_size

ADAPTER = TypeAdapter(AnyLayer)


def make(config: dict) -> LayerConfig:
    return ADAPTER.validate_python(config)


# ----------------------------------------------------------------------------------------------
# Table: (config, input shapes, output shapes, (trainable, non_trainable), macs)

# fmt: off
CASES = [
    # conv2d
    (
        {"kind": "conv2d", "filters": 8, "kernel_size": 3},
        [(32, 32, 3)], [(32, 32, 8)], (224, 0), 32 * 32 * 9 * 3 * 8,
    ),
    (
        {"kind": "conv2d", "filters": 16, "kernel_size": 3, "strides": 2},
        [(256, 256, 3)], [(128, 128, 16)], (448, 0), 128 * 128 * 432,
    ),
    (
        {"kind": "conv2d", "filters": 16, "kernel_size": 3, "strides": 2},
        [(250, 250, 3)], [(125, 125, 16)], (448, 0), 125 * 125 * 432,
    ),
    (
        {"kind": "conv2d", "filters": 16, "kernel_size": 3, "strides": 2},
        [(7, 7, 3)], [(4, 4, 16)], (448, 0), 4 * 4 * 432,
    ),
    (
        {"kind": "conv2d", "filters": 8, "kernel_size": 16, "strides": 16, "padding": "valid"},
        [(250, 250, 3)], [(15, 15, 8)], (6152, 0), 15 * 15 * 256 * 3 * 8,
    ),
    (
        {"kind": "conv2d", "filters": 4, "kernel_size": 3, "dilation_rate": 2, "padding": "valid"},
        [(10, 10, 4)], [(6, 6, 4)], (148, 0), 36 * 9 * 4 * 4,
    ),
    (
        {"kind": "conv2d", "filters": 8, "kernel_size": 3, "groups": 2},
        [(8, 8, 4)], [(8, 8, 8)], (152, 0), 64 * 9 * 2 * 8,
    ),
    (
        {"kind": "conv2d", "filters": 2, "kernel_size": [1, 3], "strides": [1, 2],
         "use_bias": False},
        [(5, 9, 1)], [(5, 5, 2)], (6, 0), 25 * 3 * 2,
    ),
    # the rank-neutral conv (2-D without a spec's rank) and the 1-D/3-D aliases
    (
        {"kind": "conv", "filters": 8, "kernel_size": [3, 1], "strides": [2, 1]},
        [(9, 5, 2)], [(5, 5, 8)], (56, 0), 25 * 3 * 2 * 8,
    ),
    (
        {"kind": "conv1d", "filters": 4, "kernel_size": 5, "strides": 2, "padding": [[1, 2]]},
        [(16, 3)], [(8, 4)], (64, 0), 8 * 5 * 3 * 4,
    ),
    (
        {"kind": "conv3d", "filters": 4, "kernel_size": [3, 1, 3], "strides": 2, "groups": 2},
        [(8, 8, 8, 2)], [(4, 4, 4, 4)], (40, 0), 64 * 9 * 1 * 4,
    ),
    # conv2d_transpose
    (
        {"kind": "conv2d_transpose", "filters": 64, "kernel_size": 2, "strides": 2},
        [(16, 16, 128)], [(32, 32, 64)], (32832, 0), 256 * 4 * 128 * 64,
    ),
    (
        {"kind": "conv2d_transpose", "filters": 32, "kernel_size": 3, "strides": 2,
         "use_bias": False},
        [(8, 8, 32)], [(16, 16, 32)], (9216, 0), 64 * 9 * 32 * 32,
    ),
    (
        {"kind": "conv2d_transpose", "filters": 2, "kernel_size": 3, "strides": 2,
         "padding": "valid"},
        [(8, 8, 4)], [(17, 17, 2)], (74, 0), 64 * 9 * 4 * 2,
    ),
    (
        {"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3, "groups": 2},
        [(8, 8, 6)], [(8, 8, 4)], (9 * 6 * 2 + 4, 0), 64 * 9 * 6 * 2,
    ),
    (
        {"kind": "conv_transpose", "filters": 2, "kernel_size": [4, 3], "strides": 2,
         "padding": [1, 0], "output_padding": [0, 1]},
        [(4, 4, 3)], [(8, 10, 2)], (74, 0), 16 * 12 * 3 * 2,
    ),
    (
        {"kind": "conv1d_transpose", "filters": 2, "kernel_size": 3, "strides": 2},
        [(8, 3)], [(16, 2)], (20, 0), 8 * 3 * 3 * 2,
    ),
    (
        {"kind": "conv3d_transpose", "filters": 2, "kernel_size": 2, "strides": [2, 1, 2],
         "padding": "valid"},
        [(2, 3, 4, 3)], [(4, 4, 8, 2)], (50, 0), 24 * 8 * 3 * 2,
    ),
    # dense
    ({"kind": "dense", "units": 128}, [(32768,)], [(128,)], (4194432, 0), 32768 * 128),
    ({"kind": "dense", "units": 10, "use_bias": False}, [(64,)], [(10,)], (640, 0), 640),
    # normalisation
    ({"kind": "batch_norm"}, [(16, 16, 64)], [(16, 16, 64)], (128, 128), 0),
    ({"kind": "batch_norm", "center": False}, [(10,)], [(10,)], (10, 20), 0),
    ({"kind": "layer_norm", "scale": False}, [(8, 8, 32)], [(8, 8, 32)], (32, 0), 0),
    ({"kind": "layer_norm"}, [(12,)], [(12,)], (24, 0), 0),
    ({"kind": "group_norm", "groups": 8}, [(8, 8, 32)], [(8, 8, 32)], (64, 0), 0),
    ({"kind": "instance_norm", "affine": True}, [(8, 8, 32)], [(8, 8, 32)], (64, 0), 0),
    # activations
    ({"kind": "relu"}, [(4, 4, 3)], [(4, 4, 3)], (0, 0), 0),
    ({"kind": "leaky_relu", "negative_slope": 0.2}, [(5,)], [(5,)], (0, 0), 0),
    ({"kind": "prelu"}, [(4, 4, 3)], [(4, 4, 3)], (3, 0), 0),
    ({"kind": "sigmoid"}, [(2, 2, 1)], [(2, 2, 1)], (0, 0), 0),
    ({"kind": "tanh"}, [()], [()], (0, 0), 0),
    ({"kind": "gelu", "approximate": True}, [(3,)], [(3,)], (0, 0), 0),
    ({"kind": "silu"}, [(3, 3, 3)], [(3, 3, 3)], (0, 0), 0),
    ({"kind": "elu", "alpha": 0.5}, [(3,)], [(3,)], (0, 0), 0),
    ({"kind": "linear"}, [(3,)], [(3,)], (0, 0), 0),
    ({"kind": "softmax"}, [(4, 4, 10)], [(4, 4, 10)], (0, 0), 0),
    ({"kind": "dropout", "rate": 0.5}, [(7,)], [(7,)], (0, 0), 0),
    # pooling and upsampling
    ({"kind": "max_pool", "pool_size": 2}, [(32, 32, 16)], [(16, 16, 16)], (0, 0), 0),
    ({"kind": "max_pool", "pool_size": 3, "strides": 2}, [(7, 7, 1)], [(3, 3, 1)], (0, 0), 0),
    (
        {"kind": "max_pool", "pool_size": 3, "strides": 1, "padding": "same"},
        [(5, 5, 2)], [(5, 5, 2)], (0, 0), 0,
    ),
    ({"kind": "avg_pool", "pool_size": 2, "padding": "same"}, [(7, 7, 3)], [(4, 4, 3)], (0, 0), 0),
    ({"kind": "upsample"}, [(8, 8, 3)], [(16, 16, 3)], (0, 0), 0),
    (
        {"kind": "upsample", "size": [2, 3], "interpolation": "bilinear"},
        [(4, 5, 1)], [(8, 15, 1)], (0, 0), 0,
    ),
    # layout
    ({"kind": "flatten"}, [(4, 4, 8)], [(128,)], (0, 0), 0),
    ({"kind": "flatten"}, [(10,)], [(10,)], (0, 0), 0),
    ({"kind": "reshape", "target_shape": [4, 4, 8]}, [(128,)], [(4, 4, 8)], (0, 0), 0),
    ({"kind": "crop2d", "cropping": [[1, 0], [0, 1]]}, [(33, 33, 8)], [(32, 32, 8)], (0, 0), 0),
    ({"kind": "crop2d", "cropping": 2}, [(10, 10, 1)], [(6, 6, 1)], (0, 0), 0),
    ({"kind": "pad", "padding": [[1, 0], [0, 2]]}, [(4, 4, 1)], [(5, 6, 1)], (0, 0), 0),
    ({"kind": "crop2d", "cropping": [1, 2]}, [(10, 10, 1)], [(8, 6, 1)], (0, 0), 0),
    ({"kind": "crop", "cropping": [[0, 1], 2]}, [(10, 10, 1)], [(9, 6, 1)], (0, 0), 0),
    # merges
    ({"kind": "add"}, [(16, 16, 128)] * 2, [(16, 16, 128)], (0, 0), 0),
    ({"kind": "add"}, [(5,)] * 3, [(5,)], (0, 0), 0),
    ({"kind": "concat"}, [(16, 16, 64), (16, 16, 32)], [(16, 16, 96)], (0, 0), 0),
    ({"kind": "concat"}, [(3,), (4,), (1,)], [(8,)], (0, 0), 0),
    ({"kind": "identity"}, [(2, 2, 2)], [(2, 2, 2)], (0, 0), 0),
    # latent
    ({"kind": "vae_sampling"}, [(32,), (32,)], [(32,)], (0, 0), 0),
    ({"kind": "diagonal_gaussian"}, [(16, 16, 8)], [(16, 16, 4), (16, 16, 4)], (0, 0), 0),
    (
        {"kind": "vector_quantizer", "num_embeddings": 512},
        [(16, 16, 64)], [(16, 16, 64), (), (), (16, 16)], (32768, 0), 256 * 512 * 64,
    ),
    # attention (Stable Diffusion's VAE mid-block: 64x64x512, 32 groups, one head)
    (
        {"kind": "attention", "norm_groups": 32},
        [(64, 64, 512)], [(64, 64, 512)], (2 * 512 + 4 * (512 * 512 + 512), 0),
        4 * 4096 * 512 * 512 + 2 * 4096 * 4096 * 512,
    ),
    # compression (the transforms of Balle et al.'s models: 128 or 192 channels)
    ({"kind": "gdn"}, [(32, 32, 128)], [(32, 32, 128)], (128 + 128**2, 0), 1024 * 128**2),
    ({"kind": "igdn"}, [(16, 16, 192)], [(16, 16, 192)], (192 + 192**2, 0), 256 * 192**2),
    # element-wise
    ({"kind": "multiply"}, [(8, 8, 32), (8, 8, 32)], [(8, 8, 32)], (0, 0), 0),
    ({"kind": "scale", "factor": 0.5}, [(8, 8, 32)], [(8, 8, 32)], (0, 0), 0),
    # factorized entropy model (Balle et al.'s 192-channel latent; 61 parameters per channel)
    ({"kind": "entropy_bottleneck"}, [(16, 16, 192)], [(16, 16, 192)] * 2, (192 * 61, 0), 0),
]
# fmt: on


@pytest.mark.parametrize(
    "config,inputs,outputs,params,macs",
    CASES,
    ids=[f"{c[0]['kind']}-{i}" for i, c in enumerate(CASES)],
)
def test_table(config, inputs, outputs, params, macs):
    layer = make(config)
    assert layer.output_shapes(inputs) == outputs
    assert layer.param_counts(inputs) == params
    assert layer.macs(inputs, outputs) == macs


def test_every_kind_in_table():
    assert {c[0]["kind"] for c in CASES} == set(REGISTRY)


# ----------------------------------------------------------------------------------------------
# Padding arithmetic


def test_same_padding_known():
    assert same_padding(256, 3, 2, 1) == (0, 1)
    assert same_padding(256, 2, 2, 1) == (0, 0)
    assert same_padding(255, 3, 2, 1) == (1, 1)
    assert same_padding(32, 3, 1, 1) == (1, 1)
    assert same_padding(32, 3, 1, 2) == (2, 2)
    assert same_padding(7, 16, 16, 1) == (4, 5)


def test_transpose_crop_known():
    assert transpose_crop(16, 3, 2, 1, "same") == (0, 1)
    assert transpose_crop(16, 2, 2, 1, "same") == (0, 0)
    assert transpose_crop(14, 1, 2, 1, "same") == (0, -1)
    assert transpose_crop(16, 4, 2, 1, "same") == (1, 1)
    assert transpose_crop(16, 3, 2, 1, "valid") == (0, 0)


@given(
    size=st.integers(1, 300),
    kernel=st.integers(1, 20),
    stride=st.integers(1, 20),
    dilation=st.integers(1, 4),
)
def test_same_padding_gives_same_output(size, kernel, stride, dilation):
    before, after = same_padding(size, kernel, stride, dilation)
    assert 0 <= before <= after <= before + 1
    padded = size + before + after
    assert conv_output_size(padded, kernel, stride, dilation, "valid") == math.ceil(size / stride)
    assert conv_output_size(size, kernel, stride, dilation, "same") == math.ceil(size / stride)


@given(
    size=st.integers(1, 300),
    kernel=st.integers(1, 20),
    stride=st.integers(1, 20),
    dilation=st.integers(1, 4),
    padding=st.sampled_from(["same", "valid"]),
)
def test_transpose_crop_reaches_target(size, kernel, stride, dilation, padding):
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    before, after = transpose_crop(size, kernel, stride, dilation, padding)
    assert before >= 0
    target = size * stride if padding == "same" else full
    assert full - before - after == target


def test_explicit_padding_and_output_crop():
    conv = make({"kind": "conv2d", "filters": 1, "kernel_size": [3, 2], "strides": 2})
    assert conv.explicit_padding((255, 256, 1)) == ((1, 1), (0, 0))
    valid = make({"kind": "conv2d", "filters": 1, "kernel_size": 3, "padding": "valid"})
    assert valid.explicit_padding((9, 9, 1)) == ((0, 0), (0, 0))
    deconv = make({"kind": "conv2d_transpose", "filters": 1, "kernel_size": [3, 1], "strides": 2})
    assert deconv.output_crop((16, 14, 1)) == ((0, 1), (0, -1))
    pool = make({"kind": "max_pool", "pool_size": 3, "strides": 2, "padding": "same"})
    assert pool.explicit_padding((256, 255, 1)) == ((0, 1), (1, 1))


# ----------------------------------------------------------------------------------------------
# Shape errors


def shape_error(config: dict, inputs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        make(config).output_shapes(inputs)
    return info.value


def test_group_norm_groups_must_divide_channels():
    err = shape_error({"kind": "group_norm", "groups": 5}, [(8, 8, 32)])
    assert "5" in err.message and "32" in err.message
    assert err.field == "groups"


def test_conv_valid_kernel_too_big():
    config = {"kind": "conv2d", "filters": 1, "kernel_size": 5, "padding": "valid"}
    err = shape_error(config, [(3, 3, 1)])
    assert err.message == "kernel 5x5 does not fit a 3x3 input with padding 'valid'"
    assert err.field == "kernel_size"


def test_conv_rank_and_groups():
    shape_error({"kind": "conv2d", "filters": 1, "kernel_size": 3}, [(64,)])
    err = shape_error({"kind": "conv2d", "filters": 4, "kernel_size": 3, "groups": 2}, [(8, 8, 3)])
    assert err.field == "groups"
    shape_error({"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3}, [(8, 8)])


def test_dense_on_image_hints_flatten():
    err = shape_error({"kind": "dense", "units": 4}, [(4, 4, 2)])
    assert err.hint == "insert a flatten layer before it"
    shape_error({"kind": "dense", "units": 4}, [()])


def test_add_mismatch():
    err = shape_error({"kind": "add"}, [(16, 16, 128), (15, 15, 128)])
    assert err.message == "cannot add tensors of shapes (16, 16, 128) and (15, 15, 128)"
    assert err.mismatch == [1]
    err = shape_error({"kind": "add"}, [(4,), (5,), (5,)])
    assert err.mismatch == [0]


def test_concat_mismatch():
    err = shape_error({"kind": "concat"}, [(16, 16, 64), (8, 8, 64)])
    assert "(16, 16, 64)" in err.message and "(8, 8, 64)" in err.message
    assert err.mismatch == [1]
    err = shape_error({"kind": "concat"}, [(16, 16, 64), (64,), (16, 16, 2)])
    assert err.mismatch == [1]
    shape_error({"kind": "concat"}, [(), ()])


def test_other_shape_errors():
    err = shape_error({"kind": "reshape", "target_shape": [3, 3]}, [(10,)])
    assert "10" in err.message and "9" in err.message
    shape_error({"kind": "crop2d", "cropping": 5}, [(10, 10, 1)])
    shape_error({"kind": "vae_sampling"}, [(8,), (4,)])
    shape_error({"kind": "vector_quantizer", "num_embeddings": 8}, [(64,)])
    shape_error({"kind": "softmax"}, [()])
    shape_error({"kind": "max_pool", "pool_size": 4}, [(3, 3, 1)])
    shape_error({"kind": "upsample"}, [(3,)])
    shape_error({"kind": "flatten"}, [()])
    shape_error({"kind": "batch_norm"}, [(4, 4)])


def test_arity():
    conv = make({"kind": "conv2d", "filters": 1, "kernel_size": 1})
    with pytest.raises(ShapeError):
        conv.output_shapes([(4, 4, 1), (4, 4, 1)])
    with pytest.raises(ShapeError):
        make({"kind": "add"}).output_shapes([(4,)])
    with pytest.raises(ShapeError):
        make({"kind": "dense", "units": 1}).param_counts([])
    assert REGISTRY["conv2d"].check_arity(1) is None
    assert REGISTRY["conv2d"].check_arity(2) == "conv2d takes exactly 1 input, got 2"
    assert REGISTRY["add"].check_arity(1) == "add takes at least 2 inputs, got 1"
    assert REGISTRY["add"].check_arity(7) is None
    assert REGISTRY["vae_sampling"].check_arity(3) == "vae_sampling takes exactly 2 inputs, got 3"


# ----------------------------------------------------------------------------------------------
# Conformance of every registered kind

MINIMAL: dict[str, tuple[dict, list[tuple[int, ...]]]] = {
    "conv": ({"filters": 2, "kernel_size": 3}, [(8, 8, 2)]),
    "conv1d": ({"filters": 2, "kernel_size": 3}, [(8, 2)]),
    "conv2d": ({"filters": 2, "kernel_size": 3}, [(8, 8, 2)]),
    "conv3d": ({"filters": 2, "kernel_size": 3}, [(4, 4, 4, 2)]),
    "conv_transpose": ({"filters": 2, "kernel_size": 3}, [(8, 8, 2)]),
    "conv1d_transpose": ({"filters": 2, "kernel_size": 3}, [(8, 2)]),
    "conv2d_transpose": ({"filters": 2, "kernel_size": 3}, [(8, 8, 2)]),
    "conv3d_transpose": ({"filters": 2, "kernel_size": 3}, [(4, 4, 4, 2)]),
    "dense": ({"units": 3}, [(5,)]),
    "batch_norm": ({}, [(4, 4, 2)]),
    "layer_norm": ({}, [(4, 4, 2)]),
    "group_norm": ({"groups": 2}, [(4, 4, 2)]),
    "instance_norm": ({}, [(4, 4, 2)]),
    "relu": ({}, [(4, 4, 2)]),
    "leaky_relu": ({"negative_slope": 0.01}, [(4, 4, 2)]),
    "prelu": ({}, [(4, 4, 2)]),
    "sigmoid": ({}, [(4, 4, 2)]),
    "tanh": ({}, [(4, 4, 2)]),
    "gelu": ({}, [(4, 4, 2)]),
    "silu": ({}, [(4, 4, 2)]),
    "elu": ({}, [(4, 4, 2)]),
    "linear": ({}, [(4, 4, 2)]),
    "softmax": ({}, [(4, 4, 2)]),
    "dropout": ({"rate": 0.1}, [(4, 4, 2)]),
    "max_pool": ({"pool_size": 2}, [(4, 4, 2)]),
    "avg_pool": ({"pool_size": 2}, [(4, 4, 2)]),
    "upsample": ({}, [(4, 4, 2)]),
    "flatten": ({}, [(4, 4, 2)]),
    "reshape": ({"target_shape": [32]}, [(4, 4, 2)]),
    "crop": ({"cropping": 1}, [(4, 4, 2)]),
    "crop2d": ({"cropping": 1}, [(4, 4, 2)]),
    "pad": ({"padding": 1}, [(4, 4, 2)]),
    "add": ({}, [(4, 4, 2), (4, 4, 2)]),
    "concat": ({}, [(4, 4, 2), (4, 4, 3)]),
    "identity": ({}, [(4, 4, 2)]),
    "vae_sampling": ({}, [(6,), (6,)]),
    "diagonal_gaussian": ({}, [(4, 4, 6)]),
    "vector_quantizer": ({"num_embeddings": 4}, [(4, 4, 2)]),
    "attention": ({"norm_groups": 2}, [(4, 4, 2)]),
    "gdn": ({}, [(4, 4, 2)]),
    "igdn": ({}, [(4, 4, 2)]),
    "multiply": ({}, [(4, 4, 2), (4, 4, 2)]),
    "scale": ({"factor": 2.0}, [(4, 4, 2)]),
    "entropy_bottleneck": ({}, [(4, 4, 2)]),
}


def test_minimal_covers_registry():
    assert sorted(MINIMAL) == layer_kinds()


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_conformance(kind):
    cls = REGISTRY[kind]
    fields, inputs = MINIMAL[kind]
    layer = cls(**fields)
    assert layer.kind == kind
    assert make({"kind": kind, **fields}) == layer

    # class-level metadata
    assert isinstance(cls.short_name, str) and cls.short_name
    assert cls.min_inputs >= 1
    assert cls.max_inputs is None or cls.max_inputs >= cls.min_inputs
    assert isinstance(cls.has_weights, bool)
    assert cls.check_arity(len(inputs)) is None

    # rules return exact, non-negative ints
    outputs = layer.output_shapes(inputs)
    assert len(outputs) == len(cls.output_names)
    for shape in outputs:
        assert isinstance(shape, tuple)
        assert all(type(d) is int and d >= 1 for d in shape)
    trainable, frozen = layer.param_counts(inputs)
    assert type(trainable) is int and type(frozen) is int
    assert trainable >= 0 and frozen >= 0
    if not cls.has_weights:
        assert (trainable, frozen) == (0, 0)
    macs = layer.macs(inputs, outputs)
    assert type(macs) is int and macs >= 0

    # schema, immutability, round trips, unknown fields
    schema = cls.model_json_schema()
    assert schema["properties"]["kind"]["const"] == kind
    assert schema.get("additionalProperties") is False
    with pytest.raises(ValidationError):
        layer.kind = "other"
    hash(layer)
    assert cls.model_validate(layer.model_dump()) == layer
    assert cls.model_validate_json(layer.model_dump_json()) == layer
    with pytest.raises(ValidationError):
        cls(**fields, bogus_option=1)


def test_union_schema():
    schema = ADAPTER.json_schema()
    assert "discriminator" in schema


def test_duplicate_registration_fails():
    with pytest.raises(RuntimeError):

        @register
        class AnotherReLU(LayerConfig):
            kind: Literal["relu"] = "relu"

    assert REGISTRY["relu"].__name__ == "ReLU"


# ----------------------------------------------------------------------------------------------
# Normalisation of configs


def test_pairs_are_normalised():
    conv = make({"kind": "conv2d", "filters": 4, "kernel_size": [3, 5], "strides": 1})
    assert conv.kernel_size == (3, 5)
    assert conv.strides == (1, 1)
    assert conv.dilation_rate == (1, 1)
    pool = make({"kind": "avg_pool", "pool_size": [2, 3]})
    assert pool.strides == (2, 3)
    assert make({"kind": "upsample", "size": 3}).size == (3, 3)
    assert make({"kind": "crop2d", "cropping": [[1, 2], [3, 4]]}).cropping == ((1, 2), (3, 4))
    assert make({"kind": "reshape", "target_shape": [2, 3]}).target_shape == (2, 3)
    assert set(INITIALIZERS) >= {"glorot_uniform", "zeros"}


# ----------------------------------------------------------------------------------------------
# Invalid configs

INVALID = [
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "strides": 0},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "strides": -1},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "strides": [2, 0]},
    {"kind": "conv2d", "filters": 4, "kernel_size": 0},
    {"kind": "conv2d", "filters": 4, "kernel_size": [3, 3, 3]},
    {"kind": "conv2d", "filters": 4, "kernel_size": 4097},
    {"kind": "conv2d", "filters": 4, "kernel_size": "3"},
    {"kind": "conv2d", "filters": 4, "kernel_size": True},
    {"kind": "conv2d", "filters": 0, "kernel_size": 3},
    {"kind": "conv2d", "filters": 2**20 + 1, "kernel_size": 1},
    {"kind": "conv2d", "filters": 6, "kernel_size": 3, "groups": 4},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "padding": "full"},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "kernel_initializer": "orthogonal"},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "use_bias": "yes"},
    {"kind": "conv2d", "filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2},
    {"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2},
    {"kind": "conv2d_transpose", "filters": 4, "kernel_size": 3, "groups": 3},
    {"kind": "conv2d"},
    {"kind": "dense", "units": 4, "bias_initializer": "random"},
    {"kind": "dense", "units": 2.5},
    {"kind": "dropout", "rate": 1.0},
    {"kind": "dropout", "rate": -0.1},
    {"kind": "dropout"},
    {"kind": "leaky_relu"},
    {"kind": "leaky_relu", "negative_slope": -0.1},
    {"kind": "leaky_relu", "negative_slope": float("inf")},
    {"kind": "elu", "alpha": float("nan")},
    {"kind": "batch_norm", "epsilon": 0},
    {"kind": "batch_norm", "momentum": 1.0},
    {"kind": "batch_norm", "momentum": -0.5},
    {"kind": "group_norm"},
    {"kind": "max_pool", "pool_size": 2, "strides": 0},
    {"kind": "upsample", "interpolation": "bicubic"},
    {"kind": "reshape", "target_shape": []},
    {"kind": "reshape", "target_shape": [1, 2, 3, 4]},
    {"kind": "reshape", "target_shape": [4, 0]},
    {"kind": "crop2d", "cropping": -1},
    {"kind": "crop2d", "cropping": [[1, 2, 3], [0, 0]]},
    {"kind": "vector_quantizer", "num_embeddings": 0},
    {"kind": "vector_quantizer", "num_embeddings": 8, "commitment_cost": -1},
    {"kind": "no_such_layer"},
]


@pytest.mark.parametrize("config", INVALID, ids=[f"{c['kind']}-{i}" for i, c in enumerate(INVALID)])
def test_invalid_config(config):
    with pytest.raises(ValidationError):
        make(config)
