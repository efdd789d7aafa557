"""Loss terms of each training stage, as modules so DDP can wrap them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikegen_core.losses import spike_stream_loss
from spikegen_core.models.fusion import fade_to_grey, sample_gamma, to_grey
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.models.vae import LatentVAE
from spikegen_core.spikes.stream import central_start


class AutoencoderObjective(nn.Module):
    """Reconstruction (L1 + MSE) and a small KL for the KL autoencoder.

    The decoder sees the posterior *mean*, as it does everywhere else in SpikeGen: sampling would add
    unit-variance noise to the latents until the encoder learned to shrink its variance, which costs
    thousands of steps we do not have on a CPU. The KL term still keeps the means bounded."""

    def __init__(self, vae: LatentVAE, kl_weight: float) -> None:
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # sharp and blurred frames alike: the decoder must render both kinds of input
        x = torch.cat([batch["sharp"], batch["blurred"][: batch["blurred"].shape[0] // 2]])
        dist = self.vae.encode_dist(x)
        y = (self.vae.autoencoder.decode(dist.mean).sample + 1) / 2
        return {
            "l1": F.l1_loss(y, x),
            "mse": F.mse_loss(y, x),
            "kl": self.kl_weight * dist.kl().mean() / x[0].numel(),
        }


def target_latent(model: SpikeGen, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.vae.encode(target)


class PretrainObjective(nn.Module):
    """Self-supervised: clean RGB + spikes in, the clean latent (faded to grey as γ grows) out; γ per sample."""

    def __init__(self, model: SpikeGen, endpoint_prob: float, diffusion_repeats: int) -> None:
        super().__init__()
        self.model = model
        self.endpoint_prob = endpoint_prob
        self.repeats = diffusion_repeats

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        sharp, spikes = batch["sharp"], batch["spikes"]
        gamma = sample_gamma(sharp.shape[0], endpoint_prob=self.endpoint_prob, device=sharp.device)
        tl = target_latent(self.model, fade_to_grey(sharp, gamma))
        terms, _ = self.model.losses(sharp, spikes, gamma, tl, self.repeats, threshold=batch.get("threshold"))
        return terms


def tfp_prior(spikes: torch.Tensor, threshold: torch.Tensor | float, window: int | None) -> torch.Tensor:
    """The pseudo-dense RGB input: TFP of the central ``window`` frames of (B, T, H, W) spikes, with a θ per
    sample, as a grey (B, 3, H, W) image in [0, 1]."""
    t = spikes.shape[1]
    n = t if window is None else min(window, t)
    start = central_start(t, n, "middle")
    theta = torch.as_tensor(threshold, dtype=torch.float32, device=spikes.device).reshape(-1, 1, 1)
    image = spikes[:, start : start + n].float().mean(1) * theta
    return image.clamp(0, 1).unsqueeze(1).expand(-1, 3, -1, -1)


class FinetuneObjective(nn.Module):
    """Deblurring and/or dense reconstruction with image, latent, diffusion and spike-stream terms."""

    def __init__(
        self,
        model: SpikeGen,
        task: str,
        deblur_gamma: float,
        reconstruct_gamma: float,
        spike_window: int,
        diffusion_repeats: int,
        rgb_only_every: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.deblur_gamma = deblur_gamma
        self.reconstruct_gamma = reconstruct_gamma
        self.spike_window = spike_window
        self.repeats = diffusion_repeats
        self.rgb_only_every = rgb_only_every

    def rgb_only(self, batch: dict[str, torch.Tensor]) -> bool:
        """Whether this batch trains the RGB-only path (γ = 0, no spikes in): every ``rgb_only_every``-th batch
        of the stream, so the modality-dropout promise (either input may be absent) survives fine-tuning."""
        n = self.rgb_only_every
        return bool(n) and "index" in batch and int(batch["index"]) % n == n - 1

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rgb input, γ, target) per sample for the configured task(s)."""
        sharp, blurred = batch["sharp"], batch["blurred"]
        b = sharp.shape[0]
        n_deblur = {"deblur": b, "reconstruct": 0}.get(self.task, b // 2)
        is_deblur = torch.arange(b, device=sharp.device) < n_deblur
        grey_target = to_grey(sharp).unsqueeze(1).expand(-1, 3, -1, -1)
        m = is_deblur.view(-1, 1, 1, 1)
        prior = tfp_prior(batch["spikes"], batch["threshold"], self.model.config.prior_window)
        rgb = torch.where(m, blurred, prior)
        target = torch.where(m, sharp, grey_target)
        gamma = torch.where(is_deblur, self.deblur_gamma, self.reconstruct_gamma).float()
        return rgb, gamma, target

    def rgb_only_refiner_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Task "rgb-only": the frozen model's RGB-only restoration, then the RGB-only refiner; L1 to the sharp frame."""
        rgb, theta = batch["blurred"], batch.get("threshold")
        with torch.no_grad():  # nothing before the RGB-only refiner trains
            cond, grid = self.model.condition(rgb, None, torch.zeros(rgb.shape[0], device=rgb.device), theta)
            mean = self.model.mean_latent(cond, grid)
        return {"rgb_only_l1": F.l1_loss(self.model.decode(mean, rgb, None, threshold=theta), batch["sharp"])}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.task == "rgb-only":
            return self.rgb_only_refiner_terms(batch)
        spikes = batch["spikes"]
        if self.rgb_only(batch):
            # deblur from the RGB frame alone; the observed spikes still supervise through the spike loss
            rgb, target, spikes_in = batch["blurred"], batch["sharp"], None
            gamma = torch.zeros(rgb.shape[0], device=rgb.device)
        else:
            rgb, gamma, target = self.inputs(batch)
            spikes_in = spikes
        theta = batch.get("threshold")
        terms, mean = self.model.losses(
            rgb, spikes_in, gamma, target_latent(self.model, target), self.repeats, threshold=theta
        )
        pred = self.model.decode(mean, rgb, spikes_in, threshold=theta)
        terms["image"] = F.mse_loss(pred, target)
        terms["spike"] = spike_stream_loss(pred, spikes, threshold=batch["threshold"], window=self.spike_window)
        return terms
