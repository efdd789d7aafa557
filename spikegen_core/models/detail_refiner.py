"""A U-Net refiner that can carry detail: the pixel-space stage after the VAE decoder of the ``natural`` preset.

The ``tiny`` preset's refiner (refiner.py) is a plain stack of 3×3 convolutions with a receptive field of a few
pixels; it can blend toward an input but not rebuild texture. This one is a two-level U-Net (residual blocks
at full, half and quarter resolution) that sees the decoded image, the RGB slot and the multi-scale temporal
spike features. Like the small refiner it predicts per-pixel blend weights toward each intensity estimate (the
RGB slot, one TFP per window length, TFI) plus a residual: a learned, per-pixel choice of window, which is what
the field's adaptive-window methods do. The last layer starts at zero, so an untrained refiner is the identity.

With ``anchor`` (the index of an estimate, the WindowCNN's when the model has one) the output's luma starts from
that estimate instead of the decoded image's (the decoded colour is kept), and every blend and the residual are
corrections to it: a refiner whose last layer is zero then gives the anchor's luma. Without spikes (RGB only)
there is no estimate, and the decoded image stays the base.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikegen_core.models.fusion import to_grey


class ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DetailRefiner(nn.Module):
    """``decoded`` (B, 3, H, W), ``rgb`` slot (B, 3, H, W), ``features`` (B, F, H, W) whose first ``estimates``
    channels are grey intensity estimates → refined image (B, 3, H, W). H and W must be divisible by 4."""

    def __init__(
        self,
        feature_channels: int,
        estimates: int,
        width: int = 32,
        blocks: int = 1,
        anchor: int | None = None,
    ) -> None:
        super().__init__()
        self.estimates = estimates
        self.anchor = anchor
        w = width
        self.inp = nn.Sequential(nn.Conv2d(6 + feature_channels, w, 3, padding=1), nn.SiLU())
        self.enc1 = nn.Sequential(*[ResBlock(w) for _ in range(blocks)])
        self.down1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU())
        self.enc2 = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.down2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.SiLU())
        self.mid = nn.Sequential(*[ResBlock(4 * w) for _ in range(blocks + 1)])
        self.up2 = nn.Conv2d(4 * w, 2 * w, 3, padding=1)
        self.dec2 = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.up1 = nn.Conv2d(2 * w, w, 3, padding=1)
        self.dec1 = nn.Sequential(*[ResBlock(w) for _ in range(blocks)])
        self.out = nn.Conv2d(w, 3 + 1 + estimates, 3, padding=1)  # residual, blend to RGB, blend per estimate
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, decoded: torch.Tensor, rgb: torch.Tensor, features: torch.Tensor, anchored: bool = True
    ) -> torch.Tensor:
        """``anchored=False``: no anchor for this call (no spikes, so the features are zeros)."""
        x1 = self.enc1(self.inp(torch.cat([decoded, rgb, features], dim=1)))
        x2 = self.enc2(self.down1(x1))
        x3 = self.mid(self.down2(x2))
        y2 = self.dec2(x2 + self.up2(F.interpolate(x3, scale_factor=2.0, mode="nearest")))
        y1 = self.dec1(x1 + self.up1(F.interpolate(y2, scale_factor=2.0, mode="nearest")))
        out = self.out(y1)
        residual, to_rgb, to_est = out[:, :3], out[:, 3:4], out[:, 4:]
        estimates = features[:, : self.estimates]
        luma = to_grey(decoded).unsqueeze(1)
        # anchored: the anchor's luma with the decoded colour (BT.601 weights sum to 1)
        if self.anchor is not None and anchored:
            anchor = estimates[:, self.anchor : self.anchor + 1]
            decoded, luma = decoded + (anchor - luma), anchor
        # grey estimates move the luma only, so the colour the decoder took from the RGB slot survives
        shift = (to_est * (estimates - luma)).sum(1, keepdim=True)
        return decoded + to_rgb * (rgb - decoded) + shift + residual
