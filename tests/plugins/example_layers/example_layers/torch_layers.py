"""The PyTorch implementations (NCHW tensors)."""

from __future__ import annotations

import torch
from torch import nn


class LearnedScale(nn.Module):
    def __init__(self, channels: int, init: float = 1.0, use_bias: bool = True) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), float(init)))
        self.bias = nn.Parameter(torch.zeros(channels)) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)  # the channel axis is 1
        out = x * self.scale.view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        return out


class SwishGate(nn.Module):
    def __init__(self, channels: int, kernel_size: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        padding = (kernel_size[0] // 2, kernel_size[1] // 2)
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))
