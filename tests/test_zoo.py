"""The zoo: specs that build MONAI's networks exactly.

For each zoo spec and each setting of its parameters, MONAI's model and specgen's generated
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
]


def monai_arguments(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """MONAI's constructor arguments for a spec setting: the spec's input_shape becomes
    in_channels, out_channels defaults to it, and lists become tuples."""
    values = {**defaults, **overrides}
    height, width, in_channels = values.pop("input_shape")
    values.setdefault("out_channels", in_channels)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return {"spatial_dims": 2, "in_channels": in_channels, **kwargs}


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable): parameters with gradients, and the others plus the floating
    point buffers (running statistics; not batch norm's integer step counter)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return trainable, frozen


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Load ``source``'s state into ``target``, pairing their tensors in order of registration;
    every tensor must be paired, each with one of the same shape."""
    theirs = list(source.state_dict().items())
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

    height, width, channels = graph.input_shape
    x = torch.randn(2, channels, height, width, generator=torch.Generator().manual_seed(1))
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


@pytest.mark.parametrize("spec", ["monai_autoencoder.yaml", "monai_unet.yaml"])
def test_zoo_spec_verifies_at_its_defaults(spec) -> None:
    pytest.importorskip("keras")
    from specgen.verify import verify

    report = verify(build_graph(ZOO / spec))
    assert report.ok, report.table()


def test_unknown_activation_names_the_accepted_ones() -> None:
    from specgen.errors import SpecErrors

    for spec in ("monai_unet.yaml", "monai_autoencoder.yaml"):
        with pytest.raises(SpecErrors, match="act must be PRELU, RELU, .* or null"):
            build_graph(ZOO / spec, {"act": "mish"})
        with pytest.raises(SpecErrors, match="norm must be INSTANCE, BATCH or null"):
            build_graph(ZOO / spec, {"norm": "GROUP"})
