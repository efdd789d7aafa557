"""Projection of 3-D Gaussians to the image plane, and SH colour evaluation (differentiable, pure torch).

Follows gsplat 1.4.0's pinhole model: EWA Jacobian with the view-frustum clamp (1.3 × the half field of
view) on the Jacobian only, ``eps2d`` blur added to the 2-D covariance, optional antialiasing
compensation, a 3σ radius from the larger eigenvalue, and the same culling rules (near/far plane,
non-positive determinant, radius ≤ ``radius_clip``, footprint entirely off-screen).
Everything is batched over ``[C, N]``; autograd gives the exact backward of these few element-wise ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from spikegen_core.errors import InputMismatchError

# Real SH basis constants (the 3DGS / gsplat convention), bands 0..3.
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
MAX_SH_DEGREE = 3


@dataclass
class Projection:
    """Per-(camera, Gaussian) screen-space quantities, all ``[C, N, ...]``."""

    means2d: Tensor  # [C, N, 2] pixel coordinates (zeros where culled)
    conics: Tensor  # [C, N, 3] upper triangle of the inverse blurred 2-D covariance (a, b, c)
    depths: Tensor  # [C, N] camera-space z
    radii: Tensor  # [C, N] int32, 0 = culled
    compensations: Tensor | None  # [C, N] antialiasing opacity factor, or None in classic mode


def quat_scale_to_covar(quats: Tensor, scales: Tensor) -> Tensor:
    """World-space covariance ``R S Sᵀ Rᵀ`` from (w, x, y, z) quaternions (any norm) and scales."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*quats.shape[:-1], 3, 3)  # fmt: skip
    m = rot * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Tensor,
    covars: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    calc_compensations: bool = False,
) -> Projection:
    """Project ``N`` Gaussians (means ``[N,3]``, covariances ``[N,3,3]``) into ``C`` pinhole cameras."""
    rot = viewmats[:, :3, :3]
    trans = viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", rot, means) + trans[:, None, :]  # [C, N, 3]
    cov_c = torch.einsum("cij,njk,clk->cnil", rot, covars, rot)  # R Σ Rᵀ, [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)
    in_depth = (z >= near_plane) & (z <= far_plane)
    # Culled entries get harmless stand-in values so that no inf/NaN leaks into the backward pass.
    z_safe = torch.where(in_depth, z, torch.ones_like(z))

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    # The Jacobian is evaluated at a point clamped to 1.3 × the frustum, as gsplat does, so that
    # Gaussians far off to the side do not get absurdly stretched footprints.
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    xc = z_safe * torch.clamp(x / z_safe, min=-lim_x_neg, max=lim_x_pos)
    yc = z_safe * torch.clamp(y / z_safe, min=-lim_y_neg, max=lim_y_pos)

    # J = [[a, 0, b], [0, c, d]]; cov2d = J Σ Jᵀ written out (the zeros make it cheap).
    inv_z = 1.0 / z_safe
    a = fx * inv_z
    b = -fx * xc * inv_z * inv_z
    c = fy * inv_z
    d = -fy * yc * inv_z * inv_z
    s00, s01, s02 = cov_c[..., 0, 0], cov_c[..., 0, 1], cov_c[..., 0, 2]
    s11, s12, s22 = cov_c[..., 1, 1], cov_c[..., 1, 2], cov_c[..., 2, 2]
    c00 = a * a * s00 + 2 * a * b * s02 + b * b * s22
    c01 = a * c * s01 + a * d * s02 + b * c * s12 + b * d * s22
    c11 = c * c * s11 + 2 * c * d * s12 + d * d * s22

    det_orig = c00 * c11 - c01 * c01
    c00 = c00 + eps2d
    c11 = c11 + eps2d
    det = c00 * c11 - c01 * c01
    ok_det = det > 0
    det_safe = torch.where(ok_det, det, torch.ones_like(det))
    conics = torch.stack([c11 / det_safe, -c01 / det_safe, c00 / det_safe], dim=-1)
    compensations = None
    if calc_compensations:
        compensations = torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))

    half_tr = 0.5 * (c00 + c11)
    v1 = half_tr + torch.sqrt(torch.clamp(half_tr * half_tr - det, min=0.01))
    radius = torch.ceil(3.0 * torch.sqrt(v1.detach()))

    u = fx * x * inv_z + cx
    v = fy * y * inv_z + cy
    on_screen = (u + radius > 0) & (u - radius < width) & (v + radius > 0) & (v - radius < height)
    valid = in_depth & ok_det & (radius > radius_clip) & on_screen
    radii = torch.where(valid, radius, torch.zeros_like(radius)).int()
    means2d = torch.stack([u, v], dim=-1) * valid[..., None]
    return Projection(means2d=means2d, conics=conics, depths=z, radii=radii, compensations=compensations)


def sh_to_color(sh_degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Evaluate real SH up to ``sh_degree`` at unit ``dirs`` ``[..., 3]`` for ``coeffs`` ``[..., K, 3]``.

    Returns the raw SH value ``[..., 3]`` (gsplat then adds 0.5 and clamps at 0).
    """
    if sh_degree > MAX_SH_DEGREE or sh_degree < 0:
        raise InputMismatchError(
            f"render_cpu: sh_degree={sh_degree} is not supported by the CPU rasteriser (0..{MAX_SH_DEGREE}); "
            "lower `sh_degree` or render on CUDA with gsplat"
        )
    if coeffs.shape[-2] < (sh_degree + 1) ** 2:
        raise InputMismatchError(
            f"render_cpu: colors carry {coeffs.shape[-2]} SH bases but sh_degree={sh_degree} needs "
            f"{(sh_degree + 1) ** 2}; pass colors of shape [N, K, 3] with K >= (sh_degree + 1)**2"
        )
    sh = coeffs.unbind(-2)
    out = SH_C0 * sh[0]
    if sh_degree == 0:
        return out
    x, y, z = (t[..., None] for t in dirs.unbind(-1))
    out = out - SH_C1 * y * sh[1] + SH_C1 * z * sh[2] - SH_C1 * x * sh[3]
    if sh_degree == 1:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (
        out
        + SH_C2[0] * xy * sh[4]
        + SH_C2[1] * yz * sh[5]
        + SH_C2[2] * (2 * zz - xx - yy) * sh[6]
        + SH_C2[3] * xz * sh[7]
        + SH_C2[4] * (xx - yy) * sh[8]
    )
    if sh_degree == 2:
        return out
    return (
        out
        + SH_C3[0] * y * (3 * xx - yy) * sh[9]
        + SH_C3[1] * xy * z * sh[10]
        + SH_C3[2] * y * (4 * zz - xx - yy) * sh[11]
        + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[12]
        + SH_C3[4] * x * (4 * zz - xx - yy) * sh[13]
        + SH_C3[5] * z * (xx - yy) * sh[14]
        + SH_C3[6] * x * (xx - 3 * yy) * sh[15]
    )


def view_dependent_colors(
    sh_degree: int, coeffs: Tensor, means: Tensor, viewmats: Tensor, visible: Tensor
) -> Tensor:
    """gsplat's colour from SH: ``max(SH(dir) + 0.5, 0)`` with dir = mean − camera centre; ``[C, N, 3]``.

    ``coeffs`` is ``[N, K, 3]`` or ``[C, N, K, 3]``; invisible entries (``visible`` False) are zero.
    """
    centres = torch.linalg.inv(viewmats)[:, :3, 3]  # camera centres in world space, [C, 3]
    dirs = F.normalize(means[None, :, :] - centres[:, None, :], dim=-1)  # [C, N, 3]
    if coeffs.dim() == 3:
        coeffs = coeffs.expand(viewmats.shape[0], -1, -1, -1)
    colors = torch.clamp_min(sh_to_color(sh_degree, dirs, coeffs) + 0.5, 0.0)
    return colors * visible[..., None]
