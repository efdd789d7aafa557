"""The spike-stream loss: re-synthesise spikes from a predicted image and compare them with the input spikes.

The camera model's expected count (``spikegen_core.spikes.camera.expected_counts``) is differentiable in the
intensity, so unlike the paper's released code this term sends a gradient through the VAE decoder into the
model. The predicted frame is the sharp image at the window centre, so by default only the central
``window`` frames are compared (over longer windows motion would make the counts disagree for good reasons).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spikegen_core.errors import InputMismatchError
from spikegen_core.spikes.camera import expected_counts, to_grey
from spikegen_core.spikes.stream import central_start


def spike_stream_loss(
    prediction: torch.Tensor,
    spikes: torch.Tensor,
    *,
    threshold: float | torch.Tensor = 2.0,
    gain: float = 1.0,
    window: int | None = None,
) -> torch.Tensor:
    """MSE between expected and observed spike rates over the central ``window`` frames.

    ``prediction``: (B, 3, H, W) RGB or (B, H, W) grey intensity; ``spikes``: (B, T, H, W) 0/1;
    ``threshold``: a float or a per-sample (B,) tensor. Rates (counts / ticks) keep the loss scale
    independent of the window length.
    """
    grey = to_grey(prediction) if prediction.ndim == 4 else prediction
    if spikes.ndim != 4 or grey.shape[0] != spikes.shape[0] or grey.shape[-2:] != spikes.shape[-2:]:
        raise InputMismatchError(
            f"spike loss: prediction {tuple(prediction.shape)} and spikes {tuple(spikes.shape)} do not pair "
            "up; pass (B, 3, H, W) images and (B, T, H, W) spikes of the same size"
        )
    t = spikes.shape[1]
    n = t if window is None else min(window, t)
    start = central_start(t, n, "middle")
    observed = spikes[:, start : start + n].float().mean(1)
    if isinstance(threshold, torch.Tensor):
        # expected_counts takes a scalar θ: fold a per-sample θ into the intensity instead (rate = I/θ)
        scaled = grey * (2.0 / threshold.view(-1, 1, 1).to(grey))
        rate = expected_counts(scaled.unsqueeze(1), 1.0, threshold=2.0, gain=gain)[:, 0]
    else:
        rate = expected_counts(grey.unsqueeze(1), 1.0, threshold=float(threshold), gain=gain)[:, 0]
    return F.mse_loss(rate, observed)
