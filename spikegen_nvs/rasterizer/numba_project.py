"""Projection of 3-D Gaussians (world covariances → screen conics) as numba kernels with a hand-written backward.

Same maths and culling as ``render_cpu_project.project_gaussians`` (which autograd differentiates and
which stays the path when the camera poses need gradients); this one saves the ~40 small torch ops
and their autograd graph per call, which dominate the CPU time of a small render.  Gradients flow to
``means`` and ``covars`` (not to ``viewmats``/``Ks``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from spikegen_nvs.rasterizer.project import Projection


@numba.njit(inline="always")
def _sandwich(a, s, b, out):
    """out = a · s · bᵀ for small dense matrices (explicit loops: BLAS calls cost more than the maths)."""
    for i in range(a.shape[0]):
        for k in range(b.shape[0]):
            acc = 0.0
            for j in range(a.shape[1]):
                row = 0.0
                for m in range(s.shape[1]):
                    row += s[j, m] * b[k, m]
                acc += a[i, j] * row
            out[i, k] = acc


@numba.njit(nogil=True, cache=True)
def _project_fwd(means, covars, viewmats, Ks, width, height, eps2d, near, far, radius_clip,
                 means2d, conics, depths, radii, comps):  # fmt: skip
    n_cams, n = viewmats.shape[0], means.shape[0]
    sc = np.empty((3, 3))
    for ci in range(n_cams):
        r = viewmats[ci, :3, :3]
        fx, fy, cx, cy = Ks[ci, 0, 0], Ks[ci, 1, 1], Ks[ci, 0, 2], Ks[ci, 1, 2]
        lxp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
        lxn = cx / fx + 0.3 * (0.5 * width / fx)
        lyp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
        lyn = cy / fy + 0.3 * (0.5 * height / fy)
        for g in range(n):
            m = means[g]
            x = r[0, 0] * m[0] + r[0, 1] * m[1] + r[0, 2] * m[2] + viewmats[ci, 0, 3]
            y = r[1, 0] * m[0] + r[1, 1] * m[1] + r[1, 2] * m[2] + viewmats[ci, 1, 3]
            z = r[2, 0] * m[0] + r[2, 1] * m[1] + r[2, 2] * m[2] + viewmats[ci, 2, 3]
            depths[ci, g] = z
            radii[ci, g] = 0
            means2d[ci, g, 0] = 0.0
            means2d[ci, g, 1] = 0.0
            conics[ci, g, 0] = 0.0
            conics[ci, g, 1] = 0.0
            conics[ci, g, 2] = 0.0
            comps[ci, g] = 0.0
            if z < near or z > far:
                continue
            _sandwich(r, covars[g], r, sc)
            tx = z * min(max(x / z, -lxn), lxp)
            ty = z * min(max(y / z, -lyn), lyp)
            ja, jb = fx / z, -fx * tx / (z * z)
            jc, jd = fy / z, -fy * ty / (z * z)
            c00 = ja * ja * sc[0, 0] + 2 * ja * jb * sc[0, 2] + jb * jb * sc[2, 2]
            c01 = ja * jc * sc[0, 1] + ja * jd * sc[0, 2] + jb * jc * sc[1, 2] + jb * jd * sc[2, 2]
            c11 = jc * jc * sc[1, 1] + 2 * jc * jd * sc[1, 2] + jd * jd * sc[2, 2]
            det0 = c00 * c11 - c01 * c01
            c00 += eps2d
            c11 += eps2d
            det = c00 * c11 - c01 * c01
            if det <= 0.0:
                continue
            half_tr = 0.5 * (c00 + c11)
            v1 = half_tr + math.sqrt(max(half_tr * half_tr - det, 0.01))
            radius = math.ceil(3.0 * math.sqrt(v1))
            u, v = fx * x / z + cx, fy * y / z + cy
            if (
                radius <= radius_clip
                or u + radius <= 0
                or u - radius >= width
                or v + radius <= 0
                or v - radius >= height
            ):
                continue
            radii[ci, g] = int(radius)
            means2d[ci, g, 0] = u
            means2d[ci, g, 1] = v
            conics[ci, g, 0] = c11 / det
            conics[ci, g, 1] = -c01 / det
            conics[ci, g, 2] = c00 / det
            comps[ci, g] = math.sqrt(max(det0 / det, 0.0))


@numba.njit(nogil=True, cache=True)
def _project_bwd(means, covars, viewmats, Ks, width, height, eps2d, radii,
                 v_means2d, v_conics, v_depths, v_comps, v_means, v_covars):  # fmt: skip
    n_cams, n = viewmats.shape[0], means.shape[0]
    sc, jac, vc, tmp = np.empty((3, 3)), np.zeros((2, 3)), np.empty((2, 2)), np.empty((3, 3))
    q, vq = np.empty((2, 2)), np.empty((2, 2))
    v_jac, v_sc, rt = np.empty((2, 3)), np.empty((3, 3)), np.empty((3, 3))
    v_p = np.empty(3)
    for ci in range(n_cams):
        r = viewmats[ci, :3, :3]
        for i in range(3):
            for j in range(3):
                rt[i, j] = r[j, i]
        fx, fy, cx, cy = Ks[ci, 0, 0], Ks[ci, 1, 1], Ks[ci, 0, 2], Ks[ci, 1, 2]
        lxp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
        lxn = cx / fx + 0.3 * (0.5 * width / fx)
        lyp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
        lyn = cy / fy + 0.3 * (0.5 * height / fy)
        for g in range(n):
            v_p[0], v_p[1], v_p[2] = 0.0, 0.0, v_depths[ci, g]
            if radii[ci, g] > 0:
                m = means[g]
                x = r[0, 0] * m[0] + r[0, 1] * m[1] + r[0, 2] * m[2] + viewmats[ci, 0, 3]
                y = r[1, 0] * m[0] + r[1, 1] * m[1] + r[1, 2] * m[2] + viewmats[ci, 1, 3]
                z = r[2, 0] * m[0] + r[2, 1] * m[1] + r[2, 2] * m[2] + viewmats[ci, 2, 3]
                _sandwich(r, covars[g], r, sc)
                rx, ry = x / z, y / z
                tx = z * min(max(rx, -lxn), lxp)
                ty = z * min(max(ry, -lyn), lyp)
                jac[0, 0], jac[0, 2] = fx / z, -fx * tx / (z * z)
                jac[1, 1], jac[1, 2] = fy / z, -fy * ty / (z * z)
                _sandwich(jac, sc, jac, vc)  # the unblurred 2-D covariance, for now
                u00, u01, u11 = vc[0, 0], vc[0, 1], vc[1, 1]
                c00, c01, c11 = u00 + eps2d, u01, u11 + eps2d
                det = c00 * c11 - c01 * c01
                det0 = u00 * u11 - u01 * u01
                # Q = inv(C_blur) holds the conic (Q01 = conic[1]):  dL/dC = -Q · dL/dQ · Q.
                q[0, 0], q[0, 1], q[1, 0], q[1, 1] = c11 / det, -c01 / det, -c01 / det, c00 / det
                vq[0, 0], vq[1, 1] = v_conics[ci, g, 0], v_conics[ci, g, 2]
                vq[0, 1] = vq[1, 0] = 0.5 * v_conics[ci, g, 1]
                _sandwich(q, vq, q, vc)
                for i in range(2):
                    for j in range(2):
                        vc[i, j] = -vc[i, j]
                # compensation = sqrt(det0 / det), det0 from the unblurred entries.
                ratio = det0 / det
                if ratio > 0.0:
                    v_ratio = v_comps[ci, g] * 0.5 / math.sqrt(ratio)
                    vc[0, 0] += v_ratio * (u11 / det - det0 * c11 / (det * det))
                    vc[1, 1] += v_ratio * (u00 / det - det0 * c00 / (det * det))
                    off = v_ratio * (-c01 / det + det0 * c01 / (det * det))  # per symmetric entry
                    vc[0, 1] += off
                    vc[1, 0] += off
                # cov = J Σc Jᵀ (vc symmetric):  dΣc = Jᵀ vc J,  dJ = 2 vc J Σc.
                _sandwich(jac.T, vc, jac.T, v_sc)
                _sandwich(vc, jac, sc, v_jac)
                for i in range(2):
                    for j in range(3):
                        v_jac[i, j] *= 2.0
                # Σc = R Σ Rᵀ:  dΣ = Rᵀ dΣc R.
                _sandwich(rt, v_sc, rt, tmp)
                for i in range(3):
                    for j in range(3):
                        v_covars[g, i, j] += tmp[i, j]
                inv_z2 = 1.0 / (z * z)
                v_p[2] += -fx * inv_z2 * v_jac[0, 0] - fy * inv_z2 * v_jac[1, 1]
                v_p[2] += 2.0 * fx * tx * inv_z2 / z * v_jac[0, 2] + 2.0 * fy * ty * inv_z2 / z * v_jac[1, 2]
                v_tx = -fx * inv_z2 * v_jac[0, 2]
                v_ty = -fy * inv_z2 * v_jac[1, 2]
                # tx = z·clamp(x/z): ∂/∂x = 1 inside the limits, ∂/∂z = the limit outside (torch.clamp's rule).
                if -lxn <= rx <= lxp:
                    v_p[0] += v_tx
                else:
                    v_p[2] += v_tx * min(max(rx, -lxn), lxp)
                if -lyn <= ry <= lyp:
                    v_p[1] += v_ty
                else:
                    v_p[2] += v_ty * min(max(ry, -lyn), lyp)
                vu, vv = v_means2d[ci, g, 0], v_means2d[ci, g, 1]
                v_p[0] += vu * fx / z
                v_p[1] += vv * fy / z
                v_p[2] += -(vu * fx * x + vv * fy * y) * inv_z2
            for j in range(3):
                v_means[g, j] += r[0, j] * v_p[0] + r[1, j] * v_p[1] + r[2, j] * v_p[2]


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, covars, viewmats, Ks, width, height, eps2d, near, far, radius_clip):
        arrays = tuple(t.detach().double().contiguous().numpy() for t in (means, covars, viewmats, Ks))
        n_cams, n = viewmats.shape[0], means.shape[0]
        means2d, conics = np.empty((n_cams, n, 2)), np.empty((n_cams, n, 3))
        depths, comps = np.empty((n_cams, n)), np.empty((n_cams, n))
        radii = np.empty((n_cams, n), np.int32)
        _project_fwd(
            *arrays, width, height, eps2d, near, far, radius_clip, means2d, conics, depths, radii, comps
        )
        ctx.arrays, ctx.args, ctx.radii, ctx.dtype = arrays, (width, height, eps2d), radii, means.dtype
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        out = [torch.from_numpy(a).to(means.dtype) for a in (means2d, conics, depths, comps)]
        return (*out, radii_t)

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, v_comps, _v_radii):
        means, covars = ctx.arrays[0], ctx.arrays[1]
        v_means, v_covars = np.zeros_like(means), np.zeros_like(covars)
        grads = [_dense(v) for v in (v_means2d, v_conics, v_depths, v_comps)]
        _project_bwd(*ctx.arrays, *ctx.args, ctx.radii, *_fill(grads, ctx.radii.shape), v_means, v_covars)
        return (torch.from_numpy(v_means).to(ctx.dtype), torch.from_numpy(v_covars).to(ctx.dtype),
                None, None, None, None, None, None, None, None)  # fmt: skip


def _dense(v: Tensor | None) -> np.ndarray | None:
    return None if v is None else v.detach().double().contiguous().numpy()


def _fill(grads: list, shape: tuple) -> list[np.ndarray]:
    """Replace missing output gradients (outputs that were not used) by zeros."""
    c, n = shape
    full = [(c, n, 2), (c, n, 3), (c, n), (c, n)]
    return [np.zeros(s) if g is None else g for g, s in zip(grads, full, strict=True)]


def project_gaussians_numba(
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
    """Drop-in for ``project_gaussians`` (no gradient to ``viewmats``/``Ks``)."""
    means2d, conics, depths, comps, radii = _Project.apply(
        means, covars, viewmats, Ks, width, height, eps2d, near_plane, far_plane, radius_clip
    )
    return Projection(means2d, conics, depths, radii, comps if calc_compensations else None)
