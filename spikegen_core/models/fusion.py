"""Modality fusion with random modality dropout: z = (1−γ)·z_rgb + γ·z_spike.

During pretraining γ is drawn per sample (never a constant), with some probability mass on the ends so
the model also learns the single-modality cases it meets at inference (γ = 0: RGB only, γ = 1: spikes
only). The target fades toward grey as γ grows, since spikes carry no colour.
"""

from __future__ import annotations

import torch

from spikegen_core.spikes.camera import to_grey  # the field's grey (BT.601 luma), re-exported for the model

__all__ = ["fade_to_grey", "fuse", "sample_gamma", "to_grey"]


def sample_gamma(
    batch: int,
    *,
    endpoint_prob: float = 0.2,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-sample γ ∈ [0, 1]: uniform, except ``endpoint_prob`` of the samples set to exactly 0 or 1."""
    g = torch.rand(batch, generator=generator, device=device)
    u = torch.rand(batch, generator=generator, device=device)
    ends = (torch.rand(batch, generator=generator, device=device) < 0.5).float()
    return torch.where(u < endpoint_prob, ends, g)


def fuse(z_rgb: torch.Tensor, z_spike: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(1−γ)·z_rgb + γ·z_spike with a per-sample γ of shape (B,) broadcast over the rest."""
    g = gamma.view(-1, *([1] * (z_rgb.ndim - 1))).to(z_rgb.dtype)
    return (1 - g) * z_rgb + g * z_spike


def fade_to_grey(image: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Target for a sample with weight γ on spikes: the RGB image faded toward its grey version."""
    grey = to_grey(image).unsqueeze(-3).expand_as(image)
    g = gamma.view(-1, 1, 1, 1).to(image.dtype)
    return (1 - g) * image + g * grey
