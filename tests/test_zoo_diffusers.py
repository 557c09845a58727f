"""The zoo: specs that build diffusers' AutoencoderKL and VQModel exactly.

For each spec and each setting of its parameters, diffusers' model and specgen's generated PyTorch
model must have the same trainable and non-trainable parameter counts (the counts the spec
predicts, too); diffusers' state dict, renamed by the map each spec documents, must load into the
generated model with every tensor matched by name and shape; and with diffusers' weights loaded,
both models must give the same outputs in inference: the reconstruction and the posterior's mean
and log-variance for AutoencoderKL, the reconstruction, the code indices and the quantizer loss
for VQModel. Small settings of both specs must also verify (PyTorch and Keras agree).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from specgen.api import build_graph  # noqa: E402
from specgen.codegen.compiled import compile_module  # noqa: E402

# Constructors only: a test that tried to reach a hub fails instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
KL_SPEC = "diffusers_autoencoder_kl.yaml"
VQ_SPEC = "diffusers_vq_model.yaml"
TOLERANCE = 1e-5

# diffusers' arguments for each spec's defaults (the Stable Diffusion 1.x VAE; the LDM VQ-f4
# first stage), and diffusers' own defaults (no arguments at all)
SD_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
VQ_F4 = {
    "block_out_channels": (128, 256, 512),
    "layers_per_block": 2,
    "latent_channels": 3,
    "num_vq_embeddings": 8192,
    "vq_embed_dim": 3,
}
LIBRARY_DEFAULTS: dict[str, Any] = {}

# (diffusers' arguments the spec's defaults stand for, spec overrides)
KL_CASES = [
    (SD_VAE, {"input_shape": [16, 16, 3]}),
    (
        LIBRARY_DEFAULTS,
        {"input_shape": [16, 16, 3], "block_out_channels": [64], "layers_per_block": 1},
    ),
    (
        SD_VAE,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [16, 32],
            "layers_per_block": 1,
            "latent_channels": 2,
            "norm_num_groups": 8,
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [32, 24, 3],
            "block_out_channels": [8, 16, 16],
            "norm_num_groups": 4,
            "latent_channels": 3,
            "mid_block_add_attention": False,
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [16, 16, 1],
            "out_channels": 3,
            "block_out_channels": [8, 16],
            "layers_per_block": 1,
            "norm_num_groups": 2,
            "act_fn": "gelu",
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [8, 8, 2],
            "block_out_channels": [4, 8],
            "layers_per_block": 3,
            "norm_num_groups": 1,
            "latent_channels": 1,
            "act_fn": "relu",
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [8, 8],
            "layers_per_block": 0,
            "norm_num_groups": 4,
            "act_fn": "swish",
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [8, 16],
            "norm_num_groups": 4,
            "latent_channels": 6,
            "use_quant_conv": False,
            "use_post_quant_conv": False,
        },
    ),
    (
        SD_VAE,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [8, 16],
            "norm_num_groups": 4,
            "use_quant_conv": False,
        },
    ),
]

VQ_CASES = [
    (VQ_F4, {"input_shape": [16, 16, 3]}),
    (
        LIBRARY_DEFAULTS,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [64],
            "layers_per_block": 1,
            "num_vq_embeddings": 256,
        },
    ),
    (
        VQ_F4,
        {
            "input_shape": [16, 16, 3],
            "block_out_channels": [16, 32],
            "layers_per_block": 1,
            "latent_channels": 4,
            "vq_embed_dim": 6,
            "num_vq_embeddings": 32,
            "norm_num_groups": 8,
        },
    ),
    (
        VQ_F4,
        {
            "input_shape": [24, 32, 1],
            "out_channels": 3,
            "block_out_channels": [8, 16, 16],
            "norm_num_groups": 4,
            "num_vq_embeddings": 16,
            "vq_embed_dim": None,
            "mid_block_add_attention": False,
            "act_fn": "gelu",
        },
    ),
]

# diffusers' module paths -> the spec's node names (see the comments at the top of the specs;
# quantize is a Keras Layer method, so the quantizer is bottleneck.quantizer)
NAMES = [
    (r"\.down_blocks\.(\d+)\.", r".down_block\1."),
    (r"\.up_blocks\.(\d+)\.", r".up_block\1."),
    (r"\.resnets\.(\d+)\.", r".resnet\1."),
    (r"\.attentions\.0\.", ".attention."),
    (r"\.downsamplers\.0\.", ".downsampler."),
    (r"\.upsamplers\.0\.", ".upsampler."),
    (r"^(post_)?quant_conv\.", r"bottleneck.\g<0>"),
    (r"^quantize\.", "bottleneck.quantizer."),
]


def diffusers_arguments(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """diffusers' constructor arguments for a spec setting: ``base`` (what the spec's defaults
    stand for) with the overrides; input_shape becomes in_channels, out_channels follows it
    unless given, lists become tuples, and the block types follow block_out_channels."""
    values = {**base, **overrides}
    *_, in_channels = values.pop("input_shape")
    values.setdefault("out_channels", in_channels)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if "block_out_channels" in kwargs:
        blocks = len(kwargs["block_out_channels"])
        kwargs.setdefault("down_block_types", ("DownEncoderBlock2D",) * blocks)
        kwargs.setdefault("up_block_types", ("UpDecoderBlock2D",) * blocks)
    return {"in_channels": in_channels, **kwargs}


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable): parameters with gradients, and the others plus the floating
    point buffers."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return trainable, frozen


def renamed(name: str) -> str:
    for pattern, replacement in NAMES:
        name = re.sub(pattern, replacement, name)
    return name


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Load ``source``'s state into ``target`` through the name map: every tensor of either must
    be matched, by name, with one of the same shape."""
    theirs = {renamed(name): tensor for name, tensor in source.state_dict().items()}
    ours = target.state_dict()
    assert sorted(theirs) == sorted(ours)
    for name, tensor in theirs.items():
        assert tensor.shape == ours[name].shape, name
    target.load_state_dict({name: tensor.clone() for name, tensor in theirs.items()}, strict=True)


def build_both(spec: str, library_class, base, overrides):
    """(graph, specgen's model, diffusers' model), after checking that their parameter counts
    agree with each other and with the spec's."""
    graph = build_graph(ZOO / spec, overrides)
    torch.manual_seed(0)
    ours = compile_module(graph, "torch").build_model()
    theirs = library_class(**diffusers_arguments(base, overrides))
    trainable, frozen, _ = graph.counts()
    assert parameter_counts(theirs) == parameter_counts(ours) == (trainable, frozen)
    return graph, ours, theirs


def sample_input(graph) -> torch.Tensor:
    height, width, channels = graph.input_shape
    return torch.randn(2, channels, height, width, generator=torch.Generator().manual_seed(1))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def case_id(case) -> str:
    _, overrides = case
    return ",".join(f"{k}={v}" for k, v in overrides.items()).replace(" ", "")


@pytest.mark.parametrize("case", KL_CASES, ids=case_id)
def test_diffusers_autoencoder_kl(case) -> None:
    base, overrides = case
    graph, ours, theirs = build_both(KL_SPEC, diffusers.AutoencoderKL, base, overrides)
    copy_weights(theirs, ours)
    # the last log-variance channel past the clamp at 20, so that the clamp is compared too
    ours_last, theirs_last = (
        (ours.bottleneck.quant_conv, theirs.quant_conv)
        if theirs.quant_conv is not None
        else (ours.encoder.conv_out, theirs.encoder.conv_out)
    )
    with torch.no_grad():
        ours_last.bias[-1] += 40.0
        theirs_last.bias[-1] += 40.0
    ours.eval()
    theirs.eval()
    x = sample_input(graph)
    with torch.no_grad():
        reconstruction, mean, logvar = ours(x)
        posterior = theirs.encode(x).latent_dist
        # forward(sample_posterior=False) decodes the posterior's mode
        want = theirs(x).sample
    assert float(logvar.max()) == 20.0
    assert max_diff(mean, posterior.mean) <= TOLERANCE
    assert max_diff(logvar, posterior.logvar) <= TOLERANCE
    assert max_diff(reconstruction, want) <= TOLERANCE


@pytest.mark.parametrize("case", VQ_CASES, ids=case_id)
def test_diffusers_vq_model(case) -> None:
    base, overrides = case
    graph, ours, theirs = build_both(VQ_SPEC, diffusers.VQModel, base, overrides)
    # diffusers starts its codebook within +-1/n of 0, where the nearest code of an encoder
    # output is decided by rounding; a trained codebook is spread like the latents
    with torch.no_grad():
        theirs.quantize.embedding.weight.normal_(generator=torch.Generator().manual_seed(2))
    copy_weights(theirs, ours)
    ours.eval()
    theirs.eval()
    x = sample_input(graph)
    with torch.no_grad():
        loss, reconstruction, _, indices = ours(x)
        want = theirs(x)
        latents = theirs.encode(x).latents
        _, _, (_, _, their_indices) = theirs.quantize(latents)
    assert torch.equal(indices, their_indices.view(indices.shape))
    assert max_diff(loss, want.commit_loss) <= TOLERANCE
    assert max_diff(reconstruction, want.sample) <= TOLERANCE


@pytest.mark.parametrize(
    ("spec", "overrides"),
    [
        # the Stable Diffusion VAE itself, on a small input
        (KL_SPEC, {"input_shape": [16, 16, 3]}),
        (
            VQ_SPEC,
            {
                "input_shape": [16, 16, 3],
                "block_out_channels": [8, 16],
                "norm_num_groups": 4,
                "num_vq_embeddings": 32,
            },
        ),
    ],
    ids=["autoencoder_kl", "vq_model"],
)
def test_diffusers_zoo_spec_verifies(spec, overrides) -> None:
    pytest.importorskip("keras")
    from specgen.verify import verify

    report = verify(build_graph(ZOO / spec, overrides))
    assert report.ok, report.table()


def test_the_defaults_are_the_stable_diffusion_vae() -> None:
    assert build_graph(ZOO / KL_SPEC).counts()[:2] == (83_653_863, 0)


@pytest.mark.parametrize(
    ("spec", "name", "value", "message"),
    [
        (KL_SPEC, "act_fn", "mish", "act_fn must be silu, swish, gelu or relu"),
        (VQ_SPEC, "act_fn", "tanh", "act_fn must be silu, swish, gelu or relu"),
        (
            KL_SPEC,
            "down_block_types",
            ["AttnDownEncoderBlock2D"] * 4,
            "must all be DownEncoderBlock2D",
        ),
        (VQ_SPEC, "up_block_types", ["AttnUpDecoderBlock2D"] * 3, "must all be UpDecoderBlock2D"),
        (KL_SPEC, "up_block_types", ["UpDecoderBlock2D"], "one entry per block_out_channels"),
        (VQ_SPEC, "norm_type", "spatial", "norm_type must be group"),
        (KL_SPEC, "layers_per_block", 0, "layers_per_block 0 needs block_out_channels all equal"),
        (VQ_SPEC, "layers_per_block", 0, "layers_per_block 0 needs block_out_channels all equal"),
    ],
)
def test_unsupported_settings_are_refused(spec, name, value, message) -> None:
    from specgen.errors import SpecErrors

    with pytest.raises(SpecErrors, match=message):
        build_graph(ZOO / spec, {name: value})


@pytest.mark.parametrize(
    ("spec", "library_class", "base"),
    [(KL_SPEC, diffusers.AutoencoderKL, SD_VAE), (VQ_SPEC, diffusers.VQModel, VQ_F4)],
    ids=["autoencoder_kl", "vq_model"],
)
def test_no_encoder_resnets_with_changing_widths_is_refused_like_diffusers(
    spec, library_class, base
) -> None:
    """Without residual blocks nothing in diffusers' encoder changes the width, so its model
    fails on the first downsampler; the spec refuses the setting."""
    from specgen.errors import SpecErrors

    overrides = {"input_shape": [8, 8, 3], "block_out_channels": [4, 8], "norm_num_groups": 4}
    overrides["layers_per_block"] = 0
    model = library_class(**diffusers_arguments(base, overrides))
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 8, 8))
    with pytest.raises(SpecErrors, match="layers_per_block 0 needs block_out_channels all equal"):
        build_graph(ZOO / spec, overrides)
