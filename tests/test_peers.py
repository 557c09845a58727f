"""The peer libraries whose models specgen reproduces import and run beside the CPU torch.

MONAI, diffusers and compressai are test dependencies only. Each test builds a small model from
its constructor (nothing is fetched from a model hub), runs one forward pass and checks the
parameter count, so that a change of the pinned versions that changes the models shows here
first.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")

# Constructors only: a test that tried to reach a hub fails instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_torch_is_the_pinned_cpu_build() -> None:
    import importlib.util

    assert torch.__version__ == "2.13.0+cpu"
    assert importlib.util.find_spec("torchvision") is None


def test_monai_autoencoder() -> None:
    from monai.networks.nets import AutoEncoder

    torch.manual_seed(0)
    net = AutoEncoder(
        spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8), strides=(2, 2)
    ).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, 16, 16))
    assert y.shape == (2, 1, 16, 16)
    assert torch.isfinite(y).all()
    assert count_parameters(net) == 668


def test_diffusers_autoencoder_kl() -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=2,
        norm_num_groups=4,
    ).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.mode()).sample
    assert posterior.mean.shape == (1, 2, 8, 8)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert count_parameters(vae) == 42_777


def test_diffusers_attention_and_vq_model_import() -> None:
    from diffusers import VQModel
    from diffusers.models.attention_processor import Attention

    attention = Attention(
        query_dim=16,
        heads=1,
        dim_head=16,
        norm_num_groups=4,
        residual_connection=True,
        bias=True,
        upcast_softmax=True,
        _from_deprecated_attn_block=True,
    )
    # group norm (2 * 16) + q, k, v and out projections (4 * (16 * 16 + 16))
    assert count_parameters(attention) == 2 * 16 + 4 * (16 * 16 + 16)
    assert issubclass(VQModel, torch.nn.Module)


def test_compressai_factorized_prior(compressai) -> None:
    from compressai.entropy_models import EntropyBottleneck
    from compressai.layers import GDN
    from compressai.models import FactorizedPrior

    torch.manual_seed(0)
    net = FactorizedPrior(N=8, M=8).eval()
    assert isinstance(net.entropy_bottleneck, EntropyBottleneck)
    assert any(isinstance(m, GDN) for m in net.modules())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == (1, 8, 4, 4)
    assert torch.isfinite(out["x_hat"]).all()
    assert count_parameters(net) == 11_779
