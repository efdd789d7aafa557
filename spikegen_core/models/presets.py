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


PRESETS = {"tiny": tiny, "base": base}


def preset(name: str) -> ModelConfig:
    """The ModelConfig of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
