"""The seed architectures' parameter counts and shapes, exactly.

Two layers of checks:

1. The published reference numbers (ResNetAE / VAE / VQ-VAE, res_ae, the Keras conv
   AutoEncoder) for the built-in specs at their defaults, through the API and the CLI.
2. Closed-form counting functions written here from the recipes in the seed-architecture
   reference (they never call specgen's layer code), compared with the expanded graphs over many
   other settings of every knob: levels, residual blocks, code sizes, skips on/off, non-square
   and single-channel inputs, block lists, units per block, batch norm, layer lists.

Conventions (as in the reference): trainable = every weight and bias, plus batch norm's gamma
and beta; non-trainable = batch norm's moving mean and moving variance. Shapes are (H, W, C)
without the batch axis.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specgen.api import build_graph, load_spec
from specgen.cli import main as cli_main
from specgen.summary import summary_dict

SPECS = Path(__file__).resolve().parent.parent / "specs"


@cache
def _loaded(name: str):
    return load_spec(SPECS / f"{name}.yaml")


def summarize(name: str, **overrides) -> dict:
    """The JSON summary of a built-in spec with parameter overrides."""
    return summary_dict(build_graph(_loaded(name), overrides))


# --------------------------------------------------------------------------------------------
# Closed-form counts, from the recipes alone
# --------------------------------------------------------------------------------------------


def conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
    """Weights of a k x k conv or conv-transpose (the two have the same count)."""
    return k * k * cin * cout + (cout if bias else 0)


def bn(c: int) -> tuple[int, int]:
    """(trainable gamma+beta, non-trainable moving mean+variance) of a batch norm over c."""
    return 2 * c, 2 * c


class Tally:
    """A running (trainable, non_trainable) count."""

    def __init__(self) -> None:
        self.t = 0
        self.nt = 0

    def add(self, t: int, nt: int = 0) -> None:
        self.t += t
        self.nt += nt

    def bn(self, c: int) -> None:
        self.add(*bn(c))

    @property
    def pair(self) -> tuple[int, int]:
        return self.t, self.nt


def resnet_encoder_counts(
    C: int, n_levels: int, n_blocks: int, z_dim: int, multires: bool
) -> tuple[int, int]:
    """ResNetAE encoder: stem, L levels of residual blocks + skip + downsample, output conv."""
    L = n_levels
    M = 2 ** (L + 3)
    e = Tally()
    e.add(conv(3, C, 8))  # stem conv 3x3 C -> 8
    e.bn(8)
    for i in range(L):
        c = 2 ** (i + 3)  # level width; the level's input is c wide
        for _ in range(n_blocks):  # identity shortcut: no projection
            e.add(2 * conv(3, c, c))
            e.bn(c)
            e.bn(c)
        if multires:  # k x k stride-k skip to the bottleneck
            k = 2 ** (L - i)
            e.add(conv(k, c, M))
            e.bn(M)
        e.add(conv(2, c, 2 * c))  # 2x2 stride-2 downsample c -> 2c
        e.bn(2 * c)
    e.add(conv(3, M, z_dim))  # output conv M -> z_dim, no BN
    return e.pair


def resnet_decoder_counts(
    z_in: int, C: int, n_levels: int, n_blocks: int, multires: bool
) -> tuple[int, int]:
    """ResNetAE decoder: stem to M (z_top), L levels of upsample + residual blocks + skip."""
    L = n_levels
    M = 2 ** (L + 3)
    d = Tally()
    d.add(conv(3, z_in, M))  # stem conv 3x3 z_in -> M
    d.bn(M)
    for i in range(L):
        n = 2 ** (L - i + 2)
        d.add(conv(2, 2 * n, n))  # conv-transpose 2x2 stride 2, 2n -> n
        d.bn(n)
        for _ in range(n_blocks):
            d.add(2 * conv(3, n, n))
            d.bn(n)
            d.bn(n)
        if multires:  # conv-transpose k x k of z_top, M -> n
            k = 2 ** (i + 1)
            d.add(conv(k, M, n))
            d.bn(n)
    d.add(conv(3, 8, C))  # output conv 8 -> C, no BN
    return d.pair


def resnet_model(
    H: int,
    W: int,
    C: int,
    n_levels: int,
    n_blocks: int,
    z_dim: int,
    bottleneck_dim: int,
    multires: bool,
    kind: str,
    num_embeddings: int = 512,
) -> dict:
    """Per-part counts and every shape of ResNetAE / ResNetVAE / ResNetVQVAE."""
    L = n_levels
    assert H % 2**L == 0 and W % 2**L == 0, "the recipe's shapes need H, W divisible by 2^L"
    h, w = H // 2**L, W // 2**L
    enc = resnet_encoder_counts(C, L, n_blocks, z_dim, multires)
    flat = h * w * z_dim
    D = bottleneck_dim
    if kind == "ae":
        neck = (flat * D + D) + (D * flat + flat)  # dense to the code, dense back
        neck_shape, z_in = (h, w, z_dim), z_dim
        outputs = {"reconstruction": (H, W, C), "code": (D,)}
    elif kind == "vae":
        neck = 2 * (flat * D + D) + (D * flat + flat)  # mu and logvar heads, dense back
        neck_shape, z_in = (h, w, z_dim), z_dim
        outputs = {"reconstruction": (H, W, C), "mu": (D,), "logvar": (D,)}
    elif kind == "vq":
        E, K = bottleneck_dim, num_embeddings
        neck = conv(1, z_dim, E) + K * E  # 1x1 conv to E, codebook K x E
        neck_shape, z_in = (h, w, E), E
        outputs = {"vq_loss": (), "reconstruction": (H, W, C), "perplexity": (), "indices": (h, w)}
    else:  # pragma: no cover
        raise ValueError(kind)
    dec = resnet_decoder_counts(z_in, C, L, n_blocks, multires)
    return {
        "parts": {
            "encoder": (enc, (h, w, z_dim)),
            "bottleneck": ((neck, 0), neck_shape),
            "decoder": (dec, (H, W, C)),
        },
        "total": (enc[0] + neck + dec[0], enc[1] + dec[1]),
        "outputs": outputs,
    }


def resnet_counts(
    H, W, C, n_levels, n_blocks, z_dim, bottleneck_dim, multires, kind, num_embeddings=512
) -> tuple[int, int]:
    """(trainable, non_trainable) of a whole ResNetAE-family model."""
    return resnet_model(
        H, W, C, n_levels, n_blocks, z_dim, bottleneck_dim, multires, kind, num_embeddings
    )["total"]


def _bottleneck_unit(cin: int, d3: int, d1: int, batch_norm: bool) -> tuple[int, int]:
    """1x1 -> 3x3 (strided) -> 1x1 unit; a 1x1 linear shortcut only when cin != d3."""
    u = Tally()
    u.add(conv(1, cin, d1) + conv(3, d1, d1) + conv(1, d1, d3))
    if cin != d3:
        u.add(conv(1, cin, d3))
    if batch_norm:
        for c in (d1, d1, d3):
            u.bn(c)
    return u.pair


def res_ae_model(
    H: int,
    W: int,
    C: int,
    encoder_blocks,
    decoder_blocks,
    units_per_block: int,
    code_dim: int,
    batch_norm: bool,
) -> dict:
    """Per-part counts and every shape of the res_ae family (dropout and L2 add no weights)."""
    enc = Tally()
    h, w, c = H, W, C
    for d3, d1, s in encoder_blocks:
        for u in range(units_per_block):
            stride = s if u == 0 else 1  # later units: stride 1, same depth
            enc.add(*_bottleneck_unit(c, d3, d1, batch_norm))
            h, w, c = math.ceil(h / stride), math.ceil(w / stride), d3
    enc_shape = (h, w, c)
    flat = h * w * c
    neck = (flat * code_dim + code_dim) + (code_dim * flat + flat)
    dec = Tally()
    for d3, d1, s in decoder_blocks:
        for u in range(units_per_block):
            stride = s if u == 0 else 1
            dec.add(*_bottleneck_unit(c, d3, d1, batch_norm))  # conv-transposes: same counts
            h, w, c = h * stride, w * stride, d3
    return {
        "parts": {
            "encoder": (enc.pair, enc_shape),
            "bottleneck": ((neck, 0), enc_shape),
            "decoder": (dec.pair, (h, w, c)),
        },
        "total": (enc.t + neck + dec.t, enc.nt + dec.nt),
        "outputs": {"reconstruction": (h, w, c), "code": (code_dim,)},
    }


def res_ae_counts(
    H, W, C, encoder_blocks, decoder_blocks, units_per_block=1, code_dim=128, batch_norm=False
) -> tuple[int, int]:
    return res_ae_model(
        H, W, C, encoder_blocks, decoder_blocks, units_per_block, code_dim, batch_norm
    )["total"]


def conv_ae_model(input_shape, layers) -> dict:
    """Conv AutoEncoder: 3x3/2 conv (no bias) -> BN -> ReLU per entry; mirrored transposes."""
    H, W, C = input_shape
    enc = Tally()
    h, w, c = H, W, C
    for f in layers:
        enc.add(conv(3, c, f, bias=False))
        enc.bn(f)
        h, w, c = math.ceil(h / 2), math.ceil(w / 2), f
    enc_shape = (h, w, c)
    dec = Tally()
    for f in list(reversed(layers[1:])) + [C]:  # first entry has no twin; then back to C
        dec.add(conv(3, c, f, bias=False))
        dec.bn(f)
        h, w, c = 2 * h, 2 * w, f
    return {
        "parts": {
            "encoder": (enc.pair, enc_shape),
            "bottleneck": ((0, 0), enc_shape),
            "decoder": (dec.pair, (h, w, c)),
        },
        "total": (enc.t + dec.t, enc.nt + dec.nt),
        "outputs": {"reconstruction": (h, w, c), "code": enc_shape},
    }


def conv_ae_counts(input_shape, layers) -> tuple[int, int]:
    return conv_ae_model(input_shape, layers)["total"]


def assert_matches(summary: dict, expected: dict) -> None:
    """Every count and shape of a summary against a closed-form model."""
    params = summary["parameters"]
    t, nt = expected["total"]
    assert (params["trainable"], params["non_trainable"]) == (t, nt)
    assert params["total"] == t + nt
    for part, ((pt, pnt), shape) in expected["parts"].items():
        got = summary["parts"][part]
        got_pair = (got["parameters"]["trainable"], got["parameters"]["non_trainable"])
        assert got_pair == (pt, pnt), part
        assert got["parameters"]["total"] == pt + pnt, part
        assert tuple(got["output_shape"]) == shape, part
    outputs = {name: tuple(shape) for name, shape in summary["outputs"].items()}
    assert outputs == expected["outputs"]


# --------------------------------------------------------------------------------------------
# 1. The reference table, to the unit
# --------------------------------------------------------------------------------------------

SPEC_OF = {"ae": "resnet_ae", "vae": "resnet_vae", "vq": "resnet_vqvae"}


@pytest.mark.parametrize(
    "spec, trainable, non_trainable, outputs",
    [
        ("resnet_ae", 11_368_683, 9_936, {"reconstruction": [256, 256, 3], "code": [128]}),
        (
            "resnet_vae",
            15_563_115,
            9_936,
            {"reconstruction": [256, 256, 3], "mu": [128], "logvar": [128]},
        ),
        (
            "resnet_vqvae",
            2_914_475,
            9_936,
            {"vq_loss": [], "reconstruction": [256, 256, 3], "perplexity": [], "indices": [16, 16]},
        ),
        ("res_ae_mnist", 411_954, 0, {"reconstruction": [28, 28, 1], "code": [128]}),
        ("conv_autoencoder", 49_062, 390, {"reconstruction": [32, 32, 3], "code": [4, 4, 32]}),
    ],
)
def test_reference_totals(spec, trainable, non_trainable, outputs):
    d = summarize(spec)
    assert d["parameters"] == {
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": trainable + non_trainable,
    }
    assert d["outputs"] == outputs


def test_reference_resnet_encoder_z10():
    enc = summarize("resnet_ae", z_dim=10)["parts"]["encoder"]
    assert enc["parameters"]["trainable"] == 1_338_186
    assert enc["parameters"]["non_trainable"] == 5_360
    assert enc["output_shape"] == [16, 16, 10]


def test_reference_resnet_decoder_10_channels_in():
    dec = summarize("resnet_ae", z_dim=10)["parts"]["decoder"]
    assert dec["parameters"]["trainable"] == 1_337_003
    assert dec["parameters"]["non_trainable"] == 4_576
    assert dec["output_shape"] == [256, 256, 3]


def test_reference_conv_autoencoder_encoder_alone():
    d = summarize("conv_autoencoder")
    enc = d["parts"]["encoder"]
    assert enc["parameters"]["trainable"] == 29_632
    assert enc["parameters"]["non_trainable"] == 256
    assert enc["output_shape"] == [4, 4, 32]


def test_reference_conv_autoencoder_composable_variant():
    d = summarize("conv_autoencoder", layers=[64, 32, 16])
    assert d["parameters"]["trainable"] == 32_870
    assert d["parameters"]["non_trainable"] == 326
    assert d["parts"]["encoder"]["output_shape"] == [4, 4, 16]
    assert d["outputs"] == {"reconstruction": [32, 32, 3], "code": [4, 4, 16]}


def test_cli_summary_json_resnet_ae(capsys):
    assert cli_main(["summary", str(SPECS / "resnet_ae.yaml"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["parameters"]["trainable"] == 11_368_683
    assert d["parameters"]["non_trainable"] == 9_936
    assert d["parameters"]["total"] == 11_378_619
    assert d["input_shape"] == [256, 256, 3]


def test_cli_summary_json_with_overrides(capsys):
    argv = [
        "summary",
        str(SPECS / "resnet_vae.yaml"),
        "--set",
        "n_levels=3",
        "--set",
        "input_shape=[64,48,1]",
        "--set",
        "n_residual_blocks=2",
        "--json",
    ]
    assert cli_main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert_matches(d, resnet_model(64, 48, 1, 3, 2, 128, 128, True, "vae"))


# The closed forms reproduce the reference table themselves (so they are not tuned to specgen).


def test_formulas_reproduce_reference_table():
    assert resnet_counts(256, 256, 3, 4, 8, 128, 128, True, "ae") == (11_368_683, 9_936)
    assert resnet_counts(256, 256, 3, 4, 8, 128, 128, True, "vae") == (15_563_115, 9_936)
    assert resnet_counts(256, 256, 3, 4, 8, 128, 64, True, "vq", 512) == (2_914_475, 9_936)
    assert resnet_encoder_counts(3, 4, 8, 10, True) == (1_338_186, 5_360)
    assert resnet_decoder_counts(10, 3, 4, 8, True) == (1_337_003, 4_576)
    assert res_ae_counts(28, 28, 1, [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]]) == (
        411_954,
        0,
    )
    assert conv_ae_counts((32, 32, 3), [64, 32, 32]) == (49_062, 390)
    assert conv_ae_model((32, 32, 3), [64, 32, 32])["parts"]["encoder"][0] == (29_632, 256)
    assert conv_ae_counts((32, 32, 3), [64, 32, 16]) == (32_870, 326)


# --------------------------------------------------------------------------------------------
# 2. Every other setting of the knobs
# --------------------------------------------------------------------------------------------

# (input_shape, n_levels, n_residual_blocks, z_dim, bottleneck_dim, multires_skips, kind)
RESNET_CASES = [
    # n_levels 1..5 on a small single-channel input
    ([32, 32, 1], 1, 1, 16, 32, True, "ae"),
    ([32, 32, 1], 2, 2, 8, 16, True, "ae"),
    ([32, 32, 1], 3, 0, 4, 10, True, "ae"),
    ([32, 32, 1], 4, 1, 32, 64, False, "ae"),
    ([32, 32, 1], 5, 1, 16, 8, True, "ae"),
    ([32, 32, 1], 5, 0, 7, 3, False, "vae"),
    ([32, 32, 1], 1, 3, 5, 12, False, "vae"),
    ([32, 32, 1], 3, 2, 16, 32, True, "vq"),
    ([32, 32, 1], 2, 0, 8, 4, False, "vq"),
    # non-square inputs
    ([64, 48, 3], 1, 0, 12, 20, True, "ae"),
    ([64, 48, 3], 2, 3, 24, 48, True, "vae"),
    ([64, 48, 3], 3, 1, 10, 128, True, "ae"),
    ([64, 48, 3], 3, 1, 10, 128, False, "ae"),
    ([64, 48, 3], 4, 2, 64, 16, True, "vae"),
    ([64, 48, 3], 4, 0, 32, 32, False, "vq"),
    ([64, 48, 3], 2, 1, 64, 8, True, "vq"),
    ([48, 80, 2], 3, 1, 6, 9, True, "ae"),
    ([48, 80, 2], 4, 2, 20, 6, True, "vq"),
    # larger inputs and more levels
    ([128, 128, 3], 3, 1, 128, 128, True, "ae"),
    ([128, 128, 3], 4, 2, 64, 32, True, "vae"),
    ([128, 128, 3], 5, 1, 32, 16, True, "ae"),
    ([128, 128, 3], 5, 3, 16, 16, False, "vae"),
    ([128, 128, 3], 4, 1, 128, 64, True, "vq"),
    ([128, 128, 3], 5, 0, 8, 32, True, "vq"),
    ([128, 64, 1], 5, 2, 3, 5, True, "vae"),
    # the seed sizes with other knobs
    ([256, 256, 3], 4, 3, 10, 128, True, "ae"),
    ([256, 256, 1], 4, 1, 128, 64, True, "vq"),
    ([256, 256, 3], 3, 0, 16, 16, False, "vae"),
]


def _resnet_id(case) -> str:
    shape, L, B, z, D, multires, kind = case
    return (
        f"{kind}-{'x'.join(map(str, shape))}-L{L}-B{B}-z{z}-d{D}"
        f"-{'skips' if multires else 'noskips'}"
    )


@pytest.mark.parametrize("case", RESNET_CASES, ids=[_resnet_id(c) for c in RESNET_CASES])
def test_resnet_family_matches_recipe(case):
    shape, L, B, z, D, multires, kind = case
    H, W, C = shape
    d = summarize(
        SPEC_OF[kind],
        input_shape=shape,
        n_levels=L,
        n_residual_blocks=B,
        z_dim=z,
        bottleneck_dim=D,
        multires_skips=multires,
    )
    expected = resnet_model(H, W, C, L, B, z, D, multires, kind)
    assert_matches(d, expected)
    assert (d["parameters"]["trainable"], d["parameters"]["non_trainable"]) == resnet_counts(
        H, W, C, L, B, z, D, multires, kind
    )


@pytest.mark.parametrize("num_embeddings, commitment_cost", [(16, 0.25), (1024, 0.5), (1, 1.0)])
def test_resnet_vqvae_codebook_size(num_embeddings, commitment_cost):
    d = summarize(
        "resnet_vqvae",
        input_shape=[64, 64, 3],
        n_levels=3,
        n_residual_blocks=1,
        z_dim=32,
        bottleneck_dim=24,
        num_embeddings=num_embeddings,
        commitment_cost=commitment_cost,
    )
    assert_matches(d, resnet_model(64, 64, 3, 3, 1, 32, 24, True, "vq", num_embeddings))


@pytest.mark.parametrize("kind", ["ae", "vae", "vq"])
def test_resnet_skip_parameters_are_exactly_the_skip_convs(kind):
    """Switching the multi-resolution skips off removes exactly the 2L skip conv + BN stacks."""
    L, z, D = 3, 16, 32
    on = summarize(
        SPEC_OF[kind],
        input_shape=[64, 64, 3],
        n_levels=L,
        n_residual_blocks=1,
        z_dim=z,
        bottleneck_dim=D,
        multires_skips=True,
    )
    off = summarize(
        SPEC_OF[kind],
        input_shape=[64, 64, 3],
        n_levels=L,
        n_residual_blocks=1,
        z_dim=z,
        bottleneck_dim=D,
        multires_skips=False,
    )
    M = 2 ** (L + 3)
    enc_skips = sum(conv(2 ** (L - i), 2 ** (i + 3), M) + 2 * M for i in range(L))
    dec_skips = sum(
        conv(2 ** (i + 1), M, 2 ** (L - i + 2)) + 2 * 2 ** (L - i + 2) for i in range(L)
    )
    nt_skips = sum(2 * M for _ in range(L)) + sum(2 * 2 ** (L - i + 2) for i in range(L))
    assert on["parameters"]["trainable"] - off["parameters"]["trainable"] == enc_skips + dec_skips
    assert on["parameters"]["non_trainable"] - off["parameters"]["non_trainable"] == nt_skips
    assert on["outputs"] == off["outputs"]


# (input_shape, encoder_blocks, decoder_blocks, units_per_block, code_dim, batch_norm)
RES_AE_CASES = [
    ([28, 28, 1], [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]], 2, 128, False),
    ([28, 28, 1], [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]], 3, 128, False),
    ([28, 28, 1], [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]], 1, 128, True),
    ([28, 28, 1], [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]], 2, 64, True),
    ([28, 28, 1], [[16, 8, 2]], [[1, 8, 2]], 1, 32, False),
    ([28, 28, 1], [[16, 8, 2]], [[1, 8, 2]], 3, 32, True),
    (
        [28, 28, 1],
        [[8, 4, 1], [16, 8, 2], [32, 16, 2]],
        [[16, 16, 2], [8, 8, 2], [1, 4, 1]],
        1,
        100,
        False,
    ),
    (
        [28, 28, 1],
        [[8, 4, 1], [16, 8, 2], [32, 16, 2]],
        [[16, 16, 2], [8, 8, 2], [1, 4, 1]],
        2,
        100,
        True,
    ),
    # the first unit's input depth already equals depth3: subsampling shortcut from the start
    ([32, 32, 3], [[3, 8, 2], [32, 16, 2]], [[32, 8, 2], [3, 8, 2]], 1, 16, False),
    ([32, 32, 3], [[3, 8, 2], [32, 16, 2]], [[32, 8, 2], [3, 8, 2]], 2, 16, True),
    (
        [32, 32, 3],
        [[16, 8, 2], [32, 16, 2], [64, 32, 2]],
        [[32, 32, 2], [16, 16, 2], [3, 8, 2]],
        1,
        256,
        False,
    ),
    (
        [64, 48, 3],
        [[16, 8, 2], [32, 16, 2], [64, 32, 2]],
        [[32, 32, 2], [16, 16, 2], [3, 8, 2]],
        2,
        64,
        True,
    ),
    ([64, 48, 3], [[24, 12, 4]], [[3, 12, 4]], 3, 10, True),
]


@pytest.mark.parametrize("case", RES_AE_CASES, ids=[f"res_ae{i}" for i in range(len(RES_AE_CASES))])
def test_res_ae_family_matches_recipe(case):
    shape, enc_blocks, dec_blocks, units, code_dim, batch_norm = case
    H, W, C = shape
    d = summarize(
        "res_ae_mnist",
        input_shape=shape,
        encoder_blocks=enc_blocks,
        decoder_blocks=dec_blocks,
        units_per_block=units,
        code_dim=code_dim,
        batch_norm=batch_norm,
    )
    expected = res_ae_model(H, W, C, enc_blocks, dec_blocks, units, code_dim, batch_norm)
    assert_matches(d, expected)
    assert (d["parameters"]["trainable"], d["parameters"]["non_trainable"]) == res_ae_counts(
        H, W, C, enc_blocks, dec_blocks, units, code_dim, batch_norm
    )


@pytest.mark.parametrize("dropout_rate, l2", [(0.3, 0.0), (0.5, 1e-4), (0.0, 1e-3)])
def test_res_ae_dropout_and_l2_add_no_weights(dropout_rate, l2):
    d = summarize(
        "res_ae_mnist", units_per_block=2, batch_norm=True, dropout_rate=dropout_rate, l2=l2
    )
    expected = res_ae_model(
        28, 28, 1, [[16, 8, 2], [32, 16, 2]], [[16, 16, 2], [1, 8, 2]], 2, 128, True
    )
    assert_matches(d, expected)


# (input_shape, layers)
CONV_AE_CASES = [
    ([64, 64, 1], [16, 32, 64, 128]),
    ([64, 64, 1], [8]),
    ([64, 64, 3], [32, 64]),
    ([32, 32, 3], [64, 32, 16, 8]),
    ([32, 32, 3], [16, 16, 16]),
    ([32, 32, 1], [64, 32, 32]),
    ([64, 48, 3], [32, 64, 128]),
    ([48, 80, 2], [12, 24, 48, 96]),
    ([128, 128, 3], [16, 32, 64, 128, 256]),
    ([96, 64, 4], [8, 16, 32, 64, 64]),
]


@pytest.mark.parametrize(
    "case",
    CONV_AE_CASES,
    ids=[f"{'x'.join(map(str, s))}-{'_'.join(map(str, layers))}" for s, layers in CONV_AE_CASES],
)
def test_conv_autoencoder_matches_recipe(case):
    shape, layers = case
    d = summarize("conv_autoencoder", input_shape=shape, layers=layers)
    assert_matches(d, conv_ae_model(shape, layers))
    assert (d["parameters"]["trainable"], d["parameters"]["non_trainable"]) == conv_ae_counts(
        shape, layers
    )


# --------------------------------------------------------------------------------------------
# 3. Randomised settings on top of the fixed tables (reproducible: derandomized)
# --------------------------------------------------------------------------------------------

RANDOM = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@st.composite
def resnet_settings(draw):
    L = draw(st.integers(1, 5))
    unit = 2**L
    H = unit * draw(st.integers(1, max(1, 128 // unit)))
    W = unit * draw(st.integers(1, max(1, 128 // unit)))
    C = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["ae", "vae", "vq"]))
    return (
        [H, W, C],
        L,
        draw(st.integers(0, 2)),
        draw(st.integers(1, 64)),
        draw(st.integers(1, 64)),
        draw(st.booleans()),
        kind,
    )


@RANDOM
@given(resnet_settings())
def test_resnet_family_random_settings(case):
    test_resnet_family_matches_recipe(case)


@st.composite
def conv_ae_settings(draw):
    n = draw(st.integers(1, 5))
    layers = draw(st.lists(st.integers(1, 96), min_size=n, max_size=n))
    H = 2**n * draw(st.integers(1, 4))
    W = 2**n * draw(st.integers(1, 4))
    return [H, W, draw(st.integers(1, 4))], layers


@RANDOM
@given(conv_ae_settings())
def test_conv_autoencoder_random_settings(case):
    test_conv_autoencoder_matches_recipe(case)


@st.composite
def res_ae_settings(draw):
    depth = st.integers(1, 48)
    enc = [
        [draw(depth), draw(st.integers(1, 24)), draw(st.sampled_from([1, 2]))]
        for _ in range(draw(st.integers(1, 3)))
    ]
    C = draw(st.integers(1, 3))
    # a mirrored decoder: the encoder's strides reversed, random depths, C channels out
    dec = [[draw(depth), draw(st.integers(1, 24)), s] for _, _, s in reversed(enc)]
    dec[-1][0] = C
    side = math.prod(b[2] for b in enc) * draw(st.integers(1, 4))
    return (
        [side, side, C],
        enc,
        dec,
        draw(st.integers(1, 3)),
        draw(st.integers(1, 64)),
        draw(st.booleans()),
    )


@RANDOM
@given(res_ae_settings())
def test_res_ae_family_random_settings(case):
    test_res_ae_family_matches_recipe(case)
