"""The methods with the core diffusion model as a prior (prior_model.py), registered in pyproject.toml:

- ``spikegen-splat``: make_trainer_config's settings; the prior is on for scenes of at most ``PRIOR_MAX_VIEWS``
  training views, where it helps, and off (no cost, the same run) on larger ones, where it helps less or not at all.
- ``spikegen-splat-prior``: the prior on every scene.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from spikegen_nvs.config import make_trainer_config
from spikegen_nvs.prior_model import SpikeGenSplatPriorModelConfig

PRIOR_MAX_VIEWS = 8
"""spikegen-splat's prior switches on at this many training views or fewer. benchmarks/prior.md: at 8 views a gain
in PSNR and SSIM on every seed; at 12 a trade (PSNR +0.19 dB, SSIM −0.004); at 24 nothing but a small SSIM loss."""


def make_prior_trainer_config(method_name: str = "spikegen-splat-prior", **prior: Any) -> TrainerConfig:
    """spikegen-splat's trainer config (same frames, schedule and losses) with the model swapped for the prior model.

    ``prior`` sets :class:`SpikeGenSplatPriorModelConfig` fields (``prior_weight=...``); a key that is one of
    ``make_trainer_config``'s arguments (``max_steps``, ``refine_every``, ...) goes there instead."""
    trainer_keys = {"max_steps", "refine_every", "warmup_length", "num_random"}
    config = make_trainer_config(method_name, **{k: v for k, v in prior.items() if k in trainer_keys})
    base = config.pipeline.model
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init and f.name != "_target"}
    model = SpikeGenSplatPriorModelConfig(**fields)
    for key, value in prior.items():
        if key not in trainer_keys:
            if not hasattr(model, key):
                raise TypeError(f"unknown prior model setting {key!r}; see SpikeGenSplatPriorModelConfig")
            setattr(model, key, value)
    config.pipeline.model = model
    return config


spikegen_splat = MethodSpecification(
    config=make_prior_trainer_config("spikegen-splat", prior_max_views=PRIOR_MAX_VIEWS),
    description="Gaussian splatting from spike-camera scenes: restored dense frames + spike re-synthesis loss (+ the "
    f"core model as a prior on scenes of ≤ {PRIOR_MAX_VIEWS} views)",
)

spikegen_splat_prior = MethodSpecification(
    config=make_prior_trainer_config(),
    description="spikegen-splat + the core SpikeGen model as a prior: it fixes renders at in-between and jittered "
    "poses, and the splats are pulled toward its fixes",
)
