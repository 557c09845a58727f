"""A small user-written PyTorch autoencoder, for port-weights --match order --reference.

It registers its bottleneck after its decoder, as some libraries do, so that only the order in
which it calls its modules matches the generated model's order.
"""

from torch import nn


class TinyAE(nn.Module):
    def __init__(self, channels: int = 1, width: int = 4, size: int = 8, latent: int = 6):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(width, channels, 3, stride=2, padding=1, output_padding=1),
        )
        half = size // 2
        self.shape = (width, half, half)
        self.down = nn.Linear(width * half * half, latent)
        self.up = nn.Linear(latent, width * half * half)

    def forward(self, x):
        h = self.encoder(x).flatten(1)
        z = self.up(self.down(h))
        return self.decoder(z.view(-1, *self.shape))
