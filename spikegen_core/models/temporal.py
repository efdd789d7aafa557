"""Multi-scale temporal spike features at full resolution, in intensity units (the camera's θ is an input).

The field's fast reconstruction nets (Spk2ImgNet, WGSE, Spike-Zoo's light nets) start from the same idea: a
short window is sharp but noisy, a long one clean but blurred by motion, so they look at several windows at
once and let the network choose per pixel. Here:

- fixed features: TFP over centred windows of each length in ``scales`` and TFI at the centre, times θ;
- learned features: two bias-free temporal convolutions (kernel 5, then 5 with dilation 2) over the central
  ``max(scales)`` frames, pooled over the same centred windows.

Every feature is multiplied by θ and the learned path has no bias and only LeakyReLU (positively homogeneous),
so all features scale exactly linearly with θ: the network is told the camera's scale, it never guesses it.
"""

from __future__ import annotations

import torch
from torch import nn

from spikegen_core.spikes.reconstruct import tfi
from spikegen_core.spikes.stream import central_start


class MultiScaleTemporal(nn.Module):
    """Spikes ``(B, T, H, W)`` and θ ``(B,)`` → features ``(B, out_channels, H, W)``.

    Channel order: one TFP per scale, TFI, then ``channels`` learned features per scale. The first
    ``len(scales) + 1`` channels are grey intensity estimates (what the refiner may blend toward).
    """

    def __init__(self, scales: tuple[int, ...] = (5, 9, 17, 33), channels: int = 8) -> None:
        super().__init__()
        if not scales or min(scales) < 1:
            raise ValueError(f"temporal scales must be positive window lengths, got {scales}")
        self.scales = tuple(int(s) for s in scales)
        self.channels = int(channels)
        self.learned = None
        if self.channels:
            c = self.channels
            self.learned = nn.Sequential(
                nn.Conv3d(1, c, (5, 3, 3), padding=(2, 1, 1), bias=False),
                nn.LeakyReLU(0.2),
                nn.Conv3d(c, c, (5, 1, 1), padding=(4, 0, 0), dilation=(2, 1, 1), bias=False),
                nn.LeakyReLU(0.2),
            )

    @property
    def estimates(self) -> int:
        """Number of leading channels that are intensity estimates (TFPs and TFI)."""
        return len(self.scales) + 1

    @property
    def out_channels(self) -> int:
        return self.estimates + len(self.scales) * self.channels

    @staticmethod
    def _centre(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
        t = x.shape[dim]
        n = min(n, t)
        return x.narrow(dim, central_start(t, n, "middle"), n)

    def forward(self, spikes: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        theta = threshold.to(torch.float32).view(-1, 1, 1, 1)
        x = spikes.float()
        feats = [self._centre(x, s, 1).mean(1, keepdim=True) * theta for s in self.scales]
        feats.append(tfi(x, threshold=1.0).unsqueeze(1) * theta)
        if self.learned is not None:
            y = self.learned((self._centre(x, max(self.scales), 1) * theta).unsqueeze(1))  # (B, c, n, H, W)
            feats += [self._centre(y, s, 2).mean(2) for s in self.scales]
        return torch.cat(feats, dim=1)
