"""Image quality metrics (PSNR, SSIM) on [0, 1] images through torchmetrics' functional API.

Inputs may be ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)``; pred and target must have the same shape.
``reduction="mean"`` returns a 0-d tensor (mean over the batch), ``"none"`` one value per image.
"""

from __future__ import annotations

from typing import Literal

import torch

from spikegen_core.errors import InputMismatchError

Reduction = Literal["mean", "none"]


def _as_batch(pred: torch.Tensor, target: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise InputMismatchError(
            f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape; "
            f"resize or crop one of them first"
        )
    if pred.ndim not in (2, 3, 4):
        raise InputMismatchError(f"{name}: wants (H, W), (C, H, W) or (B, C, H, W), got {tuple(pred.shape)}")
    while pred.ndim < 4:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    return pred.float(), target.to(pred.device).float()


def psnr(
    pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, each image's MSE over all its channels and pixels."""
    from torchmetrics.functional.image import peak_signal_noise_ratio  # imported on use: seconds at start-up

    p, t = _as_batch(pred, target, "psnr")
    per_image = peak_signal_noise_ratio(p, t, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return per_image.mean() if reduction == "mean" else per_image


def ssim(
    pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Structural similarity (Gaussian window 11, σ 1.5, the usual constants), averaged over channels."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = _as_batch(pred, target, "ssim")
    per_image = structural_similarity_index_measure(p, t, data_range=data_range, reduction="none")
    return per_image.mean() if reduction == "mean" else per_image
