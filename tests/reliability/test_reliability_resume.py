"""Interrupted training: SIGKILL mid-run then ``--resume``, corrupt checkpoints, and non-finite losses.

The core trainer (``spikegen_core.train``) runs in a child process at toy size (32 px, 8 spike frames, a
checkpoint every 2 steps) so a test can SIGKILL it right after its first checkpoint lands.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spikegen_core.errors import CheckpointError, NonFiniteLossError

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6

CHILD = r"""
import sys
from pathlib import Path
from spikegen_core.train.config import PretrainConfig
from spikegen_core.train.pretrain import pretrain
pretrain(PretrainConfig(out_dir=Path(sys.argv[1]), steps=int(sys.argv[2]), resume=sys.argv[3] == "1", seed=3,
    batch_size=2, image_size=32, spike_frames=(8, 8), vae_steps=0, ckpt_every=2, warmup_steps=2, threads=1,
    progress=False, device="cpu", log_every=1))
"""


def _tiny_cfg(out: Path, **changes):
    from spikegen_core.train.config import PretrainConfig

    base = dict(out_dir=out, steps=STEPS, seed=3, batch_size=2, image_size=32, spike_frames=(8, 8), vae_steps=0,
                ckpt_every=2, warmup_steps=2, threads=1, progress=False, device="cpu", log_every=1)  # fmt: skip
    return PretrainConfig(**{**base, **changes})


def _start(out: Path, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, str(out), str(STEPS), "1" if resume else "0"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]


def _step_of(out: Path) -> int:
    return int(json.loads((out / "last.json").read_text())["step"])


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An uninterrupted run and one SIGKILLed right after its first checkpoint, then resumed (run once)."""
    tmp = tmp_path_factory.mktemp("resume")
    from spikegen_core.train.pretrain import pretrain

    ref, killed = tmp / "ref", tmp / "killed"
    proc = _start(killed, resume=False)  # the run to kill runs in a child: SIGKILL needs its own process

    deadline = time.monotonic() + 60
    while not (killed / "last.json").is_file():  # last.json is written last: a complete checkpoint exists
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    killed_at = _step_of(killed)
    model_before_resume = (killed / "model.safetensors").exists()
    pretrain(_tiny_cfg(killed, resume=True))  # resume and the uninterrupted reference run here
    pretrain(_tiny_cfg(ref))
    return {"ref": ref, "killed": killed, "killed_at": killed_at, "model_before_resume": model_before_resume,
            "diff": _max_diff(ref / "model.safetensors", killed / "model.safetensors")}  # fmt: skip


@pytest.mark.slow
def test_pretrain_sigkilled_after_first_checkpoint_resumes_from_it(killed_and_resumed: dict) -> None:
    r = killed_and_resumed
    killed = r["killed"]
    assert 2 <= r["killed_at"] < STEPS and not r["model_before_resume"]  # killed mid-run, after a checkpoint
    log = (killed / "train.log").read_text()
    assert f"resumed from {killed / 'last.safetensors'} at step {r['killed_at']}" in log
    assert _step_of(killed) == STEPS  # it finished the remaining steps, not all of them again
    steps_logged = [line.split()[2] for line in log.splitlines() if line.startswith("[pretrain] step")]
    assert steps_logged[-(STEPS - r["killed_at"]) :] == [str(s) for s in range(r["killed_at"] + 1, STEPS + 1)]
    weights = load_file(str(killed / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())


@pytest.mark.slow
def test_pretrain_resumed_run_matches_the_uninterrupted_one(killed_and_resumed: dict) -> None:
    # Same seed and steps: an exact resume lands within float noise of the uninterrupted run (weights,
    # optimiser, schedule, RNG and the data stream position are all restored; one step's update is ~2e-3).
    assert killed_and_resumed["diff"] < 1e-5, f"resumed run differs by {killed_and_resumed['diff']:.3g}"


# -- corrupt checkpoints ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    from spikegen_core.train.pretrain import pretrain

    out = tmp_path_factory.mktemp("ckpt") / "run"
    pretrain(_tiny_cfg(out, steps=4))
    return out


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # the run folder holds a tensorboard/ folder beside the checkpoints
    return dst


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoints_without_a_good_one_are_detected_and_named(
    trained: Path, tmp_path: Path, damage: str
) -> None:
    from spikegen_core.train.pretrain import pretrain

    out = _copy_run(trained, tmp_path / "run")
    for name in ("last.safetensors", "last.prev.safetensors"):  # the newest and the previous one
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * 64 + data[64:])
    with pytest.raises(CheckpointError, match=r"last\.safetensors.*(corrupt|truncated).*last\.prev\.safetensors"):
        pretrain(_tiny_cfg(out, steps=6, resume=True))
    assert _step_of(out) == 4  # nothing was overwritten


def test_corrupt_checkpoint_falls_back_to_the_previous_good_one(trained: Path, tmp_path: Path) -> None:
    from spikegen_core.train.pretrain import pretrain

    out = _copy_run(trained, tmp_path / "run")
    last = out / "last.safetensors"
    last.write_bytes(last.read_bytes()[:1000])
    pretrain(_tiny_cfg(out, steps=6, resume=True))
    log = (out / "train.log").read_text()
    assert "last.safetensors" in log and ("corrupt" in log or "truncated" in log)  # reported ...
    assert "at step 2" in log and _step_of(out) == 6  # ... and training went on from the step-2 checkpoint


# -- non-finite losses -------------------------------------------------------------------------------------
def _nan_at(monkeypatch: pytest.MonkeyPatch, bad_steps: set[int], term: str = "latent") -> None:
    """Make the pretraining objective return NaN for ``term`` on the given (0-based) calls."""
    from spikegen_core.train import objectives

    original = objectives.PretrainObjective.forward
    calls = {"n": 0}

    def forward(self, batch):
        terms = original(self, batch)
        if calls["n"] in bad_steps:
            terms = {**terms, term: terms[term] * float("nan")}
        calls["n"] += 1
        return terms

    monkeypatch.setattr(objectives.PretrainObjective, "forward", forward)


def test_nan_loss_raises_with_step_and_term_and_writes_no_nan_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spikegen_core.train.pretrain import pretrain

    _nan_at(monkeypatch, {3})
    with pytest.raises(NonFiniteLossError, match=r"step 3: non-finite loss term \(latent=nan\)"):
        pretrain(_tiny_cfg(tmp_path, steps=6))
    assert _step_of(tmp_path) == 2  # the checkpoint before the NaN is the newest; nothing after it
    assert not (tmp_path / "model.safetensors").exists()
    for name in ("last.safetensors", "last.ema.safetensors"):
        assert all(torch.isfinite(v).all() for v in load_file(str(tmp_path / name)).values())


def test_nan_loss_skip_mode_reports_and_skips_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikegen_core.train.pretrain import pretrain

    _nan_at(monkeypatch, {1, 4}, term="diffusion")
    pretrain(_tiny_cfg(tmp_path, steps=6, nonfinite="skip"))
    log = (tmp_path / "train.log").read_text()
    assert "step 1: skipped, non-finite diffusion=nan" in log and "step 4: skipped, non-finite diffusion=nan" in log
    logged = [line.split()[2] for line in log.splitlines() if line.startswith("[pretrain] step") and "loss=" in line]
    assert len(logged) == 4  # 6 steps, 2 skipped
    assert all(torch.isfinite(v).all() for v in load_file(str(tmp_path / "model.safetensors")).values())


def test_checkpoint_with_non_finite_weights_is_refused(tmp_path: Path) -> None:
    from spikegen_core.train.checkpoint import save_weights

    (tmp_path / "w.safetensors").write_bytes(b"previous")
    with pytest.raises(CheckpointError, match=r"w\.safetensors.*non-finite.*a\.weight"):
        save_weights(tmp_path / "w.safetensors", {"a.weight": torch.tensor([1.0, float("inf")])}, {"model": {}})
    assert (tmp_path / "w.safetensors").read_bytes() == b"previous"
