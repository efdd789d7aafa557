"""The core SpikeGen diffusion model as a prior on rendered views (no nerfstudio model code in here).

At a sampled pose the splats' render is encoded to the core model's latent grid, noised to a timestep ``t``
and denoised by the model's per-token diffusion head, conditioned on the render itself (γ = 0) or, at a
training pose, on the render *and* that view's spike window (γ = ``deblur_gamma``). Three ways to turn that into
a loss on the render:

- ``"restore"`` (default): decode the denoised latent to an image and pull the render toward it
  (MSE, the target carries no gradient). With ``residual`` (default) the target is the render plus the
  change the denoiser made (decoded denoised latent − decoded clean latent), so the autoencoder's own
  reconstruction error is not part of the target. The loss value is meaningful and the gradient is a plain image-space
  pull, so it mixes well with splatfacto's photometric loss.
- ``"fix"``: the model's one-pass restoration of the render (mean head → decoder → refiner), pulled toward
  like ``"restore"``. Meant for checkpoints fine-tuned on splat renders (``spikegen finetune-pairs``), used at
  in-between and jittered poses, where few-view splats go wrong.
- ``"sds"``: score distillation: the gradient ``w(t)·(ε̂ − ε)`` on the render's latent, back through the VAE
  encoder. Costs an encoder backward per prior step.

Schedules (weight and noise level annealed over training) and pose sampling (training views, poses between
two training views, orbit jitter around one) are small functions here so they can be tested alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from spikegen_core.errors import InputMismatchError
from spikegen_core.geometry import interpolate_pose
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.spikes.stream import central_start

PriorKind = Literal["fix", "restore", "sds"]
PoseKind = Literal["train", "between", "around"]
Schedule = Literal["constant", "linear", "cosine"]


# -- schedules -------------------------------------------------------------------------------------------
def anneal(step: int, start: int, end: int, schedule: Schedule) -> float:
    """Factor in [0, 1] that falls from 1 at ``start`` to 0 at ``end`` ("constant": 1 from ``start`` on)."""
    if step < start:
        return 0.0
    if schedule == "constant" or end <= start:
        return 1.0
    p = min(1.0, (step - start) / (end - start))
    return 1.0 - p if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))


def prior_weight(step: int, weight: float, schedule: Schedule, start: int, end: int) -> float:
    """The prior's loss weight at ``step``: ``weight`` × the annealing factor (0 before ``start``)."""
    return weight * anneal(step, start, end, schedule) if weight > 0 else 0.0


def noise_timestep(
    step: int, noise_range: tuple[float, float], start: int, end: int, num_train_steps: int, generator: torch.Generator
) -> int:
    """A diffusion timestep drawn uniformly from ``noise_range`` (fractions of the schedule), whose upper end
    falls linearly toward the lower one over training: strong corrections early, gentle ones late."""
    lo, hi = noise_range
    if not 0.0 <= lo <= hi <= 1.0:
        raise InputMismatchError(f"prior noise level range {noise_range} must satisfy 0 <= low <= high <= 1")
    top = lo + (hi - lo) * anneal(step, start, end, "linear" if end > start else "constant")
    u = float(torch.rand((), generator=generator))
    return int(round((lo + (top - lo) * u) * (num_train_steps - 1)))


# -- poses -----------------------------------------------------------------------------------------------
def rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    """(3,) axis × angle (radians) → (3, 3) rotation matrix (matrix exponential of the skew matrix)."""
    x, y, z = axis_angle.tolist()
    skew = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64)
    return torch.linalg.matrix_exp(skew)


def orbit_jitter(c2w: torch.Tensor, max_deg: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate a camera about the world origin (the scene centre after nerfstudio's centring) by a random
    angle up to ``max_deg``: a nearby pose that still looks at the scene."""
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    angle = math.radians(max_deg) * float(torch.rand((), generator=generator))
    r = rotation(axis / axis.norm().clamp_min(1e-12) * angle).to(c2w)
    return r @ c2w[:3, :4]


def sample_pose(
    kind: PoseKind, current: torch.Tensor, others: list[torch.Tensor], generator: torch.Generator, jitter_deg: float
) -> torch.Tensor:
    """A prior pose ``(3, 4)``: the current training view, a point between it and another seen view, or an
    orbit-jittered copy of it. ``between`` falls back to ``around`` until a second view has been seen."""
    if kind == "train":
        return current[:3, :4]
    if kind == "between" and others:
        j = int(torch.randint(len(others), (1,), generator=generator))
        s = 0.2 + 0.6 * float(torch.rand((), generator=generator))  # avoid the ends: those are training views
        return interpolate_pose([0.0, 1.0], torch.stack([current[:3, :4], others[j][:3, :4].to(current)]), s)
    return orbit_jitter(current, jitter_deg, generator)


# -- the prior -------------------------------------------------------------------------------------------
def _pad_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % stride, -w % stride
    if not (ph or pw):
        return x
    lead = x.shape[:-2]
    y = F.pad(x.reshape(1, -1, h, w).float(), (0, pw, 0, ph), mode="replicate")
    return y.reshape(*lead, h + ph, w + pw).to(x.dtype)


def _like(image: torch.Tensor, render: torch.Tensor) -> torch.Tensor:
    """A prior image clamped to [0, 1], the stride padding cut off, on the render's device and dtype."""
    h, w = render.shape[-2:]
    return image.clamp(0, 1)[..., :h, :w].to(render.device, render.dtype)


class DiffusionPrior:
    """A frozen SpikeGen model used as a prior. Not an ``nn.Module`` on purpose: its weights must stay out of
    the splat model's state dict, optimisers and checkpoints."""

    def __init__(
        self,
        model: SpikeGen,
        *,
        kind: PriorKind = "restore",
        denoise_steps: int = 4,
        spike_frames: int = 32,
        residual: bool = True,
    ) -> None:
        if kind not in ("fix", "restore", "sds"):
            raise InputMismatchError(f"unknown prior kind {kind!r}; use 'fix', 'restore' or 'sds'")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.kind = kind
        self.denoise_steps = max(1, int(denoise_steps))
        self.spike_frames = spike_frames
        self.residual = residual
        sched = model.head.train_scheduler
        self.alphas = sched.alphas_cumprod.to(torch.float32)  # ᾱ_t of the cosine schedule
        self.num_train_steps = int(sched.config.num_train_timesteps)

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | torch.device = "cpu", **kwargs) -> DiffusionPrior:
        """From a SpikeGen checkpoint (None: the shipped tiny one); raises CheckpointError naming the file."""
        from spikegen_core.train.checkpoint import load_model

        model, _ = load_model(checkpoint, device=device)
        return cls(model, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _spike_window(self, spikes: torch.Tensor | None, hw: tuple[int, int]) -> torch.Tensor | None:
        """The central ``spike_frames`` of ``(B, T, H, W)`` spikes as float, or None if they cannot be used."""
        if spikes is None or spikes.shape[-2:] != hw or spikes.shape[1] < self.model.config.min_spike_frames:
            return None
        t = spikes.shape[1]
        n = min(self.spike_frames, t, self.model.config.max_spike_frames)
        start = central_start(t, n, "middle")
        return spikes[:, start : start + n].to(self.device, torch.float32)

    def _inputs(
        self, render: torch.Tensor, spikes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        if render.ndim != 4 or render.shape[1] != 3:
            raise InputMismatchError(f"prior render must be (B, 3, H, W), got {tuple(render.shape)}")
        s = self.model.stride
        rgb = _pad_to_stride(render.detach().to(self.device, torch.float32).clamp(0, 1), s)
        spk = self._spike_window(spikes, tuple(render.shape[-2:]))
        if spk is not None:
            spk = _pad_to_stride(spk, s)
        gamma = self.model.config.deblur_gamma if spk is not None else 0.0
        return rgb, spk, gamma

    def _add_noise(self, z0: torch.Tensor, t: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(z0.shape, generator=generator, dtype=z0.dtype).to(z0.device)
        return self.model.head.train_scheduler.add_noise(z0, noise, torch.tensor([t], device=z0.device)), noise

    def _eps(self, x: torch.Tensor, t: int, cond: torch.Tensor) -> torch.Tensor:
        return self.model.head(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long), cond)

    def denoise(self, z_t: torch.Tensor, t: int, cond: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM (η = 0) from timestep ``t`` to 0 in ``denoise_steps`` steps; tokens (M, C).

        Written out rather than ``DDIMScheduler.step``: the scheduler steps along its own grid from the top of the
        schedule (previous timestep = t − T/n), while the prior starts at an arbitrary ``t``."""
        ts = np.unique(np.linspace(t, 0, self.denoise_steps + 1).round().astype(int))[::-1]
        x = z_t
        for cur, nxt in zip(ts[:-1], ts[1:], strict=True):
            eps = self._eps(x, int(cur), cond)
            a, a_next = self.alphas[int(cur)].to(x.device), self.alphas[int(nxt)].to(x.device)
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        if len(ts) == 1:  # t == 0: one x0 prediction
            eps = self._eps(x, 0, cond)
            a = self.alphas[0].to(x.device)
            x = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return x

    @torch.no_grad()
    def fixed(self, render: torch.Tensor, spikes: torch.Tensor | None) -> torch.Tensor:
        """The model's one-pass restoration of ``render`` (B, 3, H, W): mean head → decoder → refiner,
        conditioned on the render (+ spikes). No gradient; same size and device, clamped to [0, 1]."""
        rgb, spk, gamma = self._inputs(render, spikes)
        return _like(self.model(rgb, spk, gamma, sampler="mean"), render)

    @torch.no_grad()
    def target(
        self, render: torch.Tensor, spikes: torch.Tensor | None, t: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The prior's image for ``render`` (B, 3, H, W): encode, noise to ``t``, denoise conditioned on the
        render (+ spikes), decode. No gradient; same size and device as ``render``, clamped to [0, 1]."""
        rgb, spk, gamma = self._inputs(render, spikes)
        m = self.model
        cond, grid = m.condition(rgb, spk, gamma)
        b, n, d = cond.shape
        z0 = m.vae.encode(rgb).flatten(2).transpose(1, 2).reshape(b * n, -1)
        z_t, _ = self._add_noise(z0, t, generator)
        z = self.denoise(z_t, t, cond.reshape(b * n, d))
        image = m.decode(m._to_map(z.view(b, n, -1), grid), rgb, spk)
        if self.residual:
            # keep only what the denoiser changed: a small CPU autoencoder reconstructs our renders only
            # roughly, and pulling toward its output would blur whatever the splats already got right
            image = rgb + image - m.decode(m._to_map(z0.view(b, n, -1), grid), rgb, spk)
        return _like(image, render)

    def loss(
        self, render: torch.Tensor, spikes: torch.Tensor | None, t: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Scalar prior loss on ``render`` (B, 3, H, W) that carries gradient to the render only."""
        if self.kind == "fix":
            return F.mse_loss(render, self.fixed(render, spikes))
        if self.kind == "restore":
            return F.mse_loss(render, self.target(render, spikes, t, generator))
        return self._sds(render, spikes, t, generator)

    def _sds(
        self, render: torch.Tensor, spikes: torch.Tensor | None, t: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Score distillation: d/d z0 = w(t)(ε̂(z_t) − ε), written as an MSE to a stop-gradient latent target so
        the loss's gradient is exactly that (divided by the element count)."""
        rgb, spk, gamma = self._inputs(render, spikes)
        live = _pad_to_stride(render.to(self.device, torch.float32), self.model.stride)  # keeps the graph
        m = self.model
        with torch.no_grad():
            cond, _ = m.condition(rgb, spk, gamma)
        b, n, d = cond.shape
        z0 = m.vae.encode(live).flatten(2).transpose(1, 2).reshape(b * n, -1)
        with torch.no_grad():
            z_t, noise = self._add_noise(z0.detach(), t, generator)
            eps = self._eps(z_t, t, cond.reshape(b * n, d))
            grad = (1 - self.alphas[t].to(z0.device)) * (eps - noise)  # w(t) = 1 − ᾱ_t (DreamFusion)
            goal = z0.detach() - grad
        return 0.5 * F.mse_loss(z0, goal, reduction="sum") / render.numel()
