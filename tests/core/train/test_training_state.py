"""The rotating checkpoint slots: a crash at any point of a save leaves a complete state to resume from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from spikegen_core.errors import CheckpointError
from spikegen_core.train import training_state
from spikegen_core.train.training_state import has_state, load_state, newest_meta, save_state


def _save(out: Path, step: int) -> None:
    w = {"w": torch.full((3,), float(step))}
    save_state(out, "last", w, {"w": w["w"] + 0.5}, {"step": step, "rng": torch.get_rng_state()},
               {"model": {}, "stage": "t"})  # fmt: skip


def test_states_rotate_and_the_newest_loads(tmp_path: Path) -> None:
    assert not has_state(tmp_path, "last")
    for step in (2, 4, 6):
        _save(tmp_path, step)
    s = load_state(tmp_path, "last")
    assert s.step == 6 and s.path.name == "last.safetensors" and not s.problems
    assert float(s.weights["w"][0]) == 6 and float(s.ema_weights["w"][0]) == 6.5
    assert load_state(tmp_path, "last").train["step"] == 6 and newest_meta(tmp_path, "last")["step"] == 6
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if ".next" in n]  # nothing left over
    assert float(load_state(tmp_path, "last").weights["w"][0]) == 6
    (tmp_path / "last.safetensors").write_bytes(b"\0" * 100)
    s = load_state(tmp_path, "last")
    assert s.step == 4 and s.path.name == "last.prev.safetensors"
    assert "last.safetensors" in s.problems[0] and "corrupt" in s.problems[0]
    (tmp_path / "last.json").write_text("{")  # a truncated newest JSON is reported too, not skipped silently
    s = load_state(tmp_path, "last")
    assert s.step == 4 and "last.json" in s.problems[0] and newest_meta(tmp_path, "last")["step"] == 4


def test_a_crash_at_any_rename_leaves_a_complete_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace
    for crash_after in range(8):  # a save of a later step makes 4 rotations out + 4 in
        out = tmp_path / f"crash{crash_after}"
        out.mkdir()
        _save(out, 2)
        _save(out, 4)
        calls = {"n": 0}

        def replace(src, dst, _limit=crash_after, calls=calls):
            if calls["n"] >= _limit:
                raise KeyboardInterrupt("killed")
            calls["n"] += 1
            real_replace(src, dst)

        monkeypatch.setattr(training_state.os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            _save(out, 6)
        monkeypatch.setattr(training_state.os, "replace", real_replace)
        s = load_state(out, "last")
        assert s.step in (4, 6), (crash_after, s.step)
        assert float(s.weights["w"][0]) == s.step and float(s.ema_weights["w"][0]) == s.step + 0.5
        _save(out, 8)  # and saving goes on normally afterwards
        assert load_state(out, "last").step == 8


def test_mixed_steps_in_one_slot_are_refused(tmp_path: Path) -> None:
    _save(tmp_path, 2)
    (tmp_path / "keep.pt").write_bytes((tmp_path / "last.train.pt").read_bytes())
    _save(tmp_path, 4)
    (tmp_path / "last.train.pt").write_bytes((tmp_path / "keep.pt").read_bytes())  # step-2 optimiser in slot 4
    s = load_state(tmp_path, "last")
    assert s.step == 2 and "different steps" in s.problems[0]
    for f in tmp_path.glob("last.prev.*"):
        f.unlink()
    with pytest.raises(CheckpointError, match=r"no usable checkpoint.*different steps"):
        load_state(tmp_path, "last")
