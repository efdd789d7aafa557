"""Fine-tuning on (degraded, sharp) image pairs: the pairs file, its batches, and the training stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_model import micro_config  # pytest puts tests/ on sys.path
from test_train import save_micro

from spikegen_core.data import random_texture
from spikegen_core.errors import InputMismatchError
from spikegen_core.metrics import psnr
from spikegen_core.models import SpikeGen
from spikegen_core.train.checkpoint import load_model
from spikegen_core.train.config import with_overrides
from spikegen_core.train.pairs import PAIRS_PRESETS, finetune_pairs, load_pairs, pair_batches


def _write(path: Path, renders: np.ndarray, targets: np.ndarray, **extra) -> Path:
    np.savez(path, renders=renders, targets=targets, **extra)
    return path


def test_a_missing_or_malformed_pairs_file_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputMismatchError, match="make_prior_pairs.py"):
        load_pairs(tmp_path / "none.npz")
    bad = _write(tmp_path / "bad.npz", np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 9, 3), np.uint8))
    with pytest.raises(InputMismatchError, match="bad.npz"):
        load_pairs(bad)
    floats = _write(tmp_path / "f.npz", np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(InputMismatchError, match="uint8"):
        load_pairs(floats)


def test_held_out_scenes_are_left_out(tmp_path: Path) -> None:
    r = np.zeros((6, 8, 8, 3), np.uint8)
    path = _write(tmp_path / "p.npz", r, r, scene=np.array([0, 0, 1, 1, 2, 2]))
    assert load_pairs(path)[0].shape[0] == 6
    assert load_pairs(path, holdout=1)[0].shape[0] == 4


def test_batches_are_aligned_crops_and_depend_only_on_seed_and_index() -> None:
    g = torch.Generator().manual_seed(0)
    renders = torch.randint(0, 256, (5, 3, 20, 24), generator=g, dtype=torch.uint8)
    targets = 255 - renders  # any crop or flip that keeps them aligned keeps this relation
    stream = pair_batches(renders, targets, batch_size=4, crop=16, seed=3)
    batches = [next(stream) for _ in range(4)]
    for b in batches:
        assert b["degraded"].shape == (4, 3, 16, 16)
        torch.testing.assert_close(b["sharp"], 1 - b["degraded"])
    later = next(pair_batches(renders, targets, batch_size=4, crop=16, seed=3, start=2))
    torch.testing.assert_close(later["degraded"], batches[2]["degraded"])
    assert int(later["index"]) == 2
    assert not torch.equal(batches[0]["degraded"], batches[1]["degraded"])
    with pytest.raises(InputMismatchError, match="crop"):
        next(pair_batches(renders, targets, batch_size=1, crop=32))


def test_finetuning_on_pairs_learns_the_degradation_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    sharp = torch.stack([random_texture(32, 32, generator=torch.Generator().manual_seed(s)) for s in range(12)])  # (N, 3, 32, 32)
    blurred = torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)
    to_u8 = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    pairs = _write(tmp_path / "pairs.npz", to_u8(blurred), to_u8(sharp))
    init = save_micro(tmp_path / "init.safetensors", SpikeGen(micro_config()))
    cfg = with_overrides(
        PAIRS_PRESETS["tiny"], out_dir=tmp_path / "run", pairs=pairs, init=init, steps=60, batch_size=6,
        image_size=32, lr=3e-3, warmup_steps=5, ckpt_every=30, progress=False, log_every=10, ema_decay=0.9,
    )

    def score(path: Path) -> float:
        model, _ = load_model(path)
        with torch.no_grad():
            out = model.eval()(blurred, None, 0.0).clamp(0, 1)
        return float(psnr(out, sharp))

    before = score(init)
    out = finetune_pairs(cfg)
    after = score(out)
    assert after > before + 3.0, (before, after)
    _, meta = load_model(out)
    assert meta["stage"] == "finetune-pairs" and meta["num_pairs"] == 12 and meta["step"] == 60
    # a longer run resumes from the last checkpoint instead of starting over
    finetune_pairs(with_overrides(cfg, steps=70, resume=True))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resumed from" in log and "step 70" in log
