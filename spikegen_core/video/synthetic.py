"""Synthetic video with ground truth: continuous motion over many spike windows, RGB exposures at a lower rate.

A :class:`SequenceScene` is a static textured background with textured sprites that glide along smooth,
accelerating paths for the whole sequence (so some regions stay static: flicker there is pure noise).
:func:`make_sequence` renders it on the spike clock: the spike stream (integrate-and-fire, streamed in
chunks, optionally straight into a ``.dat``), blurred RGB frames that average the sharp views over each
exposure, and the exposure ``[start, end)`` ticks. ``scene.render(ticks)`` gives the sharp ground truth at
any tick, so restored videos can be scored at any output rate.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spikegen_core.data.textures import random_texture
from spikegen_core.errors import InputMismatchError
from spikegen_core.spikes.camera import CameraModel, to_grey
from spikegen_core.spikes.io import encode_frames, sidecar_path
from spikegen_core.spikes.stream import DEFAULT_CLOCK_HZ, SpikeStream
from spikegen_core.utils import atomic_write

__all__ = [
    "SequenceScene",
    "Sprite",
    "VideoSequence",
    "make_scene",
    "make_sequence",
    "sequence_samples",
    "write_sequence",
]

_RENDER_BLOCK = 32  # ticks rendered per batch (memory ≈ block · 3 · H · W · 4 bytes)


@dataclass
class Sprite:
    """A soft-edged ellipse carrying its own texture from ``start`` to ``end`` (pixel centres, x/y).

    Position at tick ``k`` of a ``duration``-tick sequence: ``start + (end - start) · w(k / duration)`` with
    ``w(u) = u + curve · u · (u − 1)`` (monotone for |curve| < 1: constant acceleration, no stops).
    """

    texture: torch.Tensor  # (3, H, W), moves with the sprite
    start: tuple[float, float]
    end: tuple[float, float]
    radii: tuple[float, float]
    curve: float = 0.0

    def position(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = u + self.curve * u * (u - 1.0)
        return (self.start[0] + (self.end[0] - self.start[0]) * w, self.start[1] + (self.end[1] - self.start[1]) * w)


@dataclass
class SequenceScene:
    background: torch.Tensor  # (3, H, W)
    sprites: list[Sprite]
    duration: int  # ticks the sprite paths span

    @property
    def size(self) -> tuple[int, int]:
        return int(self.background.shape[-2]), int(self.background.shape[-1])

    def render(self, ticks: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        """Sharp RGB views ``(K, 3, H, W)`` at (possibly fractional) ``ticks``."""
        t = torch.as_tensor(np.asarray(ticks, dtype=np.float64)).reshape(-1)
        h, w = self.size
        out = self.background.expand(t.shape[0], 3, h, w).clone()
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
        u = t / max(self.duration - 1, 1)
        for s in self.sprites:
            px, py = s.position(u)
            dx = xs[None] - px.view(-1, 1, 1)  # (K, H, W) offsets from the sprite centre
            dy = ys[None] - py.view(-1, 1, 1)
            # Signed distance (≈ pixels) to the ellipse edge, softened over one pixel for anti-aliasing.
            r = torch.sqrt((dx / s.radii[0]) ** 2 + (dy / s.radii[1]) ** 2)
            alpha = torch.clamp((1.0 - r) * min(s.radii) + 0.5, 0.0, 1.0).float()
            # Texture coordinates follow the sprite: sample at the offset from its centre (normalised).
            gx = (dx + w / 2 + 0.5) / w * 2 - 1
            gy = (dy + h / 2 + 0.5) / h * 2 - 1
            grid = torch.stack([gx, gy], dim=-1).float()
            tex = F.grid_sample(s.texture.expand(t.shape[0], 3, h, w), grid, mode="bilinear",
                                padding_mode="reflection", align_corners=False)
            out = out * (1 - alpha[:, None]) + tex * alpha[:, None]
        return out

    def render_mean(self, start: int, stop: int) -> torch.Tensor:
        """Average of the views at every tick of ``[start, stop)``: the blurred exposure ``(3, H, W)``."""
        acc = torch.zeros(3, *self.size)
        for a in range(start, stop, _RENDER_BLOCK):
            acc += self.render(torch.arange(a, min(a + _RENDER_BLOCK, stop))).sum(0)
        return acc / max(stop - start, 1)


def make_scene(
    size: tuple[int, int] = (64, 96), duration: int = 2000, *, sprites: int = 2, speed_px_per_tick: float = 0.03,
    seed: int = 0,
) -> SequenceScene:
    """A random scene: background texture + ``sprites`` moving about ``speed_px_per_tick`` on average.

    Paths are clipped to stay inside the frame, so a long ``duration`` at high speed shortens the path.
    """
    g = torch.Generator().manual_seed(int(seed))
    h, w = size
    bg = random_texture(h, w, generator=g) * 0.6 + 0.1  # keep sprites distinguishable from the background

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    items = []
    for _ in range(sprites):
        rx, ry = u(0.12, 0.22) * min(h, w), u(0.12, 0.22) * min(h, w)
        lo_x, hi_x, lo_y, hi_y = rx, w - rx, ry, h - ry
        start = (u(lo_x, hi_x), u(lo_y, hi_y))
        angle = u(0, 2 * math.pi)
        dist = speed_px_per_tick * duration
        end = (min(max(start[0] + dist * math.cos(angle), lo_x), hi_x), min(max(start[1] + dist * math.sin(angle), lo_y), hi_y))
        items.append(Sprite(random_texture(h, w, generator=g), start, end, (rx, ry), curve=u(-0.8, 0.8)))
    return SequenceScene(bg.clamp(0, 1), items, duration)


@dataclass
class VideoSequence:
    """A generated capture. ``exposures`` ``(N, 2)`` int64 ``[start, end)`` ticks of the ``blurred`` frames."""

    scene: SequenceScene
    spikes: SpikeStream | None
    spikes_path: Path | None
    blurred: torch.Tensor  # (N, 3, H, W)
    exposures: torch.Tensor  # (N, 2)
    threshold: float
    clock_hz: float
    settings: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return self.scene.duration

    def sharp_at(self, ticks: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        return self.scene.render(ticks)


def make_sequence(
    size: tuple[int, int] = (64, 96),
    num_frames: int = 1200,
    *,
    rgb_period: int = 200,
    exposure: int = 160,
    sprites: int = 2,
    speed_px_per_tick: float = 0.03,
    threshold: float = 2.0,
    clock_hz: float = DEFAULT_CLOCK_HZ,
    seed: int = 0,
    spikes_path: str | Path | None = None,
) -> VideoSequence:
    """Render a sequence of ``num_frames`` spike ticks with an RGB exposure every ``rgb_period`` ticks.

    Exposure ``i`` spans ``[i·rgb_period + off, … + exposure)`` with ``off`` centring the exposures in their
    periods. With ``spikes_path`` (a ``.dat``) the spikes stream to disk chunk by chunk (plus the sidecar) and
    ``spikes`` is None, so long sequences need no memory for the stream.
    """
    if not 0 < exposure <= rgb_period <= num_frames:
        raise InputMismatchError(
            f"need 0 < exposure ({exposure}) ≤ rgb_period ({rgb_period}) ≤ num_frames ({num_frames}) ticks"
        )
    scene = make_scene(size, num_frames, sprites=sprites, speed_px_per_tick=speed_px_per_tick, seed=seed)
    camera = CameraModel(threshold=threshold, clock_hz=clock_hz, chunk_ticks=_RENDER_BLOCK)
    cache: dict[int, torch.Tensor] = {}

    def grey_at(t: float) -> torch.Tensor:
        # The camera asks tick by tick; render a block of ticks at once and serve them from it.
        k = int(round(t * clock_hz))
        blk = k // _RENDER_BLOCK
        if blk not in cache:
            cache.clear()
            a = blk * _RENDER_BLOCK
            cache[blk] = to_grey(scene.render(torch.arange(a, min(a + _RENDER_BLOCK, num_frames))))
        return cache[blk][k - blk * _RENDER_BLOCK]

    chunks = camera.iter_chunks(grey_at, num_frames, seed=seed + 1)
    stream, path = None, None
    if spikes_path is None:
        stream = SpikeStream(torch.cat(list(chunks)), clock_hz=clock_hz, threshold=threshold, source="synthetic")
    else:
        path = Path(spikes_path)
        h, w = size
        with atomic_write(path) as f:
            for c in chunks:
                f.write(encode_frames(c.numpy()).tobytes())
        with atomic_write(sidecar_path(path), "w") as f:
            json.dump({"height": h, "width": w, "num_frames": num_frames, "clock_hz": clock_hz,
                       "threshold": threshold, "layout": "pku-dat"}, f, indent=1)
    off = (rgb_period - exposure) // 2
    starts = torch.arange(0, num_frames - rgb_period + 1, rgb_period) + off
    exposures = torch.stack([starts, starts + exposure], dim=1).long()
    blurred = torch.stack([scene.render_mean(int(a), int(b)) for a, b in exposures.tolist()])
    settings = {"size": list(size), "num_frames": num_frames, "rgb_period": rgb_period, "exposure": exposure,
                "sprites": sprites, "speed_px_per_tick": speed_px_per_tick, "threshold": threshold,
                "clock_hz": clock_hz, "seed": seed}
    return VideoSequence(scene, stream, path, blurred, exposures, threshold, clock_hz, settings)


def write_sequence(seq: VideoSequence, out_dir: str | Path) -> Path:
    """Write a sequence as the deblurring command reads it: ``blurred/*.png``, ``exposures.json``, spikes.

    Spikes go to ``spikes.dat`` (+ sidecar) unless the sequence already streamed them to a file.
    Returns ``exposures.json``.
    """
    from spikegen_core.image import save_image
    from spikegen_core.spikes.io import write_dat

    out = Path(out_dir)
    for i, img in enumerate(seq.blurred):
        save_image(out / "blurred" / f"{i:05d}.png", img)
    spikes = seq.spikes_path or write_dat(out / "spikes.dat", seq.spikes)
    meta = {"unit": "ticks", "clock_hz": seq.clock_hz, "exposures": seq.exposures.tolist(),
            "spikes": str(Path(spikes).resolve()), "settings": seq.settings}
    with atomic_write(out / "exposures.json", "w") as f:
        json.dump(meta, f, indent=1)
    return out / "exposures.json"


def sequence_samples(seq: VideoSequence) -> list[dict[str, torch.Tensor]]:
    """Training samples from a sequence, one per RGB exposure, with the keys of ``SyntheticPairs`` items:
    ``sharp`` (3, H, W) at the exposure centre, ``blurred``, ``spikes`` (T, H, W) float over the exposure,
    ``tfp`` (H, W) over the exposure. Consecutive samples share the motion, unlike independent pairs.
    """
    if seq.spikes is None:
        raise InputMismatchError("sequence_samples needs the spikes in memory; make the sequence without spikes_path")
    out = []
    for (a, b), blurred in zip(seq.exposures.tolist(), seq.blurred, strict=True):
        spikes = seq.spikes.spikes[a:b].float()
        out.append({
            "sharp": seq.sharp_at([(a + b) / 2])[0],
            "blurred": blurred,
            "spikes": spikes,
            "tfp": spikes.mean(0) * seq.threshold,
        })
    return out
