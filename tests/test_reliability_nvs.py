"""spikegen-splat under faults: a NaN in a loss term is reported with its step and name before any update."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikegen_core.errors import NonFiniteLossError


@pytest.fixture(autouse=True)
def _torch_compositor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPIKEGEN_CPU_RASTER", "torch")  # skip numba's one-off JIT compile


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
