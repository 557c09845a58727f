"""A hand-written PyTorch ResNetAE, the baseline the generated model is measured against.

Written directly from the architecture's description (conv-BN-LeakyReLU residual blocks, 2x2
stride-2 down/up-sampling, multi-resolution skips into the bottleneck and from the decoder's
first feature map, a dense code), the way one would write it by hand: loops over levels,
``nn.Sequential`` for the repeated blocks. It has exactly the generated model's parameters.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int, transpose: bool = False):
    pad = (kernel - 1) // 2 if stride == 1 else 0
    conv = (nn.ConvTranspose2d if transpose else nn.Conv2d)(cin, cout, kernel, stride, pad)
    # in place, as the original code builds its LeakyReLUs
    return nn.Sequential(
        conv, nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2, inplace=True)
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(channels, channels, 3, 1), conv_bn_act(channels, channels, 3, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ResNetAE(nn.Module):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_blocks: int = 8,
        n_levels: int = 4,
        z_dim: int = 128,
        bottleneck_dim: int = 128,
    ) -> None:
        super().__init__()
        h, w, c = input_shape
        top = 2 ** (n_levels + 3)
        self.n_levels = n_levels
        self.latent_shape = (z_dim, h // 2**n_levels, w // 2**n_levels)
        self.enc_in = conv_bn_act(c, 8, 3, 1)
        self.enc_blocks = nn.ModuleList()
        self.enc_down = nn.ModuleList()
        self.enc_skips = nn.ModuleList()
        for i in range(n_levels):
            width = 2 ** (i + 3)
            k = 2 ** (n_levels - i)
            self.enc_blocks.append(nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)]))
            self.enc_skips.append(conv_bn_act(width, top, k, k))
            self.enc_down.append(conv_bn_act(width, 2 * width, 2, 2))
        self.enc_out = nn.Conv2d(top, z_dim, 3, 1, 1)
        flat = z_dim * self.latent_shape[1] * self.latent_shape[2]
        self.to_code = nn.Linear(flat, bottleneck_dim)
        self.from_code = nn.Linear(bottleneck_dim, flat)
        self.dec_in = conv_bn_act(z_dim, top, 3, 1)
        self.dec_up = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        self.dec_skips = nn.ModuleList()
        for i in range(n_levels):
            width = 2 ** (n_levels - i + 2)
            k = 2 ** (i + 1)
            self.dec_up.append(conv_bn_act(2 * width, width, 2, 2, transpose=True))
            self.dec_blocks.append(nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)]))
            self.dec_skips.append(conv_bn_act(top, width, k, k, transpose=True))
        self.dec_out = nn.Conv2d(8, c, 3, 1, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self.enc_in(x)
        skips = []
        for blocks, skip, down in zip(self.enc_blocks, self.enc_skips, self.enc_down, strict=True):
            x = blocks(x)
            skips.append(skip(x))
            x = down(x)
        for s in skips:
            x = x + s
        x = self.enc_out(x)
        # flatten in (H, W, C) order, as the spec defines it
        return self.to_code(torch.flatten(x.permute(0, 2, 3, 1), 1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        c, h, w = self.latent_shape
        x = self.from_code(z).reshape(-1, h, w, c).permute(0, 3, 1, 2)
        z_top = self.dec_in(x)
        x = z_top
        for up, blocks, skip in zip(self.dec_up, self.dec_blocks, self.dec_skips, strict=True):
            x = blocks(up(x)) + skip(z_top)
        return torch.sigmoid(self.dec_out(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
