"""``spikegen finetune``: deblurring and dense reconstruction with the spike-stream loss."""

from __future__ import annotations

from pathlib import Path

import torch

from spikegen_core.models.spikegen import ModelConfig, SpikeGen
from spikegen_core.train.checkpoint import load_model, save_weights
from spikegen_core.train.config import FinetuneConfig
from spikegen_core.train.data import batch_stream
from spikegen_core.train.distributed import setup, teardown
from spikegen_core.train.loop import Stage, run_stage
from spikegen_core.train.objectives import FinetuneObjective
from spikegen_core.train.pretrain import set_trainable
from spikegen_core.train.training_state import newest_meta


def starting_model(init: Path | None, out_dir: Path, resume: bool) -> SpikeGen:
    """The model a fine-tuning stage starts from: with ``resume`` and a ``last.*`` slot in ``out_dir``, the
    architecture recorded there (run_stage loads its weights); otherwise ``init`` (None: the shipped one)."""
    meta_of_last = newest_meta(out_dir, "last") if resume else None
    if meta_of_last is None:
        return load_model(init)[0]
    mcfg = ModelConfig.from_dict(meta_of_last["model"])
    mcfg.vae.folder = None
    return SpikeGen(mcfg)


def finetune(cfg: FinetuneConfig) -> Path:
    """Fine-tune ``cfg.init`` (default: the shipped checkpoint); returns ``out_dir/model.safetensors``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rt = setup(cfg.device)
    try:
        torch.manual_seed(cfg.seed)
        out = Path(cfg.out_dir)
        model = starting_model(cfg.init, out, cfg.resume)
        if cfg.task == "rgb-only":  # the model as it is, frozen, with a trainable RGB-only refiner
            model.requires_grad_(False)
            model.add_rgb_only_refiner().requires_grad_(True)
        else:
            model.config.deblur_gamma = cfg.deblur_gamma
            model.config.reconstruct_gamma = cfg.reconstruct_gamma
            model.config.tfp_prior = True
            set_trainable(model, vae_encoder=False, vae_decoder=cfg.train_decoder, fusion=True, refiner=True)
        model = model.to(rt.device)
        data = batch_stream(cfg, seed=cfg.seed * 1000 + 7 + rt.rank)

        def meta() -> dict:
            return {"model": model.config.to_dict(), "train": cfg.to_dict(), "stage": f"finetune-{cfg.task}",
                    "init": str(cfg.init)}

        objective = FinetuneObjective(
            model, cfg.task, cfg.deblur_gamma, cfg.reconstruct_gamma, cfg.spike_window, cfg.diffusion_repeats,
            rgb_only_every=cfg.rgb_only_every,
        )
        weights = {"diffusion": cfg.diffusion_weight, "latent": cfg.latent_weight, "image": cfg.image_weight,
                   "spike": cfg.spike_weight}
        ema = run_stage(Stage("finetune", objective, model, weights, cfg.steps, cfg.lr, "last", meta), cfg, rt, data)
        final = out / "model.safetensors"
        if rt.is_main:
            save_weights(final, ema.module.state_dict(), {**meta(), "step": cfg.steps})
        return final
    finally:
        teardown(rt)
