"""Virtual views of a spike window by warping the centre render with its depth, instead of rendering each one.

Inside one spike window the camera moves a few pixels, so the view at another instant is the centre view seen
from a slightly different pose: each pixel of that view takes the centre render's colour where the centre camera
sees the same 3-D point. Rendering K views costs K times splatfacto's projection, binning and compositing; the
warp costs one resampling per view. What it cannot show: what the centre view does not see (a few pixels at the
borders and beside depth edges); those pixels are marked invalid and left out of the losses. Depth is held fixed
(detached): the losses move colours, not geometry, through the warp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def warp_views(
    image: Tensor, depth: Tensor, K: Tensor, viewmat: Tensor, viewmats: Tensor, refine: int = 2, tolerance: float = 0.05
) -> tuple[Tensor, Tensor]:
    """The centre render ``image`` ``(H, W, C)`` with its z-depth ``(H, W)``, seen by the cameras ``viewmats``
    ``(V, 4, 4)`` (world-to-camera, OpenCV axes, the same intrinsics ``K`` ``(3, 3)`` as the centre camera; depth 0
    where the render shows no surface)
    ``viewmat`` ``(4, 4)``) → ``(V, H, W, C)``, differentiable in ``image``, and ``(V, H, W)`` valid: the pixel
    lands inside the centre view on a surface at the depth it was placed at (within ``tolerance``, relative), so it
    is not one the centre view cannot see (outside it, or hidden behind a nearer surface there).

    Each target pixel is first placed at the centre render's depth of the same pixel, carried to the centre camera,
    then placed again at the depth found there (``refine`` times: beside a depth edge the first guess takes the
    wrong surface), and sampled there (bicubic: bilinear sampling at sub-pixel shifts blurs what the spike loss is
    to sharpen); outside the centre view the border colour repeats, and ``valid`` is False there.
    """
    h, w = depth.shape
    dev, dt = image.device, image.dtype
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dt) + 0.5, torch.arange(w, device=dev, dtype=dt) + 0.5,
                            indexing="ij")  # fmt: skip
    pix = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # (HW, 3)
    rays = pix @ torch.linalg.inv(K).T  # camera-space directions with z = 1
    rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]  # (V, 3, 3), (V, 3)
    depth = depth.detach()
    known = depth > 0  # 0: no surface there (transparent): placed at the farthest depth seen, and not valid
    depth = torch.where(known, depth, depth.max() if known.any() else depth.new_tensor(1.0))
    z = depth.reshape(1, -1, 1).expand(viewmats.shape[0], -1, -1)
    for step in range(refine + 1):
        world = (rays[None] * z - trans[:, None]) @ rot  # R^T (x - t) for row vectors
        in_centre = world @ viewmat[:3, :3].T + viewmat[:3, 3]  # (V, HW, 3)
        proj = in_centre @ K.T
        uv = proj[..., :2] / proj[..., 2:3].clamp(min=1e-6)
        grid = torch.stack([2 * uv[..., 0] / w - 1, 2 * uv[..., 1] / h - 1], dim=-1).reshape(-1, h, w, 2)
        # the depth the centre sees where this pixel lands (the last pass only checks it)
        seen = F.grid_sample(depth[None, None].expand(grid.shape[0], -1, -1, -1), grid, mode="nearest",
                             padding_mode="border", align_corners=False).reshape(grid.shape[0], -1, 1)
        if step == refine:
            break
        z = seen * z / in_centre[..., 2:3].clamp(min=1e-6)  # the ray's point at that centre depth, in target z
    lands_on = F.grid_sample(known[None, None].to(dt).expand(grid.shape[0], -1, -1, -1), grid, mode="nearest",
                             padding_mode="border", align_corners=False).reshape(grid.shape[0], h, w) > 0.5
    inside = (grid.abs() <= 1).all(dim=-1)
    agrees = ((seen - in_centre[..., 2:3]).abs() <= tolerance * seen.clamp(min=1e-6)).reshape(inside.shape)
    src = image.permute(2, 0, 1)[None].expand(grid.shape[0], -1, -1, -1)
    out = F.grid_sample(src, grid.detach(), mode="bicubic", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1), inside & agrees & lands_on
