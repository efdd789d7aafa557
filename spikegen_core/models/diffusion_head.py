"""Per-token latent diffusion: a small MLP denoiser with AdaLN, conditioned on the transformer's token.

ε-prediction with the cosine ("squaredcos_cap_v2") schedule from diffusers' schedulers; sampling runs every
token of every image in one batch, with a configurable number of DDIM steps and a temperature that scales
the starting noise (temperature 0 gives a deterministic sample).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AdaLNResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        # start as the identity: the gate opens as training finds something useful to add
        nn.init.zeros_(self.modulation[-1].weight)
        nn.init.zeros_(self.modulation[-1].bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(y).chunk(3, dim=-1)
        h = self.norm(x) * (1 + scale) + shift
        return x + gate * self.mlp(h)


class DiffusionHead(nn.Module):
    """ε(x_t, t, c) for latent vectors x_t (M, C) with per-token conditions c (M, D)."""

    def __init__(
        self,
        latent_channels: int,
        cond_dim: int,
        width: int = 256,
        depth: int = 3,
        train_steps: int = 1000,
    ) -> None:
        # diffusers is imported here, not at module level: importing it costs seconds, and the CLI and the
        # nerfstudio entry points import this module without building a model.
        from diffusers import DDIMScheduler, DDPMScheduler
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        super().__init__()
        self.latent_channels = latent_channels
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(width, width)
        self.cond_embed = nn.Linear(cond_dim, width)
        self.input_proj = nn.Linear(latent_channels, width)
        self.blocks = nn.ModuleList(AdaLNResBlock(width) for _ in range(depth))
        self.final_norm = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, latent_channels)
        nn.init.zeros_(self.final_modulation[-1].weight)
        nn.init.zeros_(self.final_modulation[-1].bias)
        sched = dict(num_train_timesteps=train_steps, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon")
        self.train_scheduler = DDPMScheduler(**sched, clip_sample=False)
        self.sample_scheduler = DDIMScheduler(**sched, clip_sample=False, set_alpha_to_one=False)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = self.time_embed(self.time_proj(t).to(x_t.dtype)) + self.cond_embed(cond)
        h = self.input_proj(x_t)
        for blk in self.blocks:
            h = blk(h, y)
        shift, scale = self.final_modulation(y).chunk(2, dim=-1)
        return self.out(self.final_norm(h) * (1 + scale) + shift)

    def loss(self, x0: torch.Tensor, cond: torch.Tensor, repeats: int = 1) -> torch.Tensor:
        """Denoising loss, MSE(ε̂, ε) at random t; ``repeats`` draws several t per token (cheap: MLP only)."""
        if repeats > 1:
            x0, cond = x0.repeat(repeats, 1), cond.repeat(repeats, 1)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        x_t = self.train_scheduler.add_noise(x0, noise, t)
        return F.mse_loss(self(x_t, t, cond), noise)

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        steps: int = 50,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """DDIM (η = 0) from noise × ``temperature``; all M tokens at once → latents (M, C)."""
        sched = type(self.sample_scheduler).from_config(self.sample_scheduler.config)
        sched.set_timesteps(steps, device=cond.device)
        x = torch.randn(cond.shape[0], self.latent_channels, generator=generator, device=cond.device)
        x = x.to(cond.dtype) * temperature
        for t in sched.timesteps:
            eps = self(x, t.expand(x.shape[0]), cond)
            x = sched.step(eps, t, x).prev_sample
        return x
