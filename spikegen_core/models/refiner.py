"""A small pixel-space fidelity refiner after the VAE decoder (our addition; the paper has none).

A CPU-sized autoencoder caps every output at its reconstruction PSNR, and high-frequency detail that is
present in the input (the blurred frame's colour and low frequencies, the spike rate's edges) is lost through
the latent bottleneck. Like StableSR's feature-wrapping module, a few convolutions see the decoded image next to
the input in the RGB slot, the spike rates of the central and of all frames, and the inter-spike-interval image
(TFI) at the centre. They predict, per pixel, how far to move the decoded image toward the RGB-slot input, and its
luma toward the central spike rate and the TFI image, plus a residual. The blend is explicit because a convolution stack learns
"copy this input" slowly, and on a small model the inputs often beat the decoder (benchmarks/core.md).
The last layer starts at zero, so an untrained refiner is the identity and the model is exactly the paper's
pipeline until fine-tuning teaches it something.
"""

from __future__ import annotations

import torch
from torch import nn

from spikegen_core.models.fusion import to_grey

GUIDE_CHANNELS = 6
"""RGB-slot input (3), spike rate of the central frames (1), of the whole window (1), TFI at the centre (1)."""
BLENDS = 3
"""Blend weights toward the RGB slot, the central spike rate and TFI."""


class FidelityRefiner(nn.Module):
    """``decoded`` (B, 3, H, W) + ``guide`` (B, 6, H, W) → blended and corrected image (B, 3, H, W)."""

    def __init__(self, width: int = 48, depth: int = 7, guide_channels: int = GUIDE_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 + guide_channels, width, 3, padding=1), nn.SiLU()]
        for i in range(max(depth - 2, 0)):
            # growing dilation: a blur of a few pixels fits in the receptive field at little cost
            d = 2 ** (i % 3)
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.SiLU()]
        layers.append(nn.Conv2d(width, 3 + BLENDS, 3, padding=1))  # residual + blend weights
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, decoded: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([decoded, guide], dim=1))
        residual, to_rgb, to_rate, to_tfi = out[:, :3], out[:, 3:4], out[:, 4:5], out[:, 5:6]
        rgb, rate, tfi = guide[:, :3], guide[:, 3:4], guide[:, 5:6]
        # the spike images are grey: they move the luma only (the same shift on R, G and B keeps the colour
        # the decoder took from the blurred frame)
        luma = to_grey(decoded).unsqueeze(1)
        return decoded + to_rgb * (rgb - decoded) + to_rate * (rate - luma) + to_tfi * (tfi - luma) + residual
