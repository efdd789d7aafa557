"""Screen-tile binning: which (camera, tile) each projected Gaussian touches, sorted front to back.

Same rule as gsplat 1.4.0's ``isect_tiles``: a Gaussian covers the tiles of the square
``mean ± radius`` (tile bounds floor/ceil in tile units, clamped to the grid), and the intersections
are sorted by ``(camera, tile, depth)`` with a stable sort, so equal depths keep Gaussian order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileBins:
    """Intersections grouped per (camera, tile); segment ``k`` is ``flatten_ids[offsets[k]:offsets[k+1]]``."""

    flatten_ids: Tensor  # [n_isect] int64 index into the flattened [C * N] arrays, front to back per tile
    tile_ids: Tensor  # [n_isect] int64 global tile index (camera * tiles_per_image + row * tile_width + col)
    offsets: Tensor  # [C * tile_height * tile_width + 1] int64 segment starts (+ total at the end)
    tiles_per_gauss: Tensor  # [C, N] int32
    isect_ids: Tensor  # [n_isect] int64 gsplat-style sort keys (camera|tile << 32 | depth bits)
    tile_width: int
    tile_height: int
    tile_size: int


@torch.no_grad()
def intersect_tiles(
    means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int, tile_size: int
) -> TileBins:
    """Bin ``[C, N]`` projected Gaussians into ``tile_size``² screen tiles."""
    n_cams, n_gauss = radii.shape
    tile_w = math.ceil(width / tile_size)
    tile_h = math.ceil(height / tile_size)
    n_tiles = tile_w * tile_h

    tile_xy = means2d.detach().float() / tile_size  # [C, N, 2]
    tile_r = radii.float()[..., None] / tile_size
    lims = torch.tensor([tile_w, tile_h], device=radii.device)
    t_min = torch.minimum(torch.floor(tile_xy - tile_r).clamp_min(0).long(), lims)
    t_max = torch.minimum(torch.ceil(tile_xy + tile_r).clamp_min(0).long(), lims)
    span = t_max - t_min  # [C, N, 2]
    counts = (span[..., 0] * span[..., 1]) * (radii > 0)

    flat_counts = counts.reshape(-1)
    gauss = torch.repeat_interleave(torch.arange(flat_counts.numel(), device=radii.device), flat_counts)
    # Position of each intersection inside its Gaussian's rectangle of tiles (row-major).
    starts = torch.cumsum(flat_counts, 0) - flat_counts
    local = torch.arange(gauss.numel(), device=radii.device) - starts[gauss]
    span_x = span.reshape(-1, 2)[gauss, 0]
    mins = t_min.reshape(-1, 2)[gauss]
    col = mins[:, 0] + local % span_x.clamp_min(1)
    row = mins[:, 1] + local // span_x.clamp_min(1)
    cam = gauss // n_gauss
    tile_ids = cam * n_tiles + row * tile_w + col

    # Depth bits as a non-negative int: valid depths are > near_plane > 0, so the IEEE bit pattern sorts
    # like the float.  float32 bits as in gsplat, so ties and order match the CUDA sort.
    depth_bits = depths.detach().float().reshape(-1)[gauss].view(torch.int32).long() & 0xFFFFFFFF
    keys = (tile_ids << 32) | depth_bits
    keys, order = torch.sort(keys, stable=True)
    flatten_ids = gauss[order]
    tile_ids = tile_ids[order]

    per_tile = torch.bincount(tile_ids, minlength=n_cams * n_tiles)
    offsets = torch.zeros(n_cams * n_tiles + 1, dtype=torch.long, device=radii.device)
    offsets[1:] = torch.cumsum(per_tile, 0)
    return TileBins(
        flatten_ids=flatten_ids,
        tile_ids=tile_ids,
        offsets=offsets,
        tiles_per_gauss=counts.int(),
        isect_ids=keys,
        tile_width=tile_w,
        tile_height=tile_h,
        tile_size=tile_size,
    )
