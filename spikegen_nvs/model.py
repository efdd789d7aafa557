"""``SpikeGenSplatModel``: splatfacto plus the spike re-synthesis loss, runnable on CPU.

Training renders ``K`` virtual views across each view's spike window (poses interpolated between the
window-edge poses) in ONE batched rasterisation call; the view at the window centre takes the usual
photometric loss against the restored dense frame (on luminance when that frame is grey), all ``K`` views
feed the spike loss (expected vs observed counts) and, with a blurred RGB frame, the re-blur loss.
Evaluation, the viewer, ``ns-render`` and ``ns-export`` see a plain splatfacto model rendering the centre.

Rasterisation goes through ``spikegen_nvs.rasterizer.rasterization`` (gsplat on CUDA, ours on CPU).
nerfstudio 1.1.5 traps handled here: hard-coded ``.cuda()`` (SH init with seed points, intrinsics in
``get_outputs``), LPIPS weight download, ``absgrad`` on CPU; the ``torch.load`` shim is applied when the model is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.models.splatfacto import RGB2SH, SplatfactoModel, SplatfactoModelConfig, resize_image
from nerfstudio.utils import poses as pose_utils

from spikegen_core.errors import InputMismatchError, NonFiniteLossError
from spikegen_nvs import compat, spike_loss
from spikegen_nvs.rasterizer import rasterization
from spikegen_nvs.scene_extent import random_means_in_box


def viewmats_from_c2w(c2w: torch.Tensor) -> torch.Tensor:
    """nerfstudio (OpenGL) camera-to-world ``(C, 3, 4)`` → gsplat (OpenCV) world-to-camera ``(C, 4, 4)``."""
    flip = torch.tensor([1.0, -1.0, -1.0], device=c2w.device, dtype=c2w.dtype)
    rot = c2w[:, :3, :3] * flip  # flip y and z camera axes
    view = torch.zeros(c2w.shape[0], 4, 4, device=c2w.device, dtype=c2w.dtype)
    view[:, :3, :3] = rot.transpose(1, 2)
    view[:, :3, 3:4] = -rot.transpose(1, 2) @ c2w[:, :3, 3:4]
    view[:, 3, 3] = 1.0
    return view


@dataclass
class SpikeGenSplatModelConfig(SplatfactoModelConfig):
    """splatfacto + spike re-synthesis. Weights of 0 switch a term (and the virtual views it needs) off."""

    _target: type = field(default_factory=lambda: SpikeGenSplatModel)
    num_virtual_views: int = 5
    """K: virtual views rendered across each spike window (odd K puts one exactly at the centre)."""
    photometric_weight: float = 1.0
    """Weight of splatfacto's L1+SSIM loss to the dense frame (on luminance when the frame is grey)."""
    spike_window_weight: float = 1.0
    """Per-pixel spike counts over the whole window vs expected counts (per-tick rate scale)."""
    spike_subwindow_weight: float = 0.5
    """Per-pixel counts per sub-window (one per virtual view) vs expected counts."""
    spike_loss_kind: Literal["l1", "poisson"] = "l1"
    reblur_weight: float = 0.5
    """Mean of the virtual views vs the blurred RGB frame, when the scene has one."""
    spike_warmup: int = 0
    """Steps during which only the photometric loss is used."""
    use_absgrad: bool = True
    """Densify on |grad| (gsplat on CUDA); forced off on CPU."""
    random_init_in_scene_box: bool = True
    """Random init (no seed points, or `random_init`) fills the dataparser's scene box instead of splatfacto's
    cube of side `random_scale` about the origin: the same unless the cameras stand inside the scene
    (spikegen_nvs/scene_extent.py)."""


class SpikeGenSplatModel(SplatfactoModel):
    """See the module docstring."""

    config: SpikeGenSplatModelConfig

    # -- setup ----------------------------------------------------------------------------------------
    def populate_modules(self) -> None:
        # Here, not at import: this module is imported while nerfstudio's eval_utils is half-initialised,
        # and eval_setup/Trainer load the checkpoint only after the model exists.
        compat.apply_nerfstudio_shims()
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            # nerfstudio 1.1.5's splatfacto under DDP silently drifts (densification replaces the parameters DDP
            # registered; views are not split across ranks): refuse rather than train something wrong.
            raise InputMismatchError(
                "spikegen-splat trains on one GPU (nerfstudio 1.1.5 splatfacto has no multi-GPU support); "
                "use --machine.num-devices 1 and train several scenes in parallel instead"
            )
        seeds = self.seed_points
        if seeds is not None and seeds[1].shape[0] > 0 and not self.config.random_init:
            # splatfacto builds seed colours with a hard-coded .cuda(); let it take only the points and
            # set the colours here on whatever device we are on.
            self.seed_points = (seeds[0], seeds[1][:0])
        with _lpips_only_if_local():
            super().populate_modules()
        self.seed_points = seeds
        if (seeds is None or self.config.random_init) and self.config.random_init_in_scene_box:
            self._random_init_in_scene_box()
        if seeds is not None and seeds[1].shape[0] > 0 and not self.config.random_init:
            rgb = seeds[1].float() / 255.0
            dc = RGB2SH(rgb) if self.config.sh_degree > 0 else torch.logit(rgb, eps=1e-10)
            self.gauss_params["features_dc"].data.copy_(dc)
        device = self.kwargs.get("device")
        if not compat.cuda_usable(device if device is not None else None):
            self.strategy.absgrad = False  # absgrad needs gsplat's CUDA backward; use plain grads on CPU
        self._window_pose_cache: dict[tuple[int, int], torch.Tensor] = {}

    def _random_init_in_scene_box(self) -> None:
        """Move splatfacto's random means into the scene box (its own draws, remapped) and refit their scales
        to the new spacing, as splatfacto does: the mean distance to the 3 nearest neighbours."""
        half = self.config.random_scale / 2
        if torch.equal(self.scene_box.aabb.cpu().float(), torch.tensor([[-half] * 3, [half] * 3])):
            return  # the box is splatfacto's cube: nothing to move (and the run stays bit-identical)
        means = self.gauss_params["means"]
        moved = random_means_in_box(means.data, self.config.random_scale, self.scene_box.aabb)
        means.data.copy_(moved)
        distances, _ = self.k_nearest_sklearn(moved, 3)
        self.gauss_params["scales"].data.copy_(torch.log(torch.from_numpy(distances).mean(-1, keepdim=True)).expand(-1, 3))

    # -- rendering ------------------------------------------------------------------------------------
    def _window_poses(self, camera: Cameras, c2w_centre: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Camera-to-worlds of the views to render in one call, and the index of the window-centre view."""
        meta = camera.metadata or {}
        k = self.config.num_virtual_views
        needs_window = self.config.spike_window_weight > 0 or self.config.spike_subwindow_weight > 0
        needs_window = needs_window or self.config.reblur_weight > 0
        if not (self.training and "c2w_start" in meta and k > 1 and needs_window):
            return c2w_centre, 0
        cam_idx = int(meta.get("cam_idx", -1))
        key = (cam_idx, k)
        if key not in self._window_pose_cache or cam_idx < 0:
            times = spike_loss.subwindow_times(k)
            raw = interpolate_window(camera, times)
            self._window_pose_cache[key] = raw
        poses = self._window_pose_cache[key].to(c2w_centre.device)
        if self.camera_optimizer.config.mode != "off":
            # The per-view refinement learnt for the centre applies to the whole window.
            correction = self.camera_optimizer(torch.tensor([cam_idx], device=c2w_centre.device))
            poses = pose_utils.multiply(poses, correction.expand(k, -1, -1))
        if k % 2 == 1:
            poses = poses.clone()
            poses[k // 2] = c2w_centre[0]  # the exact (possibly refined) centre pose, gradient included
            return poses, k // 2
        return torch.cat([poses, c2w_centre]), k

    def get_outputs(self, camera: Cameras) -> dict[str, torch.Tensor | list]:
        if not isinstance(camera, Cameras):
            return {}
        if self.training:
            if camera.shape[0] != 1:
                raise ValueError(f"training renders one camera at a time, got {camera.shape[0]}")
            c2w = self.camera_optimizer.apply_to_camera(camera)
        else:
            c2w = camera.camera_to_worlds
        params = {name: self.gauss_params[name] for name in ("means", "scales", "quats", "features_dc",
                                                              "features_rest", "opacities")}  # fmt: skip
        if self.crop_box is not None and not self.training:
            keep = self.crop_box.within(self.means).squeeze()
            if keep.sum() == 0:
                return self.get_empty_outputs(int(camera.width.item()), int(camera.height.item()), self.background_color)
            params = {k: v[keep] for k, v in params.items()}

        c2ws, centre = self._window_poses(camera, c2w)
        scale = self._get_downscale_factor()
        camera.rescale_output_resolution(1 / scale)
        K = camera.get_intrinsics_matrices().to(self.device)  # splatfacto calls .cuda() here
        W, H = int(camera.width.item()), int(camera.height.item())
        camera.rescale_output_resolution(scale)
        self.last_size = (H, W)

        colors = torch.cat((params["features_dc"][:, None, :], params["features_rest"]), dim=1)
        if self.config.sh_degree > 0:
            sh_degree = min(self.step // self.config.sh_degree_interval, self.config.sh_degree)
        else:
            colors, sh_degree = torch.sigmoid(colors).squeeze(1), None
        render_mode = "RGB+ED" if (self.config.output_depth_during_training or not self.training) else "RGB"
        num = c2ws.shape[0]
        render, alpha, self.info = rasterization(
            means=params["means"],
            quats=params["quats"],
            scales=torch.exp(params["scales"]),
            opacities=torch.sigmoid(params["opacities"]).squeeze(-1),
            colors=colors,
            viewmats=viewmats_from_c2w(c2ws),
            Ks=K.expand(num, 3, 3),
            width=W,
            height=H,
            packed=False,
            near_plane=0.01,
            far_plane=1e10,
            render_mode=render_mode,
            sh_degree=sh_degree,
            sparse_grad=False,
            absgrad=self.strategy.absgrad,
            rasterize_mode=self.config.rasterize_mode,
        )
        if self.training:
            self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info)
        background = self._get_background_color()
        rgb_all = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        if self.config.use_bilateral_grid and self.training and camera.metadata and "cam_idx" in camera.metadata:
            rgb_all = self._apply_bilateral_grid(rgb_all, camera.metadata["cam_idx"], H, W)
        depth = None
        if render_mode == "RGB+ED":
            d = render[centre : centre + 1, ..., 3:4]
            depth = torch.where(alpha[centre : centre + 1] > 0, d, d.detach().max()).squeeze(0)
        if background.shape[0] == 3 and not self.training:
            background = background.expand(H, W, 3)
        out: dict[str, Any] = {
            "rgb": rgb_all[centre],
            "depth": depth,
            "accumulation": alpha[centre],
            "background": background,
        }
        if num > 1:
            k = self.config.num_virtual_views
            out["window_rgb"] = rgb_all[:k]  # the K virtual views in window order (centre included for odd K)
        return out

    # -- losses ---------------------------------------------------------------------------------------
    @staticmethod
    def _grey_aware(pred: torch.Tensor, gt: torch.Tensor, grey: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """With a grey target, compare luminance (repeated to 3 channels so SSIM keeps its shape)."""
        if not grey:
            return pred, gt
        lum = spike_loss.luminance(pred)[..., None].expand_as(pred)
        return lum, gt[..., :1].expand_as(gt)

    def get_metrics_dict(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        pred, gt = self._grey_aware(outputs["rgb"], gt, bool(batch.get("dense_is_grey", False)))
        metrics = {"psnr": self.psnr(pred, gt), "gaussian_count": self.num_points}
        self.camera_optimizer.get_metrics_dict(metrics)
        return metrics

    def get_loss_dict(self, outputs: dict, batch: dict, metrics_dict: dict | None = None) -> dict[str, torch.Tensor]:
        grey = bool(batch.get("dense_is_grey", False))
        if grey:
            # Luminance-only target: splatfacto's loss on a grey image would also pull colours to grey.
            lum = spike_loss.luminance(outputs["rgb"])[..., None].expand_as(outputs["rgb"])
            outputs = {**outputs, "rgb": lum}
        loss = super().get_loss_dict(outputs, batch, metrics_dict)
        loss["main_loss"] = self.config.photometric_weight * loss["main_loss"]
        if self.training and "window_rgb" in outputs and self.step >= self.config.spike_warmup:
            loss.update(self._window_losses(outputs["window_rgb"], batch))
        for name, value in loss.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(
                    f"loss term {name!r} is {value.item()} at step {self.step}; lower the learning rates or the "
                    "spike loss weights (spike_window_weight, spike_subwindow_weight, reblur_weight)"
                )
        return loss

    def _window_losses(self, window_rgb: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        cfg = self.config
        if "spikes" in batch and (cfg.spike_window_weight > 0 or cfg.spike_subwindow_weight > 0):
            counts, ticks = spike_loss.subwindow_counts(batch["spikes"].to(self.device), cfg.num_virtual_views)
            scale = self._get_downscale_factor()
            if batch.get("spike_cfa"):  # colour spikes: the render through the filter array, at spike resolution
                seen = spike_loss.cfa_intensity(
                    window_rgb, batch["spike_cfa"], batch.get("spike_cfa_gains"), tuple(counts.shape[-2:])
                )
            else:
                if scale > 1:  # area-average counts to the render resolution (counts stay per pixel)
                    counts = resize_image(counts.permute(1, 2, 0), scale).permute(2, 0, 1)
                seen = spike_loss.luminance(window_rgb)
            terms = spike_loss.spike_resynthesis_loss(
                seen,
                counts,
                ticks,
                threshold=float(batch["spike_threshold"]),
                gain=float(batch.get("spike_gain", 1.0)),
                kind=cfg.spike_loss_kind,
            )
            losses["spike_window_loss"] = cfg.spike_window_weight * terms["window"]
            losses["spike_subwindow_loss"] = cfg.spike_subwindow_weight * terms["subwindow"]
        if "blur" in batch and cfg.reblur_weight > 0:
            losses["reblur_loss"] = cfg.reblur_weight * spike_loss.reblur_loss(window_rgb, self.get_gt_img(batch["blur"]))
        return losses

    # -- evaluation -----------------------------------------------------------------------------------
    def get_image_metrics_and_images(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        pred = outputs["rgb"]
        images = {"img": torch.cat([gt, pred], dim=1)}
        gt_b, pred_b = gt.permute(2, 0, 1)[None], pred.permute(2, 0, 1)[None]
        metrics = {"psnr": float(self.psnr(gt_b, pred_b).item()), "ssim": float(self.ssim(gt_b, pred_b))}
        if self.lpips is not None:
            metrics["lpips"] = float(self.lpips(gt_b, pred_b))
        return metrics, images


def interpolate_window(camera: Cameras, times: Any) -> torch.Tensor:
    """Camera-to-worlds ``(K, 3, 4)`` at window-relative ``times`` for a 1-camera batch with edge poses."""
    meta = camera.metadata or {}
    centre = camera.camera_to_worlds.reshape(3, 4)
    start = meta["c2w_start"].reshape(3, 4).to(centre)
    end = meta["c2w_end"].reshape(3, 4).to(centre)
    return spike_loss.interpolate_c2w(start, centre, end, times)


@contextlib.contextmanager
def _lpips_only_if_local() -> Iterator[None]:
    """While splatfacto builds its metrics, make LPIPS ``None`` unless its weights are on disk (no download)."""
    if compat.lpips_weights_available():
        yield
        return
    from torchmetrics.image import lpip

    original = lpip.LearnedPerceptualImagePatchSimilarity
    lpip.LearnedPerceptualImagePatchSimilarity = lambda *a, **k: None  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        lpip.LearnedPerceptualImagePatchSimilarity = original  # type: ignore[misc]
