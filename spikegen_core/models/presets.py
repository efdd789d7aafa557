"""Named model sizes: ``tiny`` trains usefully on 2 CPU cores at 64×64; ``base`` is the paper's reference."""

from __future__ import annotations

from spikegen_core.models.spikegen import ModelConfig
from spikegen_core.models.vae import VAEConfig


def tiny() -> ModelConfig:
    """~2 M parameters: stride-4 VAE with 16 latent channels, 4 transformer blocks of width 128 (CPU-sized)."""
    return ModelConfig(
        vae=VAEConfig(block_out_channels=(16, 32, 64), latent_channels=16, layers_per_block=1, norm_num_groups=8),
        width=128,
        depth=4,
        heads=4,
        spike_widths=(8, 16, 32),
        head_width=192,
        head_depth=3,
        sample_steps=25,
    )


def base() -> ModelConfig:
    """The reference configuration (DESIGN.md): stride-8, 16-channel VAE; 12+12 blocks of width 768."""
    return ModelConfig(
        vae=VAEConfig(
            block_out_channels=(128, 256, 512, 512),
            latent_channels=16,
            layers_per_block=2,
            norm_num_groups=32,
            scaling_factor=0.2325,
        ),
        width=768,
        depth=24,
        heads=12,
        dropout=0.1,
        spike_widths=(32, 64, 128, 256),
        head_width=1024,
        head_depth=6,
        sample_steps=100,
        temperature=0.5,
    )


def natural() -> ModelConfig:
    """~6 M parameters for natural images on a CPU budget: a stride-4 VAE with 16 latent channels and wider
    levels than ``tiny`` (its reconstruction is not the cap), multi-scale temporal spike features (TFP over
    5/9/17/33 frames, TFI, learned temporal convolutions), θ as an input, and a U-Net refiner."""
    return ModelConfig(
        vae=VAEConfig(block_out_channels=(32, 64, 128), latent_channels=16, layers_per_block=1, norm_num_groups=16),
        width=192,
        depth=4,
        heads=6,
        spike_widths=(8, 16, 32),
        head_width=256,
        head_depth=3,
        sample_steps=25,
        theta_input=True,
        temporal_scales=(5, 9, 17, 33),
        temporal_channels=8,
        refiner_kind="unet",
        refiner_width=32,
        refiner_blocks=1,
    )


PRESETS = {"tiny": tiny, "base": base, "natural": natural}


def preset(name: str) -> ModelConfig:
    """The ModelConfig of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
