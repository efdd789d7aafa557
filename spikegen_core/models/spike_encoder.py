"""The spatial-temporal separable (S3) spike encoder: T binary frames → tokens on the VAE latent grid.

3-D convolutions downsample space and time together (stride 2 per stage, as many stages as the VAE's
spatial stride needs); a 1×1×1 branch with a sigmoid scores every remaining time step; the features are
averaged over time with those weights, then a 2-D conv + channel norm mixes space and projects to tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spikegen_core.errors import InputMismatchError


def _conv3d_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1),
        nn.LeakyReLU(0.2),
        nn.InstanceNorm3d(c_out, affine=True),
    )


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class S3SpikeEncoder(nn.Module):
    """Spikes ``(B, T, H, W)`` → token map ``(B, out_dim, H/stride, W/stride)``.

    ``min_frames`` is the shortest window accepted (each stage halves T; fewer than 8 frames carry too
    little light for a stable estimate anyway).
    """

    def __init__(
        self,
        out_dim: int,
        stride: int = 4,
        widths: tuple[int, ...] = (16, 32, 64),
        min_frames: int = 8,
        max_frames: int = 64,
    ) -> None:
        super().__init__()
        stages = int(round(math.log2(stride)))
        if 2**stages != stride:
            raise ValueError(f"S3 encoder stride must be a power of two, got {stride}")
        # a VAE with a larger stride than the preset expects (e.g. a user's stride-8 VAE): add stages
        widths = tuple(widths) + tuple(widths[-1] * 2 ** (i + 1) for i in range(stages + 1 - len(widths)))
        self.stride = stride
        self.min_frames = max(min_frames, 2**stages)
        self.max_frames = max_frames
        layers = [_conv3d_block(1, widths[0], 1)]
        layers += [_conv3d_block(widths[i], widths[i + 1], 2) for i in range(stages)]
        self.down = nn.Sequential(*layers)
        self.to_dim = nn.Conv3d(widths[stages], out_dim, kernel_size=1)
        # temporal attention: a score per (t, y, x), squashed to (0, 1)
        self.time_score = nn.Sequential(
            nn.Conv3d(out_dim, max(out_dim // 4, 8), kernel_size=1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(max(out_dim // 4, 8), 1, kernel_size=1),
            nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(
            nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1),
            ChannelLayerNorm(out_dim),
            nn.LeakyReLU(0.2),
            nn.Conv2d(out_dim, out_dim, kernel_size=1),
        )

    def check(self, spikes: torch.Tensor) -> None:
        if spikes.ndim != 4:
            raise InputMismatchError(
                f"spike encoder wants (B, T, H, W) spikes, got shape {tuple(spikes.shape)}; "
                "add a batch axis with spikes[None]"
            )
        t, h, w = spikes.shape[1:]
        if t < self.min_frames:
            raise InputMismatchError(
                f"spike window has {t} frames but the S3 encoder needs at least {self.min_frames}; "
                f"pass a longer window (8–{self.max_frames} frames)"
            )
        if h % self.stride or w % self.stride:
            raise InputMismatchError(
                f"spike frames of {h}×{w} are not divisible by the latent stride {self.stride}; "
                "pad them (restore() does this for you)"
            )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        self.check(spikes)
        x = spikes.float().unsqueeze(1)
        f = self.to_dim(self.down(x))  # (B, D, T', h, w)
        wts = self.time_score(f)  # (B, 1, T', h, w)
        fused = (f * wts).sum(2) / (wts.sum(2) + 1e-6)
        return self.spatial(fused)
