"""``spikegen-splat-prior``: spikegen-splat with the core diffusion model as a prior (prior_model.py).

Register in pyproject.toml under ``[project.entry-points."nerfstudio.method_configs"]``::

    spikegen-splat-prior = "spikegen_nvs.prior_config:spikegen_splat_prior"
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from spikegen_nvs.config import make_trainer_config
from spikegen_nvs.prior_model import SpikeGenSplatPriorModelConfig


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


spikegen_splat_prior = MethodSpecification(
    config=make_prior_trainer_config(),
    description="spikegen-splat + the core SpikeGen model as a prior: it fixes renders at in-between and jittered "
    "poses, and the splats are pulled toward its fixes",
)
