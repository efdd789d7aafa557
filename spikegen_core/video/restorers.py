"""Pluggable restorers: spike windows (and optionally blurred RGB) → images, one batch at a time.

A restorer is any callable ``restorer(spikes, rgb=None) -> images`` with ``spikes`` ``(B, T, H, W)`` 0/1 (uint8 or
float: windows arrive as uint8, a quarter of the memory, and each restorer converts what it needs),
``rgb`` ``(B, 3, H, W)`` in [0, 1] or ``None`` and images ``(B, C, H, W)`` (C = 1 grey or 3 RGB) in [0, 1].
It also carries ``name`` (for file names and reports). Two are built in:

- :class:`TFPRestorer` — texture from playback over the (central part of the) window; with RGB it replaces the
  blurred frame's luma by the spike luma and keeps its chroma (a training-free deblurring baseline).
- :class:`ModelRestorer` — the SpikeGen checkpoint (``spikegen_core.train.checkpoint.load_model``), loaded on
  first use so TFP-only runs never import the model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from spikegen_core.errors import CheckpointError, InputMismatchError
from spikegen_core.spikes.camera import to_grey
from spikegen_core.spikes.stream import central_start

__all__ = ["AdaptiveTFPRestorer", "ModelRestorer", "Restorer", "TFPRestorer", "luma_swap", "make_restorer"]


@runtime_checkable
class Restorer(Protocol):
    name: str

    def __call__(self, spikes: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor: ...


def _check(spikes: torch.Tensor, rgb: torch.Tensor | None) -> None:
    if spikes.ndim != 4:
        raise InputMismatchError(f"restorer wants (B, T, H, W) spike windows, got shape {tuple(spikes.shape)}")
    if rgb is not None and (rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.shape[0] != spikes.shape[0]
                            or rgb.shape[-2:] != spikes.shape[-2:]):
        raise InputMismatchError(
            f"blurred RGB {tuple(rgb.shape)} does not pair with spikes {tuple(spikes.shape)}: want (B, 3, H, W) "
            "with the spike batch size and resolution; resize the RGB frames to the spike sensor"
        )


def central(spikes: torch.Tensor, window: int | None) -> torch.Tensor:
    """The central ``window`` frames of ``(B, T, H, W)`` windows (all when ``window`` is None or ≥ T)."""
    t = spikes.shape[1]
    if window is None or window >= t:
        return spikes
    start = central_start(t, window, "key")
    return spikes[:, start : start + window]


def luma_swap(rgb: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """Replace the BT.601 luma of ``rgb`` ``(B, 3, H, W)`` by ``luma`` ``(B, H, W)``, keeping the chroma offsets."""
    return (rgb - to_grey(rgb).unsqueeze(1) + luma.unsqueeze(1)).clamp(0, 1)


def window_mean(spikes: torch.Tensor) -> torch.Tensor:
    """Mean over the window axis of ``(B, T, H, W)`` 0/1 spikes, counting in int32 (no float copy of the window)."""
    if spikes.is_floating_point():
        return spikes.mean(dim=1)
    # Frame by frame: a single sum(dtype=int32) would first cast the whole window (4× its bytes).
    acc = torch.zeros(spikes.shape[0], *spikes.shape[2:], dtype=torch.int32, device=spikes.device)
    for t in range(spikes.shape[1]):
        acc += spikes[:, t]
    return acc.float() / spikes.shape[1]


def soft_shrink(x: torch.Tensor, tau: float) -> torch.Tensor:
    """Shrink toward 0 by ``tau``: changes below the spike quantisation step are treated as noise."""
    return torch.sign(x) * (x.abs() - tau).clamp_min(0) if tau > 0 else x


class TFPRestorer:
    """Window mean × θ/gain; ``window`` limits it to the central frames (sharper under motion, noisier).

    With blurred RGB (deblurring) the result is the blurred frame plus the spike detail the blur removed:
    luma ``Y_blur + shrink(TFP_window − TFP_exposure, shrink·θ/window)``, chroma from the blurred frame.
    Both TFPs come from the same spikes, so in static regions the detail is only quantisation noise
    (a count is exact to ±1 spike, i.e. ±θ/n), which the shrinkage removes; ``shrink=0`` keeps it.
    """

    def __init__(self, threshold: float = 2.0, gain: float = 1.0, window: int | None = None,
                 shrink: float = 1.0) -> None:
        self.threshold, self.gain, self.window, self.shrink = float(threshold), float(gain), window, float(shrink)
        self.name = "tfp"

    def __call__(self, spikes: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor:
        _check(spikes, rgb)
        short = central(spikes, self.window)
        luma = window_mean(short) * (self.threshold / self.gain)
        if rgb is None:
            return luma.clamp(0, 1).unsqueeze(1)
        rgb = rgb.float()
        full = window_mean(spikes) * (self.threshold / self.gain)
        tau = self.shrink * self.threshold / (self.gain * short.shape[1])
        return luma_swap(rgb, to_grey(rgb) + soft_shrink(luma - full, tau))


class AdaptiveTFPRestorer:
    """Motion-adaptive TFP (training-free): the long-window mean where the scene is still, the short one where
    it moves. A pixel counts as moving when its short- and long-window TFPs differ by more than the short
    window's quantisation step (``margin · θ/short``); the blend ramps over one more step.
    Long windows remove flicker on static regions; short windows keep moving edges sharp.
    """

    def __init__(self, threshold: float = 2.0, gain: float = 1.0, short: int = 41, margin: float = 1.5) -> None:
        self.threshold, self.gain, self.short, self.margin = float(threshold), float(gain), int(short), float(margin)
        self.name = "tfp_adaptive"

    def __call__(self, spikes: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor:
        _check(spikes, rgb)
        scale = self.threshold / self.gain
        short = window_mean(central(spikes, self.short)) * scale
        long = window_mean(spikes) * scale
        step = scale / min(self.short, spikes.shape[1])
        moving = ((short - long).abs() / step - self.margin).clamp(0, 1)
        luma = long + moving * (short - long)
        if rgb is None:
            return luma.clamp(0, 1).unsqueeze(1)
        return luma_swap(rgb.float(), luma)


class ModelRestorer:
    """The SpikeGen model as a restorer (mean-latent inference, deterministic): the one model restorer that
    ``spikegen restore-video``/``deblur-video``, ``spikegen-process-data --checkpoint`` and the nerfstudio
    datamanager use, each frame through :func:`spikegen_core.train.restore.restore_tensors` (what
    ``spikegen restore`` runs), so one window and checkpoint give one frame everywhere.

    Without RGB it feeds the TFP image as the pseudo-dense prior (as in fine-tuning) with the checkpoint's
    ``reconstruct_gamma`` and returns grey; with blurred RGB it uses ``deblur_gamma`` and returns RGB. Frames
    are restored in ``tile``-pixel tiles (the training crop; None: whole frames); windows longer than the
    encoder's ``max_spike_frames`` use their central frames.

    ``fast``: the one-pass fast model (a WindowCNN checkpoint, default the shipped ``fast``) over whole frames, its
    estimate in the blurred frame's chroma when there is RGB: the frames ``spikegen restore --fast`` gives.
    ``int8`` (fast model on CPU): its int8 copy, calibrated on the first call's windows for each θ.
    """

    def __init__(self, checkpoint: str | Path | None = None, *, device: str | torch.device = "cpu",
                 threshold: float | None = None, tile: int | None = 64, fast: bool = False,
                 int8: bool = False) -> None:
        self.checkpoint, self.device, self._threshold, self.tile = checkpoint, torch.device(device), threshold, tile
        self.fast = fast
        self.int8 = int8 and fast and self.device.type == "cpu"
        self._model = None
        self._int8: dict[float, torch.nn.Module] = {}
        self.name = "spikegen-fast" if fast else "spikegen"  # int8 or not: one restorer, one output name

    def load(self) -> ModelRestorer:
        if self._model is None:
            try:
                from spikegen_core.train.checkpoint import load_model
            except ImportError as exc:  # the model package is optional in partial installs
                raise CheckpointError(
                    f"the SpikeGen model code is not importable ({exc}); use --restorer tfp or install the full package"
                ) from exc
            if self.fast:
                from spikegen_core.train.checkpoint import load_fast_model

                self._model, self.meta = load_fast_model(self.checkpoint, device=self.device)
            else:
                self._model, self.meta = load_model(self.checkpoint, device=self.device)
        return self

    @property
    def model(self):  # noqa: ANN201 - SpikeGen (the fast model: WindowCNN), imported lazily
        return self.load()._model

    @torch.no_grad()
    def __call__(
        self, spikes: torch.Tensor, rgb: torch.Tensor | None = None, *, threshold: float | None = None
    ) -> torch.Tensor:
        """``threshold``: this call's camera θ/gain (default: the restorer's, else the checkpoint's)."""
        from spikegen_core.train.restore import fast_restore, restore_tensors

        _check(spikes, rgb)
        model = self.model
        theta = threshold if threshold is not None else self._threshold
        if self.fast:  # whole frames, no tiles
            if self.int8:
                model = self._int8_model(spikes, theta)
            return fast_restore(model, spikes, rgb, threshold=theta)
        x = central(spikes, model.config.max_spike_frames).to(self.device, torch.float32)
        frames = [
            restore_tensors(model, x[b], None if rgb is None else rgb[b].to(self.device, torch.float32),
                            threshold=theta, tile=self.tile)
            for b in range(len(x))
        ]  # fmt: skip
        out = torch.stack(frames)
        return out[:, :1] if rgb is None else out  # reconstruction: the grey frame (three equal channels)

    def _int8_model(self, spikes: torch.Tensor, threshold: float | None) -> torch.nn.Module:
        """The int8 fast model for this θ, calibrated on (up to two of) this call's windows the first time."""
        from spikegen_core.models.window_cnn_int8 import quantize_fast_model
        from spikegen_core.spikes.camera import DEFAULT_THRESHOLD

        theta = float(threshold if threshold is not None else DEFAULT_THRESHOLD)
        if theta not in self._int8:
            try:
                self._int8[theta] = quantize_fast_model(self.model, spikes[:2], theta)
            except (ImportError, RuntimeError, AttributeError) as exc:  # a torch without the int8 CPU kernels
                warnings.warn(f"int8 fast model unavailable in this torch ({exc}); running it in float32", stacklevel=2)
                self._int8[theta] = self.model
        return self._int8[theta]


class DemosaicRestorer:
    """A grey restorer run on a colour (Bayer CFA) stream, its per-site output demosaiced to linear RGB.

    The wrapped restorer's ``(B, 1, H, W)`` output holds each pixel's own channel (a mosaic); OpenCV's
    demosaicer (``spikegen_core.spikes.reconstruct.demosaic``) fills in the other two. ``per_site``: the
    restorer sees each of the four filter sites' half-resolution planes as its own grey stream (one channel,
    no filter checkerboard for a grey model to smooth away or mistake for texture), then the planes are
    interleaved back into the mosaic (``benchmarks/cfa_restore.md`` compares the two)."""

    def __init__(self, inner: Restorer, cfa: str, gains: tuple[float, float, float] | None = None,
                 *, per_site: bool = False) -> None:  # fmt: skip
        self.inner, self.cfa, self.gains, self.per_site = inner, cfa, gains, per_site
        self.name = f"{inner.name}+{'sites-' if per_site else ''}demosaic-{cfa}"

    def _inner(self, spikes: torch.Tensor, threshold: float | None) -> torch.Tensor:
        return self.inner(spikes, None) if threshold is None else self.inner(spikes, None, threshold=threshold)

    def _mosaic(self, spikes: torch.Tensor, threshold: float | None) -> torch.Tensor:
        if not self.per_site:
            return self._inner(spikes, threshold)
        h, w = spikes.shape[-2:]
        if h % 2 or w % 2:  # a Bayer tile is 2x2: repeat the last row/column so every site has a plane
            spikes = torch.nn.functional.pad(spikes.float(), (0, w % 2, 0, h % 2), mode="replicate")
        out = torch.empty(spikes.shape[0], 1, *spikes.shape[-2:])
        for dy in (0, 1):
            for dx in (0, 1):
                out[:, :, dy::2, dx::2] = self._inner(spikes[..., dy::2, dx::2], threshold).to(out)
        return out[..., :h, :w]

    def __call__(
        self, spikes: torch.Tensor, rgb: torch.Tensor | None = None, *, threshold: float | None = None
    ) -> torch.Tensor:
        """``threshold``: passed on to the wrapped restorer (this call's camera θ/gain), when given."""
        from spikegen_core.spikes.reconstruct import demosaic

        if rgb is not None:
            raise InputMismatchError(f"{self.name}: colour spike streams are restored without an RGB frame")
        return demosaic(self._mosaic(spikes, threshold)[:, 0], self.cfa, gains=self.gains).clamp(0, 1)


def make_restorer(
    name: str = "tfp", *, checkpoint: str | Path | None = None, threshold: float = 2.0, window: int | None = None,
    device: str = "cpu", int8: bool = False,
) -> Restorer:
    """``"tfp"``, ``"tfp_adaptive"``, ``"model"`` (the shipped tiny checkpoint unless ``checkpoint`` names another) or
    ``"fast"`` (the one-pass fast model; default checkpoint: the shipped ``fast``; ``int8``: its int8 copy on CPU).

    ``window``: TFP's central window (``tfp``) or the short window (``tfp_adaptive``); None = the whole window.
    """
    if name == "tfp":
        return TFPRestorer(threshold=threshold, window=window)
    if name == "tfp_adaptive":
        return AdaptiveTFPRestorer(threshold=threshold, short=window or 41)
    if name in ("model", "spikegen"):
        return ModelRestorer(checkpoint, device=device, threshold=threshold).load()
    if name == "fast":
        return ModelRestorer(checkpoint, device=device, threshold=threshold, fast=True, int8=int8).load()
    raise InputMismatchError(f"unknown restorer {name!r}; use 'tfp', 'tfp_adaptive', 'model' or 'fast'")
