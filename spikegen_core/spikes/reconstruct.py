"""Classical intensity reconstructions from spikes: TFP (window mean) and TFI (inter-spike interval).

Both take ``(..., T, H, W)`` tensors (any device, any 0/1 dtype) or a :class:`SpikeStream` and return
``(..., H, W)`` float32 intensities in the camera model's units (``I = rate * threshold / gain``, see
docs/INTERFACES.md). Values are not clipped: a wrong threshold shows up as values above 1, not as a
silently saturated image.
"""

from __future__ import annotations

import math

import torch

from spikegen_core.errors import InputMismatchError
from spikegen_core.spikes.stream import SpikeStream

DEFAULT_THRESHOLD = 2.0


def _unpack(spikes: torch.Tensor | SpikeStream, threshold: float | None) -> tuple[torch.Tensor, float, str]:
    if isinstance(spikes, SpikeStream):
        if threshold is None:
            threshold = spikes.threshold
        name = spikes.source or "spike stream"
        spikes = spikes.spikes
    else:
        name = "spike tensor"
    if not isinstance(spikes, torch.Tensor) or spikes.ndim < 3:
        shape = tuple(spikes.shape) if hasattr(spikes, "shape") else type(spikes).__name__
        raise InputMismatchError(f"{name}: expected a (..., T, H, W) tensor or SpikeStream, got {shape}")
    theta = float(threshold if threshold is not None else DEFAULT_THRESHOLD)
    if not math.isfinite(theta) or theta <= 0:  # θ ≤ 0 would turn every reconstruction black, silently
        raise InputMismatchError(f"{name}: threshold {threshold!r} must be a positive number (the camera's θ, e.g. 2.0)")
    return spikes, theta, name


def _window_bounds(
    num_frames: int, center: int | None, window: int | None, name: str
) -> tuple[int, int, int]:
    """``(start, stop, center)`` of ``window`` frames centred like :meth:`SpikeStream.window`."""
    center = num_frames // 2 if center is None else int(center)
    if window is None:
        start, stop = 0, num_frames
    else:
        start = center - int(window) // 2
        stop = start + int(window)
    if (window is not None and window < 1) or start < 0 or stop > num_frames or not start <= center < stop:
        raise InputMismatchError(
            f"{name}: a {window}-frame window around frame {center} does not fit in {num_frames} frames; "
            f"use a smaller window or a centre at least window//2 frames from either end"
        )
    return start, stop, center


def tfp(
    spikes: torch.Tensor | SpikeStream,
    *,
    center: int | None = None,
    window: int | None = None,
    threshold: float | None = None,
    gain: float = 1.0,
) -> torch.Tensor:
    """Texture from playback: mean spike rate over ``window`` frames around ``center``, times ``threshold/gain``.

    ``center`` defaults to the middle frame ``T // 2``; ``window`` to the whole stream. The window is
    ``[center - window//2, center - window//2 + window)``, the same frames as ``SpikeStream.window``.
    ``threshold`` defaults to the stream's own threshold, else 2.0.
    """
    data, theta, name = _unpack(spikes, threshold)
    start, stop, _ = _window_bounds(data.shape[-3], center, window, name)
    rate = data[..., start:stop, :, :].to(torch.float32).mean(dim=-3)
    return rate * (theta / gain)


def tfi(
    spikes: torch.Tensor | SpikeStream,
    *,
    center: int | None = None,
    window: int | None = None,
    threshold: float | None = None,
    gain: float = 1.0,
) -> torch.Tensor:
    """Texture from inter-spike interval: ``threshold/gain / Δ``, Δ in ticks, around frame ``center``.

    Δ is the interval between the last spike at or before ``center`` and the first spike after it, searched
    inside the window (default: the whole stream). Pixels missing a spike on one side use the interval of
    the two spikes nearest the centre on the other side (the rate there is the best estimate we have);
    a pixel with a single spike in the window uses Δ = window length (the same rate TFP would give);
    a pixel with no spike is 0.
    """
    data, theta, name = _unpack(spikes, threshold)
    start, stop, center = _window_bounds(data.shape[-3], center, window, name)
    fired = data[..., start:stop, :, :] != 0
    length = stop - start
    c = center - start
    # Tick index per frame, broadcast over pixels; int32 keeps the temporaries small.
    ticks = torch.arange(length, device=fired.device, dtype=torch.int32).view(length, 1, 1)
    none_before, none_after = torch.tensor(-1, dtype=torch.int32), torch.tensor(length, dtype=torch.int32)
    none_before, none_after = none_before.to(fired.device), none_after.to(fired.device)

    def last(mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, ticks, none_before).amax(dim=-3)

    def first(mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, ticks, none_after).amin(dim=-3)

    prev = last(fired & (ticks <= c))
    nxt = first(fired & (ticks > c))
    prev2 = last(fired & (ticks < prev.unsqueeze(-3)))
    nxt2 = first(fired & (ticks > nxt.unsqueeze(-3)))

    has_prev, has_next = prev >= 0, nxt < length
    interval = torch.where(
        has_prev & has_next,
        nxt - prev,
        torch.where(
            has_prev & (prev2 >= 0),
            prev - prev2,
            torch.where(has_next & (nxt2 < length), nxt2 - nxt, torch.full_like(prev, length)),
        ),
    ).to(torch.float32)
    intensity = (theta / gain) / interval
    return torch.where(has_prev | has_next, intensity, torch.zeros_like(intensity))
