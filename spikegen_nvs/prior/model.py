"""``SpikeGenSplatPriorModel``: spikegen-splat plus the core SpikeGen diffusion model as a prior (prior.py).

Every ``prior_every`` training steps one extra view is scored by the prior: the current training view (its
render is already there, and its spike window conditions the model), a pose between it and another training
view, or an orbit-jittered pose around it (``prior_poses``). The prior's render does not touch the
densification statistics: ``self.info`` of the training render is put back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.utils.rich_utils import CONSOLE

from spikegen_core.errors import NonFiniteLossError
from spikegen_nvs.model import SpikeGenSplatModel, SpikeGenSplatModelConfig
from spikegen_nvs.prior import guidance as prior_lib
from spikegen_nvs.prior.checkpoint import SPLAT_PRIOR


@dataclass
class SpikeGenSplatPriorModelConfig(SpikeGenSplatModelConfig):
    """spikegen-splat + a diffusion prior from the core model. ``prior_weight`` 0 switches it off."""

    _target: type = field(default_factory=lambda: SpikeGenSplatPriorModel)
    prior_weight: float = 6.0
    """Weight of the prior loss at its strongest (before any annealing); the weights compared are in
    benchmarks/prior.md."""
    prior_kind: prior_lib.PriorKind = "fix"
    """"fix": MSE to the model's one-pass restoration of the render (stop-gradient); "restore": MSE to the decoded
    noised-and-denoised render; "sds": score distillation. benchmarks/prior.md compares them."""
    prior_schedule: prior_lib.Schedule = "constant"
    """How the weight (and the top noise level) falls from ``prior_start`` to ``prior_end``. "constant" keeps the
    prior on to the end (with "linear" it is gone by then and few-view splats can drift back toward their training
    views); benchmarks/prior.md compares the two on the 8-view scene."""
    prior_start: int = 0
    """First step with the prior."""
    prior_end: float = 1.0
    """Step where annealing reaches 0; a value ≤ 1 is a fraction of ``resolution_schedule`` (the run length in
    our configs)."""
    prior_every: int = 1
    """Apply the prior every N training steps (its cost is one extra render + one encode + a few head passes + one
    decode)."""
    prior_poses: tuple[prior_lib.PoseKind, ...] = ("between", "around")
    """Pose kinds drawn in turn: the training view (with its spikes), between two views, jittered around one.
    Training views are off by default: their renders are already close to the data there, and the splat prior
    blurs good renders (benchmarks/prior_2d.md)."""
    prior_jitter_deg: float = 10.0
    """Largest orbit rotation of ``around`` poses, in degrees."""
    prior_noise_level: tuple[float, float] = (0.1, 0.5)
    """Range of the diffusion timestep as a fraction of the schedule; the top falls to the bottom over training."""
    prior_residual: bool = True
    """"restore" target = render + (decoded denoised latent − decoded clean latent): the VAE's reconstruction
    error stays out of the target."""
    prior_denoise_steps: int = 3
    """DDIM steps from the drawn timestep back to 0."""
    prior_checkpoint: Path | None = None
    """SpikeGen checkpoint (None: the shipped splat prior, spikegen_nvs/assets/spikegen_tiny_splatfix.safetensors:
    the core model fine-tuned on splat renders; see prior_checkpoint.py)."""
    prior_seed: int = 0
    """Seed of the prior's own random draws (poses, timesteps, noise)."""
    prior_max_views: int = 0
    """Use the prior only on scenes with at most this many training views (0: on any scene). It helps where views
    are few and not where they are plentiful (benchmarks/prior.md), so spikegen-splat switches it on by this count
    (config.PRIOR_MAX_VIEWS) and skips its cost elsewhere."""


class SpikeGenSplatPriorModel(SpikeGenSplatModel):
    """See the module docstring."""

    config: SpikeGenSplatPriorModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        self._prior: prior_lib.DiffusionPrior | None = None  # loaded on first use (plain attribute, not a module)
        self._seen_c2w: dict[int, torch.Tensor] = {}
        self._train_camera: Cameras | None = None
        self._rendering_prior = False
        self._prior_gen = torch.Generator().manual_seed(self.config.prior_seed)
        cfg = self.config
        if cfg.prior_weight > 0 and cfg.prior_max_views > 0:
            on = self.prior_active
            CONSOLE.print(f"diffusion prior {'on' if on else 'off'}: {self.num_train_data} training views "
                          f"({'≤' if on else '>'} prior_max_views {cfg.prior_max_views})")

    @property
    def prior_active(self) -> bool:
        """Whether the prior applies to this scene at all (weight > 0 and not more views than prior_max_views)."""
        cfg = self.config
        return cfg.prior_weight > 0 and (cfg.prior_max_views <= 0 or self.num_train_data <= cfg.prior_max_views)

    # -- bookkeeping ----------------------------------------------------------------------------------
    def get_outputs(self, camera: Cameras) -> dict:
        if self.training and not self._rendering_prior and isinstance(camera, Cameras):
            self._train_camera = camera
            idx = int((camera.metadata or {}).get("cam_idx", -1))
            if idx >= 0:
                self._seen_c2w[idx] = camera.camera_to_worlds.reshape(3, 4).detach().cpu()
        return super().get_outputs(camera)

    @property
    def prior(self) -> prior_lib.DiffusionPrior:
        if self._prior is None:
            # building the model draws initial weights from the global RNG: fork it, so that the training's random
            # stream is the same with and without the prior (the A/B comparisons in benchmarks/prior.md)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                self._prior = prior_lib.DiffusionPrior.load(
                    self.config.prior_checkpoint or SPLAT_PRIOR, device=self.device, kind=self.config.prior_kind,
                    denoise_steps=self.config.prior_denoise_steps, residual=self.config.prior_residual,
                )
        return self._prior

    def set_prior(self, prior: prior_lib.DiffusionPrior) -> None:
        """Use an already built prior (tests, or to share one model between runs)."""
        self._prior = prior

    def _anneal_end(self) -> int:
        end = self.config.prior_end
        return int(end * self.config.resolution_schedule) if end <= 1 else int(end)

    def current_prior_weight(self) -> float:
        cfg = self.config
        if not self.prior_active or self.step % max(cfg.prior_every, 1):
            return 0.0
        return prior_lib.prior_weight(self.step, cfg.prior_weight, cfg.prior_schedule, cfg.prior_start, self._anneal_end())

    # -- the prior term -------------------------------------------------------------------------------
    def _render_at(self, c2w: torch.Tensor) -> torch.Tensor:
        """Render ``(H, W, 3)`` at a pose with the training camera's intrinsics, leaving the training render's
        densification info in place."""
        cam = self._train_camera
        assert cam is not None
        view = Cameras(
            camera_to_worlds=c2w.reshape(1, 3, 4).to(cam.camera_to_worlds), fx=cam.fx, fy=cam.fy, cx=cam.cx,
            cy=cam.cy, width=cam.width, height=cam.height, camera_type=cam.camera_type,
        )
        info, size = self.info, getattr(self, "last_size", None)
        self._rendering_prior = True
        # the render draws a random background from the global RNG: fork it so that the training's own random
        # stream is the same with and without the prior (clean A/B comparisons at one seed)
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                rgb = super().get_outputs(view)["rgb"]
        finally:
            self._rendering_prior = False
            self.info = info
            if size is not None:
                self.last_size = size
        return rgb

    def prior_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """The unweighted prior loss for this step (pose kind drawn from ``prior_poses``)."""
        cfg = self.config
        kinds = cfg.prior_poses or ("train",)
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=self._prior_gen))]
        spikes = None
        if kind == "train" or self._train_camera is None:
            render = outputs["rgb"]
            if "spikes" in batch:
                spikes = batch["spikes"][None]
        else:
            current = self._train_camera.camera_to_worlds.reshape(3, 4).detach()
            cur_idx = int((self._train_camera.metadata or {}).get("cam_idx", -1))
            others = [c for i, c in self._seen_c2w.items() if i != cur_idx]
            pose = prior_lib.sample_pose(kind, current, others, self._prior_gen, cfg.prior_jitter_deg)
            render = self._render_at(pose)
        t = prior_lib.noise_timestep(
            self.step, cfg.prior_noise_level, cfg.prior_start, self._anneal_end(), self.prior.num_train_steps,
            self._prior_gen,
        )
        return self.prior.loss(render.permute(2, 0, 1)[None], spikes, t, self._prior_gen)

    def get_loss_dict(self, outputs: dict, batch: dict, metrics_dict: dict | None = None) -> dict[str, torch.Tensor]:
        loss = super().get_loss_dict(outputs, batch, metrics_dict)
        weight = self.current_prior_weight() if self.training else 0.0
        if weight > 0:
            value = weight * self.prior_loss(outputs, batch)
            if not torch.isfinite(value):
                raise NonFiniteLossError(
                    f"loss term 'prior_loss' is {value.item()} at step {self.step}; lower prior_weight or check "
                    f"the prior checkpoint {self.config.prior_checkpoint or SPLAT_PRIOR}"
                )
            loss["prior_loss"] = value
        return loss
