"""The SpikeGen model: VAE latents, S3 spike encoder, γ fusion, transformer, per-token diffusion head."""

from spikegen_core.models.fusion import fade_to_grey, fuse, sample_gamma, to_grey
from spikegen_core.models.presets import PRESETS, preset
from spikegen_core.models.spikegen import ModelConfig, SpikeGen
from spikegen_core.models.vae import LatentVAE, VAEConfig

__all__ = [
    "PRESETS",
    "LatentVAE",
    "ModelConfig",
    "SpikeGen",
    "VAEConfig",
    "fade_to_grey",
    "fuse",
    "preset",
    "sample_gamma",
    "to_grey",
]
