"""Method configs exported through the ``nerfstudio.method_configs`` entry point.

``make_trainer_config`` is spikegen-splat's schedule, frames and losses: the spike-data dataparser is the default, so
``ns-train spikegen-splat --data <scene>`` is enough; the device is CPU when CUDA is absent. The registered methods
use ``FULL_QUALITY`` (splatfacto's 30000 iterations, SH degree 3, two downscales, its schedule proportions);
``make_trainer_config()`` without arguments is the quick start's short CPU schedule (``QUICK_START``). Either way the
step counts follow ``--max-num-iterations`` when the trainer starts (spikegen_nvs/schedule.py).

- ``spikegen-splat``: those settings, with the core SpikeGen model as a prior (spikegen_nvs/prior) on scenes of at
  most ``PRIOR_MAX_VIEWS`` training views, and off (no cost, the same run) on larger ones.
- ``spikegen-splat-prior``: the prior on every scene.
- ``spikegen-splat-fast``: a smoke test (tiny iteration count, no densification).
- ``spikegen-baseline``: splatfacto on one kind of frame per view, for comparisons.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Literal

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from spikegen_nvs.datamanager import SpikeDatamanagerConfig
from spikegen_nvs.dataparser import SpikeDataParserConfig
from spikegen_nvs.model import SpikeGenSplatModelConfig
from spikegen_nvs.prior.model import SpikeGenSplatPriorModelConfig
from spikegen_nvs.schedule import ScheduleName, apply_schedule
from spikegen_nvs.trainer import SpikeGenTrainerConfig

DEVICE_TYPE = "cuda" if torch.cuda.is_available() else "cpu"


def _optimizers(max_steps: int) -> dict:
    """splatfacto's optimiser settings with the decay schedules fitted to ``max_steps``."""

    def adam(lr: float) -> AdamOptimizerConfig:
        return AdamOptimizerConfig(lr=lr, eps=1e-15)

    return {
        "means": {
            "optimizer": adam(1.6e-4),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1.6e-6, max_steps=max_steps),
        },
        "features_dc": {"optimizer": adam(0.0025), "scheduler": None},
        "features_rest": {"optimizer": adam(0.0025 / 20), "scheduler": None},
        "opacities": {"optimizer": adam(0.05), "scheduler": None},
        "scales": {"optimizer": adam(0.005), "scheduler": None},
        "quats": {"optimizer": adam(0.001), "scheduler": None},
        "camera_opt": {
            "optimizer": adam(1e-4),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_final=5e-7, max_steps=max_steps, warmup_steps=max_steps // 10, lr_pre_warmup=0
            ),
        },  # fmt: skip
        "bilateral_grid": {
            "optimizer": adam(2e-3),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_final=1e-4, max_steps=max_steps, warmup_steps=max_steps // 10, lr_pre_warmup=0
            ),
        },  # fmt: skip
    }


QUICK_START: dict[str, Any] = {"max_steps": 1000, "schedule": "quick", "sh_degree": 1, "num_downscales": 0}
"""The quick start's short CPU schedule (tiny scenes at full resolution, SH degree 1); ns-train flags:
``--max-num-iterations 1000 --pipeline.model.schedule quick --pipeline.model.sh-degree 1
--pipeline.model.num-downscales 0``."""
FULL_QUALITY: dict[str, Any] = {"max_steps": 30_000, "schedule": "full", "sh_degree": 3, "num_downscales": 2}
"""Real captures: splatfacto's iterations, SH degree, resolution schedule and proportions."""


def make_trainer_config(
    method_name: str = "spikegen-splat",
    *,
    max_steps: int = 1000,
    schedule: ScheduleName = "quick",
    sh_degree: int = 1,
    num_downscales: int = 0,
    refine_every: int | None = None,
    warmup_length: int | None = None,
    num_random: int = 3000,
) -> SpikeGenTrainerConfig:
    """The spikegen-splat trainer config. ``schedule`` places the step counts along the run (re-applied from
    ``--max-num-iterations`` when the trainer starts); giving ``refine_every`` or ``warmup_length`` pins every step
    count as built for ``max_steps`` instead (schedule "fixed": the fast variant and tests)."""
    model = SpikeGenSplatModelConfig(
        num_downscales=num_downscales,
        sh_degree=sh_degree,
        schedule="quick" if schedule == "fixed" else schedule,  # placed for max_steps below, then pinned if asked
        num_random=num_random,
        random_scale=2.0,  # camera origins are scaled into [-1, 1]; the scene sits inside
        use_absgrad=DEVICE_TYPE == "cuda",
        # Tuned on the sample scene (benchmarks/nvs.md): the spikes' sub-window counts carry the sharp
        # luminance, the re-blur loss the colour, and the dense frame (short-window TFP, grey) only anchors
        # structure, so it gets a small weight. K = 5 virtual views, warped from the one rendered view
        # (benchmarks/iteration_cost.md: 1.4x splatfacto's CPU time per step; rendering K = 3 views cost 2.3x).
        num_virtual_views=5,
        window_views="warp",
        # The dense frame only anchors structure: where windows hold ~3 spikes per pixel (the generated scenes,
        # real recordings at 0.03-0.2 spikes per tick) neither TFP nor the shipped core model is sharper than
        # the blurred frame, and a heavier weight pulls the splat towards them.
        photometric_weight=0.1,
        # Deblurring gets weaker view-space gradients than sharp targets (the detail is in the re-blur's
        # residual), so Gaussians are split at half splatfacto's gradient threshold.
        densify_grad_thresh=0.0004,
        spike_window_weight=0.5,
        spike_subwindow_weight=2.0,
        reblur_weight=1.0,
    )
    config = SpikeGenTrainerConfig(  # max_num_iterations is the total, also after --load-dir
        method_name=method_name,
        steps_per_eval_batch=0,
        max_num_iterations=max_steps,
        mixed_precision=False,
        machine=MachineConfig(device_type=DEVICE_TYPE),
        pipeline=VanillaPipelineConfig(
            # "auto": the fast model's frame where the window holds enough spikes (benchmarks/dense_frames.md: 4-9
            # dB above TFP over the central third, the former choice); the core model's restoration where every
            # spike-only frame would be mostly noise (benchmarks/prior.md). tfp_window: for `restorer tfp`.
            datamanager=SpikeDatamanagerConfig(
                dataparser=SpikeDataParserConfig(), restorer="auto", tfp_window=21
            ),
            model=model,
        ),
        optimizers=_optimizers(max_steps),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, quit_on_train_completion=True),
        vis="viewer",
    )
    apply_schedule(config)  # the step counts for max_steps (the trainer places them again for the run's length)
    if schedule == "fixed" or refine_every is not None or warmup_length is not None:
        model.schedule = "fixed"
        model.refine_every = refine_every if refine_every is not None else model.refine_every
        model.warmup_length = warmup_length if warmup_length is not None else model.warmup_length
    return config


def make_baseline_config(
    train_images: Literal["tfp", "blur", "sharp", "file"] = "blur",
    method_name: str = "spikegen-baseline",
    **kwargs: Any,
) -> SpikeGenTrainerConfig:
    """splatfacto on one kind of frame per train view (no spike or re-blur loss): the comparison baselines.

    Same schedule, densification and CPU handling as ``spikegen-splat`` (so iterations and timing compare),
    with the dataparser's images (TFP, blurred RGB or sharp frames) as the photometric target.
    """
    config = make_trainer_config(method_name, **kwargs)
    config.pipeline.datamanager.dense_target = "dataparser"
    config.pipeline.datamanager.dataparser.train_images = train_images
    model = config.pipeline.model
    model.spike_window_weight = model.spike_subwindow_weight = model.reblur_weight = 0.0
    model.num_virtual_views = 1
    model.photometric_weight = 1.0  # splatfacto's loss as it is (its gradients also drive densification)
    # ... and none of spikegen-splat's colour-spike terms: the baselines train on whole frames
    model.spike_timing_weight = model.chroma_smoothness_weight = 0.0
    model.colour_spikes_sh_degree = None
    model.linear_radiance = False  # splatfacto: the Gaussians learn the training images' own encoding
    return config


spikegen_splat_fast = MethodSpecification(
    config=make_trainer_config(
        "spikegen-splat-fast", max_steps=100, refine_every=1000, warmup_length=1000, num_random=500
    ),  # quick-start settings, pinned
    description="spikegen-splat smoke test: 100 iterations, no densification",
)

spikegen_baseline = MethodSpecification(
    config=make_baseline_config(**FULL_QUALITY),
    description="splatfacto baseline on spike scenes: one frame per view (--pipeline.datamanager.dataparser."
    "train-images tfp|blur|sharp), no spike loss",
)

PRIOR_MAX_VIEWS = 8
"""spikegen-splat's prior switches on at this many training views or fewer: it helps where views are few, not
where they are plentiful (benchmarks/prior.md measures it at several view counts)."""


def make_prior_trainer_config(method_name: str = "spikegen-splat-prior", **prior: Any) -> SpikeGenTrainerConfig:
    """spikegen-splat's trainer config (same frames, schedule and losses) with the model swapped for the prior model.

    ``prior`` sets :class:`SpikeGenSplatPriorModelConfig` fields (``prior_weight=...``); a key that is one of
    ``make_trainer_config``'s arguments (``max_steps``, ``refine_every``, ...) goes there instead."""
    trainer_keys = set(inspect.signature(make_trainer_config).parameters) - {"method_name"}
    config = make_trainer_config(method_name, **{k: v for k, v in prior.items() if k in trainer_keys})
    base = config.pipeline.model
    fields = {
        f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init and f.name != "_target"
    }
    model = SpikeGenSplatPriorModelConfig(**fields)
    for key, value in prior.items():
        if key not in trainer_keys:
            if not hasattr(model, key):
                raise TypeError(f"unknown prior model setting {key!r}; see SpikeGenSplatPriorModelConfig")
            setattr(model, key, value)
    config.pipeline.model = model
    return config


spikegen_splat = MethodSpecification(
    config=make_prior_trainer_config("spikegen-splat", prior_max_views=PRIOR_MAX_VIEWS, **FULL_QUALITY),
    description="Gaussian splatting from spike-camera scenes: restored dense frames + spike re-synthesis loss (+ the "
    f"core model as a prior on scenes of ≤ {PRIOR_MAX_VIEWS} views)",
)

spikegen_splat_prior = MethodSpecification(
    config=make_prior_trainer_config(**FULL_QUALITY),
    description="spikegen-splat + the core SpikeGen model as a prior: it fixes renders at in-between and jittered "
    "poses, and the splats are pulled toward its fixes",
)
