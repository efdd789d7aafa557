"""Random 2-D camera motion over an exposure (translation, rotation, zoom) and image warping along it.

A :class:`Motion` is the change of view from the start to the end of the exposure; time ``s`` runs over
``[-0.5, 0.5]`` with the sharp reference frame at ``s = 0``. Views are rendered by ``grid_sample`` from a
canvas larger than the output, so the moving window rarely leaves the image (reflection covers the rest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Motion", "affine_thetas", "path_length_px", "random_motion", "render_views"]


@dataclass(frozen=True)
class Motion:
    """Change of view over one exposure: ``shift`` in output pixels ``(dx, dy)``, ``rotation`` in radians,
    ``log_zoom`` (natural log of the scale change). ``curve`` ∈ [-1, 1] adds constant acceleration
    (0 = uniform velocity; the path then passes its midpoint off-centre in time)."""

    shift: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0
    log_zoom: float = 0.0
    curve: float = 0.0

    def at(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dx, dy, angle, log_zoom)`` at exposure times ``s`` in [-0.5, 0.5] (each shaped like ``s``)."""
        # Constant acceleration: a monotone quadratic time warp that keeps the ends at s = ±0.5.
        u = s + self.curve * (s * s - 0.25) if self.curve else s
        return u * self.shift[0], u * self.shift[1], u * self.rotation, u * self.log_zoom


def random_motion(generator: torch.Generator, size: int, scale: float = 1.0, *, allow_still: bool = True) -> Motion:
    """A random motion for an output of ``size`` pixels (shorter side); ``scale`` multiplies every magnitude.

    At ``scale = 1`` the path length is up to 15 % of the image, rotation up to ±0.15 rad, zoom up to ±10 %,
    and (with ``allow_still``) about a third of samples are nearly still, so models also see sharp inputs.
    """

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    still = u(0, 1) < 0.3 and allow_still
    amount = scale * (u(0.0, 0.15) if not still else u(0.0, 0.02))
    direction = u(0, 2 * math.pi)
    length = amount * size
    rotation = scale * u(-0.15, 0.15) * (0.1 if still else 1.0) * (u(0, 1) < 0.5)
    zoom = scale * u(-0.1, 0.1) * (0.1 if still else 1.0) * (u(0, 1) < 0.4)
    curve = u(-0.8, 0.8) if u(0, 1) < 0.5 else 0.0
    return Motion(
        shift=(length * math.cos(direction), length * math.sin(direction)),
        rotation=rotation,
        log_zoom=zoom,
        curve=curve,
    )


def affine_thetas(
    motion: Motion, times: torch.Tensor, out_hw: tuple[int, int], canvas_hw: tuple[int, int]
) -> torch.Tensor:
    """``(K, 2, 3)`` matrices for ``F.affine_grid`` mapping output pixels to canvas coordinates at ``times``.

    Built in pixel units (so rotations stay rigid on non-square images), then normalised to [-1, 1].
    """
    dx, dy, angle, log_zoom = motion.at(times.double())
    h, w = out_hw
    ch, cw = canvas_hw
    inv_zoom = torch.exp(-log_zoom)
    cos, sin = torch.cos(angle) * inv_zoom, torch.sin(angle) * inv_zoom
    # canvas_px = R(angle)/zoom · out_px + shift; normalised: x_n = px / (size / 2).
    theta = torch.zeros(times.shape[0], 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos * (w / cw)
    theta[:, 0, 1] = -sin * (h / cw)
    theta[:, 1, 0] = sin * (w / ch)
    theta[:, 1, 1] = cos * (h / ch)
    theta[:, 0, 2] = dx * 2 / cw
    theta[:, 1, 2] = dy * 2 / ch
    return theta.float()


def render_views(
    canvas: torch.Tensor, motion: Motion, times: torch.Tensor, out_hw: tuple[int, int]
) -> torch.Tensor:
    """Render the ``(3, Hc, Wc)`` canvas through the moving window at ``times``: ``(K, 3, h, w)``."""
    theta = affine_thetas(motion, times, out_hw, (canvas.shape[-2], canvas.shape[-1])).to(canvas.device)
    grid = F.affine_grid(theta, [times.shape[0], canvas.shape[0], *out_hw], align_corners=False)
    src = canvas[None].expand(times.shape[0], *canvas.shape)
    # Bilinear weights are convex, so views of a [0, 1] canvas stay in [0, 1]: no clamp needed.
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def path_length_px(motion: Motion, out_hw: tuple[int, int]) -> float:
    """Upper bound of how far any output pixel travels over the exposure, in pixels."""
    corner = math.hypot(*out_hw) / 2
    shift = math.hypot(*motion.shift) * (1 + abs(motion.curve))
    return shift + abs(motion.rotation) * corner + abs(math.expm1(abs(motion.log_zoom))) * corner
