"""Tile compositor as numba kernels (parallel over screen tiles) with a hand-written backward.

Same rules as gsplat 1.4.0's ``rasterize_to_pixels``: α = min(0.999, o·exp(−σ)), skip σ < 0 or
α < 1/255, stop a pixel before the Gaussian that would take its transmittance to ≤ 1e-4.  Each tile
walks its depth-sorted Gaussians front to back; a Gaussian only visits the pixels of the tile that
can pass the 1/255 test (the ellipse σ ≤ log(255·o), bounded by its axis-aligned box), which is exact
and skips most of the tile for small splats.  The backward walks the same list back to front,
recovering each transmittance by division, as gsplat does, and writes per-intersection gradients
(no races, deterministic) that torch then sums per Gaussian.  Arithmetic is float64 inside.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from torch import Tensor

from spikegen_nvs.rasterizer.tiles import TileBins

ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
T_STOP = 1e-4


@numba.njit(inline="always")
def _pixel_box(mx, my, a, b, c, o, x0, y0, tw, th):
    """Tile-local inclusive pixel box that can hold σ ≤ log(255·o); empty (lo > hi) when none can."""
    s_max = math.log(255.0 * o)
    det = a * c - b * b
    if s_max < 0.0 or det <= 0.0:
        return s_max, 0, -1, 0, -1
    hx = math.sqrt(2.0 * s_max * c / det) + 1.0  # +1 px margin against rounding; σ decides exactly
    hy = math.sqrt(2.0 * s_max * a / det) + 1.0
    fx0 = min(max(mx - hx - 0.5 - x0, -1.0), tw + 1.0)
    fx1 = min(max(mx + hx - 0.5 - x0, -1.0), tw + 1.0)
    fy0 = min(max(my - hy - 0.5 - y0, -1.0), th + 1.0)
    fy1 = min(max(my + hy - 0.5 - y0, -1.0), th + 1.0)
    return (
        s_max,
        max(int(math.ceil(fx0)), 0),
        min(int(math.floor(fx1)), tw - 1),
        max(int(math.ceil(fy0)), 0),
        min(int(math.floor(fy1)), th - 1),
    )


@numba.njit(inline="always")
def _row_span(dy, mx, a, b, c, s_max, x0, lx, hx):
    """Pixels of one row (tile-local, within [lx, hx]) where σ ≤ s_max: solve ½a·dx² + b·dy·dx + ½c·dy² = s_max.

    One pixel of margin on each side; the σ test in the caller stays the exact criterion.
    """
    disc = b * b * dy * dy - 2.0 * a * (0.5 * c * dy * dy - s_max)
    if disc < 0.0:
        return 0, -1
    root = math.sqrt(disc)
    dx_lo = (-b * dy - root) / a
    dx_hi = (-b * dy + root) / a
    # dx = mx - (x0 + px + 0.5)  =>  px = mx - dx - 0.5 - x0
    f_lo = min(max(mx - dx_hi - 1.5 - x0, -1.0), hx + 1.0)
    f_hi = min(max(mx - dx_lo + 0.5 - x0, -1.0), hx + 1.0)
    return max(int(math.ceil(f_lo)), lx), min(int(math.floor(f_hi)), hx)


@numba.njit(nogil=True, cache=True)
def _forward(
    means2d, conics, colors, opac, flat_ids, offsets, tile_w, n_tiles, ts, width, height, seg_lo, seg_hi,
    out_col, out_alpha, out_t, last,
):  # fmt: skip
    n_ch = colors.shape[1]
    for seg in range(seg_lo, seg_hi):
        start, end = offsets[seg], offsets[seg + 1]
        cam, t = seg // n_tiles, seg % n_tiles
        x0, y0 = (t % tile_w) * ts, (t // tile_w) * ts
        tw, th = min(ts, width - x0), min(ts, height - y0)
        trans = np.ones((th, tw))
        alive = np.ones((th, tw), np.bool_)
        acc = np.zeros((th, tw, n_ch))
        last_t = np.full((th, tw), start - 1, np.int64)
        n_alive = th * tw
        for i in range(start, end):
            if n_alive == 0:
                break
            g = flat_ids[i]
            o = opac[g]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            mx, my = means2d[g, 0], means2d[g, 1]
            s_max, lx, hx, ly, hy = _pixel_box(mx, my, a, b, c, o, x0, y0, tw, th)
            for py in range(ly, hy + 1):
                dy = my - (y0 + py + 0.5)
                rx0, rx1 = _row_span(dy, mx, a, b, c, s_max, x0, lx, hx)
                for px in range(rx0, rx1 + 1):
                    if not alive[py, px]:
                        continue
                    dx = mx - (x0 + px + 0.5)
                    sig = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                    if sig < 0.0 or sig > s_max:
                        continue
                    al = min(ALPHA_MAX, o * math.exp(-sig))
                    if al < ALPHA_MIN:
                        continue
                    nt = trans[py, px] * (1.0 - al)
                    if nt <= T_STOP:
                        alive[py, px] = False
                        n_alive -= 1
                        continue
                    w = al * trans[py, px]
                    for k in range(n_ch):
                        acc[py, px, k] += colors[g, k] * w
                    trans[py, px] = nt
                    last_t[py, px] = i
        for py in range(th):
            for px in range(tw):
                out_t[cam, y0 + py, x0 + px] = trans[py, px]
                out_alpha[cam, y0 + py, x0 + px] = 1.0 - trans[py, px]
                last[cam, y0 + py, x0 + px] = last_t[py, px]
                for k in range(n_ch):
                    out_col[cam, y0 + py, x0 + px, k] = acc[py, px, k]


@numba.njit(nogil=True, cache=True)
def _backward(
    means2d, conics, colors, opac, flat_ids, offsets, tile_w, n_tiles, ts, width, height, seg_lo, seg_hi,
    out_t, last, v_col, v_alpha, g_mean, g_conic, g_opac, g_col, g_abs,
):  # fmt: skip
    n_ch = colors.shape[1]
    for seg in range(seg_lo, seg_hi):
        start, end = offsets[seg], offsets[seg + 1]
        cam, t = seg // n_tiles, seg % n_tiles
        x0, y0 = (t % tile_w) * ts, (t // tile_w) * ts
        tw, th = min(ts, width - x0), min(ts, height - y0)
        trans = np.empty((th, tw))
        last_t = np.empty((th, tw), np.int64)
        for py in range(th):
            for px in range(tw):
                trans[py, px] = out_t[cam, y0 + py, x0 + px]
                last_t[py, px] = last[cam, y0 + py, x0 + px]
        behind = np.zeros((th, tw, n_ch))  # Σ over Gaussians behind of colour · weight
        for i in range(end - 1, start - 1, -1):
            g = flat_ids[i]
            o = opac[g]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            mx, my = means2d[g, 0], means2d[g, 1]
            s_max, lx, hx, ly, hy = _pixel_box(mx, my, a, b, c, o, x0, y0, tw, th)
            for py in range(ly, hy + 1):
                dy = my - (y0 + py + 0.5)
                rx0, rx1 = _row_span(dy, mx, a, b, c, s_max, x0, lx, hx)
                for px in range(rx0, rx1 + 1):
                    if i > last_t[py, px]:
                        continue
                    dx = mx - (x0 + px + 0.5)
                    sig = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                    if sig < 0.0 or sig > s_max:
                        continue
                    gauss = math.exp(-sig)
                    al = min(ALPHA_MAX, o * gauss)
                    if al < ALPHA_MIN:
                        continue
                    ra = 1.0 / (1.0 - al)
                    t_i = trans[py, px] * ra  # transmittance in front of this Gaussian
                    w = al * t_i
                    t_final = out_t[cam, y0 + py, x0 + px]
                    v_al = v_alpha[cam, y0 + py, x0 + px] * t_final * ra
                    for k in range(n_ch):
                        vc = v_col[cam, y0 + py, x0 + px, k]
                        g_col[i, k] += w * vc
                        v_al += vc * (colors[g, k] * t_i - behind[py, px, k] * ra)
                        behind[py, px, k] += colors[g, k] * w
                    if o * gauss <= ALPHA_MAX:  # the 0.999 clamp passes no gradient
                        v_sig = -v_al * o * gauss
                        g_opac[i] += v_al * gauss
                        g_conic[i, 0] += 0.5 * v_sig * dx * dx
                        g_conic[i, 1] += v_sig * dx * dy
                        g_conic[i, 2] += 0.5 * v_sig * dy * dy
                        gmx = v_sig * (a * dx + b * dy)
                        gmy = v_sig * (b * dx + c * dy)
                        g_mean[i, 0] += gmx
                        g_mean[i, 1] += gmy
                        g_abs[i, 0] += abs(gmx)
                        g_abs[i, 1] += abs(gmy)
                    trans[py, px] = t_i


@numba.njit(nogil=True, cache=True)
def _sum_rows(index, src, out):
    """out[index[i]] += src[i] (per-intersection gradients → per-Gaussian), serial so race-free."""
    for i in range(index.shape[0]):
        for k in range(src.shape[1]):
            out[index[i], k] += src[i, k]


def _per_gaussian(fid: np.ndarray, src: np.ndarray, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    src = src[:, None] if src.ndim == 1 else src
    out = np.zeros((math.prod(shape[:2]), src.shape[1]))
    _sum_rows(fid, src, out)
    return torch.from_numpy(out).reshape(shape).to(dtype)


def _np(x: Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


def _run_split(kernel, offsets: np.ndarray, head: tuple, tail: tuple) -> None:
    """Run ``kernel(*head, seg_lo, seg_hi, *tail)`` over tile ranges of similar work in a thread pool.

    Plain threads over GIL-free kernels rather than numba's ``parallel=True``: numba's OpenMP layer
    would be a second OpenMP runtime next to torch's, and the two fight over the cores.
    """
    n_seg = offsets.shape[0] - 1
    n_threads = max(1, torch.get_num_threads())
    if n_threads == 1 or offsets[-1] < 2048:
        kernel(*head, 0, n_seg, *tail)
        return
    # Cut where the cumulative intersection count (plus a per-tile cost) crosses equal shares.
    work = offsets[1:] + np.arange(1, n_seg + 1) * 16
    cuts = np.searchsorted(work, np.linspace(0, work[-1], 4 * n_threads + 1)[1:-1])
    bounds = np.concatenate([[0], cuts, [n_seg]])
    jobs = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]
    futures = [_pool(n_threads).submit(kernel, *head, int(lo), int(hi), *tail) for lo, hi in jobs]
    for f in futures:
        f.result()


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(n_threads: int) -> ThreadPoolExecutor:
    if n_threads not in _POOLS:
        _POOLS[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="spikegen-raster")
    return _POOLS[n_threads]


class _Composite(torch.autograd.Function):
    """Autograd wrapper around the numba kernels; outputs ``([C,H,W,D] colours, [C,H,W] alpha)``."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, bins, width, height, absgrad):
        n_cams = opacities.shape[0]
        n_ch = colors.shape[-1]
        arrays = (
            _np(means2d.reshape(-1, 2)),
            _np(conics.reshape(-1, 3)),
            _np(colors.reshape(-1, n_ch)),
            _np(opacities.reshape(-1)),
            bins.flatten_ids.numpy(),
            bins.offsets.numpy(),
        )
        geometry = (bins.tile_width, bins.tile_width * bins.tile_height, bins.tile_size, width, height)
        np_dtype = arrays[2].dtype
        out_col = np.empty((n_cams, height, width, n_ch), np_dtype)
        out_alpha = np.empty((n_cams, height, width), np_dtype)
        out_t = np.empty((n_cams, height, width))  # float64 for the backward's divisions
        last = np.empty((n_cams, height, width), np.int64)
        _run_split(_forward, bins.offsets.numpy(), (*arrays, *geometry), (out_col, out_alpha, out_t, last))
        ctx.arrays, ctx.geometry, ctx.out_t, ctx.last = arrays, geometry, out_t, last
        # Same order as the kernel's gradient outputs: means2d, conics, opacities, colours.
        ctx.shapes = (means2d.shape, conics.shape, opacities.shape, colors.shape)
        ctx.dtypes = (means2d.dtype, conics.dtype, opacities.dtype, colors.dtype)
        ctx.n_isect = bins.flatten_ids.numel()
        ctx.means2d = means2d if absgrad else None
        return torch.from_numpy(out_col), torch.from_numpy(out_alpha)

    @staticmethod
    def backward(ctx, v_col, v_alpha):
        n_isect = ctx.n_isect
        n_ch = ctx.shapes[3][-1]
        grads = (
            np.zeros((n_isect, 2)),
            np.zeros((n_isect, 3)),
            np.zeros(n_isect),
            np.zeros((n_isect, n_ch)),
            np.zeros((n_isect, 2)),
        )
        tail = (ctx.out_t, ctx.last, _np(v_col), _np(v_alpha), *grads)
        _run_split(_backward, ctx.arrays[5], (*ctx.arrays, *ctx.geometry), tail)
        fid = ctx.arrays[4]
        out = [
            _per_gaussian(fid, g, shape, dt)
            for g, shape, dt in zip(grads[:4], ctx.shapes, ctx.dtypes, strict=True)
        ]
        if ctx.means2d is not None:
            ctx.means2d.absgrad = _per_gaussian(fid, grads[4], ctx.shapes[0], ctx.dtypes[0])
        return out[0], out[1], out[3], out[2], None, None, None, None


def composite_numba(
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
    render_colors, alpha = _Composite.apply(means2d, conics, colors, opacities, bins, width, height, absgrad)
    render_alphas = alpha[..., None]
    if backgrounds is not None:
        render_colors = render_colors + backgrounds[:, None, None, :] * (1.0 - render_alphas)
    return render_colors, render_alphas
