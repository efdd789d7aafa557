"""Shared by the prior scripts: a spikegen-splat(-prior) trainer config for a scene, and the Trainer's own
iteration loop (callbacks included) without ns-train's viewer and checkpoint writing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig


def place(config: TrainerConfig, scene: Path, out: Path, name: str, device: str, seed: int = 42) -> TrainerConfig:
    """Point ``config`` at ``scene`` with its caches and outputs under ``out`` (one folder per method name)."""
    config.pipeline.datamanager.data = scene
    config.pipeline.datamanager.dense_cache_dir = out / "dense_cache"
    config.pipeline.datamanager.dataparser.cache_dir = out / "dataparser_cache"
    config.output_dir = out
    config.experiment_name = scene.name
    config.method_name = name
    config.timestamp = "bench"
    config.vis = "tensorboard"
    config.machine.device_type = device
    config.machine.seed = seed
    # the order training views are drawn in has its own seed in nerfstudio (default 42): tie it to the run's
    config.pipeline.datamanager.train_cameras_sampling_seed = seed
    return config


def start(config: TrainerConfig) -> Trainer:
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def iterate(
    trainer: Trainer, steps: int, on_step: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run ``steps`` training iterations; ``on_step(step)`` after each (done steps = step + 1).
    Returns per-iteration wall and CPU seconds and how many iterations had a prior loss term."""
    pipeline = trainer.pipeline
    wall, cpu, prior_steps = [], [], 0
    for step in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        pipeline.train()
        for cb in trainer.callbacks:
            cb.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        _, loss_dict, _ = trainer.train_iteration(step)
        for cb in trainer.callbacks:
            cb.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        prior_steps += int("prior_loss" in loss_dict)
        if on_step is not None:
            on_step(step)
    return {"wall": wall, "cpu": cpu, "prior_steps": prior_steps}


def saved_run(
    saved: Path, *, reuse: bool, wanted: bool, label: str, run: Callable[[], dict[str, Any]]
) -> dict[str, Any] | None:
    """A benchmark arm's result: read from ``saved`` with ``reuse`` (so runs split over processes are reported
    together), else trained with ``run()`` when ``wanted`` and saved there; None when neither."""
    if reuse and saved.is_file():
        return json.loads(saved.read_text())
    if not wanted:
        return None
    torch.manual_seed(42)
    print(f"{label} (training)", flush=True)
    result = run()
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result))
    print(f"{label}: PSNR {result['psnr']:.2f} SSIM {result['ssim']:.4f}", flush=True)
    return result
