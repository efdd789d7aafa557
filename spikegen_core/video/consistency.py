"""Temporal consistency of restored videos against ground truth: flicker, temporal error, warping error, PSNR.

All take ``(K, C, H, W)`` (or ``(K, H, W)``) frames in [0, 1] in time order, predictions and ground truth
of the same shape (compare grey with grey: ``to_grey(gt)`` for spike-only reconstructions).

- flicker: mean |f(t+1) − f(t)| over pixels that are static in the ground truth: any change there is noise.
- temporal error: mean |Δpred − Δgt| over all pixels (frame-to-frame change that the scene did not make).
- warping error: mean |pred(t+1) − warp(pred(t))| with Farnebäck optical flow (OpenCV) of the ground truth.
- PSNR per frame, reported as mean ± std (the spread shows flicker that a mean hides).
"""

from __future__ import annotations

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError
from spikegen_core.metrics import psnr

__all__ = ["consistency_report", "flicker", "psnr_per_frame", "static_mask", "temporal_error", "warping_error"]


def _frames(x: torch.Tensor, name: str) -> torch.Tensor:
    x = x.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[0] < 2:
        raise InputMismatchError(f"{name}: want ≥ 2 frames as (K, C, H, W) or (K, H, W), got {tuple(x.shape)}")
    return x


def _pair(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _frames(pred, "prediction"), _frames(gt, "ground truth")
    if p.shape != g.shape:
        raise InputMismatchError(
            f"prediction {tuple(p.shape)} and ground truth {tuple(g.shape)} differ; compare grey with grey "
            "(to_grey(gt)) and the same output times"
        )
    return p, g


def static_mask(gt: torch.Tensor, tol: float = 0.5 / 255) -> torch.Tensor:
    """``(H, W)`` bool: pixels whose ground truth never changes by more than ``tol`` between frames."""
    g = _frames(gt, "ground truth")
    return (g[1:] - g[:-1]).abs().amax(dim=(0, 1)) <= tol


def flicker(frames: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean absolute frame-to-frame difference on the ``mask`` pixels (static regions)."""
    f = _frames(frames, "frames")
    if mask.shape != f.shape[-2:] or not bool(mask.any()):
        raise InputMismatchError(f"mask {tuple(mask.shape)} must be a non-empty (H, W) match for {tuple(f.shape)}")
    d = (f[1:] - f[:-1]).abs().mean(dim=1)  # (K-1, H, W)
    return float(d[:, mask].mean())


def temporal_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean |(pred(t+1) − pred(t)) − (gt(t+1) − gt(t))| over all pixels and frame pairs."""
    p, g = _pair(pred, gt)
    return float(((p[1:] - p[:-1]) - (g[1:] - g[:-1])).abs().mean())


def warping_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean |pred(t+1) − pred(t) warped by the ground truth's optical flow (OpenCV Farnebäck)."""
    import cv2

    p, g = _pair(pred, gt)
    grey = (g.mean(dim=1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    h, w = grey.shape[-2:]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    errs = []
    for t in range(len(grey) - 1):
        # Flow from frame t+1 back to t: where each pixel of t+1 came from, so remap pulls pred(t) forward.
        flow = cv2.calcOpticalFlowFarneback(grey[t + 1], grey[t], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        prev = p[t].permute(1, 2, 0).numpy()
        warped = cv2.remap(prev, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        warped = warped.reshape(h, w, -1)
        errs.append(np.abs(p[t + 1].permute(1, 2, 0).numpy() - warped).mean())
    return float(np.mean(errs))


def psnr_per_frame(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of each frame, ``(K,)``."""
    p, g = _pair(pred, gt)
    return psnr(p, g, reduction="none")


def consistency_report(pred: torch.Tensor, gt: torch.Tensor, *, tol: float = 0.5 / 255) -> dict[str, float]:
    """Every measure in one dict (with the static fraction the flicker was measured on)."""
    p, g = _pair(pred, gt)
    mask = static_mask(g, tol)
    per = psnr_per_frame(p, g)
    return {
        "psnr_mean": float(per.mean()),
        "psnr_std": float(per.std(unbiased=False)),
        "flicker_static": flicker(p, mask) if bool(mask.any()) else float("nan"),
        "flicker_static_gt": flicker(g, mask) if bool(mask.any()) else float("nan"),
        "static_fraction": float(mask.float().mean()),
        "temporal_error": temporal_error(p, g),
        "warping_error": warping_error(p, g),
        "frames": int(p.shape[0]),
    }
