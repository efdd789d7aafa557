"""Method configs exported through the ``nerfstudio.method_configs`` entry point.

``spikegen-splat``: the spike-data dataparser is the default, so ``ns-train spikegen-splat --data <scene>``
is enough; the device is CPU when CUDA is absent. Defaults suit the tiny CPU scenes of our generator
(few thousand iterations, densification intervals scaled down, SH degree 1). ``spikegen-splat-fast`` is a
smoke-test variant (tiny iteration count, no densification).
"""

from __future__ import annotations

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from spikegen_nvs.datamanager import SpikeDatamanagerConfig
from spikegen_nvs.dataparser import SpikeDataParserConfig
from spikegen_nvs.model import SpikeGenSplatModelConfig

DEVICE_TYPE = "cuda" if torch.cuda.is_available() else "cpu"


def _optimizers(max_steps: int) -> dict:
    """splatfacto's optimiser settings with the decay schedules fitted to ``max_steps``."""

    def adam(lr: float) -> AdamOptimizerConfig:
        return AdamOptimizerConfig(lr=lr, eps=1e-15)

    return {
        "means": {"optimizer": adam(1.6e-4), "scheduler": ExponentialDecaySchedulerConfig(lr_final=1.6e-6, max_steps=max_steps)},
        "features_dc": {"optimizer": adam(0.0025), "scheduler": None},
        "features_rest": {"optimizer": adam(0.0025 / 20), "scheduler": None},
        "opacities": {"optimizer": adam(0.05), "scheduler": None},
        "scales": {"optimizer": adam(0.005), "scheduler": None},
        "quats": {"optimizer": adam(0.001), "scheduler": None},
        "camera_opt": {
            "optimizer": adam(1e-4),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=5e-7, max_steps=max_steps, warmup_steps=max_steps // 10,
                                                         lr_pre_warmup=0),
        },  # fmt: skip
        "bilateral_grid": {
            "optimizer": adam(2e-3),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=max_steps, warmup_steps=max_steps // 10,
                                                         lr_pre_warmup=0),
        },  # fmt: skip
    }


def make_trainer_config(
    method_name: str = "spikegen-splat",
    *,
    max_steps: int = 2500,
    refine_every: int = 50,
    warmup_length: int = 150,
    num_random: int = 3000,
) -> TrainerConfig:
    """The spikegen-splat trainer config; arguments scale the schedule (used by the fast variant and tests)."""
    model = SpikeGenSplatModelConfig(
        num_downscales=0,  # tiny scenes: train at full resolution from the start
        resolution_schedule=max_steps,
        warmup_length=warmup_length,
        refine_every=refine_every,
        reset_alpha_every=10,
        stop_split_at=int(max_steps * 0.6),
        stop_screen_size_at=max_steps,
        sh_degree=1,
        sh_degree_interval=max(max_steps // 5, 1),
        num_random=num_random,
        random_scale=2.0,  # camera origins are scaled into [-1, 1]; the scene sits inside
        use_absgrad=DEVICE_TYPE == "cuda",
    )
    return TrainerConfig(
        method_name=method_name,
        steps_per_eval_image=max(max_steps // 10, 1),
        steps_per_eval_batch=0,
        steps_per_save=max(max_steps // 4, 1),
        steps_per_eval_all_images=max_steps,
        max_num_iterations=max_steps,
        mixed_precision=False,
        machine=MachineConfig(device_type=DEVICE_TYPE),
        pipeline=VanillaPipelineConfig(
            datamanager=SpikeDatamanagerConfig(dataparser=SpikeDataParserConfig()),
            model=model,
        ),
        optimizers=_optimizers(max_steps),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, quit_on_train_completion=True),
        vis="viewer",
    )


spikegen_splat = MethodSpecification(
    config=make_trainer_config(),
    description="Gaussian splatting from spike-camera scenes: restored dense frames + spike re-synthesis loss",
)

spikegen_splat_fast = MethodSpecification(
    config=make_trainer_config("spikegen-splat-fast", max_steps=100, refine_every=1000, warmup_length=1000, num_random=500),
    description="spikegen-splat smoke test: 100 iterations, no densification",
)
