"""Procedural texture images for the 3-D scene generator, and their lookup at ray hits.

Each material gets one square texture with detail at several scales (colour blobs, checkers or stripes,
multi-octave value noise), so motion blur and sharpness are measurable at every distance.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from spikegen_core.radiometry import SRGB


def _value_noise(size: int, cells: int, g: torch.Generator) -> torch.Tensor:
    """Smooth random field ``(size, size)`` in about [-1, 1] with ``cells`` features per side."""
    grid = torch.rand(1, 1, cells + 1, cells + 1, generator=g) * 2 - 1
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True)[0, 0]


def _random_colour(g: torch.Generator) -> torch.Tensor:
    """A saturated-enough colour of mid brightness (HSV with random hue) as an RGB 3-vector."""
    h = float(torch.rand((), generator=g)) * 6.0
    s = 0.35 + 0.5 * float(torch.rand((), generator=g))
    v = 0.45 + 0.45 * float(torch.rand((), generator=g))
    k = torch.tensor([5.0, 3.0, 1.0])
    kk = (k + h) % 6.0
    return v - v * s * torch.clamp(torch.minimum(kk, 4.0 - kk), 0.0, 1.0)


def make_texture(size: int, kind: int, g: torch.Generator) -> torch.Tensor:
    """One texture ``(3, size, size)`` in [0, 1]; ``kind`` 0/1/2 favours checkers / stripes / blobs."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = _random_colour(g)[:, None, None].expand(3, size, size).clone()

    # Large scale: soft colour blobs.
    for _ in range(int(torch.randint(3, 7, (), generator=g))):
        cx, cy = torch.rand(2, generator=g).tolist()
        r = 0.08 + 0.2 * float(torch.rand((), generator=g))
        w = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))
        strength = 0.8 if kind == 2 else 0.5
        base = base * (1 - strength * w) + strength * w * _random_colour(g)[:, None, None]

    # Middle scale: checkers and oriented stripes.
    n_check = int(torch.randint(3, 7, (), generator=g))
    checker = torch.sign(torch.sin(math.pi * 2 * n_check * xs) * torch.sin(math.pi * 2 * n_check * ys))
    angle = float(torch.rand((), generator=g)) * math.pi
    n_stripe = int(torch.randint(6, 16, (), generator=g))
    stripes = torch.sin(2 * math.pi * n_stripe * (xs * math.cos(angle) + ys * math.sin(angle)))
    a_check, a_stripe = {0: (0.3, 0.08), 1: (0.08, 0.25), 2: (0.1, 0.1)}[kind % 3]
    shade = 1.0 + a_check * checker + a_stripe * stripes

    # Small scale: value noise at several octaves.
    noise = 0.12 * _value_noise(size, 8, g) + 0.1 * _value_noise(size, 24, g) + 0.08 * _value_noise(size, 64, g)
    return (base * shade + noise).clamp(0.03, 0.97)


def make_texture_bank(num: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``num`` textures stacked as ``(num, 3, size, size)``."""
    return torch.stack([make_texture(size, i % 3, g) for i in range(num)])


def sample_textures(bank: torch.Tensor, tile: torch.Tensor, material: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture colour ``(P, 3)`` at world-unit coordinates ``uv`` ``(P, 2)`` on each ray's material.

    Textures repeat mirrored (every tile meets its neighbour seamlessly). Rays with ``material < 0`` get 0.
    """
    out = torch.zeros(uv.shape[0], 3, dtype=bank.dtype, device=uv.device)
    for m in torch.unique(material).tolist():
        if m < 0:
            continue
        sel = material == m
        f = torch.remainder(uv[sel] / tile[m], 2.0)
        f = torch.where(f > 1.0, 2.0 - f, f)  # mirrored repeat into [0, 1]
        grid = (f * 2 - 1)[None, None]  # (1, 1, P_m, 2) in grid_sample's [-1, 1]
        col = F.grid_sample(bank[m : m + 1], grid, mode="bilinear", padding_mode="border", align_corners=True)
        out[sel] = col[0, :, 0].T
    return out


# ------------------------------------------------------------------------------------- natural photographs
# scikit-image's bundled sample photographs (shipped inside its wheel, no download), each public domain or CC0
# as scikit-image's own docstrings state: astronaut (NASA, public domain), chelsea and coffee (CC0, Stefan van
# der Walt / Rachel Michetti), rocket (SpaceX, public domain), brick, grass and gravel (CC0 textures; grey,
# tinted here). scikit-image comes with nerfstudio; without it the bundled spikegen_core/assets/sample.png
# stands in.
PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel")


def load_photos() -> list[torch.Tensor]:
    """The photographs above as ``(3, H, W)`` linear RGB in [0, 1] (grey ones repeated over three channels)."""
    try:
        import skimage.data  # noqa: F401 - only to know whether the photographs are there
    except ImportError:
        from spikegen_core.image import load_image

        return [SRGB.decode(load_image(Path(__file__).resolve().parents[1] / "assets" / "sample.png"))]
    from spikegen_core.data.natural import photo

    return [SRGB.decode(photo(name)) for name in PHOTOS]  # photos are encoded; albedo for the renderer is linear


def photo_texture_bank(num: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``num`` textures ``(num, 3, size, size)`` cut from natural photographs: a random square crop (40-100 % of
    the short side, random flip) per material, grey photos tinted with a random colour, clamped like
    :func:`make_texture` so no surface is pure black or white."""
    photos = load_photos()
    order = torch.randperm(len(photos), generator=g).tolist()  # every photo once before any repeats
    bank = []
    for i in range(num):
        p = photos[order[i % len(order)]]
        _, h, w = p.shape
        side = max(8, int(min(h, w) * (0.4 + 0.6 * float(torch.rand((), generator=g)))))
        y0 = int(torch.randint(h - side + 1, (), generator=g))
        x0 = int(torch.randint(w - side + 1, (), generator=g))
        crop = p[:, y0 : y0 + side, x0 : x0 + side]
        if float(torch.rand((), generator=g)) < 0.5:
            crop = crop.flip(-1)
        tex = F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        if bool((p[0] == p[1]).all() and (p[1] == p[2]).all()):
            tex = tex * (0.4 + _random_colour(g)[:, None, None])
        bank.append(tex.clamp(0.02, 0.97))
    return torch.stack(bank)
