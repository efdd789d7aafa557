"""The recipe of the shipped ``tiny`` checkpoint: autoencoder → pretraining → fine-tuning → fp16 export.

``python -m spikegen_core.train.ship --work-dir runs/ship-tiny`` makes a checkpoint of the shipped architecture
with the same stage lengths (resumable: rerun the same command after an interruption). The shipped file itself
grew over two sessions while the refiner changed (its record, ``spikegen_core/assets/spikegen_tiny.md``, lists
every segment), so a fresh run is the same recipe, not the same bits.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import tyro

from spikegen_core.train.checkpoint import SHIPPED, read_meta, read_weights, save_weights
from spikegen_core.train.config import FINETUNE_PRESETS, PRETRAIN_PRESETS, with_overrides
from spikegen_core.train.finetune import finetune
from spikegen_core.train.pretrain import pretrain


@dataclass
class ShipConfig:
    """Steps of each stage of the shipped tiny model (defaults: what made the shipped file)."""

    preset: str = "tiny"
    """Which PRETRAIN/FINETUNE preset pair to run ("natural": scripts/dev/train_core_natural.sh)."""
    work_dir: Path = Path("runs/ship-tiny")
    """Training folder (the pretraining checkpoints; fine-tuning goes to ``work_dir/finetune``)."""
    vae_steps: int = 2000
    """Autoencoder steps."""
    pretrain_steps: int = 200
    """Self-supervised fusion steps (γ per sample)."""
    finetune_steps: int = 3000
    """Deblurring + reconstruction steps with the spike-stream loss."""
    threads: int = 2
    """torch CPU threads."""
    asset: Path = SHIPPED
    """Where the exported float16 checkpoint goes."""
    progress: bool = False
    """Rich progress bars (off for nohup logs)."""
    ckpt_every: int = 100
    """Steps between resumable checkpoints of every stage."""


def export(src: Path, dst: Path, extra: dict | None = None) -> Path:
    """Copy a checkpoint as float16 weights (half the size; restored in float32) with its JSON + ``extra``."""
    meta = read_meta(src)
    meta.pop("format", None)
    meta.pop("version", None)
    return save_weights(dst, read_weights(src), {**meta, **(extra or {})}, dtype=torch.float16)


def ship(cfg: ShipConfig) -> Path:
    t0 = time.time()
    common = dict(threads=cfg.threads, resume=True, progress=cfg.progress, ckpt_every=cfg.ckpt_every)
    pre = pretrain(with_overrides(
        PRETRAIN_PRESETS[cfg.preset], out_dir=cfg.work_dir, steps=cfg.pretrain_steps, vae_steps=cfg.vae_steps, **common
    ))
    t1 = time.time()
    ft = finetune(with_overrides(
        FINETUNE_PRESETS[cfg.preset], out_dir=cfg.work_dir / "finetune", init=pre, steps=cfg.finetune_steps, **common
    ))
    t2 = time.time()
    record = {
        "recipe": {k: str(v) for k, v in asdict(cfg).items()},
        "wall_s": {"pretrain_incl_vae": round(t1 - t0), "finetune": round(t2 - t1)},
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
    }
    out = export(ft, cfg.asset, {"made_by": record})
    print(json.dumps(record, indent=1))
    return out


if __name__ == "__main__":
    ship(tyro.cli(ShipConfig))
