"""``spikegen pretrain``: train the autoencoder (unless a VAE folder is given), then the fusion model."""

from __future__ import annotations

from pathlib import Path

import torch

from spikegen_core.models.presets import preset
from spikegen_core.models.spikegen import ModelConfig, SpikeGen
from spikegen_core.models.vae import LatentVAE
from spikegen_core.train.checkpoint import save_weights
from spikegen_core.train.config import PretrainConfig
from spikegen_core.train.data import batch_stream
from spikegen_core.train.distributed import Runtime, setup, teardown
from spikegen_core.train.loop import Stage, run_stage
from spikegen_core.train.objectives import AutoencoderObjective, PretrainObjective
from spikegen_core.train.training_state import has_state, newest_meta


def set_trainable(
    model: SpikeGen, *, vae_encoder: bool, vae_decoder: bool, fusion: bool, refiner: bool | None = None
) -> None:
    """Freeze/unfreeze the parts: VAE encoder side, VAE decoder side, the pixel refiner (default: as
    ``vae_decoder``; it only learns from image losses), and everything else."""
    ae = model.vae.autoencoder
    enc = [ae.encoder, *([ae.quant_conv] if ae.quant_conv is not None else [])]
    dec = [ae.decoder, *([ae.post_quant_conv] if ae.post_quant_conv is not None else [])]
    for p in model.parameters():
        p.requires_grad_(fusion)
    refine = [model.refiner] if model.refiner is not None else []
    flags = [*[(m, vae_encoder) for m in enc], *[(m, vae_decoder) for m in dec],
             *[(m, vae_decoder if refiner is None else refiner) for m in refine]]
    for m, flag in flags:
        for p in m.parameters():
            p.requires_grad_(flag)


# batches of the stream far past any training step: the latent-scale estimate uses its own data
LATENT_SCALE_BATCHES = 1 << 40


@torch.no_grad()
def latent_scale(vae: LatentVAE, batches, rt: Runtime, n: int = 4) -> float:
    """1 / std of the unscaled latents over ``n`` batches, so the diffusion head sees unit-variance data.

    Averaged over DDP ranks: every process must use the same scale or their targets would disagree."""
    old = vae.config.scaling_factor
    vae.config.scaling_factor = 1.0
    dev = next(vae.parameters()).device
    z = torch.cat([vae.encode(next(batches)["sharp"].to(dev)).flatten() for _ in range(n)])
    vae.config.scaling_factor = old
    scale = (1.0 / z.std().clamp_min(1e-6)).reshape(1)
    if rt.distributed:
        torch.distributed.all_reduce(scale)
        scale /= rt.world
    return float(scale)


def _threads(cfg: PretrainConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def build_model(cfg: PretrainConfig) -> SpikeGen:
    mcfg: ModelConfig = preset(cfg.preset)
    meta = newest_meta(cfg.out_dir, "last") if cfg.resume else None
    if meta is not None:
        # resuming the fusion stage: the VAE's latent scale was calibrated before and lives in the JSON
        mcfg = ModelConfig.from_dict(meta["model"])
        mcfg.vae.folder = None
        return SpikeGen(mcfg)
    if cfg.vae_folder is not None:
        vae = LatentVAE.from_folder(cfg.vae_folder)
        mcfg.vae = vae.config
        return SpikeGen(mcfg, vae)
    return SpikeGen(mcfg)


def pretrain(cfg: PretrainConfig) -> Path:
    """Run pretraining; returns the path of ``model.safetensors`` (EMA weights) in ``cfg.out_dir``."""
    _threads(cfg)
    rt: Runtime = setup(cfg.device)
    try:
        torch.manual_seed(cfg.seed)
        out = Path(cfg.out_dir)
        model = build_model(cfg).to(rt.device)
        # Identical weights everywhere (seeded above), but each rank draws its own γ, timesteps and noise.
        torch.manual_seed(cfg.seed * 1000 + rt.rank)
        data = batch_stream(cfg, seed=cfg.seed * 1000 + rt.rank)

        def meta(stage: str):
            return lambda: {"model": model.config.to_dict(), "train": cfg.to_dict(), "stage": stage}

        fusion_started = cfg.resume and has_state(out, "last")
        if cfg.vae_folder is None and cfg.vae_steps > 0 and not fusion_started:
            set_trainable(model, vae_encoder=True, vae_decoder=True, fusion=False, refiner=False)
            objective = AutoencoderObjective(model.vae, cfg.vae_kl_weight)
            stage = Stage("autoencoder", objective, model, {}, cfg.vae_steps, cfg.vae_lr, "vae_last", meta("vae"))
            ema = run_stage(stage, cfg, rt, data)
            model.load_state_dict(ema.module.state_dict())
            model.config.vae.scaling_factor = latent_scale(model.vae, data(LATENT_SCALE_BATCHES), rt)
            if rt.is_main:
                save_weights(out / "vae.safetensors", model.state_dict(), {**meta("vae")(), "step": cfg.vae_steps})
        elif cfg.vae_folder is None and not fusion_started:
            model.config.vae.scaling_factor = latent_scale(model.vae, data(LATENT_SCALE_BATCHES), rt)
        set_trainable(model, vae_encoder=False, vae_decoder=False, fusion=True)
        objective = PretrainObjective(model, cfg.endpoint_prob, cfg.diffusion_repeats)
        stage = Stage("pretrain", objective, model, {}, cfg.steps, cfg.lr, "last", meta("pretrain"))
        ema = run_stage(stage, cfg, rt, data)
        final = out / "model.safetensors"
        if rt.is_main:
            save_weights(final, ema.module.state_dict(), {**meta("pretrain")(), "step": cfg.steps})
        return final
    finally:
        teardown(rt)
