"""Spike re-synthesis: camera poses inside a spike window, and the losses that compare renders with spikes.

A training view's spike window of ``T`` ticks is cut into ``K`` equal sub-windows; virtual view ``k`` is
rendered at the pose of sub-window ``k``'s middle and held for its ``T // K`` ticks. The camera model
(``spikegen_core.spikes.expected_counts``) turns the rendered luminance into expected spike counts, which
are compared with the observed counts per pixel over the whole window and per sub-window. A colour spike
camera (Bayer CFA) sees the rendered linear RGB through its filter array instead (:func:`cfa_intensity`),
so the same loss then constrains colour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikegen_core.geometry import interpolate_pose
from spikegen_core.spikes.camera import expected_counts, integration_weights, mosaic, to_grey

LossKind = Literal["l1", "l2", "poisson"]


def subwindow_times(k: int) -> np.ndarray:
    """Window-relative times in [0, 1] of the ``k`` sub-window middles (0 = first tick, 1 = last)."""
    return (np.arange(k) + 0.5) / k


def interpolate_c2w(start: Tensor, centre: Tensor, end: Tensor, times: np.ndarray | Tensor) -> Tensor:
    """Camera-to-world ``(len(times), 3, 4)`` along the window: slerp rotation, lerp translation.

    Piecewise through the three known poses: start at t=0, centre at t=0.5, end at t=1 (each ``(3, 4)``).
    Poses are data (no gradient flows through them); any camera refinement is applied afterwards.
    """
    t = np.clip(np.asarray(times, dtype=np.float64).reshape(-1), 0.0, 1.0)
    keys = torch.stack([start[:3, :4], centre[:3, :4], end[:3, :4]]).to(centre)
    return interpolate_pose([0.0, 0.5, 1.0], keys, t)


def subwindow_counts(spikes: Tensor, k: int) -> tuple[Tensor, int]:
    """Observed counts ``(k, H, W)`` of ``k`` equal sub-windows of ``(T, H, W)`` spikes, and ticks per sub-window.

    The central ``k * (T // k)`` ticks are used, so every sub-window has the same length and sub-window
    ``k // 2`` stays centred on the window centre.
    """
    t = spikes.shape[0]
    ticks = t // k
    if ticks < 1:
        raise ValueError(f"a spike window of {t} ticks cannot be cut into {k} sub-windows; lower num_virtual_views")
    first = (t - ticks * k) // 2
    used = spikes[first : first + ticks * k].to(torch.float32)
    return used.reshape(k, ticks, *spikes.shape[1:]).sum(dim=1), ticks


def luminance(rgb: Tensor) -> Tensor:
    """``(..., H, W, 3)`` renders → ``(..., H, W)`` grey with the camera model's weights."""
    return to_grey(rgb.movedim(-1, -3))


def cfa_intensity(
    rgb: Tensor, cfa: str, gains: tuple[float, float, float] | None, size: tuple[int, int]
) -> Tensor:
    """``(K, h, w, 3)`` linear renders → ``(K, H, W)`` what a colour spike camera's pixels integrate.

    Each pixel sees its filter's channel times its gain (``camera.mosaic``). A render below the spike
    resolution (splatfacto's resolution schedule) is first upsampled bilinearly to ``size`` = ``(H, W)``:
    area-averaging the counts instead, as grey windows do, would mix the channels of neighbouring sites.
    """
    x = rgb.movedim(-1, -3)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return mosaic(x, cfa, gains)


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` over the ``mask``ed pixels (broadcast over leading dims); all of them when None."""
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def _count_distance(
    expected: Tensor, observed: Tensor, ticks: float, kind: LossKind, mask: Tensor | None = None
) -> Tensor:
    """Mean discrepancy between expected and observed counts, on the per-tick rate scale (comparable to intensity)."""
    if kind == "l1":
        return _masked_mean((expected - observed).abs(), mask) / ticks
    if kind == "l2":
        # Half the squared error: its minimum is the mean count, which an integrate-and-fire pixel's counts
        # (floor(v0 + S), v0 uniform) hit exactly; their spread is under one count, not Poisson's.
        return _masked_mean(0.5 * (expected - observed).square(), mask) / ticks
    if kind == "poisson":
        # Poisson NLL of the observed counts; the constant log(n!) is left out, the scale is per tick.
        nll = F.poisson_nll_loss(expected, observed, log_input=False, full=False, eps=1e-3, reduction="none")
        return _masked_mean(nll, mask) / ticks
    raise ValueError(f"unknown spike loss kind {kind!r}; use 'l1', 'l2' or 'poisson'")


def spike_resynthesis_loss(
    lum: Tensor,
    counts: Tensor,
    ticks: int,
    *,
    threshold: float,
    gain: float = 1.0,
    kind: LossKind = "l1",
    mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """Losses between rendered luminance ``(K, H, W)`` and observed sub-window counts ``(K, H, W)``.

    ``window``: per-pixel counts over the whole window (what TFP sees); ``subwindow``: per sub-window
    (where motion inside the window shows). Both are on the per-tick rate scale. ``mask`` ``(K, H, W)``: the
    pixels to compare (for the whole window: those valid in every view).
    """
    if lum.shape != counts.shape:
        raise ValueError(f"rendered luminance {tuple(lum.shape)} and spike counts {tuple(counts.shape)} differ")
    expected = expected_counts(lum, ticks, threshold=threshold, gain=gain)
    k = lum.shape[0]
    return {
        "window": _count_distance(
            expected.sum(0), counts.sum(0), ticks * k, kind, None if mask is None else mask.all(dim=0)
        ),
        "subwindow": _count_distance(expected, counts, ticks, kind, mask),
    }


@functools.lru_cache(maxsize=16)  # the same (K, window length) every step: built once, never modified
def timing_weights(k: int, ticks: int) -> Tensor:
    """``(ticks, k)``: how much of each of the ``k`` views' rate has accumulated by the end of every tick, view
    ``k`` at the middle of sub-window ``k`` (:func:`subwindow_times`), as the camera model integrates frames."""
    return integration_weights(k, ticks, subwindow_times(k) * (ticks - 1))


def spike_timing_loss(
    lum: Tensor,
    cumulative: Tensor,
    *,
    threshold: float,
    gain: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Integrate-and-fire timing loss between rendered luminance ``(K, H, W)`` and the window's cumulative
    spike counts ``(T, H, W)`` (``spikes.cumsum(0)``).

    A spike pixel fires whenever its integrated rate crosses the next whole threshold, so its count up to tick
    ``t`` is ``floor(v0 + S(t))`` with ``S`` the integrated rate and ``v0`` the unknown initial potential: the
    spikes pin ``S(t)`` to within one count at *every* tick, not just per sub-window. The loss is the mean
    absolute deviation of ``S(t) - C(t)`` from its per-pixel mean (which absorbs ``v0``), on the intensity scale
    (one count over the window = ``threshold / (gain * T)``). ``mask`` ``(H, W)``: the pixels to compare.
    """
    k, ticks = lum.shape[0], cumulative.shape[0]
    if lum.shape[1:] != cumulative.shape[1:]:
        raise ValueError(f"rendered luminance {tuple(lum.shape)} and spike counts {tuple(cumulative.shape)} differ")
    rate = expected_counts(lum, 1.0, threshold=threshold, gain=gain)  # spikes per tick, (K, H, W)
    integrated = torch.einsum("tk,khw->thw", timing_weights(k, ticks).to(rate), rate)
    d = integrated - cumulative
    dev = (d - d.mean(dim=0, keepdim=True)).abs().mean(dim=0)  # (H, W) counts
    return _masked_mean(dev, mask) * (threshold / (gain * ticks))


def reblur_loss(
    window_rgb: Tensor, blurred: Tensor, encode: Callable[[Tensor], Tensor] | None = None, mask: Tensor | None = None
) -> Tensor:
    """L1 between the mean of the linear virtual views ``(K, H, W, 3)``, display-encoded by ``encode`` (motion blur
    happens in linear light, the camera encodes afterwards), and the stored blurred frame ``(H, W, 3)``, over the
    ``mask``ed pixels ``(H, W)`` (all when None)."""
    mean = window_rgb.mean(dim=0)
    diff = ((encode(mean) if encode is not None else mean) - blurred).abs()
    return _masked_mean(diff, None if mask is None else mask[..., None])


def chroma_variation(rgb: Tensor) -> Tensor:
    """Total variation of the chroma (RGB ``(H, W, 3)`` minus its luminance), mean absolute difference between
    neighbours; spikegen-splat passes the display-encoded view. Behind a colour filter array each pixel sees one
    channel: a Gaussian smaller than a 2x2 tile is free in the other two, so without this prior the splat fits
    chroma speckle where few spikes fall."""
    chroma = rgb - luminance(rgb)[..., None]
    return (chroma[1:] - chroma[:-1]).abs().mean() + (chroma[:, 1:] - chroma[:, :-1]).abs().mean()
