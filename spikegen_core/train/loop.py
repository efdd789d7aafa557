"""The generic training loop: AdamW + warm-up/cosine, grad clip, EMA, DDP, rich progress, checkpoints, resume.

A stage is an *objective* (an ``nn.Module`` whose ``forward(batch)`` returns named loss terms) plus weights
for those terms. The loop never writes a non-finite checkpoint: a NaN/Inf term raises NonFiniteLossError
(naming the step and the term) or, with ``nonfinite="skip"``, the step is skipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from spikegen_core.errors import NonFiniteLossError
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.train.checkpoint import load_state_strict
from spikegen_core.train.config import TrainConfig
from spikegen_core.train.distributed import Runtime, barrier
from spikegen_core.train.ema import make_ema
from spikegen_core.train.training_state import has_state, load_state, save_state

MAX_SKIPS_IN_A_ROW = 10


@dataclass
class Stage:
    """One training stage: what to optimise and where its checkpoints go."""

    name: str
    objective: nn.Module
    model: SpikeGen
    weights: dict[str, float]
    steps: int
    lr: float
    prefix: str  # checkpoint file prefix inside out_dir ("last" → last.safetensors, ...)
    meta: Callable[[], dict[str, Any]]  # JSON written beside each checkpoint (must hold "model")


def lr_lambda(warmup: int, total: int, floor: float = 0.05) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))

    return f


def _log(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def _scalar_writer(out_dir: Path, start: int):  # noqa: ANN202 - torch.utils.tensorboard.SummaryWriter
    from torch.utils.tensorboard import SummaryWriter  # imported here: tensorboard costs a second at start-up

    return SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=start + 1 if start else None)


def save_training_state(
    out_dir: Path, prefix: str, model: nn.Module, ema: nn.Module, opt, sched, step: int, meta: dict,
    cpu_s: float = 0.0,
) -> None:
    """One rotating checkpoint slot ``<prefix>.*`` (training_state.py: written atomically, previous one kept).
    ``cpu_s``: CPU seconds this stage has used so far, over all its resumed runs (kept in the JSON too)."""
    train = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
             "rng": torch.get_rng_state(), "ema_updates": ema.n_averaged.detach().cpu(), "cpu_s": cpu_s}  # fmt: skip
    meta = {**meta, "cpu_s": round(cpu_s, 1)}
    save_state(out_dir, prefix, model.state_dict(), ema.module.state_dict(), train, meta)


def run_stage(
    stage: Stage, cfg: TrainConfig, rt: Runtime, data: Callable[[int], Iterator[dict]]
) -> nn.Module:
    """Train ``stage`` for ``stage.steps`` steps; returns the EMA model (an AveragedModel).

    ``data(start)`` gives the batches from step ``start`` on: a resumed run sees the batches the uninterrupted
    run would have seen."""
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "train.log"
    model = stage.model
    params = [p for p in stage.objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.warmup_steps, stage.steps))
    ema = make_ema(model, cfg.ema_decay)
    start = 0
    cpu_before = 0.0  # CPU seconds of earlier runs of this stage (resumed)
    if cfg.resume and has_state(out_dir, stage.prefix):
        state = load_state(out_dir, stage.prefix)
        load_state_strict(model, state.weights, state.path)
        load_state_strict(ema.module, state.ema_weights, state.path.with_suffix(".ema.safetensors"))
        opt.load_state_dict(state.train["optimizer"])
        sched.load_state_dict(state.train["scheduler"])
        torch.set_rng_state(state.train["rng"])
        if "ema_updates" in state.train:  # AveragedModel copies instead of averaging while this is 0
            ema.n_averaged.copy_(state.train["ema_updates"])
        start = state.step
        cpu_before = float(state.train.get("cpu_s", 0.0))
        if rt.is_main:
            for problem in state.problems:
                _log(log_path, f"[{stage.name}] skipped a checkpoint: {problem}")
            _log(log_path, f"[{stage.name}] resumed from {state.path} at step {start}")
    batches = data(start)
    # TensorBoard scalars beside train.log (`tensorboard --logdir <out_dir>/tensorboard`); purge_step drops the
    # events a killed run wrote after its last checkpoint, so a resumed curve has no doubled steps.
    scalars = _scalar_writer(out_dir, start) if rt.is_main else None
    objective = stage.objective
    if rt.distributed:
        objective = DistributedDataParallel(
            objective, device_ids=[rt.device] if rt.device.type == "cuda" else None, find_unused_parameters=False
        )
    objective.train()
    amp = cfg.amp and rt.device.type == "cuda"
    skips = 0
    columns = [
        TextColumn(f"[bold]{stage.name}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[sps]:.1f} samples/s"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    ]
    progress = Progress(*columns, disable=not (cfg.progress and rt.is_main))
    t_last, n_last = time.perf_counter(), 0
    cpu_start = time.process_time()
    with progress:
        task = progress.add_task(stage.name, total=stage.steps, completed=start, loss=float("nan"), sps=0.0)
        for step in range(start, stage.steps):
            batch = {k: v.to(rt.device) if isinstance(v, torch.Tensor) else v for k, v in next(batches).items()}
            with torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=amp):
                terms = objective(batch)
            bad = [k for k, v in terms.items() if not torch.isfinite(v.detach()).all()]
            loss = sum(stage.weights.get(k, 1.0) * v for k, v in terms.items())
            if not bad:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                if not torch.isfinite(gnorm):
                    bad = ["gradient"]
            if bad:
                what = ", ".join(f"{k}={terms[k].item() if k in terms else gnorm.item():.4g}" for k in bad)
                if cfg.nonfinite == "raise" or skips >= MAX_SKIPS_IN_A_ROW:
                    raise NonFiniteLossError(
                        f"{stage.name} step {step}: non-finite loss term ({what}); nothing was saved for this step. "
                        "Lower --lr, check the input data, or pass --nonfinite skip"
                    )
                skips += 1
                opt.zero_grad(set_to_none=True)
                if rt.is_main:
                    _log(log_path, f"[{stage.name}] step {step}: skipped, non-finite {what}")
                continue
            skips = 0
            opt.step()
            sched.step()
            ema.update_parameters(model)
            n_last += len(next(iter(v for v in batch.values() if v.ndim))) * rt.world  # samples, any stage
            if rt.is_main and ((step + 1) % cfg.log_every == 0 or step + 1 == stage.steps):
                now = time.perf_counter()
                sps = n_last / max(now - t_last, 1e-9)
                t_last, n_last = now, 0
                parts = " ".join(f"{k}={v.item():.4f}" for k, v in terms.items())
                _log(log_path, f"[{stage.name}] step {step + 1} loss={loss.item():.4f} {parts} "
                               f"lr={sched.get_last_lr()[0]:.2e} {sps:.1f} samples/s")
                progress.update(task, loss=loss.item(), sps=sps)
                if scalars is not None:
                    values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}, "samples_per_s": sps,
                              "lr": sched.get_last_lr()[0]}  # fmt: skip
                    for name, value in values.items():
                        scalars.add_scalar(f"{stage.name}/{name}", value, step + 1)
            progress.update(task, advance=1)
            if rt.is_main and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == stage.steps):
                cpu_s = cpu_before + time.process_time() - cpu_start
                save_training_state(out_dir, stage.prefix, model, ema, opt, sched, step + 1, stage.meta(), cpu_s)
            barrier(rt)
    if scalars is not None:
        scalars.close()
    if hasattr(batches, "close"):
        batches.close()  # stops a prefetch thread
    return ema
