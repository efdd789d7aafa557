"""``SpikeGenSplatModel``: splatfacto plus the spike re-synthesis loss, runnable on CPU.

Training renders ``K`` virtual views across each view's spike window (poses interpolated between the
window-edge poses) in ONE batched rasterisation call; the view at the window centre takes the usual
photometric loss against the restored dense frame (on luminance when that frame is grey), all ``K`` views
feed the spike loss (expected vs observed counts) and, with a blurred RGB frame, the re-blur loss.
Evaluation, the viewer, ``ns-render`` and ``ns-export`` see a plain splatfacto model rendering the centre.

Radiometry (spikegen_core/radiometry.py): the Gaussians carry linear radiance. Spikes are compared with the linear
luminance; the re-blur loss averages the linear virtual views (a sensor integrates light), then encodes the mean
with the scene's ``rgb_response`` and compares it with the stored blurred frame; a restored dense frame (TFP, the
core model) is linear and is compared with the linear render. ``outputs["rgb"]`` is display-encoded (what eval,
the viewer and ``ns-render`` show, as the ground truth is stored); ``outputs["rgb_linear"]`` is the radiance.
Seed colours (SfM/PLY colours are display values) are decoded at init, and the colour accessors nerfstudio's
exporter reads (``colors``, ``shs_0``, ``shs_rest``) give display-encoded colour.

Rasterisation goes through ``spikegen_nvs.rasterizer.rasterization`` (gsplat on CUDA, ours on CPU).
nerfstudio 1.1.5 traps handled here: hard-coded ``.cuda()`` (SH init with seed points, intrinsics in
``get_outputs``), LPIPS weight download, ``absgrad`` on CPU; the ``torch.load`` shim is applied when the model is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.models.splatfacto import RGB2SH, SH2RGB, SplatfactoModel, SplatfactoModelConfig, resize_image
from nerfstudio.utils import poses as pose_utils

from spikegen_core.errors import InputMismatchError, NonFiniteLossError
from spikegen_core.radiometry import LINEAR, RgbResponse
from spikegen_nvs import compat, spike_loss, window_warp
from spikegen_nvs.rasterizer import rasterization
from spikegen_nvs.scene_extent import random_means_in_box
from spikegen_nvs.schedule import ScheduleName


def viewmats_from_c2w(c2w: torch.Tensor) -> torch.Tensor:
    """nerfstudio (OpenGL) camera-to-world ``(C, 3, 4)`` → gsplat (OpenCV) world-to-camera ``(C, 4, 4)``."""
    flip = torch.tensor([1.0, -1.0, -1.0], device=c2w.device, dtype=c2w.dtype)
    rot = c2w[:, :3, :3] * flip  # flip y and z camera axes
    view = torch.zeros(c2w.shape[0], 4, 4, device=c2w.device, dtype=c2w.dtype)
    view[:, :3, :3] = rot.transpose(1, 2)
    view[:, :3, 3:4] = -rot.transpose(1, 2) @ c2w[:, :3, 3:4]
    view[:, 3, 3] = 1.0
    return view


# Colour (CFA) spike cameras' defaults for the `None` weights below, chosen on benchmarks/cfa.md's tuned-on scenes (TUNED_ON).
CFA_TIMING_WEIGHT = 8.0
CFA_CHROMA_SMOOTHNESS = 0.2


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
    spike_subwindows: int | None = None
    """S: spike sub-windows the counts are compared in (each against the mean of its K / S consecutive virtual
    views; K must be a multiple of S); None = K. More views than sub-windows model the motion blur finely while
    each sub-window keeps enough spikes to be more than noise."""
    spike_loss_kind: Literal["auto", "l1", "l2", "poisson"] = "auto"
    """How expected and observed counts are compared: "poisson" (negative log-likelihood), "l2" (half the squared
    error), "l1", or "auto": Poisson for grey spikes, L2 for colour (CFA) spikes. A sub-window holds a fraction of
    a spike per pixel, where L1 pulls towards the median count (often 0) and both others find the mean; a colour
    site sees one channel that is often nearly dark, where the Poisson gradient (1 / expected count) is large
    (benchmarks/nvs.md, benchmarks/cfa.md)."""
    spike_timing_weight: float | None = None
    """Integrate-and-fire timing loss (spike_loss.spike_timing_loss): the rendered rate integrated over the window
    against the cumulative spike count at every tick. None: CFA_TIMING_WEIGHT for colour (CFA) spikes, where every site's colour
    comes from its own sparse spikes, 0 for grey spikes, whose colour and detail the blurred RGB frame carries."""
    reblur_weight: float = 0.5
    """Mean of the virtual views vs the blurred RGB frame, when the scene has one."""
    chroma_smoothness_weight: float | None = None
    """Total variation of the rendered view's chroma (spike_loss.chroma_variation of the display-encoded view).
    None: CFA_CHROMA_SMOOTHNESS for colour (CFA) spikes, whose sites each see one channel, 0 for grey spikes."""
    colour_spikes_sh_degree: int | None = 0
    """The SH degree (at most `sh_degree`) when every training view's colour comes from colour (CFA) spikes alone,
    no RGB frame: each view sees a point through one filter site, so view-dependent colour fits the mosaic's
    noise instead of the scene (benchmarks/cfa.md). None: `sh_degree` regardless (the splatfacto baselines)."""
    spike_warmup: int = 0
    """Steps during which only the photometric loss is used."""
    use_absgrad: bool = True
    """Densify on |grad| (gsplat on CUDA); forced off on CPU."""
    window_crop: float = 1.0
    """The virtual views other than the photometric one are rendered only inside a random crop of this fraction of
    each side, where the spike and re-blur losses are then taken (a new crop every step: every pixel is visited,
    at a fraction of the rendering cost); 1 = the whole view. A crop is a camera with the principal point moved: as
    in gsplat, a footprint's Jacobian is clamped to 1.3x that camera's frustum, so large Gaussians far outside the
    crop reach into it a little differently than in the whole view."""
    window_views: Literal["render", "warp"] = "warp"
    """How the virtual views other than the photometric one are made: "warp" the photometric view's render by
    its depth to their poses (spikegen_nvs/window_warp.py: one rasterisation per step, as splatfacto; what that
    view does not see is left out of the losses; rendered during the warm-up, before there is geometry to warp
    with), or "render" each one (K rasterisations; window_crop applies)."""
    schedule: ScheduleName = "fixed"
    """How the step counts (densification, SH ramp, resolution, LR decay, eval/save) follow the run's
    --max-num-iterations: "full" (splatfacto's proportions), "quick" (the short CPU schedule) or "fixed" (as
    written). Applied when the trainer starts (spikegen_nvs/schedule.py); with "full" or "quick" it overwrites
    warmup_length, refine_every, reset_alpha_every, stop_split_at, stop_screen_size_at, sh_degree_interval and
    resolution_schedule, so pass "fixed" to set those by hand."""
    total_steps: int | None = None
    """The run's iteration count, set when the trainer starts (None outside a trainer)."""
    linear_radiance: bool = True
    """Gaussians carry linear radiance, encoded for display with the scene's ``rgb_response``. False: they carry
    the RGB files' own encoding, as plain splatfacto (the baselines)."""
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
        cap = self.config.colour_spikes_sh_degree
        if cap is not None and self.config.sh_degree > cap and self._colour_from_cfa_spikes_only():
            # A copy: the config object is the trainer's (and config.yml's); the rule is reapplied on every load.
            self.config = replace(self.config, sh_degree=max(cap, 0))
        k, groups = self.config.num_virtual_views, self.config.spike_subwindows
        if groups is not None and (groups < 1 or k % groups != 0):
            raise InputMismatchError(
                f"--pipeline.model.spike-subwindows {groups} does not divide --pipeline.model.num-virtual-views {k}; "
                "use a divisor of it (or None for one sub-window per view)"
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
            rgb = self.rgb_response.decode(seeds[1].float() / 255.0).clamp(1e-4, 1 - 1e-4)
            dc = RGB2SH(rgb) if self.config.sh_degree > 0 else torch.logit(rgb, eps=1e-10)
            self.gauss_params["features_dc"].data.copy_(dc)
        device = self.kwargs.get("device")
        if not compat.cuda_usable(device if device is not None else None):
            self.strategy.absgrad = False  # absgrad needs gsplat's CUDA backward; use plain grads on CPU
        self._window_pose_cache: dict[tuple[int, int], torch.Tensor] = {}
        self._crop_gen = torch.Generator().manual_seed(0)  # crops leave the global random stream alone

    def _colour_from_cfa_spikes_only(self) -> bool:
        """Every training view is a colour (CFA) spike window with no RGB frame (dataparser metadata)."""
        from spikegen_core.spikes.io import spike_file_cfa

        views = (self.kwargs.get("metadata") or {}).get("spike_views") or []
        if not views or any(v.blur_path is not None for v in views):
            return False
        return all(spike_file_cfa(path) for path in {v.spike_path for v in views if not v.cfa})

    @property
    def rgb_response(self) -> RgbResponse:
        """The encoding of the scene's RGB files (dataparser metadata); linear when the Gaussians carry it as is."""
        if not self.config.linear_radiance:
            return LINEAR
        return (self.kwargs.get("metadata") or {}).get("rgb_response", LINEAR)

    # -- export: nerfstudio's ns-export reads these; give display colour, as a splatfacto PLY holds ------------
    @property
    def colors(self) -> torch.Tensor:
        return self.rgb_response.encode(super().colors)

    @property
    def shs_0(self) -> torch.Tensor:
        if self.rgb_response.is_linear:
            return super().shs_0
        return RGB2SH(self.colors)

    @property
    def shs_rest(self) -> torch.Tensor:
        """Higher SH bands are small offsets around the base colour: carried through the encoding to first order."""
        rest = super().shs_rest
        if self.rgb_response.is_linear or self.config.sh_degree == 0:
            return rest
        base = SH2RGB(self.features_dc)
        return rest * self.rgb_response.encode_slope(base)[:, None, :]

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
        needs_window = needs_window or self.config.reblur_weight > 0 or self.config.spike_timing_weight != 0
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
        # Warped views need a depth to warp with: rendered during the warm-up, before the geometry has formed.
        warp = num > 1 and self.config.window_views == "warp" and self.step >= self.config.warmup_length
        if warp:
            render_mode = "RGB+ED"  # the warp needs the photometric view's depth
        crop = self._window_crop(H, W) if num > 1 and not warp else None
        # Split: the view the photometric loss sees is rendered whole (its gradients drive densification, as in
        # splatfacto), the other virtual views warped from it or rendered only inside a random crop.
        split = warp or crop is not None
        first = c2ws[centre : centre + 1] if split else c2ws
        render, alpha, self.info = self._rasterize(params, colors, sh_degree, first, K, W, H, render_mode)
        if self.training:
            self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info)
        background = self._get_background_color()
        rgb_all = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        if self.config.use_bilateral_grid and self.training and camera.metadata and "cam_idx" in camera.metadata:
            rgb_all = self._apply_bilateral_grid(rgb_all, camera.metadata["cam_idx"], H, W)
        at = 0 if split else centre  # the photometric view's index in this render
        depth = None
        if render_mode == "RGB+ED":
            d = render[at : at + 1, ..., 3:4]
            depth = torch.where(alpha[at : at + 1] > 0, d, d.detach().max()).squeeze(0)
        if background.shape[0] == 3 and not self.training:
            background = background.expand(H, W, 3)
        out: dict[str, Any] = {
            "rgb": self.rgb_response.encode(rgb_all[at]),
            "rgb_linear": rgb_all[at],
            "depth": depth,
            "accumulation": alpha[at],
            "background": background,
        }
        if num > 1:
            k = self.config.num_virtual_views
            if not split:
                out["window_rgb"] = rgb_all[:k]  # the K linear virtual views in window order (centre included, odd K)
                return out
            others = [i for i in range(k) if i != centre]
            if warp:
                d = render[0, ..., 3]
                d = torch.where(alpha[0, ..., 0] > 0.5, d, torch.zeros_like(d))  # no surface: not compared
                vm = viewmats_from_c2w(c2ws)
                warped, valid = window_warp.warp_views(rgb_all[0], d, K[0], vm[centre], vm[others])
                views, masks = list(warped.unbind(0)), list(valid.unbind(0))
                if centre < k:
                    views.insert(centre, rgb_all[0])
                    masks.insert(centre, torch.ones_like(valid[0]))
                out["window_rgb"] = torch.stack(views)  # (K, H, W, 3) linear, window order
                out["window_valid"] = torch.stack(masks)  # (K, H, W): pixels the warp could see
                return out
            y0, x0, h, w = crop
            Kc = K.clone()
            Kc[..., 0, 2] -= x0  # the crop is a camera with the principal point moved and a smaller image
            Kc[..., 1, 2] -= y0
            part, part_alpha, _ = self._rasterize(params, colors, sh_degree, c2ws[others], Kc, w, h, "RGB")
            part = torch.clamp(part[..., :3] + (1 - part_alpha) * background, 0.0, 1.0)
            views = list(part.unbind(0))
            if centre < k:
                views.insert(centre, rgb_all[0, y0 : y0 + h, x0 : x0 + w])
            out["window_rgb"] = torch.stack(views)  # (K, h, w, 3) linear, window order
            out["window_crop"] = crop
        return out

    def _window_crop(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """A random ``(y0, x0, h, w)`` of ``window_crop`` of each side (training only), or None for the whole view."""
        f = self.config.window_crop
        if not self.training or f >= 1.0:
            return None
        h, w = max(1, round(height * f)), max(1, round(width * f))
        y0 = int(torch.randint(height - h + 1, (1,), generator=self._crop_gen))
        x0 = int(torch.randint(width - w + 1, (1,), generator=self._crop_gen))
        return y0, x0, h, w

    def _rasterize(self, params: dict, colors: torch.Tensor, sh_degree: int | None, c2ws: torch.Tensor,
                   K: torch.Tensor, width: int, height: int, render_mode: str):  # fmt: skip
        num = c2ws.shape[0]
        return rasterization(
            means=params["means"],
            quats=params["quats"],
            scales=torch.exp(params["scales"]),
            opacities=torch.sigmoid(params["opacities"]).squeeze(-1),
            colors=colors,
            viewmats=viewmats_from_c2w(c2ws),
            Ks=K.expand(num, 3, 3),
            width=width,
            height=height,
            packed=False,
            near_plane=0.01,
            far_plane=1e10,
            render_mode=render_mode,
            sh_degree=sh_degree,
            sparse_grad=False,
            absgrad=self.strategy.absgrad,
            rasterize_mode=self.config.rasterize_mode,
        )

    # -- losses ---------------------------------------------------------------------------------------
    @staticmethod
    def _grey_aware(pred: torch.Tensor, gt: torch.Tensor, grey: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """With a grey target, compare luminance (repeated to 3 channels so SSIM keeps its shape)."""
        if not grey:
            return pred, gt
        lum = spike_loss.luminance(pred)[..., None].expand_as(pred)
        return lum, gt[..., :1].expand_as(gt)

    @staticmethod
    def _like_target(outputs: dict, batch: dict) -> torch.Tensor:
        """The render in the target's encoding: linear for a restored dense frame (TFP and the core model give
        linear intensity; comparing there keeps TFP's noise from being amplified in the shadows by the encoding),
        display-encoded for an RGB file."""
        return outputs["rgb_linear"] if batch.get("dense_is_linear", False) and "rgb_linear" in outputs else outputs["rgb"]

    def get_metrics_dict(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        gt = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        pred, gt = self._grey_aware(self._like_target(outputs, batch), gt, bool(batch.get("dense_is_grey", False)))
        metrics = {"psnr": self.psnr(pred, gt), "gaussian_count": self.num_points}
        self.camera_optimizer.get_metrics_dict(metrics)
        return metrics

    def get_loss_dict(self, outputs: dict, batch: dict, metrics_dict: dict | None = None) -> dict[str, torch.Tensor]:
        grey = bool(batch.get("dense_is_grey", False))
        rgb = self._like_target(outputs, batch)
        if grey:
            # Luminance-only target: splatfacto's loss on a grey image would also pull colours to grey.
            rgb = spike_loss.luminance(rgb)[..., None].expand_as(rgb)
        outputs = {**outputs, "rgb": rgb}
        loss = super().get_loss_dict(outputs, batch, metrics_dict)
        loss["main_loss"] = self.config.photometric_weight * loss["main_loss"]
        chroma_weight = self._spike_settings(batch)[2]
        if self.training and chroma_weight > 0 and "rgb_linear" in outputs:
            # On display values, as the views are seen and scored: in linear light the speckle of dark regions,
            # where fewest spikes fall, would cost almost nothing (benchmarks/cfa.md).
            display = self.rgb_response.encode(outputs["rgb_linear"])
            loss["chroma_smoothness_loss"] = chroma_weight * spike_loss.chroma_variation(display)
        if self.training and "window_rgb" in outputs and self.step >= self.config.spike_warmup:
            loss.update(self._window_losses(outputs["window_rgb"], batch, outputs.get("window_crop"),
                                            outputs.get("window_valid")))  # fmt: skip
        for name, value in loss.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(
                    f"loss term {name!r} is {value.item()} at step {self.step}; lower the learning rates or the "
                    "spike loss weights (spike_window_weight, spike_subwindow_weight, reblur_weight)"
                )
        return loss

    def _spike_settings(self, batch: dict) -> tuple[spike_loss.LossKind, float, float]:
        """The count-loss kind, timing weight and chroma-smoothness weight for this batch's spike camera, the
        config's "auto"/None resolved: grey spikes get Poisson and neither term, colour (CFA) spikes L2 and the
        CFA_* weights."""
        cfg, colour = self.config, bool(batch.get("spike_cfa"))
        kind = cfg.spike_loss_kind if cfg.spike_loss_kind != "auto" else ("l2" if colour else "poisson")
        timing = cfg.spike_timing_weight
        chroma = cfg.chroma_smoothness_weight
        return (
            kind,
            (CFA_TIMING_WEIGHT if colour else 0.0) if timing is None else timing,
            (CFA_CHROMA_SMOOTHNESS if colour else 0.0) if chroma is None else chroma,
        )

    def _window_losses(
        self,
        window_rgb: torch.Tensor,
        batch: dict,
        crop: tuple[int, int, int, int] | None = None,
        valid: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Spike (timing, whole window, sub-windows) and re-blur losses of the K linear views; ``valid``
        ``(K, H, W)``: the pixels to compare (warped views: what the rendered view could see)."""
        losses: dict[str, torch.Tensor] = {}
        cfg = self.config
        kind, timing_weight, _ = self._spike_settings(batch)
        counts_wanted = cfg.spike_window_weight > 0 or cfg.spike_subwindow_weight > 0
        if "spikes" in batch and (timing_weight > 0 or counts_wanted):
            spikes = batch["spikes"].to(self.device)
            groups = cfg.spike_subwindows or cfg.num_virtual_views
            counts, ticks = spike_loss.subwindow_counts(spikes, groups)
            camera = {"threshold": float(batch["spike_threshold"]), "gain": float(batch.get("spike_gain", 1.0))}
            data = [counts] + ([spikes.to(torch.float32).cumsum(dim=0)] if timing_weight > 0 else [])
            seen, mask, counts, *cumulative = self._spike_pixels(window_rgb, batch, crop, valid, *data)
            if cumulative:
                losses["spike_timing_loss"] = timing_weight * spike_loss.spike_timing_loss(
                    seen, cumulative[0], mask=None if mask is None else mask.all(dim=0), **camera
                )
            if counts_wanted:
                if seen.shape[0] != groups:  # the views of each sub-window, averaged (consecutive, in window order)
                    seen = seen.reshape(groups, seen.shape[0] // groups, *seen.shape[1:]).mean(dim=1)
                    mask = None if mask is None else mask.reshape(groups, -1, *mask.shape[1:]).all(dim=1)
                terms = spike_loss.spike_resynthesis_loss(seen, counts, ticks, kind=kind, mask=mask, **camera)
                losses["spike_window_loss"] = cfg.spike_window_weight * terms["window"]
                losses["spike_subwindow_loss"] = cfg.spike_subwindow_weight * terms["subwindow"]
        if "blur" in batch and cfg.reblur_weight > 0:
            blurred = self._crop(self.get_gt_img(batch["blur"]), crop, channels_last=True)
            losses["reblur_loss"] = cfg.reblur_weight * spike_loss.reblur_loss(
                window_rgb, blurred, self.rgb_response.encode, None if valid is None else valid.all(dim=0)
            )
        return losses

    @staticmethod
    def _crop(image: torch.Tensor, crop: tuple[int, int, int, int] | None, channels_last: bool) -> torch.Tensor:
        """The window crop of an image at the render size (all of it when ``crop`` is None)."""
        if crop is None:
            return image
        y0, x0, h, w = crop
        rows, cols = slice(y0, y0 + h), slice(x0, x0 + w)
        return image[..., rows, cols, :] if channels_last else image[..., rows, cols]

    def _spike_pixels(
        self,
        window_rgb: torch.Tensor,
        batch: dict,
        crop: tuple[int, int, int, int] | None,
        valid: torch.Tensor | None,
        *per_pixel: torch.Tensor,
    ) -> list[torch.Tensor | None]:
        """What the spike pixels see of the K views, on one grid with their data: ``[seen (K, h, w), valid mask
        (K, h, w) or None, *per_pixel]``, ``per_pixel`` being ``(N, H, W)`` spike data (counts, cumulative counts).

        Colour (CFA) spikes: the render through the filter array, upsampled to the spike resolution. Grey: the
        render's luminance; below the spike resolution (splatfacto's resolution schedule) the data are
        area-averaged to the render's (counts stay per pixel), then cropped as the views are."""
        if batch.get("spike_cfa"):
            if crop is not None:
                raise InputMismatchError("window_crop < 1 is not supported for colour (CFA) spike cameras; "
                                         "use --pipeline.model.window-crop 1.0")  # fmt: skip
            size = tuple(per_pixel[0].shape[-2:])
            seen = spike_loss.cfa_intensity(window_rgb, batch["spike_cfa"], batch.get("spike_cfa_gains"), size)
        else:
            scale = self._get_downscale_factor()
            if scale > 1:
                per_pixel = tuple(resize_image(d.permute(1, 2, 0), scale).permute(2, 0, 1) for d in per_pixel)
            per_pixel = tuple(self._crop(d, crop, channels_last=False) for d in per_pixel)
            seen = spike_loss.luminance(window_rgb)
        mask = None
        if valid is not None:
            mask = valid if valid.shape[-2:] == seen.shape[-2:] else F.interpolate(
                valid[None].float(), size=tuple(seen.shape[-2:]), mode="nearest")[0].bool()  # fmt: skip
        return [seen, mask, *per_pixel]

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
