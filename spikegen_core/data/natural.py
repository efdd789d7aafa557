"""Natural-image training data, offline and redistributable: photographs shipped inside scikit-image, the one
REDS ground-truth frame that has no spike file, and procedural textures.

Spikes are simulated the way the field's REDS-spike set was made: sharp frames along a camera path are
interpolated in time to every tick and integrated-and-fired (threshold θ, uniform random initial potential) by
our one camera model (``spikegen_core.spikes.camera``), with its optional dark-current noise. The frames are
the photographs' encoded (sRGB) grey, as REDS's simulator used the video frames' pixel values. Motion is the
random camera motion of ``data.motion`` at a modest scale (a few pixels over a 41-tick window at 64×64).

Licences (from scikit-image's data docstrings): astronaut, hubble_deep_field, rocket: public domain;
camera, chelsea, coffee, horse, retina, brick, grass, gravel, cell: CC0; coins, immunohistochemistry: no known
copyright restrictions. REDS frame ``train_203_part4_key_id151.png``: MIT (chenkang455/Spike-Zoo); it is
read from the shared data folder when present, never copied into the project.
"""

from __future__ import annotations

import math
import os
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spikegen_core.data.pairs import _canvas_hw, make_motion_sample
from spikegen_core.data.textures import _uniform, random_texture
from spikegen_core.image import load_image
from spikegen_core.spikes.camera import CameraModel

__all__ = [
    "HELD_OUT_PHOTOS",
    "TRAIN_PHOTOS",
    "collage_canvas",
    "natural_canvas",
    "natural_sample",
    "photo",
    "training_photos",
]

TRAIN_PHOTOS: dict[str, str] = {
    "astronaut": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coins": "no known copyright restrictions",
    "hubble_deep_field": "public domain (NASA)",
    "immunohistochemistry": "no known copyright restrictions",
    "retina": "CC0 (Mikael Häggström)",
    "rocket": "public domain (SpaceX)",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
}
"""scikit-image photographs used for training, with their licences."""
HELD_OUT_PHOTOS: dict[str, str] = {"coffee": "CC0 (Rachel Michetti)"}
"""Never trained on: the autoencoder's held-out reconstruction score uses it (and the REDS ground truths)."""

REDS_TRAIN_FRAME = "spike/reds_synthetic/gt/train_203_part4_key_id151.png"
"""The REDS frame without a spike file (MIT), relative to the shared data folder."""


def shared_data_dir() -> Path:
    """``$SPIKEGEN_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("SPIKEGEN_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


@cache
def photo(name: str) -> torch.Tensor:
    """A scikit-image photograph as (3, H, W) float in [0, 1] (grey ones repeated to three channels)."""
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(a[..., :3])).permute(2, 0, 1).float() / 255.0
    return t.contiguous()


@lru_cache(maxsize=1)
def training_photos(shared: str | None = None) -> tuple[torch.Tensor, ...]:
    """Every training photograph: the scikit-image ones, plus the REDS frame without spikes when present."""
    photos = [photo(n) for n in TRAIN_PHOTOS]
    reds = Path(shared) / REDS_TRAIN_FRAME if shared else shared_data_dir() / REDS_TRAIN_FRAME
    if reds.is_file():
        photos.append(load_image(reds))
    return tuple(photos)


def natural_canvas(
    generator: torch.Generator,
    hw: tuple[int, int],
    *,
    texture_fraction: float = 0.2,
    collage_fraction: float = 0.0,
    shared: str | None = None,
) -> torch.Tensor:
    """A (3, H, W) canvas: a random crop of a training photograph at a random scale (1–3 photo pixels per
    canvas pixel, antialiased), flipped/rotated at random and exposed at a random gain; or a procedural
    texture with probability ``texture_fraction``; or, with probability ``collage_fraction``, a
    :func:`collage_canvas`."""
    g = generator
    # drawn only when asked for, so a stream without collages is the one earlier runs trained on
    if collage_fraction > 0 and float(torch.rand((), generator=g)) < collage_fraction:
        return collage_canvas(g, hw, shared=shared)
    if float(torch.rand((), generator=g)) < texture_fraction:
        return random_texture(*hw, generator=g)
    photos = training_photos(shared)
    img = photos[int(torch.randint(len(photos), (), generator=g))]
    if float(torch.rand((), generator=g)) < 0.5:
        img = img.transpose(1, 2)
    _, h, w = img.shape
    scale = math.exp(float(torch.rand((), generator=g)) * math.log(3.0))
    scale = min(scale, h / hw[0], w / hw[1])
    ch, cw = max(hw[0], round(hw[0] * scale)), max(hw[1], round(hw[1] * scale))
    ch, cw = min(ch, h), min(cw, w)
    top = int(torch.randint(h - ch + 1, (), generator=g))
    left = int(torch.randint(w - cw + 1, (), generator=g))
    crop = img[:, top : top + ch, left : left + cw]
    if (ch, cw) != tuple(hw):
        crop = F.interpolate(crop[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0]
    flips = torch.rand(2, generator=g) < 0.5
    dims = [d for d, f in zip((-1, -2), flips.tolist(), strict=True) if f]
    if dims:
        crop = crop.flip(dims)
    gain = 0.55 + 0.55 * float(torch.rand((), generator=g))  # darker and brighter exposures than the photo
    return (crop * gain).clamp(0, 1).contiguous()


def leaf_radius(g: torch.Generator, r_min: float, r_max: float) -> float:
    """One radius from p(r) ∝ r⁻³ on [r_min, r_max] (inverse CDF): the dead-leaves law, scale-invariant."""
    a, b = r_min**-2, r_max**-2
    return (a - _uniform(g) * (a - b)) ** -0.5


def collage_canvas(generator: torch.Generator, hw: tuple[int, int], *, shared: str | None = None) -> torch.Tensor:
    """A dead-leaves collage (3, H, W): discs and rotated rectangles with power-law sizes (p(r) ∝ r⁻³, the
    scale-invariant occlusion statistics of natural scenes) painted over each other, each showing its part of one
    of three photograph crops (:func:`natural_canvas`) or, sometimes, a procedural texture, at its own gain.

    Why: a dozen photographs give a few dozen kinds of texture; their collages give the occluding edges between
    unrelated surfaces, at every scale and direction, that street and room scenes are made of."""
    g = generator
    h, w = hw
    sources = [natural_canvas(g, hw, texture_fraction=0.0, shared=shared) for _ in range(3)]
    if _uniform(g) < 0.3:
        sources.append(random_texture(h, w, generator=g))
    img = sources[0].clone()
    y = torch.arange(h, dtype=torch.float32).view(-1, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, -1)
    for _ in range(int(_uniform(g, 30, 100))):
        r = leaf_radius(g, 2.5, 0.5 * max(h, w))
        cx, cy = _uniform(g, -0.1, 1.1) * w, _uniform(g, -0.1, 1.1) * h
        y0, y1 = max(0, int(cy - 1.5 * r) - 1), min(h, int(cy + 1.5 * r) + 2)
        x0, x1 = max(0, int(cx - 1.5 * r) - 1), min(w, int(cx + 1.5 * r) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        dx, dy = x[:, x0:x1] - cx, y[y0:y1] - cy
        if _uniform(g) < 0.5:
            d = torch.sqrt(dx * dx + dy * dy) - r
        else:
            t = _uniform(g, 0, math.pi)
            u = (dx * math.cos(t) + dy * math.sin(t)).abs() - r
            v = (-dx * math.sin(t) + dy * math.cos(t)).abs() - r * _uniform(g, 0.2, 1.0)
            d = torch.maximum(u, v)
        alpha = (0.5 - d).clamp(0, 1)  # a one-pixel antialiased edge
        src = sources[int(torch.randint(len(sources), (), generator=g))]
        gain = _uniform(g, 0.6, 1.3)
        patch = img[:, y0:y1, x0:x1]
        img[:, y0:y1, x0:x1] = patch * (1 - alpha) + (src[:, y0:y1, x0:x1] * gain).clamp(0, 1) * alpha
    return img.clamp(0, 1).contiguous()


def natural_sample(
    generator: torch.Generator,
    size: int,
    num_frames: int,
    threshold: float,
    motion_scale: float = 0.5,
    dark_rate: float = 0.0,
    *,
    texture_fraction: float = 0.2,
    collage_fraction: float = 0.0,
    shared: str | None = None,
) -> dict[str, torch.Tensor]:
    """One training sample (the same keys as ``train.data.motion_sample``) from natural-image content."""
    canvas = natural_canvas(generator, _canvas_hw((size, size), motion_scale), texture_fraction=texture_fraction,
                            collage_fraction=collage_fraction, shared=shared)  # fmt: skip
    camera = CameraModel(threshold=threshold, dark_rate=dark_rate)
    s = make_motion_sample(canvas, size=size, num_spike_frames=num_frames, motion_scale=motion_scale,
                           generator=generator, camera=camera)  # fmt: skip
    return s.training_item()
