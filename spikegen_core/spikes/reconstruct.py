"""Classical intensity reconstructions from spikes: TFP (window mean) and TFI (inter-spike interval).

Both take ``(..., T, H, W)`` tensors (any device, any 0/1 dtype) or a :class:`SpikeStream` and return
``(..., H, W)`` float32 intensities in the camera model's units (``I = rate * threshold / gain``, see
docs/INTERFACES.md). Values are not clipped: a wrong threshold shows up as values above 1, not as a
silently saturated image.

Colour spike cameras (a Bayer colour filter array, see ``spikegen_core.spikes.camera``): TFP/TFI of a colour
stream give each pixel its own channel's intensity (a mosaic); :func:`demosaic` divides out the per-channel
gains and interpolates the missing channels with OpenCV's demosaicer, giving ``(..., 3, H, W)`` linear RGB.
:func:`colour_frame` does both for a stream that carries its CFA. :func:`guess_cfa` tells which pattern a
recording most likely has when its sidecar does not say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError
from spikegen_core.spikes.camera import CFA_PATTERNS, cfa_channels, check_cfa
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


# ----------------------------------------------------------------------------------------- colour (Bayer)
DemosaicMethod = Literal["bilinear", "edge_aware"]
# OpenCV names Bayer codes after the 2x2 tile starting at pixel (1, 1), not (0, 0): RGGB is its "BayerBG".
_CV2_BAYER = {"RGGB": "BG", "BGGR": "RG", "GRBG": "GB", "GBRG": "GR"}
_CV2_SUFFIX = {"bilinear": "", "edge_aware": "_EA"}


def demosaic(
    image: torch.Tensor,
    cfa: str,
    *,
    gains: Sequence[float] | None = None,
    method: DemosaicMethod = "edge_aware",
) -> torch.Tensor:
    """Mosaic ``(..., H, W)`` (each pixel its filter's channel, e.g. a colour stream's TFP) → ``(..., 3, H, W)``.

    Each site is first divided by its channel's gain (``gains`` = the camera's ``cfa_gains``), then OpenCV
    (``cv2.cvtColor``, ``COLOR_Bayer*2RGB`` or its edge-aware ``_EA`` variant) fills in the other channels.
    Works on 16-bit data scaled to the image's maximum, so values keep ~1e-5 relative precision and are
    not clipped. Returns float32 on the input's device.
    """
    import cv2  # an OpenCV build ships with nerfstudio; imported here so grey-only users never load it

    pattern, g = check_cfa(cfa, gains, where="demosaic")
    if pattern is None:
        raise InputMismatchError("demosaic: needs a colour filter array (RGGB, BGGR, GRBG or GBRG)")
    if method not in _CV2_SUFFIX:
        raise InputMismatchError(f"demosaic: method {method!r} is not one of {sorted(_CV2_SUFFIX)}")
    if image.ndim < 2 or image.shape[-2] < 2 or image.shape[-1] < 2:
        raise InputMismatchError(f"demosaic: needs (..., H, W) with H, W >= 2, got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    site_gain = torch.tensor(g, dtype=torch.float32)[cfa_channels(pattern, h, w)]
    flat = (image.detach().to("cpu", torch.float32) / site_gain).reshape(-1, h, w).clamp_min(0.0)
    code = getattr(cv2, f"COLOR_Bayer{_CV2_BAYER[pattern]}2RGB{_CV2_SUFFIX[method]}")
    out = np.empty((flat.shape[0], 3, h, w), dtype=np.float32)
    for i, plane in enumerate(flat.numpy()):
        peak = float(plane.max())
        scale = 65535.0 / peak if peak > 0 else 1.0
        rgb = cv2.cvtColor(np.round(plane * scale).astype(np.uint16), code)
        out[i] = rgb.transpose(2, 0, 1).astype(np.float32) / scale
    return torch.from_numpy(out).reshape(*image.shape[:-2], 3, h, w).to(image.device)


def colour_frame(
    spikes: SpikeStream,
    *,
    kind: Literal["tfp", "tfi"] = "tfp",
    center: int | None = None,
    window: int | None = None,
    threshold: float | None = None,
    gain: float = 1.0,
    method: DemosaicMethod = "edge_aware",
) -> torch.Tensor:
    """TFP/TFI of a stream: ``(H, W)`` grey, or ``(3, H, W)`` linear RGB when the stream carries a ``cfa``."""
    grey = (tfp if kind == "tfp" else tfi)(
        spikes, center=center, window=window, threshold=threshold, gain=gain
    )
    if not spikes.cfa:
        return grey
    return demosaic(grey, spikes.cfa, gains=spikes.cfa_gains, method=method)


def cfa_scores(image: torch.Tensor, *, gains: Sequence[float] | None = None) -> dict[str, float]:
    """How implausible each Bayer pattern makes a mosaic ``(H, W)`` look (lower = more likely the true one).

    Demosaicing with the wrong pattern maps neighbouring sites of one channel into different output
    channels, so image edges turn into coloured fringes: the chroma (each channel minus the mean of the
    three) of natural scenes is smooth, the fringes are not. The score is the mean absolute high-frequency
    chroma (image minus its 3x3 box blur) relative to the mean intensity, so it is scale-free.
    """
    scores = {}
    for pattern in CFA_PATTERNS:
        rgb = demosaic(image, pattern, gains=gains)
        chroma = rgb - rgb.mean(dim=-3, keepdim=True)
        smooth = torch.nn.functional.avg_pool2d(
            chroma[None], 3, stride=1, padding=1, count_include_pad=False
        )[0]
        detail = (chroma - smooth)[..., 2:-2, 2:-2].abs().mean()
        scores[pattern] = float(detail / rgb.mean().clamp_min(1e-6))
    return scores


def guess_cfa(
    image: torch.Tensor | SpikeStream,
    *,
    gains: Sequence[float] | None = None,
    reference: torch.Tensor | None = None,
) -> str:
    """The most plausible Bayer pattern of a colour recording (a mosaic ``(H, W)`` such as its TFP, or a stream).

    Two steps. (1) Where the green sites are (RGGB/BGGR vs GRBG/GBRG): the pattern with the least colour
    fringing, see :func:`cfa_scores`; robust on any textured scene. (2) Red vs blue (RGGB vs BGGR): swapping
    them swaps two output channels and leaves every spatial statistic unchanged, so it needs colour
    knowledge: with ``reference`` (an ``(3, H, W)`` RGB view of the same scene, e.g. the capture's RGB frame or
    a photo of a colour chart at the same framing) the pattern whose channels correlate best with it; without
    one, the one whose raw red sites fire more than its blue sites (silicon is least sensitive to blue, so under
    daylight or tungsten light raw blue is the dimmest channel: a heuristic, check it on a known-colour target).
    """
    frame = tfp(image) if isinstance(image, SpikeStream) else image
    if frame.ndim != 2:
        raise InputMismatchError(
            f"guess_cfa: needs an (H, W) mosaic or a SpikeStream, got {tuple(frame.shape)}"
        )
    scores = cfa_scores(frame, gains=gains)
    green_diagonal = min(
        ("RGGB", "BGGR"), ("GRBG", "GBRG"), key=lambda pair: scores[pair[0]] + scores[pair[1]]
    )
    if reference is not None:
        if reference.shape != (3, *frame.shape):
            raise InputMismatchError(
                f"guess_cfa: reference must be (3, H, W) = {(3, *frame.shape)}, got {tuple(reference.shape)}"
            )
        ref = reference.detach().to("cpu", torch.float32)

        def agreement(pattern: str) -> float:
            rgb = demosaic(frame, pattern, gains=gains)
            return sum(
                float(torch.corrcoef(torch.stack([rgb[c].flatten(), ref[c].flatten()]))[0, 1]) for c in (0, 2)
            )

        return max(green_diagonal, key=agreement)
    # Without a reference: raw red sites brighter than raw blue sites (see the docstring).
    channel = cfa_channels(green_diagonal[0], *frame.shape)
    first_is_red = float(frame[channel == 0].mean()) >= float(frame[channel == 2].mean())
    return green_diagonal[0] if first_is_red else green_diagonal[1]
