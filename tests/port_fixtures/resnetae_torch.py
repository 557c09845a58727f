"""The original ResNetAE PyTorch models, rebuilt for the port-weights tests.

Written here from the published architecture (``ResNetAE_pytorch.py`` of farrell236/ResNetAE):
the same modules under the same attribute names, so that ``state_dict()`` has the original's
tensor names and shapes, and the same forward computation, so that outputs can be compared.
What the original does is kept even where the spec does better:

- batch norm is PyTorch's (momentum 0.1, eps 1e-5);
- the dense bottleneck flattens (C, H, W), channels first;
- the VQ-VAE's codebook is one (D, K) parameter, and its quantizer views the NCHW tensor as rows
  of D values without moving the channels last, so each row mixes positions of one channel.
  ``per_position=True`` quantizes each position's channel vector instead, as the TF original
  and the spec do.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_act(conv: nn.Module, channels: int) -> nn.Sequential:
    """conv -> BatchNorm2d -> LeakyReLU(0.2): indices 0, 1, 2 of the original's Sequentials."""
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.2, inplace=True))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # modules 0..5: conv, bn, act, conv, bn, act
        self.residual_block = nn.Sequential(
            *_conv_bn_act(nn.Conv2d(in_channels, out_channels, 3, padding=1), in_channels),
            *_conv_bn_act(nn.Conv2d(out_channels, out_channels, 3, padding=1), out_channels),
        )

    def forward(self, x):
        return x + self.residual_block(x)


def _residual_blocks(width: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(width, width) for _ in range(count)))


class ResNetEncoder(nn.Module):
    def __init__(self, n_ResidualBlock=8, n_levels=4, input_ch=3, z_dim=10, bUseMultiResSkips=True):
        super().__init__()
        self.max_filters = 2 ** (n_levels + 3)
        self.n_levels = n_levels
        self.bUseMultiResSkips = bUseMultiResSkips
        self.conv_list = nn.ModuleList()
        self.res_blk_list = nn.ModuleList()
        self.multi_res_skip_list = nn.ModuleList()
        self.input_conv = _conv_bn_act(nn.Conv2d(input_ch, 8, 3, padding=1), 8)
        for level in range(n_levels):
            width = 2 ** (level + 3)
            size = 2 ** (n_levels - level)
            self.res_blk_list.append(_residual_blocks(width, n_ResidualBlock))
            self.conv_list.append(_conv_bn_act(nn.Conv2d(width, 2 * width, 2, stride=2), 2 * width))
            if bUseMultiResSkips:
                skip = nn.Conv2d(width, self.max_filters, size, stride=size)
                self.multi_res_skip_list.append(_conv_bn_act(skip, self.max_filters))
        self.output_conv = nn.Conv2d(self.max_filters, z_dim, 3, padding=1)

    def forward(self, x):
        x = self.input_conv(x)
        skips = []
        for level in range(self.n_levels):
            x = self.res_blk_list[level](x)
            if self.bUseMultiResSkips:
                skips.append(self.multi_res_skip_list[level](x))
            x = self.conv_list[level](x)
        if self.bUseMultiResSkips:
            x = sum([x, *skips])
        return self.output_conv(x)


class ResNetDecoder(nn.Module):
    def __init__(
        self, n_ResidualBlock=8, n_levels=4, z_dim=10, output_channels=3, bUseMultiResSkips=True
    ):
        super().__init__()
        self.max_filters = 2 ** (n_levels + 3)
        self.n_levels = n_levels
        self.bUseMultiResSkips = bUseMultiResSkips
        self.conv_list = nn.ModuleList()
        self.res_blk_list = nn.ModuleList()
        self.multi_res_skip_list = nn.ModuleList()
        stem = nn.Conv2d(z_dim, self.max_filters, 3, padding=1)
        self.input_conv = _conv_bn_act(stem, self.max_filters)
        width = self.max_filters
        for level in range(n_levels):
            width = 2 ** (n_levels - level + 2)
            size = 2 ** (level + 1)
            self.res_blk_list.append(_residual_blocks(width, n_ResidualBlock))
            up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
            self.conv_list.append(_conv_bn_act(up, width))
            if bUseMultiResSkips:
                skip = nn.ConvTranspose2d(self.max_filters, width, size, stride=size)
                self.multi_res_skip_list.append(_conv_bn_act(skip, width))
        self.output_conv = nn.Conv2d(width, output_channels, 3, padding=1)

    def forward(self, z):
        z = z_top = self.input_conv(z)
        for level in range(self.n_levels):
            z = self.conv_list[level](z)
            z = self.res_blk_list[level](z)
            if self.bUseMultiResSkips:
                z = z + self.multi_res_skip_list[level](z_top)
        return self.output_conv(z)


class _Dense(nn.Module):
    """Encoder and decoder around a dense bottleneck, the original's (C, H, W) flatten."""

    def __init__(self, input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips):
        super().__init__()
        self.z_dim = z_dim
        self.img_latent_dim = input_shape[0] // 2**n_levels
        self.flat = z_dim * self.img_latent_dim**2
        channels = input_shape[2]
        self.encoder = ResNetEncoder(n_ResidualBlock, n_levels, channels, z_dim, bUseMultiResSkips)
        self.decoder = ResNetDecoder(n_ResidualBlock, n_levels, z_dim, channels, bUseMultiResSkips)

    def features(self, x):
        return self.encoder(x).reshape(-1, self.flat)

    def decode_flat(self, h):
        side = self.img_latent_dim
        return torch.sigmoid(self.decoder(h.reshape(-1, self.z_dim, side, side)))


class ResNetAE(_Dense):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        bottleneck_dim=128,
        bUseMultiResSkips=True,
    ):
        super().__init__(input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.fc1 = nn.Linear(self.flat, bottleneck_dim)
        self.fc2 = nn.Linear(bottleneck_dim, self.flat)

    def forward(self, x):
        return self.decode_flat(self.fc2(self.fc1(self.features(x))))


class ResNetVAE(_Dense):
    def __init__(
        self,
        input_shape=(256, 256, 3),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        bottleneck_dim=128,
        bUseMultiResSkips=True,
    ):
        super().__init__(input_shape, n_ResidualBlock, n_levels, z_dim, bUseMultiResSkips)
        self.fc21 = nn.Linear(self.flat, bottleneck_dim)
        self.fc22 = nn.Linear(self.flat, bottleneck_dim)
        self.fc3 = nn.Linear(bottleneck_dim, self.flat)

    def forward(self, x):
        h = self.features(x)
        mu, logvar = self.fc21(h), self.fc22(h)
        std = torch.exp(0.5 * logvar)
        z = mu + torch.randn_like(std) * std  # sampled in eval mode too, as the original does
        return self.decode_flat(self.fc3(z)), mu, logvar


class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings, embedding_dim, commiment_cost, per_position=False):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commiment_cost = commiment_cost
        self.per_position = per_position
        self.embedding = nn.Parameter(torch.randn(embedding_dim, num_embeddings))

    def forward(self, x):
        rows = x.permute(0, 2, 3, 1) if self.per_position else x
        flat = rows.reshape(-1, self.embedding_dim)
        distances = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.embedding
            + self.embedding.pow(2).sum(0, keepdim=True)
        )
        indices = torch.argmin(distances, dim=1)
        one_hot = nn.functional.one_hot(indices, self.num_embeddings).to(x.dtype)
        quantized = (one_hot @ self.embedding.t()).reshape(rows.shape)
        if self.per_position:
            quantized = quantized.permute(0, 3, 1, 2)
        loss = torch.mean((quantized - x.detach()) ** 2) + self.commiment_cost * torch.mean(
            (quantized.detach() - x) ** 2
        )
        quantized = x + (quantized - x).detach()
        probabilities = one_hot.mean(0)
        perplexity = torch.exp(-torch.sum(probabilities * torch.log(probabilities + 1e-10)))
        return loss, quantized, perplexity, indices.reshape(x.shape[0], *x.shape[2:])


class ResNetVQVAE(nn.Module):
    def __init__(
        self,
        input_shape=(3, 256, 256),
        n_ResidualBlock=8,
        n_levels=4,
        z_dim=128,
        vq_num_embeddings=512,
        vq_embedding_dim=64,
        vq_commiment_cost=0.25,
        bUseMultiResSkips=True,
        per_position=False,
    ):
        super().__init__()
        channels = input_shape[0]
        self.encoder = ResNetEncoder(n_ResidualBlock, n_levels, channels, z_dim, bUseMultiResSkips)
        self.decoder = ResNetDecoder(
            n_ResidualBlock, n_levels, vq_embedding_dim, channels, bUseMultiResSkips
        )
        self.vq_vae = VectorQuantizer(
            vq_num_embeddings, vq_embedding_dim, vq_commiment_cost, per_position
        )
        self.pre_vq_conv = nn.Conv2d(z_dim, vq_embedding_dim, 1)

    def forward(self, x):
        loss, quantized, perplexity, indices = self.vq_vae(self.pre_vq_conv(self.encoder(x)))
        return loss, self.decoder(quantized), perplexity, indices
