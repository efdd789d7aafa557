"""SpikeGen: RGB latents and spike tokens fused with modality dropout, a transformer, a per-token diffusion head.

Pipeline: RGB → VAE latent → 1×1 projection to tokens; spikes → S3 encoder → tokens on the same grid;
z = (1−γ)·z_rgb + γ·z_spike (+ an embedding of γ so the model knows how much to trust each); the transformer
turns every token into a condition; the diffusion head samples a latent per token (or, for fast deterministic
restoration, a linear "mean head" predicts the latent's conditional mean); the VAE decodes, and a small
pixel-space refiner (our addition, see refiner.py) adds back detail from the input that the latent lost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

import torch
from torch import nn

from spikegen_core.errors import InputMismatchError
from spikegen_core.models.backbone import TokenTransformer
from spikegen_core.models.detail_refiner import DetailRefiner
from spikegen_core.models.diffusion_head import DiffusionHead
from spikegen_core.models.fusion import fuse, to_grey
from spikegen_core.models.refiner import FidelityRefiner
from spikegen_core.models.spike_encoder import S3SpikeEncoder
from spikegen_core.models.temporal import MultiScaleTemporal
from spikegen_core.models.vae import LatentVAE, VAEConfig
from spikegen_core.spikes.reconstruct import tfi
from spikegen_core.spikes.stream import central_start

Sampler = Literal["mean", "ddim"]


@dataclass
class ModelConfig:
    """Architecture and inference defaults of a SpikeGen model (saved as JSON beside every checkpoint)."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    """The KL autoencoder."""
    width: int = 128
    """Token width of the transformer."""
    depth: int = 4
    """Transformer blocks."""
    heads: int = 4
    """Attention heads."""
    mlp_ratio: float = 4.0
    """Hidden size of the transformer MLPs relative to the width."""
    dropout: float = 0.0
    """Dropout in the transformer."""
    spike_widths: tuple[int, ...] = (16, 32, 64)
    """Channels of the S3 encoder's 3-D conv stages (one more than log2(stride))."""
    min_spike_frames: int = 8
    """Shortest spike window the encoder accepts."""
    max_spike_frames: int = 64
    """Longest spike window used in training (longer windows still run)."""
    head_width: int = 256
    """Width of the diffusion head MLP."""
    head_depth: int = 3
    """AdaLN residual blocks in the diffusion head."""
    diffusion_train_steps: int = 1000
    """Diffusion timesteps in training (cosine schedule)."""
    sampler: str = "mean"
    """Default latent predictor at inference: "mean" (one pass, deterministic) or "ddim"."""
    sample_steps: int = 50
    """DDIM steps when sampling."""
    temperature: float = 0.5
    """Scale of the starting noise when sampling (0 = deterministic)."""
    threshold: float = 2.0
    """Spike-camera threshold θ the model was trained with (TFP prior = mean rate × θ)."""
    deblur_gamma: float = 0.5
    """γ used for deblurring (blurred RGB + spikes)."""
    reconstruct_gamma: float = 0.5
    """γ used for dense reconstruction (spikes + the TFP image as pseudo-dense prior in the RGB slot)."""
    tfp_prior: bool = True
    """Feed a TFP image as the pseudo-dense RGB input when only spikes are given."""
    refiner_width: int = 48
    """Channels of the pixel-space fidelity refiner after the decoder (0: none, the paper's pipeline)."""
    refiner_depth: int = 7
    """Convolutions in the refiner."""
    prior_window: int | None = 21
    """Frames of that TFP image, centred in the window (None: all). Shorter = less motion blur, more noise
    (benchmarks/core.md compares window lengths)."""
    theta_input: bool = False
    """The camera's θ is an input (an embedding on the tokens; spike rates × θ in the refiner) instead of being
    guessed from the RGB slot's brightness. Callers pass ``threshold=`` (default: ``threshold`` above)."""
    temporal_scales: tuple[int, ...] = ()
    """Window lengths of the multi-scale temporal spike features (temporal.py); empty: none (``tiny``)."""
    temporal_channels: int = 0
    """Learned temporal-convolution channels per scale in those features."""
    temporal_light_width: int = 0
    """Channels of the WindowCNN intensity estimate among those features (temporal.py); 0: none."""
    temporal_light_blocks: int = 4
    """Its residual blocks."""
    temporal_light_frames: int = 33
    """Its input ticks (the central ones of the window)."""
    refiner_anchor: bool = False
    """The U-Net refiner's output luma starts from the WindowCNN estimate, not the decoded image's (its blends and
    residual correct it); needs ``temporal_light_width``."""
    refiner_kind: str = "blend"
    """"blend": the small conv stack of refiner.py; "unet": the detail-carrying U-Net of detail_refiner.py
    (needs ``temporal_scales``)."""
    refiner_blocks: int = 1
    """Residual blocks per level of the U-Net refiner."""
    rgb_only_refiner_width: int = 0
    """Channels of a second small refiner (refiner.py, ``refiner_depth`` convolutions) applied only when there are
    no spikes (0: none). Modality dropout's RGB-only case shares the refiner with every spike case and came out
    below its own input; this one is trained alone on it (``spikegen finetune --task rgb-only``), so the spike
    paths are untouched."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        vae_known = {f.name for f in fields(VAEConfig)}
        vae = VAEConfig(**{k: v for k, v in dict(d.pop("vae", {})).items() if k in vae_known})
        vae.block_out_channels = tuple(vae.block_out_channels)
        for key in ("spike_widths", "temporal_scales"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(vae=vae, **d)


class SpikeGen(nn.Module):
    """The core model. Images are (B, 3, H, W) in [0, 1]; spikes (B, T, H, W) 0/1; γ is (B,) or a float."""

    def __init__(self, config: ModelConfig, vae: LatentVAE | None = None) -> None:
        super().__init__()
        self.config = config
        if vae is None:
            vae = LatentVAE.from_folder(config.vae.folder) if config.vae.folder else LatentVAE(config.vae)
        self.vae = vae
        c, d = vae.latent_channels, config.width
        self.rgb_in = nn.Conv2d(c, d, kernel_size=1)
        self.spike_encoder = S3SpikeEncoder(
            d, vae.stride, config.spike_widths, config.min_spike_frames, config.max_spike_frames
        )
        self.gamma_embed = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, d))
        self.backbone = TokenTransformer(d, config.depth, config.heads, config.mlp_ratio, config.dropout)
        self.mean_head = nn.Linear(d, c)
        self.head = DiffusionHead(c, d, config.head_width, config.head_depth, config.diffusion_train_steps)
        self.temporal = None
        if config.temporal_scales:
            self.temporal = MultiScaleTemporal(
                config.temporal_scales, config.temporal_channels, config.temporal_light_width,
                config.temporal_light_blocks, config.temporal_light_frames,
            )
            s = vae.stride
            # full-resolution temporal features → one token per latent pixel, added to the S3 encoder's tokens
            self.temporal_tokens = nn.Sequential(
                nn.Conv2d(self.temporal.out_channels, d, kernel_size=s, stride=s), nn.LeakyReLU(0.2),
                nn.Conv2d(d, d, kernel_size=1),
            )
        if config.theta_input:
            self.theta_embed = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, d))
        self.refiner: nn.Module | None = None
        if config.refiner_width and config.refiner_kind == "unet":
            if self.temporal is None:
                raise ValueError("refiner_kind='unet' needs temporal_scales (its guide is the temporal features)")
            if config.refiner_anchor and self.temporal.light is None:
                raise ValueError("refiner_anchor needs temporal_light_width > 0 (it anchors at the WindowCNN estimate)")
            anchor = self.temporal.estimates - 1 if config.refiner_anchor else None  # the WindowCNN's is the last
            self.refiner = DetailRefiner(
                self.temporal.out_channels, self.temporal.estimates, config.refiner_width, config.refiner_blocks,
                anchor,
            )
        elif config.refiner_width:
            self.refiner = FidelityRefiner(config.refiner_width, config.refiner_depth)
        self.rgb_only_refiner: FidelityRefiner | None = None
        if config.rgb_only_refiner_width:
            self.add_rgb_only_refiner(config.rgb_only_refiner_width)
        self._features: tuple | None = None  # (spikes, threshold, features) of the last condition() call

    def add_rgb_only_refiner(self, width: int = 32) -> FidelityRefiner:
        """Give a model without one an RGB-only refiner (its last layer zero: the output is unchanged until trained)."""
        if self.rgb_only_refiner is None:
            self.config.rgb_only_refiner_width = int(width)
            self.rgb_only_refiner = FidelityRefiner(self.config.rgb_only_refiner_width, self.config.refiner_depth)
        return self.rgb_only_refiner

    @property
    def stride(self) -> int:
        return self.vae.stride

    # --- inputs -------------------------------------------------------------------------------------------
    def check_inputs(
        self, rgb: torch.Tensor | None, spikes: torch.Tensor | None, gamma: torch.Tensor
    ) -> tuple[int, int, int]:
        """Validate shapes; returns (B, H, W). Raises InputMismatchError with what to fix."""
        if rgb is None and spikes is None:
            raise InputMismatchError("SpikeGen needs an RGB image, a spike window, or both; got neither")
        if rgb is not None and (rgb.ndim != 4 or rgb.shape[1] != 3):
            raise InputMismatchError(f"RGB input must be (B, 3, H, W), got {tuple(rgb.shape)}")
        if spikes is not None:
            self.spike_encoder.check(spikes)
        if rgb is not None and spikes is not None:
            if rgb.shape[0] != spikes.shape[0]:
                raise InputMismatchError(
                    f"batch sizes differ: RGB {rgb.shape[0]} vs spikes {spikes.shape[0]}; pair them one to one"
                )
            if rgb.shape[-2:] != spikes.shape[-2:]:
                raise InputMismatchError(
                    f"spike resolution {tuple(spikes.shape[-2:])} differs from RGB resolution "
                    f"{tuple(rgb.shape[-2:])}; resize or crop the RGB frame to the spike sensor's size"
                )
        ref = rgb if rgb is not None else spikes
        b, h, w = ref.shape[0], ref.shape[-2], ref.shape[-1]
        if h % self.stride or w % self.stride:
            raise InputMismatchError(
                f"image size {h}×{w} is not divisible by the latent stride {self.stride}; pad it first"
            )
        if rgb is None and bool((gamma < 1).any()):
            raise InputMismatchError("no RGB input was given, so γ must be 1 (spikes only)")
        if spikes is None and bool((gamma > 0).any()):
            raise InputMismatchError("no spikes were given, so γ must be 0 (RGB only)")
        return b, h, w

    def _gamma(self, gamma: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
        g = torch.as_tensor(gamma, dtype=torch.float32, device=device)
        return g.expand(batch).clone() if g.ndim == 0 else g

    def _theta(self, threshold: torch.Tensor | float | None, batch: int, device: torch.device) -> torch.Tensor:
        """θ per sample (B,); None: the configured camera θ."""
        t = self.config.threshold if threshold is None else threshold
        t = torch.as_tensor(t, dtype=torch.float32, device=device).reshape(-1)
        if not bool((t > 0).all()):
            raise InputMismatchError(f"the camera threshold θ must be positive, got {t.tolist()}")
        return t.expand(batch).clone() if t.numel() == 1 else t

    def spike_features(self, spikes: torch.Tensor, threshold: torch.Tensor | float | None) -> torch.Tensor:
        """Multi-scale temporal features (B, F, H, W) of a spike window; reused by decode() after condition()
        on the same inputs (training computes them once per step)."""
        if self.temporal is None:
            raise InputMismatchError("this model has no temporal spike features (temporal_scales is empty)")
        cached = self._features
        if cached is not None and cached[0] is spikes and cached[1] is threshold:
            return cached[2]
        feats = self.temporal(spikes, self._theta(threshold, spikes.shape[0], spikes.device))
        self._features = (spikes, threshold, feats)
        return feats

    # --- model --------------------------------------------------------------------------------------------
    def encode_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """VAE latent of an image; without gradient when the VAE encoder is frozen (saves memory)."""
        if any(p.requires_grad for p in self.vae.autoencoder.encoder.parameters()):
            return self.vae.encode(rgb)
        with torch.no_grad():
            return self.vae.encode(rgb)

    def condition(
        self,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None,
        gamma: torch.Tensor | float,
        threshold: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Per-token conditions (B, N, D) on the (h, w) latent grid."""
        ref = rgb if rgb is not None else spikes
        if ref is None:
            raise InputMismatchError("SpikeGen needs an RGB image, a spike window, or both; got neither")
        g = self._gamma(gamma, ref.shape[0], ref.device)
        b, h, w = self.check_inputs(rgb, spikes, g)
        grid = (h // self.stride, w // self.stride)
        d = self.config.width
        zeros = torch.zeros(b, d, *grid, device=ref.device)
        z_rgb = self.rgb_in(self.encode_rgb(rgb)) if rgb is not None else zeros
        self._features = None
        z_spk = self.spike_encoder(spikes) if spikes is not None else zeros
        if spikes is not None and self.temporal is not None:
            z_spk = z_spk + self.temporal_tokens(self.spike_features(spikes, threshold))
        z = fuse(z_rgb, z_spk, g).flatten(2).transpose(1, 2)  # (B, N, D)
        z = z + self.gamma_embed(g.view(-1, 1, 1))
        if self.config.theta_input:
            theta = self._theta(threshold, b, ref.device)
            z = z + self.theta_embed(theta.log().view(-1, 1, 1))
        return self.backbone(z, grid), grid

    def mean_latent(self, cond: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Deterministic latent: the mean head's prediction (B, C, h, w)."""
        return self._to_map(self.mean_head(cond), grid)

    def sample_latent(
        self,
        cond: torch.Tensor,
        grid: tuple[int, int],
        steps: int | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Diffusion sample of every token in one pass (B, C, h, w)."""
        b, n, d = cond.shape
        x = self.head.sample(
            cond.reshape(b * n, d),
            steps if steps is not None else self.config.sample_steps,
            self.config.temperature if temperature is None else temperature,
            generator,
        )
        return self._to_map(x.view(b, n, -1), grid)

    def decode(
        self,
        latents: torch.Tensor,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None = None,
        threshold: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """VAE decode, then the refiner guided by the RGB-slot input and the spikes (zeros for an absent
        modality): the small refiner sees the central and whole-window spike rates and TFI, the U-Net the
        multi-scale temporal features. Without spikes, the RGB-only refiner (if any) corrects the result."""
        image = self._refine(self.vae.decode(latents), rgb, spikes, threshold)
        if spikes is None and rgb is not None and self.rgb_only_refiner is not None:
            image = self.rgb_only_refiner(image, self.refiner_guide(image, rgb, None))
        return image

    def _refine(
        self,
        image: torch.Tensor,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None,
        threshold: torch.Tensor | float | None,
    ) -> torch.Tensor:
        if self.refiner is None:
            return image
        if isinstance(self.refiner, DetailRefiner):
            b, _, h, w = image.shape
            rgb_slot = rgb if rgb is not None else image.new_zeros(b, 3, h, w)
            if spikes is not None:
                feats = self.spike_features(spikes, threshold).to(image.dtype)
            else:
                feats = image.new_zeros(b, self.temporal.out_channels, h, w)
            self._features = None  # used: do not keep a step's activations alive
            return self.refiner(image, rgb_slot, feats, anchored=spikes is not None)
        return self.refiner(image, self.refiner_guide(image, rgb, spikes, threshold))

    def refiner_guide(
        self,
        image: torch.Tensor,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None,
        threshold: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """(B, 6, H, W): the RGB slot; the central and whole-window spike rates and TFI in intensity units.

        With ``theta_input`` the rates are multiplied by θ. Otherwise (the ``tiny`` checkpoint) θ is not known
        in here, so rates are scaled per sample to the RGB slot's mean grey level (the blurred frame and the TFP
        prior both have the scene's mean intensity); without RGB, by the trained θ."""
        b, _, h, w = image.shape
        rgb_guide = rgb if rgb is not None else image.new_zeros(b, 3, h, w)
        if spikes is None:
            return torch.cat([rgb_guide, image.new_zeros(b, 3, h, w)], dim=1)
        t = spikes.shape[1]
        n = t if self.config.prior_window is None else min(self.config.prior_window, t)
        start = central_start(t, n, "middle")
        fired = spikes.float()
        short = fired[:, start : start + n].mean(1, keepdim=True)
        full = fired.mean(1, keepdim=True)
        isi = tfi(spikes, threshold=1.0).unsqueeze(1)  # spikes per tick, like the rates
        if self.config.theta_input:
            scale = self._theta(threshold, b, image.device).view(-1, 1, 1, 1)
        elif rgb is not None:
            mean_rate = full.mean((1, 2, 3), keepdim=True).clamp_min(1e-4)
            scale = to_grey(rgb).mean((1, 2), keepdim=True).unsqueeze(1) / mean_rate
        else:
            scale = torch.full((b, 1, 1, 1), self.config.threshold, device=image.device)
        rates = torch.cat([short, full, isi.float()], dim=1) * scale
        return torch.cat([rgb_guide, rates.to(image.dtype)], dim=1)

    @staticmethod
    def _to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)

    def forward(
        self,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None,
        gamma: torch.Tensor | float,
        sampler: Sampler | None = None,
        steps: int | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
        threshold: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Restore an image (B, 3, H, W), unclamped. ``threshold``: the camera's θ (used with ``theta_input``)."""
        cond, grid = self.condition(rgb, spikes, gamma, threshold)
        if (sampler or self.config.sampler) == "ddim":
            lat = self.sample_latent(cond, grid, steps, temperature, generator)
        else:
            lat = self.mean_latent(cond, grid)
        return self.decode(lat, rgb, spikes, threshold)

    def losses(
        self,
        rgb: torch.Tensor | None,
        spikes: torch.Tensor | None,
        gamma: torch.Tensor | float,
        target_latent: torch.Tensor,
        diffusion_repeats: int = 4,
        threshold: torch.Tensor | float | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Training terms: diffusion ε-MSE and the mean head's latent MSE; also the predicted mean latent."""
        cond, grid = self.condition(rgb, spikes, gamma, threshold)
        b, n, d = cond.shape
        x0 = target_latent.flatten(2).transpose(1, 2).reshape(b * n, -1)
        mean = self.mean_latent(cond, grid)
        terms = {
            "diffusion": self.head.loss(x0, cond.reshape(b * n, d), diffusion_repeats),
            "latent": torch.nn.functional.mse_loss(mean, target_latent),
        }
        return terms, mean
