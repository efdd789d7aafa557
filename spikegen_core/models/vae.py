"""RGB ↔ latent: a KL autoencoder (diffusers' ``AutoencoderKL``), small enough to train on a CPU.

No hub weights can be fetched, so the ``tiny`` VAE is trained by our own scripts; a user's local diffusers VAE
folder (e.g. a stride-8, 16-channel VAE like the paper's) loads by path with :meth:`LatentVAE.from_folder`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from spikegen_core.errors import CheckpointError

if TYPE_CHECKING:  # diffusers costs seconds to import: only a model build imports it
    from diffusers import AutoencoderKL


@dataclass
class VAEConfig:
    """Architecture of the KL autoencoder (diffusers ``AutoencoderKL`` arguments we use)."""

    block_out_channels: tuple[int, ...] = (32, 64, 64)
    """Channels per resolution level; the stride is 2**(levels−1)."""
    latent_channels: int = 8
    """Channels of the latent grid (4–16)."""
    layers_per_block: int = 1
    """ResNet layers per level."""
    norm_num_groups: int = 16
    """GroupNorm groups (must divide every entry of ``block_out_channels``)."""
    scaling_factor: float = 1.0
    """Latents are multiplied by this after encoding so they have about unit variance (set after VAE training)."""
    mid_attention: bool = True
    """Self-attention in the VAE's middle block (diffusers' default)."""
    folder: str | None = None
    """A local diffusers VAE folder to load instead of building from the fields above."""

    @property
    def stride(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


class LatentVAE(nn.Module):
    """Images in [0, 1] ↔ scaled latents ``(B, C, H/stride, W/stride)`` of about unit variance."""

    def __init__(self, config: VAEConfig, autoencoder: AutoencoderKL | None = None) -> None:
        super().__init__()
        self.config = config
        if autoencoder is None:
            from diffusers import AutoencoderKL

            n = len(config.block_out_channels)
            autoencoder = AutoencoderKL(
                in_channels=3,
                out_channels=3,
                down_block_types=("DownEncoderBlock2D",) * n,
                up_block_types=("UpDecoderBlock2D",) * n,
                block_out_channels=tuple(config.block_out_channels),
                layers_per_block=config.layers_per_block,
                latent_channels=config.latent_channels,
                norm_num_groups=config.norm_num_groups,
                mid_block_add_attention=config.mid_attention,
            )
        self.autoencoder = autoencoder

    @classmethod
    def from_folder(cls, folder: str | Path, scaling_factor: float | None = None) -> LatentVAE:
        """Load a diffusers VAE saved with ``save_pretrained`` (``config.json`` + weights), offline."""
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise CheckpointError(
                f"{folder}: not a diffusers VAE folder (no config.json); pass the folder written by "
                "AutoencoderKL.save_pretrained"
            )
        from diffusers import AutoencoderKL

        ae = AutoencoderKL.from_pretrained(folder, local_files_only=True)
        c = ae.config
        cfg = VAEConfig(
            block_out_channels=tuple(c.block_out_channels),
            latent_channels=c.latent_channels,
            layers_per_block=c.layers_per_block,
            norm_num_groups=c.norm_num_groups,
            scaling_factor=float(scaling_factor if scaling_factor is not None else c.scaling_factor),
            mid_attention=bool(getattr(c, "mid_block_add_attention", True)),
            folder=str(folder),
        )
        return cls(cfg, ae)

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def encode(self, image: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """``image`` (B, 3, H, W) in [0, 1] → scaled latents; the posterior mean unless ``sample``."""
        dist = self.autoencoder.encode(image * 2 - 1).latent_dist
        z = dist.sample() if sample else dist.mean
        return z * self.config.scaling_factor

    def encode_dist(self, image: torch.Tensor):
        """The diagonal-Gaussian posterior (for VAE training: sample + KL)."""
        return self.autoencoder.encode(image * 2 - 1).latent_dist

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → image, about [0, 1] (not clamped, so training gradients survive)."""
        out = self.autoencoder.decode(latents / self.config.scaling_factor).sample
        return (out + 1) / 2
