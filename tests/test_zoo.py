"""The zoo: specs that build MONAI's networks exactly.

The specs are rank-generic: ``input_shape`` ``[H, W, C]`` builds MONAI's network with
``spatial_dims=2``, ``[D, H, W, C]`` with 3 and ``[L, C]`` with 1. For each zoo spec and each
setting of its parameters, MONAI's model and specgen's generated
PyTorch model must have the same trainable and non-trainable parameter counts (the counts the
spec predicts, too); MONAI's tensors, paired with specgen's one for one in order of registration,
must fit by shape; and with MONAI's weights loaded, both models must give the same output, in
inference and (where the network is deterministic: no dropout) in training. At the defaults the
generated PyTorch and Keras models must also agree (``specgen.verify``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
nets = pytest.importorskip("monai.networks.nets")

from specgen.api import build_graph  # noqa: E402
from specgen.codegen.compiled import compile_module  # noqa: E402

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
TOLERANCE = 1e-5

# The spec defaults of MONAI's required arguments (the others take MONAI's own defaults, so the
# tests below leave them out of MONAI's call: that checks the spec's defaults are MONAI's).
AUTOENCODER_DEFAULTS = {"input_shape": [64, 64, 1], "channels": [16, 32, 64], "strides": [2, 2, 2]}
UNET_DEFAULTS = {"input_shape": [64, 64, 1], "channels": [16, 32, 64, 128], "strides": [2, 2, 2]}

# (spec overrides, whether training mode is deterministic and so compared too)
AUTOENCODER_CASES = [
    ({}, True),
    (
        {
            "input_shape": [32, 32, 3],
            "channels": [8, 16, 32],
            "strides": [2, 1, 2],
            "num_res_units": 2,
            "kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 1],
            "channels": [4, 8],
            "strides": [1, 2],
            "num_res_units": 1,
            "up_kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 1],
            "channels": [4],
            "strides": [2],
            "inter_channels": [8, 8, 4],
            "inter_dilations": [1, 2, 1],
        },
        True,
    ),
    (
        {
            "input_shape": [64, 64, 3],
            "channels": [8, 16],
            "strides": [2, 2],
            "inter_channels": [16],
            "num_inter_units": 0,
            "out_channels": 2,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 1],
            "channels": [4, 8],
            "strides": [2, 2],
            "num_res_units": 1,
            "kernel_size": 5,
            "up_kernel_size": 5,
            "padding": 2,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 3],
            "channels": [8, 16],
            "strides": [2, 2],
            "act": "LEAKYRELU",
            "norm": "BATCH",
            "bias": False,
            "num_res_units": 1,
        },
        True,
    ),
    ({"input_shape": [32, 32, 1], "act": "RELU", "norm": None, "dropout": 0.2}, False),
    # 3-D (spatial_dims=3) and 1-D (spatial_dims=1)
    ({"input_shape": [16, 16, 16, 1], "channels": [4, 8, 16], "strides": [2, 2, 2]}, True),
    (
        {
            "input_shape": [8, 16, 16, 2],
            "channels": [4, 8],
            "strides": [2, 2],
            "num_res_units": 2,
            "kernel_size": 5,
            "inter_channels": [8, 8],
            "inter_dilations": [1, 2],
            "norm": "BATCH",
        },
        True,
    ),
    ({"input_shape": [64, 1], "channels": [4, 8, 16], "strides": [2, 2, 2]}, True),
    (
        {
            "input_shape": [48, 3],
            "channels": [8, 16],
            "strides": [2, 1],
            "num_res_units": 1,
            "up_kernel_size": 5,
            "act": "LEAKYRELU",
        },
        True,
    ),
    # even kernels where MONAI takes them: an explicit padding, or dilations that make the same
    # padding whole (a padding of 0 gives residual units MONAI's same padding)
    (
        {
            "input_shape": [16, 16, 1],
            "channels": [4, 8],
            "strides": [2, 2],
            "kernel_size": 4,
            "padding": 1,
            "out_channels": 2,
        },
        True,
    ),
    (
        {
            "input_shape": [16, 16, 1],
            "channels": [4],
            "strides": [2],
            "kernel_size": 4,
            "padding": 0,
            "inter_channels": [8],
            "inter_dilations": [2],
            "num_inter_units": 1,
            "out_channels": 3,
        },
        True,
    ),
]

UNET_CASES = [
    ({}, True),
    (
        {
            "input_shape": [32, 32, 3],
            "channels": [8, 16, 32],
            "strides": [2, 1],
            "num_res_units": 2,
            "kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 1],
            "out_channels": 2,
            "channels": [4, 8],
            "strides": [2],
            "num_res_units": 1,
            "up_kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [64, 64, 1],
            "out_channels": 2,
            "channels": [4, 8, 16],
            "strides": [1, 2],
            "kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 3],
            "channels": [8, 16, 16],
            "strides": [2, 2],
            "act": "RELU",
            "norm": "BATCH",
            "dropout": None,
            "num_res_units": 1,
        },
        True,
    ),
    (
        {"input_shape": [32, 32, 1], "channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.2},
        False,
    ),
    # 3-D (spatial_dims=3) and 1-D (spatial_dims=1)
    ({"input_shape": [16, 16, 16, 1], "channels": [4, 8, 16], "strides": [2, 2]}, True),
    (
        {
            "input_shape": [8, 16, 16, 2],
            "out_channels": 3,
            "channels": [4, 8, 16],
            "strides": [2, 2],
            "num_res_units": 2,
            "norm": "BATCH",
            "act": "RELU",
        },
        True,
    ),
    ({"input_shape": [64, 1], "channels": [4, 8, 16, 32], "strides": [2, 2, 2]}, True),
    (
        {
            "input_shape": [40, 2],
            "channels": [8, 16, 16],
            "strides": [2, 1],
            "num_res_units": 1,
            "kernel_size": 5,
            "up_kernel_size": 5,
        },
        True,
    ),
]


def monai_arguments(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """MONAI's constructor arguments for a spec setting: the spec's input_shape ``(*spatial, C)``
    gives spatial_dims and in_channels, out_channels defaults to C, and lists become tuples."""
    values = {**defaults, **overrides}
    *spatial, in_channels = values.pop("input_shape")
    values.setdefault("out_channels", in_channels)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return {"spatial_dims": len(spatial), "in_channels": in_channels, **kwargs}


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable): parameters with gradients, and the others plus the floating
    point buffers (running statistics; not batch norm's integer step counter)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return trainable, frozen


def copy_weights(source: torch.nn.Module, target: torch.nn.Module, reorder=None) -> None:
    """Load ``source``'s state into ``target``, pairing their tensors in order of registration
    (``source``'s as ``reorder`` rearranges it, when given); every tensor must be paired, each
    with one of the same shape."""
    theirs = list(source.state_dict().items())
    if reorder is not None:
        theirs = reorder(theirs)
    ours = list(target.state_dict().items())
    assert len(theirs) == len(ours), (
        f"{len(theirs)} tensors in the library's model, {len(ours)} in specgen's: "
        f"{[n for n, _ in theirs]} vs {[n for n, _ in ours]}"
    )
    state = {}
    for (their_name, their_tensor), (our_name, our_tensor) in zip(theirs, ours, strict=True):
        assert their_tensor.shape == our_tensor.shape, (
            f"{their_name} {tuple(their_tensor.shape)} pairs with "
            f"{our_name} {tuple(our_tensor.shape)}"
        )
        state[our_name] = their_tensor.clone()
    target.load_state_dict(state, strict=True)


def check_same_network(spec: str, library_class, defaults, overrides, train: bool) -> None:
    graph = build_graph(ZOO / spec, overrides)
    torch.manual_seed(0)
    ours = compile_module(graph, "torch").build_model()
    theirs = library_class(**monai_arguments(defaults, overrides))

    trainable, frozen, _ = graph.counts()
    assert parameter_counts(theirs) == parameter_counts(ours) == (trainable, frozen)
    copy_weights(theirs, ours)

    *spatial, channels = graph.input_shape
    x = torch.randn(2, channels, *spatial, generator=torch.Generator().manual_seed(1))
    modes = ("eval", "train") if train else ("eval",)
    for mode in modes:
        getattr(theirs, mode)()
        getattr(ours, mode)()
        with torch.no_grad():
            want = theirs(x)
            have = ours(x)
        assert have.shape == want.shape, mode
        diff = (have - want).abs().max().item()
        assert diff <= TOLERANCE, f"{mode}: max |diff| {diff:.3g}"


def case_id(case) -> str:
    overrides, _ = case
    return ",".join(f"{k}={v}" for k, v in overrides.items()).replace(" ", "") or "defaults"


@pytest.mark.parametrize("case", AUTOENCODER_CASES, ids=case_id)
def test_monai_autoencoder(case) -> None:
    overrides, train = case
    check_same_network(
        "monai_autoencoder.yaml", nets.AutoEncoder, AUTOENCODER_DEFAULTS, overrides, train
    )


@pytest.mark.parametrize("case", UNET_CASES, ids=case_id)
def test_monai_unet(case) -> None:
    overrides, train = case
    check_same_network("monai_unet.yaml", nets.UNet, UNET_DEFAULTS, overrides, train)


@pytest.mark.parametrize("act", ["ELU", "GELU", "SIGMOID", "TANH", "SWISH", "prelu", None])
def test_monai_activation_names(act) -> None:
    overrides = {"input_shape": [32, 32, 1], "channels": [4, 8], "strides": [2], "act": act}
    check_same_network("monai_unet.yaml", nets.UNet, UNET_DEFAULTS, overrides, train=True)


@pytest.mark.parametrize(
    "spec", ["monai_autoencoder.yaml", "monai_unet.yaml", "monai_varautoencoder.yaml"]
)
def test_zoo_spec_verifies_at_its_defaults(spec) -> None:
    pytest.importorskip("keras")
    from specgen.verify import verify

    report = verify(build_graph(ZOO / spec))
    assert report.ok, report.table()


@pytest.mark.parametrize(
    "spec", ["monai_autoencoder.yaml", "monai_unet.yaml", "monai_varautoencoder.yaml"]
)
@pytest.mark.parametrize("input_shape", [[16, 16, 16, 1], [64, 2]], ids=["3d", "1d"])
def test_zoo_spec_verifies_in_1d_and_3d(spec, input_shape) -> None:
    pytest.importorskip("keras")
    from specgen.verify import verify

    overrides = {"input_shape": input_shape, "channels": [4, 8, 16], "strides": [2, 2, 2]}
    report = verify(build_graph(ZOO / spec, overrides))
    assert report.ok, report.table()


# settings MONAI refuses with "Same padding not available": an even kernel whose same padding
# MONAI computes (no padding given, or 0 for a residual unit)
EVEN_KERNEL_CASES = [
    ("monai_autoencoder.yaml", nets.AutoEncoder, {"kernel_size": 4}),
    ("monai_autoencoder.yaml", nets.AutoEncoder, {"up_kernel_size": 2}),
    (
        "monai_autoencoder.yaml",
        nets.AutoEncoder,
        {"kernel_size": 4, "padding": 0, "num_res_units": 1},
    ),
    ("monai_unet.yaml", nets.UNet, {"kernel_size": 4}),
    ("monai_unet.yaml", nets.UNet, {"up_kernel_size": 2, "num_res_units": 1}),
    ("monai_varautoencoder.yaml", nets.VarAutoEncoder, {"kernel_size": 2}),
    ("monai_varautoencoder.yaml", nets.VarAutoEncoder, {"up_kernel_size": 4}),
]


@pytest.mark.parametrize(
    "case", EVEN_KERNEL_CASES, ids=lambda c: c[0].split(".")[0] + ":" + case_id((c[2], None))
)
def test_even_kernels_are_refused_where_monai_refuses_them(case) -> None:
    from specgen.errors import SpecErrors

    spec, library_class, overrides = case
    if library_class is nets.VarAutoEncoder:
        arguments = vae_arguments(overrides)
    else:
        defaults = AUTOENCODER_DEFAULTS if library_class is nets.AutoEncoder else UNET_DEFAULTS
        arguments = monai_arguments(defaults, overrides)
    with pytest.raises(NotImplementedError, match="Same padding not available"):
        library_class(**arguments)
    with pytest.raises(SpecErrors, match="MONAI's same padding is not available for kernel_size"):
        build_graph(ZOO / spec, overrides)


def test_unknown_activation_names_the_accepted_ones() -> None:
    from specgen.errors import SpecErrors

    for spec in ("monai_unet.yaml", "monai_autoencoder.yaml", "monai_varautoencoder.yaml"):
        with pytest.raises(SpecErrors, match="act must be PRELU, RELU, .* or null"):
            build_graph(ZOO / spec, {"act": "mish"})
        with pytest.raises(SpecErrors, match="norm must be INSTANCE, BATCH or null"):
            build_graph(ZOO / spec, {"norm": "GROUP"})


# ----------------------------------------------------------------------------------------------
# VarAutoEncoder: the AutoEncoder's encoder and decoder around a variational latent

# MONAI's docstring example, VarAutoEncoder(2, (1, 32, 32), 1, 2, (16, 32, 64), (1, 2, 2))
VAE_DEFAULTS = {
    "input_shape": [32, 32, 1],
    "out_channels": 1,
    "latent_size": 2,
    "channels": [16, 32, 64],
    "strides": [1, 2, 2],
}

# (spec overrides, whether training mode is compared too: with no dropout, the only randomness
# is the latent's noise, drawn alike from the same seed)
VAE_CASES = [
    ({}, True),
    ({"use_mean_at_inference": True}, True),
    ({"use_sigmoid": False}, True),
    ({"num_res_units": 1, "latent_size": 8}, True),
    (
        {
            "num_res_units": 2,
            "use_sigmoid": False,
            "use_mean_at_inference": True,
            "channels": [8, 16],
            "strides": [2, 2],
            "kernel_size": 5,
            "up_kernel_size": 5,
        },
        True,
    ),
    (
        {
            "input_shape": [32, 32, 3],
            "out_channels": 2,
            "channels": [8, 16, 16],
            "strides": [2, 2, 1],
            "inter_channels": [8, 16],
            "inter_dilations": [1, 2],
            "num_inter_units": 1,
            "norm": "BATCH",
            "act": "LEAKYRELU",
            "bias": False,
        },
        True,
    ),
    ({"num_inter_units": 0, "inter_channels": [64], "norm": None, "act": "RELU"}, True),
    ({"input_shape": [16, 16, 8, 1], "channels": [4, 8], "strides": [2, 2]}, True),
    ({"input_shape": [64, 2], "num_res_units": 1, "latent_size": 4}, True),
    ({"dropout": 0.2, "num_res_units": 1}, False),
]


def vae_arguments(overrides: dict[str, Any]) -> dict[str, Any]:
    """VarAutoEncoder's arguments: ``in_shape`` is ``(C, *spatial)``."""
    values = {**VAE_DEFAULTS, **overrides}
    *spatial, in_channels = values.pop("input_shape")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return {"spatial_dims": len(spatial), "in_shape": (in_channels, *spatial), **kwargs}


def bottleneck_before_decoder(state: list) -> list:
    """MONAI registers mu, logvar and decodeL after the decoder; specgen's model holds them
    between the encoder and the decoder."""
    latent = [item for item in state if item[0].split(".")[0] in ("mu", "logvar", "decodeL")]
    decoder = [item for item in state if item[0].startswith("decode.")]
    rest = [item for item in state if item not in latent and item not in decoder]
    return rest + latent + decoder


@pytest.mark.parametrize("case", VAE_CASES, ids=case_id)
def test_monai_varautoencoder(case) -> None:
    """Counts, and (reconstruction, mu, logvar, z) with MONAI's weights, within 1e-5."""
    overrides, train = case
    graph = build_graph(ZOO / "monai_varautoencoder.yaml", overrides)
    torch.manual_seed(0)
    ours = compile_module(graph, "torch").build_model()
    theirs = nets.VarAutoEncoder(**vae_arguments(overrides))

    trainable, frozen, _ = graph.counts()
    assert parameter_counts(theirs) == parameter_counts(ours) == (trainable, frozen)
    copy_weights(theirs, ours, reorder=bottleneck_before_decoder)

    *spatial, channels = graph.input_shape
    x = torch.randn(2, channels, *spatial, generator=torch.Generator().manual_seed(1))
    for mode in ("eval", "train") if train else ("eval",):
        getattr(theirs, mode)()
        getattr(ours, mode)()
        with torch.no_grad():
            torch.manual_seed(2)
            want = theirs(x)
            torch.manual_seed(2)
            have = ours(x)
        assert len(have) == len(want) == 4
        for name, a, b in zip(("reconstruction", "mu", "logvar", "z"), have, want, strict=True):
            assert a.shape == b.shape, (mode, name)
            diff = (a - b).abs().max().item()
            assert diff <= TOLERANCE, f"{mode} {name}: max |diff| {diff:.3g}"


def test_monai_varautoencoder_docstring_example_counts() -> None:
    """MONAI's docstring example has 75,210 parameters, all trainable."""
    assert build_graph(ZOO / "monai_varautoencoder.yaml").counts()[:2] == (75_210, 0)
    model = nets.VarAutoEncoder(2, (1, 32, 32), 1, 2, (16, 32, 64), (1, 2, 2))
    assert parameter_counts(model) == (75_210, 0)


def test_monai_varautoencoder_latent_in_inference() -> None:
    """In eval mode the latent is mu + std (MONAI's default) or mu (use_mean_at_inference), the
    same for every call; in training mode it is a fresh sample."""
    for use_mean in (False, True):
        graph = build_graph(ZOO / "monai_varautoencoder.yaml", {"use_mean_at_inference": use_mean})
        model = compile_module(graph, "torch").build_model().eval()
        x = torch.rand(2, 1, 32, 32)
        with torch.no_grad():
            _, mu, logvar, z = model(x)
            _, _, _, again = model(x)
            want = mu if use_mean else mu + torch.exp(0.5 * logvar)
            assert torch.equal(z, again) and torch.allclose(z, want, atol=1e-6)
            model.train()
            assert not torch.equal(model(x)[3], model(x)[3])


def test_monai_varautoencoder_needs_matching_intermediate_width() -> None:
    from specgen.errors import SpecErrors

    with pytest.raises(SpecErrors, match="the last of inter_channels must equal the last of"):
        build_graph(ZOO / "monai_varautoencoder.yaml", {"inter_channels": [32]})
