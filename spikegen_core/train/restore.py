"""``spikegen restore``: a spike window (+ optional blurred RGB frame) in, a restored image out.

Large frames are processed in overlapping tiles of the training size (the model saw 64×64 crops; rotary
positions would let it run on the whole frame, but tiles keep the context it was trained on and bound the
memory), blended with a feathered window. Sizes not divisible by the latent stride are padded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from spikegen_core import radiometry
from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.image import check_output_image, load_image, save_image
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.models.temporal import WindowCNN
from spikegen_core.spikes.camera import DEFAULT_THRESHOLD, to_grey
from spikegen_core.spikes.io import load_spikes
from spikegen_core.spikes.stream import SpikeStream
from spikegen_core.train.checkpoint import load_fast_model, load_model
from spikegen_core.train.objectives import tfp_prior
from spikegen_core.video.restorers import luma_swap

Mode = Literal["auto", "deblur", "reconstruct"]
DEFAULT_WINDOW = 41  # the field's benchmark window


def _feather(size: int, overlap: int, device: torch.device) -> torch.Tensor:
    """1-D blending weights: ramps of ``overlap`` pixels at both ends, 1 in between (never 0)."""
    w = torch.ones(size, device=device)
    if overlap > 0:
        ramp = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
        w[:overlap] = ramp
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad the last two axes at the bottom/right to (h, w), replicating the border."""
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph == 0 and pw == 0:
        return x
    lead = x.shape[:-2]
    y = F.pad(x.reshape(1, -1, *x.shape[-2:]).float(), (0, pw, 0, ph), mode="replicate")
    return y.reshape(*lead, h, w).to(x.dtype)


@torch.no_grad()
def run_model(
    model: SpikeGen,
    rgb: torch.Tensor | None,
    spikes: torch.Tensor | None,
    gamma: float,
    *,
    tile: int | None = 64,
    overlap: int = 16,
    batch: int = 16,
    threshold: float | None = None,
    **sample_kw: Any,
) -> torch.Tensor:
    """Model output for one frame: ``rgb`` (3, H, W) and/or ``spikes`` (T, H, W) → (3, H, W), any H, W.
    ``threshold``: the camera's θ (models with ``theta_input`` use it; None: the model's configured θ)."""
    ref = rgb if rgb is not None else spikes
    if ref is None:
        raise InputMismatchError("restore needs spikes, an RGB frame, or both; got neither")
    if rgb is not None and spikes is not None and rgb.shape[-2:] != spikes.shape[-2:]:
        raise InputMismatchError(
            f"spike resolution {tuple(spikes.shape[-2:])} differs from RGB resolution {tuple(rgb.shape[-2:])}; "
            "resize or crop the RGB frame to the spike sensor's size"
        )
    h, w = ref.shape[-2:]
    s = model.stride
    if not tile:
        tile_h, tile_w = -(-h // s) * s, -(-w // s) * s
    else:
        tile = -(-tile // s) * s
        tile_h, tile_w = max(tile, -(-min(h, tile) // s) * s), max(tile, -(-min(w, tile) // s) * s)
    ph, pw = max(h, tile_h), max(w, tile_w)
    rgb_p = _pad_to(rgb, ph, pw) if rgb is not None else None
    spk_p = _pad_to(spikes, ph, pw) if spikes is not None else None
    ov = min(overlap, tile_h // 2, tile_w // 2)
    boxes = [(y, x) for y in _starts(ph, tile_h, ov) for x in _starts(pw, tile_w, ov)]
    dev = next(model.parameters()).device
    acc = torch.zeros(3, ph, pw, device=dev)
    norm = torch.zeros(1, ph, pw, device=dev)
    wt = _feather(tile_h, ov, dev)[:, None] * _feather(tile_w, ov, dev)[None, :]
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        r = torch.stack([rgb_p[:, y : y + tile_h, x : x + tile_w] for y, x in chunk]).to(dev) if rgb_p is not None else None
        k = torch.stack([spk_p[:, y : y + tile_h, x : x + tile_w] for y, x in chunk]).to(dev) if spk_p is not None else None
        out = model(r, k, gamma, threshold=threshold, **sample_kw).float()
        for (y, x), o in zip(chunk, out, strict=True):
            acc[:, y : y + tile_h, x : x + tile_w] += o * wt
            norm[:, y : y + tile_h, x : x + tile_w] += wt
    return (acc / norm)[:, :h, :w].clamp(0, 1)


def restore_tensors(
    model: SpikeGen | WindowCNN,
    spikes: torch.Tensor | None,
    rgb: torch.Tensor | None = None,
    *,
    threshold: float | None = None,
    mode: Mode = "auto",
    tile: int | None = 64,
    overlap: int = 16,
    **sample_kw: Any,
) -> torch.Tensor:
    """Deblur (``rgb`` + ``spikes``) or reconstruct (``spikes`` only) one frame → (3, H, W) in [0, 1].

    Reconstruction returns a grey image in three equal channels (spikes carry no colour). ``model`` may be the fast
    model (a :class:`WindowCNN`, :func:`load_fast_model`): one pass over the whole frame, its estimate as the luma,
    in the blurred frame's chroma when deblurring.
    """
    if mode == "auto":
        mode = "deblur" if rgb is not None else "reconstruct"
    if mode == "deblur" and rgb is None:
        raise InputMismatchError("deblurring needs the blurred RGB frame; pass rgb=... or use mode='reconstruct'")
    if isinstance(model, WindowCNN):
        return fast_restore(model, spikes, rgb if mode == "deblur" else None, threshold=threshold)
    cfg = model.config
    if mode == "deblur":
        gamma = cfg.deblur_gamma if spikes is not None else 0.0
        return run_model(model, rgb, spikes, gamma, tile=tile, overlap=overlap, threshold=threshold, **sample_kw)
    if spikes is None:
        raise InputMismatchError("reconstruction needs a spike window; pass spikes=...")
    theta = float(threshold if threshold is not None else cfg.threshold)
    if cfg.tfp_prior:
        prior = tfp_prior(spikes[None], theta, cfg.prior_window)[0]
        out = run_model(model, prior, spikes, cfg.reconstruct_gamma, tile=tile, overlap=overlap, threshold=theta,
                        **sample_kw)  # fmt: skip
    else:
        out = run_model(model, None, spikes, 1.0, tile=tile, overlap=overlap, threshold=theta, **sample_kw)
    # the grey of the model's colour output is its BT.601 luma (the channel mean would add the decoded colour cast)
    return to_grey(out[None]).expand(3, -1, -1).contiguous()


@torch.no_grad()
def fast_restore(
    net: WindowCNN | torch.nn.Module,
    spikes: torch.Tensor | None,
    rgb: torch.Tensor | None = None,
    *,
    threshold: float | None = None,
) -> torch.Tensor:
    """The fast model on one window ``(T, H, W)`` (or a batch ``(B, T, H, W)``) → grey ``(3, H, W)`` (``(B, 1, H, W)``),
    or with the blurred ``rgb`` its estimate as the luma in the RGB frame's chroma; in [0, 1]. ``threshold``: the
    camera's θ / gain (default: the camera model's default θ)."""
    if spikes is None:
        raise InputMismatchError("the fast model restores from spikes; pass a spike window, or drop --fast")
    batched = spikes.ndim == 4
    dev = getattr(net, "device", None) or next(net.parameters()).device  # the int8 copy has no parameters
    x = (spikes if batched else spikes[None]).to(dev)
    theta = torch.full((x.shape[0],), float(threshold if threshold is not None else DEFAULT_THRESHOLD), device=dev)
    # one frame at a time: a batch's 48-channel activations outgrow the CPU caches and run slower per frame
    luma = torch.cat([net(x[i : i + 1], theta[i : i + 1]) for i in range(len(x))]).clamp(0, 1)  # (B, 1, H, W)
    if rgb is not None:
        out = luma_swap((rgb if batched else rgb[None]).to(dev, torch.float32), luma[:, 0])
        return out if batched else out[0]
    return luma if batched else luma[0].expand(3, -1, -1).contiguous()


def spike_window(stream: SpikeStream, window: int | None, center: int | None) -> torch.Tensor:
    """The (T, H, W) window of ``window`` frames around ``center`` (default: the middle).

    ``window=None``: :data:`DEFAULT_WINDOW` frames, or the whole stream when it is shorter. An explicit window
    must fit the stream, and the window around ``center`` must lie inside it: SpikeFileError names the file,
    the value and the range that works (never a silently shortened or shifted window).
    """
    n = stream.num_frames
    name = stream.source or "spike stream"
    if window is None:
        window = min(DEFAULT_WINDOW, n)
    if window < 1 or window > n:
        raise SpikeFileError(
            f"{name}: --window {window} does not fit its {n} frames; pass --window between 1 and {n}"
        )
    center = n // 2 if center is None else center
    lo, hi = window // 2, n - (window - window // 2)  # the centres whose window fits
    if not lo <= center <= hi:
        raise SpikeFileError(
            f"{name}: --center {center} with --window {window} needs frames [{center - window // 2}, "
            f"{center - window // 2 + window}) of its {n}; pass --center between {lo} and {hi}"
        )
    return stream.window(center, window).spikes


def restore_image(
    spikes: str | Path,
    *,
    rgb: str | Path | None = None,
    checkpoint: str | Path | None = None,
    window: int | None = None,
    center: int | None = None,
    threshold: float | None = None,
    mode: Mode = "auto",
    sampler: Literal["mean", "ddim"] | None = None,
    steps: int | None = None,
    temperature: float | None = None,
    tile: int | None = 64,
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    key: str | None = None,
    force_size: bool = False,
    device: str = "cpu",
    rgb_response: radiometry.RgbResponse = radiometry.LINEAR,
    fast: bool = False,
) -> torch.Tensor:
    """Restore one frame from a ``.dat``/``.npz``/``.npy`` spike file (+ optional blurred RGB image file).

    ``window`` frames around ``center`` (default: the middle of the stream; ``window=None``: 41, or the whole
    stream when shorter) are used. ``threshold``: the camera's θ (default: the file's sidecar, else the
    model's). ``height``/``width`` for a ``.dat`` without sidecar; ``axes``/``key`` for arrays (``"HWT"`` when
    time is last). Inputs are all checked before the model is loaded. ``rgb_response``: how the RGB file encodes
    light; it is linearised for the model (which works in linear light, as the spikes) and the result encoded the
    same way. ``fast``: the one-pass fast model (``checkpoint``: a fast-model checkpoint; default the shipped ``fast``)
    instead of the full model. Returns (3, H, W) in [0, 1].
    """
    if steps is not None and steps < 1:
        raise InputMismatchError(f"--steps {steps}: DDIM steps must be at least 1; use e.g. --steps 50")
    stream = load_spikes(spikes, height=height, width=width, axes=axes, key=key, force_size=force_size)
    theta = threshold if threshold is not None else stream.threshold
    win = spike_window(stream, window, center)
    image = rgb_response.decode(load_image(rgb)) if rgb is not None else None
    if image is not None and tuple(image.shape[-2:]) != tuple(win.shape[-2:]):
        raise InputMismatchError(
            f"{rgb}: the RGB frame is {image.shape[-2]}×{image.shape[-1]} but the spikes of {spikes} are "
            f"{win.shape[-2]}×{win.shape[-1]}; resize or crop the RGB frame to the spike camera's size"
        )
    if fast:
        net, _ = load_fast_model(checkpoint, device=device)
        return rgb_response.encode(restore_tensors(net, win, image, threshold=theta, mode=mode))
    model, _ = load_model(checkpoint, device=device)
    if steps is not None and steps > model.config.diffusion_train_steps:
        raise InputMismatchError(
            f"--steps {steps}: this model was trained with {model.config.diffusion_train_steps} diffusion timesteps, "
            f"so DDIM takes at most that many; pass --steps {model.config.diffusion_train_steps} or fewer"
        )
    out = restore_tensors(
        model, win, image, threshold=theta, mode=mode, tile=tile, sampler=sampler, steps=steps,
        temperature=temperature,
    )
    return rgb_response.encode(out)


def restore(spikes: str | Path, out: str | Path = Path("restored.png"), **kwargs: Any) -> Path:
    """:func:`restore_image`, written to ``out`` (PNG or any format imageio knows); returns ``out``."""
    check_output_image(out)  # before the model runs
    return save_image(out, restore_image(spikes, **kwargs))
