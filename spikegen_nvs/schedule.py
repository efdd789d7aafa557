"""spikegen-splat's schedule, placed along the run when the trainer starts, from its ``max_num_iterations``.

Every step count of a splatfacto run (densification start, interval and stop, opacity resets, the screen-size
split's stop, the SH-degree ramp, the resolution schedule, the learning-rate decays, eval and checkpoint
intervals) is a fraction of the run's length in a named profile, so ``--max-num-iterations 30000`` densifies
through its first half as splatfacto does and ``--max-num-iterations 1000`` through its first 600 steps:

- ``"full"``: splatfacto's own proportions (its 30000-step defaults divided by 30000), for real captures;
- ``"quick"``: the short CPU schedule of the quick start (tiny scenes: densify early and often, stop at 60 %);
- ``"fixed"``: the model's and optimisers' fields exactly as written (tests and experiments that set them).

``spikegen_nvs.trainer.SpikeGenTrainer`` (the trainer of every spikegen method) applies the profile when it is
built: after ns-train has parsed ``--max-num-iterations`` (the run's total, also when resuming), not when the method
config is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig

ScheduleName = Literal["full", "quick", "fixed"]


@dataclass(frozen=True)
class ScheduleProfile:
    """Step counts as fractions of the run's iterations (``reset_alpha_every`` counts densification intervals)."""

    warmup_length: float
    refine_every: float
    reset_alpha_every: int
    stop_split_at: float
    stop_screen_size_at: float
    sh_degree_interval: float
    resolution_schedule: float
    lr_warmup: float  # camera and bilateral-grid optimisers' warm-up
    steps_per_eval_image: float
    steps_per_save: float
    steps_per_eval_all_images: float


_SPLATFACTO_STEPS = 30_000
PROFILES: dict[str, ScheduleProfile] = {
    "full": ScheduleProfile(
        warmup_length=500 / _SPLATFACTO_STEPS,
        refine_every=100 / _SPLATFACTO_STEPS,
        reset_alpha_every=30,
        stop_split_at=15_000 / _SPLATFACTO_STEPS,
        stop_screen_size_at=4_000 / _SPLATFACTO_STEPS,
        sh_degree_interval=1_000 / _SPLATFACTO_STEPS,
        resolution_schedule=3_000 / _SPLATFACTO_STEPS,
        lr_warmup=1_000 / _SPLATFACTO_STEPS,
        steps_per_eval_image=100 / _SPLATFACTO_STEPS,
        steps_per_save=2_000 / _SPLATFACTO_STEPS,
        steps_per_eval_all_images=1_000 / _SPLATFACTO_STEPS,
    ),
    "quick": ScheduleProfile(
        warmup_length=0.15,
        refine_every=0.05,
        reset_alpha_every=10,
        stop_split_at=0.6,
        stop_screen_size_at=1.0,
        sh_degree_interval=0.2,
        resolution_schedule=1.0,
        lr_warmup=0.1,
        steps_per_eval_image=0.1,
        steps_per_save=0.25,
        steps_per_eval_all_images=1.0,
    ),
}
MODEL_FIELDS = (
    "warmup_length", "refine_every", "reset_alpha_every", "stop_split_at", "stop_screen_size_at",
    "sh_degree_interval", "resolution_schedule",
)  # fmt: skip
TRAINER_FIELDS = ("steps_per_eval_image", "steps_per_save", "steps_per_eval_all_images")


def apply_schedule(config: TrainerConfig) -> TrainerConfig:
    """Set ``config``'s step counts from its ``max_num_iterations`` and its model's ``schedule`` (in place)."""
    model = config.pipeline.model
    steps = int(config.max_num_iterations)
    if hasattr(model, "total_steps"):
        model.total_steps = steps
    name = getattr(model, "schedule", "fixed")
    if name == "fixed":
        return config
    profile = PROFILES[name]

    def at(fraction: float) -> int:
        return max(1, round(fraction * steps))

    for key in MODEL_FIELDS:
        value = getattr(profile, key)
        setattr(model, key, value if isinstance(value, int) else at(value))
    for key in TRAINER_FIELDS:
        setattr(config, key, at(getattr(profile, key)))
    for group in config.optimizers.values():
        scheduler = group.get("scheduler")
        if isinstance(scheduler, ExponentialDecaySchedulerConfig):
            scheduler.max_steps = steps
            if scheduler.warmup_steps:
                scheduler.warmup_steps = at(profile.lr_warmup)
    return config
