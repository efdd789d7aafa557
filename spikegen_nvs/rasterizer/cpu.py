"""CPU Gaussian rasteriser with gsplat 1.4.0's ``rasterization`` signature and outputs.

Pipeline: project every Gaussian into every camera (``render_cpu_project``), cull, bin the 3σ
footprints into screen tiles sorted by depth (``render_cpu_tiles``), then composite per tile only the
Gaussians that touch it, with early stop on transmittance.  Compositing runs in a numba kernel with a
hand-written backward when numba is installed (``render_cpu_numba``), else in vectorised PyTorch
(``render_cpu_torch``).  Supported: pinhole cameras, ``packed=False`` outputs (``packed=True`` is
accepted and treated as False, as the ``[C, N]`` layout is what the CPU path computes anyway),
render modes RGB / D / ED / RGB+D / RGB+ED, SH degree 0..3, classic and antialiased modes, absgrad.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
from torch import Tensor

from spikegen_core.errors import InputMismatchError
from spikegen_nvs.rasterizer.project import project_gaussians, quat_scale_to_covar, view_dependent_colors
from spikegen_nvs.rasterizer.tiles import intersect_tiles
from spikegen_nvs.rasterizer.torch_composite import composite_torch

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]


def compositor_name() -> str:
    """Which compositor runs: ``"numba"`` when available (override with SPIKEGEN_CPU_RASTER=torch)."""
    if os.environ.get("SPIKEGEN_CPU_RASTER", "").lower() == "torch":
        return "torch"
    try:
        from spikegen_nvs.rasterizer import numba_composite as render_cpu_numba  # noqa: F401
    except ImportError:
        return "torch"
    return "numba"


def rasterization(
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
    packed: bool = True,
    tile_size: int = 16,
    backgrounds: Tensor | None = None,
    render_mode: RenderMode = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    rasterize_mode: Literal["classic", "antialiased"] = "classic",
    channel_chunk: int = 32,
    distributed: bool = False,
    camera_model: Literal["pinhole", "ortho", "fisheye"] = "pinhole",
    covars: Tensor | None = None,
    compositor: Literal["auto", "numba", "torch"] = "auto",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render ``N`` Gaussians into ``C`` cameras; same arguments and outputs as gsplat 1.4.0.

    Returns ``(render_colors [C, H, W, D (+1 with depth)], render_alphas [C, H, W, 1], meta)``; ``meta``
    has the ``packed=False`` keys gsplat returns (``means2d`` with its gradient retained, ``radii``,
    ``depths``, ``conics``, ``opacities``, tiling info, ``width``, ``height``, ``n_cameras``, ...).
    ``sparse_grad`` and ``channel_chunk`` only matter on CUDA and are ignored; ``compositor`` (not in
    gsplat) picks the CPU compositor.
    """
    del sparse_grad, channel_chunk, packed  # CUDA-only knobs
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, render_mode,
                  rasterize_mode, distributed, camera_model, covars)  # fmt: skip
    n_cams = viewmats.shape[0]
    use = compositor_name() if compositor == "auto" else compositor
    if covars is None:
        covars = quat_scale_to_covar(quats, scales)
    project = project_gaussians
    if use == "numba" and not (viewmats.requires_grad or Ks.requires_grad):
        # Hand-written backward, much cheaper than autograd over ~40 small ops; no pose gradients though.
        from spikegen_nvs.rasterizer.numba_project import project_gaussians_numba as project
    proj = project(
        means, covars, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, calc_compensations=rasterize_mode == "antialiased",
    )  # fmt: skip
    visible = proj.radii > 0
    opac = opacities[None, :].expand(n_cams, -1)
    if proj.compensations is not None:
        opac = opac * proj.compensations

    if sh_degree is None:
        feats = colors if colors.dim() == 3 else colors[None].expand(n_cams, -1, -1)
    else:
        feats = view_dependent_colors(sh_degree, colors, means, viewmats, visible)
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = torch.cat([feats, proj.depths[..., None]], dim=-1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(n_cams, 1)], dim=-1)
    elif render_mode in ("D", "ED"):
        feats = proj.depths[..., None]
        if backgrounds is not None:
            backgrounds = backgrounds.new_zeros(n_cams, 1)

    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()  # densification strategies read means2d.grad after backward
    bins = intersect_tiles(means2d, proj.radii, proj.depths, width, height, tile_size)

    if use == "numba":
        from spikegen_nvs.rasterizer.numba_composite import composite_numba

        render_colors, render_alphas = composite_numba(
            means2d, proj.conics, feats, opac, bins, width, height, backgrounds, absgrad
        )
    else:
        render_colors, render_alphas = composite_torch(
            means2d, proj.conics, feats, opac, bins, width, height, backgrounds, absgrad
        )
    if render_mode in ("ED", "RGB+ED"):
        depth = render_colors[..., -1:] / render_alphas.clamp(min=1e-10)
        render_colors = torch.cat([render_colors[..., :-1], depth], dim=-1)

    meta: dict[str, Any] = {
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": proj.radii,
        "means2d": means2d,
        "depths": proj.depths,
        "conics": proj.conics,
        "opacities": opac,
        "tile_width": bins.tile_width,
        "tile_height": bins.tile_height,
        "tiles_per_gauss": bins.tiles_per_gauss,
        "isect_ids": bins.isect_ids,
        "flatten_ids": bins.flatten_ids.int(),
        "isect_offsets": bins.offsets[:-1].reshape(n_cams, bins.tile_height, bins.tile_width).int(),
        "width": width,
        "height": height,
        "tile_size": tile_size,
        "n_cameras": n_cams,
    }
    return render_colors, render_alphas, meta


def _check_inputs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    sh_degree: int | None,
    render_mode: str,
    rasterize_mode: str,
    distributed: bool,
    camera_model: str,
    covars: Tensor | None,
) -> None:
    """Shape and option checks with messages that say what to pass instead."""
    n, c = means.shape[0], viewmats.shape[0]

    def bad(msg: str) -> InputMismatchError:
        return InputMismatchError(f"render_cpu.rasterization: {msg}")

    if means.shape != (n, 3):
        raise bad(f"means must be [N, 3], got {tuple(means.shape)}")
    if covars is None and (quats.shape != (n, 4) or scales.shape != (n, 3)):
        raise bad(f"quats/scales must be [N, 4]/[N, 3], got {tuple(quats.shape)}/{tuple(scales.shape)}")
    if covars is not None and covars.shape != (n, 3, 3):
        raise bad(f"covars must be [N, 3, 3], got {tuple(covars.shape)}")
    if opacities.shape != (n,):
        raise bad(f"opacities must be [N], got {tuple(opacities.shape)}; squeeze the last axis")
    if viewmats.shape != (c, 4, 4) or Ks.shape != (c, 3, 3):
        raise bad(f"viewmats/Ks must be [C, 4, 4]/[C, 3, 3], got {tuple(viewmats.shape)}/{tuple(Ks.shape)}")
    if sh_degree is None:
        if not (
            (colors.dim() == 2 and colors.shape[0] == n) or (colors.dim() == 3 and colors.shape[:2] == (c, n))
        ):
            raise bad(f"colors must be [N, D] or [C, N, D] when sh_degree is None, got {tuple(colors.shape)}")
    elif not (
        (colors.dim() == 3 and colors.shape[0] == n and colors.shape[2] == 3)
        or (colors.dim() == 4 and colors.shape[:2] == (c, n) and colors.shape[3] == 3)
    ):
        raise bad(f"SH colors must be [N, K, 3] or [C, N, K, 3], got {tuple(colors.shape)}")
    if render_mode not in ("RGB", "D", "ED", "RGB+D", "RGB+ED"):
        raise bad(f"unknown render_mode {render_mode!r}; use RGB, D, ED, RGB+D or RGB+ED")
    if rasterize_mode not in ("classic", "antialiased"):
        raise bad(f"unknown rasterize_mode {rasterize_mode!r}; use 'classic' or 'antialiased'")
    if distributed:
        raise bad("distributed rendering needs CUDA; pass distributed=False on CPU")
    if camera_model != "pinhole":
        raise bad(f"camera_model={camera_model!r} is not implemented on CPU; use 'pinhole' or render on CUDA")
