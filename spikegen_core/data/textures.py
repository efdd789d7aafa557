"""Procedural colour textures for image-level synthetic data: shapes, stripes, checkers, noise, and mixtures.

All generators draw from a ``torch.Generator`` (same seed → same image) and return ``(3, H, W)`` float32 in
[0, 1]. Shape edges are anti-aliased (a steep sigmoid of a signed distance), so blur has real edges to smear.

The bundled ``spikegen_core/assets/sample.png`` is :func:`make_sample_image` written by
:func:`write_sample_image` (``python -c "from spikegen_core.data.textures import write_sample_image as w; w()"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = [
    "TEXTURE_KINDS",
    "checkers",
    "make_sample_image",
    "random_texture",
    "shapes",
    "stripes",
    "value_noise",
    "write_sample_image",
]

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "assets" / "sample.png"


def _uniform(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _uniforms(g: torch.Generator, n: int) -> list[float]:
    """``n`` floats in [0, 1) from one draw (one tensor op instead of ``n``: textures are made per sample)."""
    return torch.rand(n, generator=g).tolist()


def _colour(g: torch.Generator) -> torch.Tensor:
    """A random colour ``(3, 1, 1)``: a saturated hue mixed with grey at a random brightness."""
    hue, sat, val, grey = _uniforms(g, 4)
    hue, sat, val, grey = hue * 2 * math.pi, 0.2 + 0.8 * sat, 0.3 + 0.7 * val, 0.25 + 0.5 * grey
    rgb = [0.5 + 0.5 * math.cos(hue - off) for off in (0.0, 2.0944, 4.1888)]
    return torch.tensor([min(1.0, val * (sat * c + (1 - sat) * grey)) for c in rgb]).view(3, 1, 1)


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in units of the shorter side, so shapes stay round on non-square images."""
    s = float(min(h, w))
    y = (torch.arange(h, dtype=torch.float32) + 0.5) / s
    x = (torch.arange(w, dtype=torch.float32) + 0.5) / s
    return torch.meshgrid(y, x, indexing="ij")


def _soft(signed_distance: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Coverage of a shape from its signed distance (negative inside), about one pixel wide."""
    return torch.sigmoid(-signed_distance * (2.5 * min(h, w)))


def value_noise(h: int, w: int, g: torch.Generator, *, octaves: int = 4, colourful: bool = True) -> torch.Tensor:
    """Multi-octave value noise: random coarse grids upsampled bicubically and summed with halving weights."""
    out = torch.zeros(1, 3 if colourful else 1, h, w)
    amp, cells = 1.0, int(_uniform(g, 2, 6))
    for _ in range(octaves):
        grid = torch.rand(1, out.shape[1], cells + 1, cells + 1, generator=g) - 0.5
        out += amp * F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)
        amp, cells = amp * 0.5, cells * 2
    out = out[0] / 1.5 + 0.5
    if not colourful:
        out = out.expand(3, h, w) * _colour(g) * 1.6
    return out.clamp(0, 1)


def stripes(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Two-colour stripes at a random angle and period, from hard bars to soft sinusoids."""
    y, x = _grid(h, w)
    angle = _uniform(g) * math.pi
    period = _uniform(g, 0.04, 0.3)
    phase = (x * math.cos(angle) + y * math.sin(angle)) / period * 2 * math.pi + _uniform(g) * 6.3
    hardness = _uniform(g, 1.0, 30.0)
    mix = torch.sigmoid(torch.sin(phase) * hardness)
    a, b = _colour(g), _colour(g)
    return a * mix + b * (1 - mix)


def checkers(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """A rotated two-colour checkerboard with anti-aliased squares."""
    y, x = _grid(h, w)
    angle = _uniform(g) * math.pi / 2
    cell = _uniform(g, 0.05, 0.25)
    u = (x * math.cos(angle) + y * math.sin(angle)) / cell
    v = (-x * math.sin(angle) + y * math.cos(angle)) / cell
    sharp = 2.5 * min(h, w) * cell / math.pi
    mix = torch.sigmoid(torch.sin(u * math.pi) * torch.sin(v * math.pi) * sharp)
    a, b = _colour(g), _colour(g)
    return a * mix + b * (1 - mix)


def shapes(h: int, w: int, g: torch.Generator, *, count: int | None = None, background: torch.Tensor | None = None) -> torch.Tensor:
    """Random discs, rotated rectangles, triangles and rings painted over a background (gradient by default)."""
    y, x = _grid(h, w)
    if background is None:
        t = (x * _uniform(g, -1, 1) + y * _uniform(g, -1, 1)).clamp(-2, 2)
        background = _colour(g) + (_colour(g) - 0.5) * t * 0.8
    img = background.expand(3, h, w).clone()
    count = int(_uniform(g, 4, 14)) if count is None else count
    ax, ay = float(x.max()), float(y.max())
    for _ in range(count):
        p = _uniforms(g, 8)
        cx, cy, r = p[0] * ax, p[1] * ay, 0.04 + 0.26 * p[2]
        kind = min(int(p[3] * 4), 3)
        dx, dy = x - cx, y - cy
        if kind == 0:  # disc
            d = torch.sqrt(dx**2 + dy**2) - r
        elif kind == 1:  # rotated rectangle
            a = p[4] * math.pi
            u = (dx * math.cos(a) + dy * math.sin(a)).abs() - r
            v = (-dx * math.sin(a) + dy * math.cos(a)).abs() - r * (0.2 + 0.8 * p[5])
            d = torch.maximum(u, v)
        elif kind == 2:  # triangle: intersection of three half-planes
            a0 = p[4] * 2 * math.pi
            d = torch.full_like(x, -1e9)
            for i in range(3):
                n = a0 + i * 2 * math.pi / 3
                d = torch.maximum(d, dx * math.cos(n) + dy * math.sin(n) - r * 0.5)
        else:  # ring
            d = (torch.sqrt(dx**2 + dy**2) - r).abs() - r * (0.1 + 0.25 * p[5])
        alpha = _soft(d, h, w) * (0.7 + 0.3 * p[6])
        fill = _colour(g)
        if p[7] < 0.3:  # some shapes carry a shading gradient, as lit objects do
            fill = fill * (0.6 + 0.4 * (dx * math.cos(cx * 9) + dy * math.sin(cy * 9)) / r).clamp(0.3, 1.4)
        img = img * (1 - alpha) + fill * alpha
    return img.clamp(0, 1)


def _mixture(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Shapes over a textured background (noise, stripes or checkers): edges at several scales at once."""
    back = [value_noise, stripes, checkers][int(torch.randint(3, (1,), generator=g))](h, w, g)
    return shapes(h, w, g, background=back)


TEXTURE_KINDS: dict[str, Callable[[int, int, torch.Generator], torch.Tensor]] = {
    "shapes": shapes,
    "stripes": stripes,
    "checkers": checkers,
    "noise": value_noise,
    "mixture": _mixture,
}
# Sampling weights: mostly natural-looking mixtures and shapes, some pure periodic patterns.
_KIND_WEIGHTS = torch.tensor([0.3, 0.1, 0.1, 0.1, 0.4])


def random_texture(height: int, width: int | None = None, *, generator: torch.Generator, kind: str | None = None) -> torch.Tensor:
    """A ``(3, H, W)`` texture of a random (or the named) kind, with a random brightness/contrast."""
    width = height if width is None else width
    if kind is None:
        kind = list(TEXTURE_KINDS)[int(torch.multinomial(_KIND_WEIGHTS, 1, generator=generator))]
    if kind not in TEXTURE_KINDS:
        raise ValueError(f"unknown texture kind {kind!r}; choose one of {sorted(TEXTURE_KINDS)}")
    img = TEXTURE_KINDS[kind](height, width, generator)
    gain = _uniform(generator, 0.7, 1.0)  # scenes are rarely full white: vary the exposure
    return (img * gain).clamp(0, 1).float()


def make_sample_image(size: int = 256, seed: int = 2024) -> torch.Tensor:
    """The bundled sample image: shapes over stripes and noise, deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    back = 0.55 * value_noise(size, size, g) + 0.45 * stripes(size, size, g)
    return shapes(size, size, g, count=12, background=back)


def write_sample_image(path: Path = SAMPLE_PATH) -> Path:
    """Write :func:`make_sample_image` as a PNG (this is how the bundled asset was made)."""
    from spikegen_core.image import save_image

    return save_image(path, make_sample_image())


if __name__ == "__main__":
    print(f"wrote {write_sample_image()}")
