"""spikegen-splat under faults: NaN losses, SIGKILL + resume, corrupt, torn and non-finite checkpoints.

The resume test trains in child processes (``python tests/reliability/test_reliability_nvs.py '<json>'``), each doing what
``ns-train`` does (seed from ``machine.seed`` → ``config.setup`` → ``trainer.setup`` → ``trainer.train``) without
the CLI's start-up; the other tests build the trainer in-process as tests/nvs/test_nvs_train.py does.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from spikegen_core.errors import CheckpointError, NonFiniteLossError

REPO = Path(__file__).resolve().parents[2]
TEST_DIRS = sorted({p.parent for p in (REPO / "tests").rglob("test_*.py")})  # the child imports test helpers
STEPS, SAVE_EVERY = 30, 10  # densification (refine_every=5) runs before and after the checkpoint at step 10


@pytest.fixture(autouse=True)
def _torch_compositor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKEGEN_CPU_RASTER", "torch")  # skip numba's one-off JIT compile


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_dataparser import write_tiny_scene

    return write_tiny_scene(tmp_path_factory.mktemp("nvs_faults") / "scene", n_train=2, n_test=1, size=16, ticks=10)


def test_nan_spike_loss_names_step_and_term_and_leaves_weights_finite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_dataparser import write_tiny_scene
    from test_nvs_train import _run, _trainer

    from spikegen_nvs import spike_loss

    scene = write_tiny_scene(tmp_path / "scene", n_train=2, n_test=1, size=16, ticks=10)
    _, trainer = _trainer(scene, tmp_path / "out", 5)
    original = spike_loss.spike_resynthesis_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # the third training step
            terms = {**terms, "subwindow": terms["subwindow"] * float("nan")}
        return terms

    monkeypatch.setattr(spike_loss, "spike_resynthesis_loss", poisoned)
    before = {k: v.detach().clone() for k, v in trainer.pipeline.model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"'spike_subwindow_loss' is nan at step 2"):
        _run(trainer, 5)
    after = trainer.pipeline.model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    changed = [k for k in before if before[k].shape == after[k].shape and not torch.equal(before[k], after[k])]
    assert changed  # the two good steps did train; the NaN step raised before its optimiser step


# -- checkpoints: keep a fallback, fall back past a corrupt newest one, never torn, never NaN ----------------
def _steps(folder: Path) -> list[int]:
    from spikegen_nvs.checkpoints import checkpoint_steps

    return [step for step, _ in checkpoint_steps(folder)]


@pytest.fixture
def trained(tiny_scene: Path, tmp_path: Path):
    """A trainer after 3 steps with checkpoints saved at steps 0, 1 and 2 (nerfstudio's keep-latest default)."""
    from test_nvs_train import _run, _trainer

    config, trainer = _trainer(tiny_scene, tmp_path / "out", 3)
    assert config.save_only_latest_checkpoint
    _run(trainer, 3)
    for step in range(3):
        trainer.save_checkpoint(step)
    return config, trainer


def _resume(config):
    config.load_dir = config.get_checkpoint_dir()
    resumed = config.setup(local_rank=0, world_size=1)
    resumed.setup()
    return resumed


def test_checkpoints_get_the_umask_mode(trained) -> None:
    import stat

    config, _ = trained
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in config.get_checkpoint_dir().glob("step-*.ckpt")}
    assert modes == {0o666 & ~mask}  # was 0o600: the temp file's private mode survived the rename


def test_resume_continues_to_the_original_total_and_a_finished_run_stops(tiny_scene: Path, tmp_path: Path) -> None:
    """Issue 21 item 21: nerfstudio's --load-dir ran max_num_iterations MORE steps (280 of 200)."""
    from test_nvs_train import _trainer

    from spikegen_nvs.trainer import SpikeGenTrainer

    config, trainer = _trainer(tiny_scene, tmp_path / "out", 5)
    assert isinstance(trainer, SpikeGenTrainer)
    config.steps_per_save, config.steps_per_eval_image, config.steps_per_eval_all_images = 2, 10**9, 10**9
    trainer.train()
    folder = config.get_checkpoint_dir()
    assert _steps(folder) == [2, 4] and trainer.step == 4  # steps 0..4: the total is 5
    (folder / "step-000000004.ckpt").unlink()  # as if killed after the step-2 checkpoint

    def run_resumed() -> list[int]:
        resumed = _resume(config)
        ran: list[int] = []
        iteration = resumed.train_iteration
        resumed.train_iteration = lambda step: (ran.append(step), iteration(step))[1]
        resumed.train()
        return ran

    assert run_resumed() == [3, 4]  # to the original total (nerfstudio alone: steps 3..7)
    assert _steps(folder) == [2, 4] and config.max_num_iterations == 5
    assert run_resumed() == []  # finished: nothing more, no checkpoint rewritten
    assert _steps(folder) == [2, 4]


def test_latest_two_checkpoints_are_kept(trained) -> None:
    config, _ = trained
    folder = config.get_checkpoint_dir()
    assert _steps(folder) == [1, 2]  # nerfstudio alone keeps [2]: nothing to fall back to
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000001.ckpt", "step-000000002.ckpt"]
    assert not list(folder.parent.glob(".step-*.tmp"))  # no temp files left beside


def test_checkpoints_come_from_a_trainer_subclass_not_a_patched_nerfstudio(trained) -> None:
    from nerfstudio.engine.trainer import Trainer

    from spikegen_nvs.trainer import SpikeGenTrainer

    _, trainer = trained
    assert type(trainer) is SpikeGenTrainer
    # other methods keep nerfstudio's own (the former patch put spikegen_nvs.checkpoints functions here)
    assert Trainer.save_checkpoint.__module__.startswith("nerfstudio.")
    assert inspect.unwrap(Trainer._load_checkpoint).__module__ == "nerfstudio.engine.trainer"


@pytest.mark.parametrize("damage", ["truncate", "zero-header"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(trained, damage: str, capsys) -> None:
    config, trainer = trained
    latest = config.get_checkpoint_dir() / "step-000000002.ckpt"
    blob = latest.read_bytes()
    latest.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else bytes(64) + blob[64:])
    expected = torch.load(config.get_checkpoint_dir() / "step-000000001.ckpt", weights_only=False)["pipeline"]
    resumed = _resume(config)
    assert resumed._start_step == 2  # from step 1, the previous good checkpoint
    out = capsys.readouterr().out
    assert "step-000000002.ckpt" in out and "corrupt or truncated" in out and "previous good" in out
    got = resumed.pipeline.state_dict()
    assert all(torch.equal(got[k].cpu(), v) for k, v in expected.items())
    # nerfstudio alone leaves the optimisers on the Gaussians replaced by the load: nothing would train.
    params = resumed.pipeline.model.gauss_params
    assert all(resumed.optimizers.parameters[k][0] is params[k] for k in params)
    del trainer


def test_only_corrupt_checkpoints_are_named_in_the_error(trained) -> None:
    config, _ = trained
    for path in config.get_checkpoint_dir().glob("*.ckpt"):
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"no usable checkpoint.*step-000000001\.ckpt.*corrupt or truncated"):
        _resume(config)
    config.load_step = 2  # an explicit step is not replaced by another one
    config.load_dir = config.get_checkpoint_dir()
    with pytest.raises(CheckpointError, match=r"step-000000002\.ckpt: checkpoint is corrupt or truncated"):
        config.setup(local_rank=0, world_size=1).setup()


def test_killed_write_leaves_previous_checkpoints_and_a_stray_temp_is_ignored(trained, monkeypatch) -> None:
    config, trainer = trained
    folder = config.get_checkpoint_dir()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_save = torch.save

    def torn_save(obj, f, *args, **kwargs):  # writes half the file, then dies like a killed process would
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(3)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not list(folder.parent.glob(".step-*"))  # the temp file was removed
    (folder / ".step-000000009.ckpt.x.tmp").write_bytes(b"torn")  # a stray file nerfstudio's name parsing chokes on
    assert _resume(config)._start_step == 3


def test_non_finite_weights_are_never_saved(trained) -> None:
    config, trainer = trained
    folder = config.get_checkpoint_dir()
    with torch.no_grad():
        trainer.pipeline.model.gauss_params["means"][0, 1] = float("nan")
    with pytest.raises(CheckpointError, match=r"step-000000003\.ckpt: refusing to save step 3.*means"):
        trainer.save_checkpoint(3)
    assert _steps(folder) == [1, 2] and not list(folder.parent.glob(".step-*"))


# -- SIGKILL mid-run, then --load-dir: ends where an uninterrupted run ends ---------------------------------
def _child_main(args: dict) -> None:
    """What ns-train does for spikegen-splat, with tiny settings (run in a child process by the test below)."""
    import random

    from spikegen_nvs.config import make_trainer_config

    config = make_trainer_config(max_steps=STEPS, refine_every=5, warmup_length=5, num_random=200)
    config.pipeline.datamanager.data = Path(args["scene"])
    config.pipeline.model.background_color = "black"
    config.output_dir, config.experiment_name, config.timestamp = Path(args["out"]), "exp", "run"
    config.vis, config.machine.device_type = "tensorboard", "cpu"
    config.steps_per_save, config.steps_per_eval_image, config.steps_per_eval_all_images = SAVE_EVERY, 7, 10**9
    if args.get("load_dir"):
        config.load_dir = Path(args["load_dir"])  # max_num_iterations stays the total (SpikeGenTrainer)
    config.save_config()
    torch.set_num_threads(1)  # same arithmetic in every run
    random.seed(config.machine.seed)  # as nerfstudio's train_loop
    np.random.seed(config.machine.seed)
    torch.manual_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    if args.get("delay"):  # slows the run that gets killed, so the kill lands between two checkpoints
        iteration = trainer.train_iteration
        trainer.train_iteration = lambda step: (iteration(step), time.sleep(args["delay"]))[0]
    start = trainer._start_step
    trainer.train()
    model = trainer.pipeline.model
    model.eval()
    camera, image = trainer.pipeline.datamanager.next_eval_image(0)
    with torch.no_grad():
        rgb = model.get_outputs_for_camera(camera)["rgb"]
    np.savez(Path(args["out"]) / "final.npz", rgb=rgb.numpy(), gt=image["image"].float().numpy() / 255,
             means=model.means.detach().numpy(), start=start, step=trainer.step)  # fmt: skip


def _child(args: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}:" + ":".join(str(p) for p in TEST_DIRS), "SPIKEGEN_CPU_RASTER": "torch"}
    return subprocess.Popen([sys.executable, __file__, json.dumps(args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: float) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.slow
def test_sigkilled_training_resumes_from_its_checkpoint_like_an_uninterrupted_run(tmp_path: Path) -> None:
    from spikegen_core.data.scene import make_scene

    scene = make_scene(tmp_path / "scene", preset="sample", width=32, height=24, num_train=4, num_test=1,
                       seed_points=0)  # fmt: skip  (random init: a few hundred Gaussians, seconds per run)
    full = _child({"scene": str(scene), "out": str(tmp_path / "full")})
    killed = _child({"scene": str(scene), "out": str(tmp_path / "killed"), "delay": 0.5})
    ckpts = tmp_path / "killed/exp/spikegen-splat/run/nerfstudio_models"
    deadline = time.monotonic() + 240  # start-up alone takes 20-60 s on a busy 2-core machine
    while not (ckpts / f"step-{SAVE_EVERY:09d}.ckpt").exists():
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()[0][-3000:]
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert _steps(ckpts) == [SAVE_EVERY]  # killed before the next save; nothing torn left behind

    resumed = _child({"scene": str(scene), "out": str(tmp_path / "resumed"), "load_dir": str(ckpts)})
    _finish(full, 120)
    _finish(resumed, 120)
    a, b = np.load(tmp_path / "full/final.npz"), np.load(tmp_path / "resumed/final.npz")
    assert int(b["start"]) == SAVE_EVERY + 1 and int(a["step"]) == int(b["step"]) == STEPS - 1
    assert a["means"].shape == b["means"].shape  # densification made the same decisions after the resume
    psnr = [float(-10 * np.log10(np.mean((r["rgb"] - r["gt"]) ** 2))) for r in (a, b)]
    diff = float(np.abs(a["rgb"] - b["rgb"]).max())
    print(f"resume vs uninterrupted: max |rgb| diff {diff:.2e}, means diff "
          f"{float(np.abs(a['means'] - b['means']).max()):.2e}, test PSNR {psnr[0]:.3f} vs {psnr[1]:.3f} dB")  # fmt: skip
    # RNGs, camera order and densification statistics are restored, so the runs agree up to float noise.
    assert diff < 1e-4 and np.allclose(a["means"], b["means"], atol=1e-5)


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]))
