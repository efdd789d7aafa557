"""``spikegen finetune-pairs``: fine-tune the RGB-only path (γ = 0, no spikes) on (degraded, sharp) image pairs.

The core model learns motion blur and spike noise from synthetic streams; a prior for Gaussian splatting must
also know what *splat* failures look like (floaters, holes, smeared textures between sparse views). Those pairs
come from renders of partly trained splat scenes against their ground truth (``scripts/dev/make_prior_pairs.py``
writes them); this module only sees image arrays, so it stays independent of nerfstudio.

A pairs file is an ``.npz`` with uint8 ``renders`` and ``targets`` of shape (N, H, W, 3). Batches are random
crops with flips; batch ``i`` depends only on ``(seed, i)``, so a resumed run sees the same stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikegen_core.errors import InputMismatchError
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.train.checkpoint import save_weights
from spikegen_core.train.config import CheckpointFinetuneConfig
from spikegen_core.train.data import batch_seed
from spikegen_core.train.distributed import setup, teardown
from spikegen_core.train.finetune import starting_model
from spikegen_core.train.loop import Stage, run_stage
from spikegen_core.train.objectives import target_latent
from spikegen_core.train.pretrain import set_trainable


@dataclass
class PairsConfig(CheckpointFinetuneConfig):
    """Fine-tuning on (degraded, sharp) image pairs through the RGB-only path (the target image is the sharp one)."""

    pairs: Path = Path("outputs/prior_pairs/pairs.npz")
    """The pairs file (uint8 ``renders`` and ``targets``, (N, H, W, 3))."""
    holdout: int = 0
    """Leave the pairs of the last ``holdout`` scenes (``scene`` array) out of training."""


def load_pairs(path: str | Path, holdout: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(renders, targets)`` as uint8 (N, 3, H, W) tensors; raises InputMismatchError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputMismatchError(f"{path}: no pairs file; make one with `python scripts/dev/make_prior_pairs.py`")
    data = np.load(path)
    missing = {"renders", "targets"} - set(data.files)
    if missing:
        raise InputMismatchError(f"{path}: pairs file lacks {sorted(missing)}; it needs uint8 renders and targets")
    renders, targets = data["renders"], data["targets"]
    if renders.shape != targets.shape or renders.ndim != 4 or renders.shape[-1] != 3 or renders.dtype != np.uint8:
        raise InputMismatchError(
            f"{path}: renders {renders.shape} {renders.dtype} and targets {targets.shape} must both be uint8 "
            "(N, H, W, 3)"
        )
    if holdout and "scene" in data.files:
        keep = data["scene"] < data["scene"].max() + 1 - holdout
        renders, targets = renders[keep], targets[keep]

    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()

    return chw(renders), chw(targets)


def pair_batches(
    renders: torch.Tensor, targets: torch.Tensor, batch_size: int, crop: int, seed: int = 0, start: int = 0
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches of aligned random crops (flipped at random) as float in [0, 1]; ``"index"`` per batch."""
    n, _, h, w = renders.shape
    if crop > min(h, w):
        raise InputMismatchError(f"crop {crop} is larger than the pair images ({h}x{w}); lower --image-size")
    i = start
    while True:
        g = torch.Generator().manual_seed(batch_seed(seed, i))
        idx = torch.randint(n, (batch_size,), generator=g)
        ys = torch.randint(h - crop + 1, (batch_size,), generator=g)
        xs = torch.randint(w - crop + 1, (batch_size,), generator=g)
        flips = torch.rand(batch_size, 2, generator=g) < 0.5
        src, dst = [], []
        for k in range(batch_size):
            a = renders[idx[k], :, ys[k] : ys[k] + crop, xs[k] : xs[k] + crop]
            b = targets[idx[k], :, ys[k] : ys[k] + crop, xs[k] : xs[k] + crop]
            dims = [d for d, f in zip((-1, -2), flips[k].tolist(), strict=True) if f]
            if dims:
                a, b = a.flip(dims), b.flip(dims)
            src.append(a)
            dst.append(b)
        yield {"degraded": torch.stack(src).float() / 255, "sharp": torch.stack(dst).float() / 255,
               "index": torch.tensor(i)}  # fmt: skip
        i += 1


class PairObjective(nn.Module):
    """RGB-only restoration of a degraded image: latent, diffusion and image terms against the sharp one."""

    def __init__(self, model: SpikeGen, diffusion_repeats: int) -> None:
        super().__init__()
        self.model = model
        self.repeats = diffusion_repeats

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rgb, sharp = batch["degraded"], batch["sharp"]
        gamma = torch.zeros(rgb.shape[0], device=rgb.device)
        terms, mean = self.model.losses(rgb, None, gamma, target_latent(self.model, sharp), self.repeats)
        terms["image"] = F.mse_loss(self.model.decode(mean, rgb, None), sharp)
        return terms


def _stream(renders: torch.Tensor, targets: torch.Tensor, cfg: PairsConfig, seed: int) -> Callable[[int], Iterator]:
    def at(start: int) -> Iterator[dict[str, torch.Tensor]]:
        return pair_batches(renders, targets, cfg.batch_size, cfg.image_size, seed=seed, start=start)

    return at


def finetune_pairs(cfg: PairsConfig) -> Path:
    """Fine-tune ``cfg.init`` on ``cfg.pairs``; returns ``out_dir/model.safetensors`` (EMA weights)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    renders, targets = load_pairs(cfg.pairs, cfg.holdout)
    rt = setup(cfg.device)
    try:
        torch.manual_seed(cfg.seed)
        model = starting_model(cfg.init, Path(cfg.out_dir), cfg.resume)
        model = model.to(rt.device)
        set_trainable(model, vae_encoder=False, vae_decoder=cfg.train_decoder, fusion=True, refiner=True)

        def meta() -> dict:
            return {"model": model.config.to_dict(), "train": cfg.to_dict(), "stage": "finetune-pairs",
                    "init": str(cfg.init), "pairs": str(cfg.pairs), "num_pairs": int(renders.shape[0])}

        weights = {"diffusion": cfg.diffusion_weight, "latent": cfg.latent_weight, "image": cfg.image_weight}
        stage = Stage("pairs", PairObjective(model, cfg.diffusion_repeats), model, weights, cfg.steps, cfg.lr,
                      "last", meta)  # fmt: skip
        ema = run_stage(stage, cfg, rt, _stream(renders, targets, cfg, cfg.seed * 1000 + 11 + rt.rank))
        final = Path(cfg.out_dir) / "model.safetensors"
        if rt.is_main:
            save_weights(final, ema.module.state_dict(), {**meta(), "step": cfg.steps})
        return final
    finally:
        teardown(rt)


def _tiny_pairs() -> PairsConfig:
    # the latent and diffusion terms only keep the latent path sensible: the decoder caps it near the renders'
    # own PSNR, so the image term (through the refiner) is what can improve on them
    return PairsConfig(out_dir=Path("runs/prior-pairs-tiny"), steps=700, lr=5e-4, warmup_steps=30, ckpt_every=100,
                       image_weight=10.0, latent_weight=0.1, diffusion_weight=0.1)


PAIRS_PRESETS: dict[str, PairsConfig] = {"tiny": _tiny_pairs()}
