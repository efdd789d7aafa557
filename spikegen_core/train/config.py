"""Training configurations (tyro reads the field docstrings as ``--help`` text) and their presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal


@dataclass
class TrainConfig:
    """Settings shared by pretraining and fine-tuning."""

    out_dir: Path = Path("runs/spikegen")
    """Folder for checkpoints (``last.*``, ``model.*``) and the log."""
    preset: Literal["tiny", "base", "natural"] = "tiny"
    """Model size (see spikegen_core.models.presets)."""
    steps: int = 2000
    """Optimiser steps of this stage."""
    batch_size: int = 8
    """Samples per step (per process under torchrun)."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.02
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear warm-up, then cosine decay to 5% of the peak."""
    grad_clip: float = 3.0
    """Gradient-norm clip."""
    ema_decay: float = 0.995
    """EMA of the weights; the EMA weights are what ``model.safetensors`` holds."""
    image_size: int = 64
    """Square training crops."""
    spike_frames: tuple[int, int] = (16, 41)
    """Range of spike-window lengths drawn per batch (the encoder accepts 8–64)."""
    threshold_range: tuple[float, float] = (1.5, 3.0)
    """Spike threshold θ drawn per sample, so the model copes with cameras of other sensitivity."""
    motion_range: tuple[float, float] = (0.0, 4.0)
    """Range of the camera-motion scale drawn per sample (1 = data.motion's default magnitudes)."""
    data: Literal["textures", "natural"] = "textures"
    """Training content: procedural textures, or natural photographs (spikegen_core.data.natural: scikit-image's
    photographs, the REDS frame without spikes, 20 % textures)."""
    dark_rate_max: float = 0.0
    """Half the samples get dark-current noise, uniform in [0, this] spikes per pixel per tick."""
    collage_fraction: float = 0.0
    """With ``data="natural"``: this fraction of the canvases are photo collages (data.natural.collage_canvas)."""
    seed: int = 0
    """Seed of the synthetic data and the initialisation."""
    log_every: int = 25
    """Steps between log lines in ``train.log``."""
    ckpt_every: int = 500
    """Steps between ``last.*`` checkpoints (always written at the end)."""
    resume: bool = False
    """Continue from ``out_dir/last.*`` if present."""
    nonfinite: Literal["raise", "skip"] = "raise"
    """On a NaN/Inf loss term: raise NonFiniteLossError, or skip the step (at most 10 in a row)."""
    device: str = "auto"
    """"auto" (CUDA if present), "cpu", "cuda", ... Under torchrun each process takes its local rank's GPU."""
    amp: bool = False
    """bfloat16 autocast on CUDA."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    progress: bool = True
    """Show a rich progress bar."""
    prefetch: bool = True
    """Make the synthetic batches in a background thread while the model trains."""

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass
class PretrainConfig(TrainConfig):
    """Self-supervised pretraining: target = the clean image's latent, γ drawn per sample (modality dropout)."""

    vae_folder: Path | None = None
    """A local diffusers VAE folder to use (frozen) instead of training our own."""
    vae_steps: int = 1500
    """Steps of autoencoder training before pretraining (ignored with ``vae_folder``; 0 to skip)."""
    vae_lr: float = 2e-3
    """Peak learning rate of the autoencoder stage."""
    vae_kl_weight: float = 1e-6
    """KL weight of the autoencoder (small: we want sharp reconstructions, not a pretty prior)."""
    endpoint_prob: float = 0.25
    """Share of samples with γ exactly 0 or 1 (single-modality cases)."""
    diffusion_repeats: int = 1
    """Noise levels drawn per token per step for the diffusion head (MAR uses 4 on a GPU)."""


@dataclass
class CheckpointFinetuneConfig(TrainConfig):
    """What every stage that fine-tunes a checkpoint toward target images has: the start and the loss terms."""

    init: Path | None = None
    """Checkpoint to start from (e.g. ``model.safetensors`` of pretraining); None: the shipped checkpoint."""
    image_weight: float = 1.0
    """MSE between the decoded prediction and the target image."""
    latent_weight: float = 1.0
    """MSE between the mean head's latent and the target latent."""
    diffusion_weight: float = 1.0
    """Diffusion ε-loss on the target latent."""
    train_decoder: bool = True
    """Also train the VAE decoder on the image loss (the encoder stays frozen)."""
    diffusion_repeats: int = 1
    """Noise levels drawn per token per step for the diffusion head."""


@dataclass
class FinetuneConfig(CheckpointFinetuneConfig):
    """Fine-tuning for deblurring (blurred RGB + spikes → sharp) and dense reconstruction (spikes → frame)."""

    task: Literal["deblur", "reconstruct", "both", "rgb-only"] = "both"
    """Which task(s); "both" splits every batch half and half. "rgb-only": only the RGB-only refiner trains (one
    is added if the checkpoint has none), on the blurred frames alone (L1 to the sharp frame); every other weight
    is frozen, so the spike paths stay as they were."""
    deblur_gamma: float = 0.5
    """γ for deblurring samples."""
    reconstruct_gamma: float = 0.5
    """γ for reconstruction samples (the TFP image fills the RGB slot as pseudo-dense prior)."""
    spike_weight: float = 0.1
    """Spike-stream loss: expected counts of the prediction vs the observed spikes."""
    spike_window: int = 9
    """Central frames the spike-stream loss compares (the prediction is the centre frame)."""
    rgb_only_every: int = 4
    """Every n-th batch trains the RGB-only path (blurred frame in, no spikes, γ = 0) so that either input may
    be absent at inference; 0: never."""


def _tiny_pretrain() -> PretrainConfig:
    return PretrainConfig(out_dir=Path("runs/pretrain-tiny"))


def _base_pretrain() -> PretrainConfig:
    return PretrainConfig(
        out_dir=Path("runs/pretrain-base"), preset="base", steps=200_000, batch_size=64, lr=1e-4,
        warmup_steps=5000, image_size=256, spike_frames=(8, 8), ema_decay=0.9999, vae_steps=50_000,
        vae_lr=1e-4, amp=True, ckpt_every=5000, diffusion_repeats=4,
    )


def _tiny_finetune() -> FinetuneConfig:
    return FinetuneConfig(out_dir=Path("runs/finetune-tiny"), lr=5e-4, warmup_steps=50, image_weight=10.0,
                          spike_weight=1.0)


def _base_finetune() -> FinetuneConfig:
    return FinetuneConfig(
        out_dir=Path("runs/finetune-base"), preset="base", steps=50_000, batch_size=32, lr=5e-5,
        warmup_steps=1000, image_size=256, spike_frames=(32, 64), ema_decay=0.9999, amp=True, ckpt_every=5000,
        diffusion_repeats=4,
    )


# natural: photographs, θ around the REDS constant, modest motion, windows around the field's 41 frames
_NATURAL = dict(preset="natural", data="natural", threshold_range=(1.2, 3.0), motion_range=(0.0, 1.0),
                spike_frames=(33, 49), dark_rate_max=0.002, batch_size=6)  # fmt: skip


def _natural_pretrain() -> PretrainConfig:
    # the autoencoder is what uncaps the latent path: a long stage (200 steps left it at 16 dB on held-out
    # photographs), on 48² crops (half the cost of a 64² step), with an EMA of time constant ~20 steps
    return PretrainConfig(out_dir=Path("runs/pretrain-natural"), steps=200, vae_steps=3000, warmup_steps=10,
                          ema_decay=0.95, **{**_NATURAL, "image_size": 48})  # fmt: skip


def _natural_finetune() -> FinetuneConfig:
    return FinetuneConfig(out_dir=Path("runs/finetune-natural"), steps=30_000, lr=5e-4, warmup_steps=30,
                          image_weight=10.0, spike_weight=1.0, ckpt_every=100, rgb_only_every=8,
                          reconstruct_gamma=0.75, **_NATURAL)  # fmt: skip


PRETRAIN_PRESETS: dict[str, PretrainConfig] = {
    "tiny": _tiny_pretrain(), "base": _base_pretrain(), "natural": _natural_pretrain()
}
FINETUNE_PRESETS: dict[str, FinetuneConfig] = {
    "tiny": _tiny_finetune(), "base": _base_finetune(), "natural": _natural_finetune()
}


def with_overrides(cfg: TrainConfig, **changes) -> TrainConfig:
    """A copy of ``cfg`` with some fields changed (tests and scripts)."""
    return replace(cfg, **changes)


__all__ = [
    "CheckpointFinetuneConfig",
    "FINETUNE_PRESETS",
    "PRETRAIN_PRESETS",
    "FinetuneConfig",
    "PretrainConfig",
    "TrainConfig",
    "with_overrides",
]
