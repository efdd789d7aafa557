"""Tile compositor in vectorised PyTorch (autograd backward): the fallback when numba is not installed.

Every (camera, tile, Gaussian) intersection is evaluated against the tile's ``tile_size``² pixels at
once (``[n_isect, tile_px]``), the front-to-back transmittance is a segmented exclusive cumulative sum
of ``log(1 − α)`` (one segment per tile, the intersections already being sorted by depth), and the
weighted colours are scatter-added per tile.  The rules are gsplat's: α = min(0.999, o·exp(−σ)),
skip α < 1/255 or σ < 0, and a pixel stops before the Gaussian that would drop its transmittance to
≤ 1e-4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spikegen_nvs.rasterizer.tiles import TileBins

ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
T_STOP = 1e-4


def tiles_to_image(tiles: Tensor, n_cams: int, bins: TileBins, width: int, height: int) -> Tensor:
    """``[C * n_tiles, ts*ts, D]`` tile-major pixels → ``[C, H, W, D]`` image."""
    ts, tw, th = bins.tile_size, bins.tile_width, bins.tile_height
    img = tiles.reshape(n_cams, th, tw, ts, ts, -1).permute(0, 1, 3, 2, 4, 5)
    return img.reshape(n_cams, th * ts, tw * ts, -1)[:, :height, :width]


def composite_torch(
    means2d: Tensor,
    conics: Tensor,
    colors: Tensor,
    opacities: Tensor,
    bins: TileBins,
    width: int,
    height: int,
    backgrounds: Tensor | None = None,
    absgrad: bool = False,
) -> tuple[Tensor, Tensor]:
    """Alpha-composite ``[C, N]`` splats into ``([C, H, W, D] colours, [C, H, W, 1] alphas)``."""
    n_cams, n_gauss = opacities.shape
    n_ch = colors.shape[-1]
    ts = bins.tile_size
    n_tiles = bins.tile_width * bins.tile_height
    fid, tid = bins.flatten_ids, bins.tile_ids
    dev = means2d.device

    local_tile = tid % n_tiles
    pix = torch.arange(ts * ts, device=dev)
    px = ((local_tile % bins.tile_width) * ts)[:, None] + (pix % ts)[None, :]  # [n, P]
    py = ((local_tile // bins.tile_width) * ts)[:, None] + (pix // ts)[None, :]
    inside = (px < width) & (py < height)

    mean = means2d.reshape(-1, 2)[fid]
    con = conics.reshape(-1, 3)[fid]
    dx = mean[:, 0:1] - (px.to(means2d.dtype) + 0.5)
    dy = mean[:, 1:2] - (py.to(means2d.dtype) + 0.5)
    if absgrad and means2d.requires_grad:
        _attach_absgrad(means2d, fid, dx, dy)
    sigma = 0.5 * (con[:, 0:1] * dx * dx + con[:, 2:3] * dy * dy) + con[:, 1:2] * dx * dy
    alpha = torch.clamp_max(opacities.reshape(-1)[fid][:, None] * torch.exp(-sigma), ALPHA_MAX)
    alpha = alpha * ((sigma >= 0) & (alpha >= ALPHA_MIN) & inside).detach()

    # Segmented exclusive cumsum of log(1-α) in float64 (the global running sum grows large).
    log_t = torch.log1p(-alpha.double())
    excl = torch.cumsum(log_t, 0) - log_t
    seg_start = bins.offsets[tid]
    excl = excl - excl[seg_start]
    # The Gaussian that would bring T to <= 1e-4 and everything behind it are dropped.
    alive = (torch.exp(excl + log_t) > T_STOP).detach()
    weight = (alpha * alive) * torch.exp(excl).to(alpha.dtype)  # [n, P]

    tile_col = torch.zeros(n_cams * n_tiles, ts * ts, n_ch, dtype=colors.dtype, device=dev)
    tile_col = tile_col.index_add(0, tid, weight[:, :, None] * colors.reshape(-1, n_ch)[fid][:, None, :])
    tile_acc = torch.zeros(n_cams * n_tiles, ts * ts, dtype=weight.dtype, device=dev)
    tile_acc = tile_acc.index_add(0, tid, weight)
    render_colors = tiles_to_image(tile_col, n_cams, bins, width, height)
    render_alphas = tiles_to_image(tile_acc[..., None], n_cams, bins, width, height)
    if backgrounds is not None:
        render_colors = render_colors + backgrounds[:, None, None, :] * (1.0 - render_alphas)
    return render_colors, render_alphas


def _attach_absgrad(means2d: Tensor, fid: Tensor, dx: Tensor, dy: Tensor) -> None:
    """Give ``means2d`` an ``absgrad`` (Σ over pixels of |∂L/∂mean2d|, as gsplat's AbsGS option)."""
    buf = torch.zeros(means2d.shape[:-2].numel() * means2d.shape[-2], 2, dtype=means2d.dtype)
    means2d.absgrad = buf.view(means2d.shape)

    def hook(axis: int):
        def _fill(grad: Tensor) -> None:
            buf[:, axis].index_add_(0, fid, grad.abs().sum(1))

        return _fill

    dx.register_hook(hook(0))
    dy.register_hook(hook(1))
