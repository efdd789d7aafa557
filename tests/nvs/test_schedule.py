"""spikegen-splat's schedule follows the run's --max-num-iterations when the trainer starts (spikegen_nvs/schedule.py)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from test_dataparser import write_tiny_scene

from spikegen_nvs.config import QUICK_START, make_trainer_config, spikegen_splat
from spikegen_nvs.schedule import apply_schedule


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_scene(tmp_path_factory.mktemp("schedule") / "scene", n_train=3, n_test=1, size=12, ticks=8)


def _trainer(config, scene: Path, out: Path, steps: int):
    """The registered method as ns-train builds it, with --max-num-iterations ``steps`` set after the config."""
    config = copy.deepcopy(config)
    config.max_num_iterations = steps
    config.pipeline.datamanager.data = scene
    config.pipeline.datamanager.dense_cache_dir = out / "dense"
    config.pipeline.model.prior_max_views = -1  # keep the core model out of this test (no prior at any size)
    config.output_dir, config.vis, config.machine.device_type = out, "tensorboard", "cpu"
    config.set_timestamp()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def test_the_registered_schedule_scales_with_max_num_iterations(scene: Path, tmp_path: Path) -> None:
    built = spikegen_splat.config
    assert built.max_num_iterations == 30_000 and built.pipeline.model.stop_split_at == 15_000  # splatfacto's
    short, long = (_trainer(built, scene, tmp_path / str(n), n) for n in (200, 2000))
    for trainer, n in ((short, 200), (long, 2000)):
        model = trainer.pipeline.model
        strategy = model.strategy  # what densification actually follows
        assert strategy.refine_stop_iter == n // 2  # densify through the first half, as splatfacto
        assert strategy.refine_start_iter == round(n / 60) and strategy.refine_every == max(1, round(n / 300))
        assert model.config.sh_degree_interval == round(n / 30)  # SH degree 3 reached at 10 % of the run
        assert model.config.resolution_schedule == round(n / 10) and model.config.total_steps == n
        assert trainer.config.steps_per_save == round(n / 15)
        # the means' learning rate decays over the whole run: 1.6e-4 → 1.6e-6, the geometric mean halfway
        scheduler = trainer.optimizers.schedulers["means"]
        lr_at = scheduler.lr_lambdas[0]
        assert lr_at(n // 2) * 1.6e-4 == pytest.approx(math.sqrt(1.6e-4 * 1.6e-6), rel=0.02)
        assert lr_at(n) * 1.6e-4 == pytest.approx(1.6e-6, rel=0.01)
    assert long.pipeline.model.config.stop_split_at == 10 * short.pipeline.model.config.stop_split_at
    assert built.pipeline.model.stop_split_at == 15_000  # the method config itself is not changed by a run


def test_quick_start_schedule_is_todays_and_pinned_settings_stay() -> None:
    quick = make_trainer_config(**QUICK_START)
    m = quick.pipeline.model
    assert (m.warmup_length, m.refine_every, m.stop_split_at, m.sh_degree_interval, m.sh_degree) == (150, 50, 600, 200, 1)
    assert (quick.steps_per_eval_image, quick.steps_per_save, quick.steps_per_eval_all_images) == (100, 250, 1000)
    half = copy.deepcopy(quick)
    half.max_num_iterations = 500
    apply_schedule(half)
    assert (half.pipeline.model.stop_split_at, half.pipeline.model.refine_every) == (300, 25)
    pinned = make_trainer_config(max_steps=40, refine_every=10, warmup_length=10)
    pinned.max_num_iterations = 400
    apply_schedule(pinned)
    assert (pinned.pipeline.model.refine_every, pinned.pipeline.model.stop_split_at) == (10, 24)
