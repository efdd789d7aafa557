"""Multi-scale temporal spike features at full resolution, in intensity units (the camera's θ is an input).

The field's fast reconstruction nets (Spk2ImgNet, WGSE, Spike-Zoo's light nets) start from the same idea: a
short window is sharp but noisy, a long one clean but blurred by motion, so they look at several windows at
once and let the network choose per pixel. Here:

- fixed features: TFP over centred windows of each length in ``scales`` and TFI at the centre, times θ;
- learned features: two bias-free temporal convolutions (kernel 5, then 5 with dilation 2) over the central
  ``max(scales)`` frames, pooled over the same centred windows;
- optionally (``light_width > 0``) one more intensity estimate from a :class:`WindowCNN`, the field's light
  reconstruction design (the window's frames as image channels, a few 3×3 convolutions): trained alone on the
  same data it learns far faster on a CPU than the rest of the model (benchmarks/core_sidebyside.md), and as an
  estimate the refiner can blend toward it hands the model that head start.

Every feature is multiplied by θ and the learned path has no bias and only LeakyReLU (positively homogeneous),
so those features scale exactly linearly with θ: the network is told the camera's scale, it never guesses it.
The WindowCNN sees its ticks × θ too (it has biases, so it is linear in θ only where it learned to be).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikegen_core.spikes.reconstruct import tfi
from spikegen_core.spikes.stream import central_start


def _centre(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """The central ``min(n, T)`` entries of axis ``dim`` (the model's training windows centre on the middle)."""
    t = x.shape[dim]
    n = min(n, t)
    return x.narrow(dim, central_start(t, n, "middle"), n)


class WindowCNN(nn.Module):
    """Spikes ``(B, T, H, W)`` and θ ``(B,)`` → an intensity estimate ``(B, 1, H, W)``: the central ``frames``
    ticks × θ as image channels, a 3×3 stem, ``blocks`` residual blocks and a 3×3 head, added to their mean (TFP).

    A window shorter than ``frames`` is stretched by repeating ticks in order (about the same mean rate); the
    network is trained on windows of at least ``frames`` ticks."""

    def __init__(self, frames: int = 33, width: int = 48, blocks: int = 4) -> None:
        super().__init__()
        self.frames = int(frames)
        self.stem = nn.Conv2d(self.frames, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def inputs(self, spikes: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        """The network's input ``(B, frames, H, W)``: the central ticks × θ, channels-last."""
        t, n = spikes.shape[1], self.frames
        x = _centre(spikes, n, 1) if t >= n else spikes[:, (torch.arange(n, device=spikes.device) * t) // n]
        # channels-last: the 3×3 convolutions (the fast path's whole cost) run faster on CPU in this layout
        return x.float().contiguous(memory_format=torch.channels_last) * threshold.to(torch.float32).view(-1, 1, 1, 1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The correction added to the ticks' mean (stem, residual blocks, head)."""
        h = F.leaky_relu(self.stem(x), 0.2)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)

    def forward(self, spikes: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        x = self.inputs(spikes, threshold)
        return x.mean(1, keepdim=True) + self.trunk(x)


class MultiScaleTemporal(nn.Module):
    """Spikes ``(B, T, H, W)`` and θ ``(B,)`` → features ``(B, out_channels, H, W)``.

    Channel order: one TFP per scale, TFI, the WindowCNN estimate (when ``light_width``), then ``channels``
    learned features per scale. The leading ``estimates`` channels are grey intensity estimates (what the refiner
    may blend toward).
    """

    def __init__(
        self,
        scales: tuple[int, ...] = (5, 9, 17, 33),
        channels: int = 8,
        light_width: int = 0,
        light_blocks: int = 4,
        light_frames: int = 33,
    ) -> None:
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
        self.light = WindowCNN(light_frames, light_width, light_blocks) if light_width else None

    @property
    def estimates(self) -> int:
        """Number of leading channels that are intensity estimates (TFPs, TFI and the WindowCNN's)."""
        return len(self.scales) + 1 + (self.light is not None)

    @property
    def out_channels(self) -> int:
        return self.estimates + len(self.scales) * self.channels

    def forward(self, spikes: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        theta = threshold.to(torch.float32).view(-1, 1, 1, 1)
        x = spikes.float()
        feats = [_centre(x, s, 1).mean(1, keepdim=True) * theta for s in self.scales]
        feats.append(tfi(x, threshold=1.0).unsqueeze(1) * theta)
        if self.light is not None:
            feats.append(self.light(spikes, threshold))
        if self.learned is not None:
            y = self.learned((_centre(x, max(self.scales), 1) * theta).unsqueeze(1))  # (B, c, n, H, W)
            feats += [_centre(y, s, 2).mean(2) for s in self.scales]
        return torch.cat(feats, dim=1)
