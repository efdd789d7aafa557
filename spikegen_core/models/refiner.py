"""A small pixel-space fidelity refiner after the VAE decoder (our addition; the paper has none).

A CPU-sized autoencoder caps every output at its reconstruction PSNR, and high-frequency detail that is
present in the input (the blurred frame's colour and texture, the TFP prior's edges) is lost through the
latent bottleneck. Like StableSR's feature-wrapping module, a few convolutions see the decoded image next
to the input in the RGB slot and the spike rate of the central frames, and add a residual. The last layer starts at zero, so an untrained refiner is
the identity and the model is exactly the paper's pipeline until fine-tuning teaches it something.
"""

from __future__ import annotations

import torch
from torch import nn


class FidelityRefiner(nn.Module):
    """``decoded`` (B, 3, H, W) + ``guide`` (B, guide_channels, H, W) → decoded + residual."""

    def __init__(self, width: int = 32, depth: int = 5, guide_channels: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 + guide_channels, width, 3, padding=1), nn.SiLU()]
        for i in range(max(depth - 2, 0)):
            # growing dilation: a blur of a few pixels fits in the receptive field at little cost
            d = 2 ** (i % 3)
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.SiLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, decoded: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return decoded + self.net(torch.cat([decoded, guide], dim=1))
