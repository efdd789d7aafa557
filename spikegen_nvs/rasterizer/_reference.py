"""Dense float64 reference renderer: every Gaussian against every pixel, for tests and benchmarks.

Written independently of the tiled path (its own matrix-form projection, cumulative-product
transmittance), but with gsplat's exact rules so that differences are only numerical: 0.3 blur,
3σ radius from ``b + sqrt(max(0.01, b² − det))``, culling, α = min(0.999, o·exp(−σ)), skip α < 1/255
and σ < 0, a Gaussian only reaches pixels of the screen tiles its ``mean ± radius`` square covers,
and a pixel stops before the Gaussian that would bring its transmittance to ≤ 1e-4.
Memory is ``O(N · H · W)`` per camera (chunked over Gaussians): use small scenes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from spikegen_nvs.rasterizer.project import view_dependent_colors


def _rotation(quats: Tensor) -> Tensor:
    """R = (w² − v·v) I + 2 v vᵀ + 2 w [v]ₓ for unit (w, v)."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, v = q[:, :1], q[:, 1:]
    eye = torch.eye(3, dtype=q.dtype)
    zero = torch.zeros_like(w[:, 0])
    cross = torch.stack(
        [zero, -v[:, 2], v[:, 1], v[:, 2], zero, -v[:, 0], -v[:, 1], v[:, 0], zero], dim=-1
    ).reshape(-1, 3, 3)
    return (
        (w * w - (v * v).sum(-1, keepdim=True))[..., None] * eye
        + 2 * v[:, :, None] * v[:, None, :]
        + 2 * w[..., None] * cross
    )


def reference_rasterization(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    tile_size: int = 16,
    backgrounds: Tensor | None = None,
    render_mode: str = "RGB",
    rasterize_mode: str = "classic",
    dtype: torch.dtype = torch.float64,
    chunk: int = 256,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Same inputs/outputs as ``render_cpu.rasterization`` (subset of meta); differentiable, slow."""
    to = {"dtype": dtype}
    means, quats, scales, opacities = means.to(**to), quats.to(**to), scales.to(**to), opacities.to(**to)
    colors, viewmats, Ks = colors.to(**to), viewmats.to(**to), Ks.to(**to)
    n_cams = viewmats.shape[0]
    rot = _rotation(quats)
    cov3 = rot @ torch.diag_embed(scales * scales) @ rot.transpose(1, 2)

    pix_y, pix_x = torch.meshgrid(torch.arange(height, **to), torch.arange(width, **to), indexing="ij")
    pix = torch.stack([pix_x.reshape(-1), pix_y.reshape(-1)], -1) + 0.5  # [HW, 2]
    tile_of_pix = (pix - 0.5).long() // tile_size  # [HW, 2] tile column/row of each pixel

    out_cols, out_alpha, all_m2d, all_radii, all_depth = [], [], [], [], []
    for c in range(n_cams):
        rc, tc = viewmats[c, :3, :3], viewmats[c, :3, 3]
        p = means @ rc.T + tc
        covc = rc @ cov3 @ rc.T
        fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
        z = p[:, 2]
        ok_z = (z >= near_plane) & (z <= far_plane)
        zs = torch.where(ok_z, z, torch.ones_like(z))
        tanx, tany = 0.5 * width / fx, 0.5 * height / fy
        xz = torch.clamp(p[:, 0] / zs, -(cx / fx + 0.3 * tanx), (width - cx) / fx + 0.3 * tanx)
        yz = torch.clamp(p[:, 1] / zs, -(cy / fy + 0.3 * tany), (height - cy) / fy + 0.3 * tany)
        zero = torch.zeros_like(zs)
        jac = torch.stack([fx / zs, zero, -fx * xz / zs, zero, fy / zs, -fy * yz / zs], -1).reshape(-1, 2, 3)
        cov2 = jac @ covc @ jac.transpose(1, 2)
        det0 = torch.linalg.det(cov2)
        cov2 = cov2 + eps2d * torch.eye(2, **to)
        det = torch.linalg.det(cov2)
        ok_det = det > 0
        cov2 = torch.where(ok_det[:, None, None], cov2, torch.eye(2, **to))
        conic = torch.linalg.inv(cov2)
        half_tr = 0.5 * (cov2[:, 0, 0] + cov2[:, 1, 1])
        lam = half_tr + torch.sqrt(torch.clamp(half_tr**2 - det, min=0.01))
        radius = torch.ceil(3 * torch.sqrt(lam)).detach()
        m2d = torch.stack([fx * p[:, 0] / zs + cx, fy * p[:, 1] / zs + cy], -1)
        on = (m2d[:, 0] + radius > 0) & (m2d[:, 0] - radius < width) & (m2d[:, 1] + radius > 0)
        on = on & (m2d[:, 1] - radius < height)
        valid = (ok_z & ok_det & (radius > radius_clip) & on).detach()
        radii = torch.where(valid, radius, torch.zeros_like(radius)).int()
        opac = opacities
        if rasterize_mode == "antialiased":
            opac = opac * torch.sqrt(
                torch.clamp(det0 / torch.where(ok_det, det, torch.ones_like(det)), min=0)
            )

        if sh_degree is None:
            feat = colors if colors.dim() == 2 else colors[c]
        else:
            sh = colors if colors.dim() == 3 else colors[c]
            feat = view_dependent_colors(sh_degree, sh, means, viewmats[c : c + 1], valid[None])[0]
        if render_mode in ("RGB+D", "RGB+ED"):
            feat = torch.cat([feat, z[:, None]], -1)
        elif render_mode in ("D", "ED"):
            feat = z[:, None]

        # Tile rectangle of every Gaussian, computed in float32 like gsplat's binning.
        t_xy = m2d.detach().float() / tile_size
        t_r = radii.float()[:, None] / tile_size
        lim = torch.tensor([math.ceil(width / tile_size), math.ceil(height / tile_size)])
        t_lo = torch.minimum(torch.floor(t_xy - t_r).clamp_min(0).long(), lim)
        t_hi = torch.minimum(torch.ceil(t_xy + t_r).clamp_min(0).long(), lim)

        idx = torch.nonzero(valid).squeeze(1)
        idx = idx[torch.sort(z.detach().float()[idx], stable=True).indices]  # front to back
        trans = torch.ones(height * width, **to)
        done = torch.zeros(height * width, dtype=torch.bool)
        acc_col = torch.zeros(height * width, feat.shape[-1], **to)
        for s in range(0, idx.numel(), chunk):
            g = idx[s : s + chunk]
            d = pix[None, :, :] - m2d[g][:, None, :]  # [K, HW, 2]
            sigma = 0.5 * torch.einsum("kpi,kij,kpj->kp", d, conic[g], d)
            alpha = torch.clamp(opac[g][:, None] * torch.exp(-sigma), max=0.999)
            in_tile = ((tile_of_pix[None] >= t_lo[g][:, None]) & (tile_of_pix[None] < t_hi[g][:, None])).all(
                -1
            )
            alpha = alpha * ((sigma >= 0) & (alpha >= 1 / 255) & in_tile).detach()
            t_incl = trans * torch.cumprod(1 - alpha, 0)
            t_excl = torch.cat([trans[None], t_incl[:-1]], 0)
            # A pixel stops before the Gaussian that drops T to <= 1e-4; all later ones are skipped too.
            alive = ((t_incl > 1e-4) & ~done[None]).detach()
            w = alpha * alive * t_excl
            acc_col = acc_col + w.T @ feat[g]
            stop_here = ~alive[-1] & ~done
            trans = torch.where(stop_here, t_excl.gather(0, _first_dead(alive)[None])[0], trans)
            trans = torch.where(alive[-1], t_incl[-1], trans)
            done = done | stop_here
        alpha_img = 1 - trans
        col = acc_col
        if backgrounds is not None:
            bg = backgrounds[c].to(**to)
            if render_mode in ("RGB+D", "RGB+ED"):
                bg = torch.cat([bg, bg.new_zeros(1)])
            elif render_mode in ("D", "ED"):
                bg = bg.new_zeros(1)
            col = col + trans[:, None] * bg
        if render_mode in ("ED", "RGB+ED"):
            col = torch.cat([col[:, :-1], col[:, -1:] / alpha_img[:, None].clamp(min=1e-10)], -1)
        out_cols.append(col.reshape(height, width, -1))
        out_alpha.append(alpha_img.reshape(height, width, 1))
        all_m2d.append(m2d * valid[:, None])
        all_radii.append(radii)
        all_depth.append(z)
    meta = {
        "means2d": torch.stack(all_m2d),
        "radii": torch.stack(all_radii),
        "depths": torch.stack(all_depth),
    }
    return torch.stack(out_cols), torch.stack(out_alpha), meta


def _first_dead(alive: Tensor) -> Tensor:
    """Index (per pixel) of the first Gaussian in the chunk that was not composited (or 0 if none)."""
    return torch.argmax((~alive).int(), dim=0)
