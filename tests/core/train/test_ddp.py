"""Core pretraining under DDP on CPU: two processes on the gloo backend, a few steps of each stage.

Checks that the replicas' weights stay identical, that each rank draws its own data stream, that only rank 0
writes checkpoints, and that ``resume`` continues from the saved step with the replicas still identical.
Workers are started with torch.multiprocessing and torchrun's environment variables (RANK, WORLD_SIZE, ...).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import torch
import torch.multiprocessing as mp

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, cfg, port: int, record: Path) -> None:
    """One torchrun-like process: pretrain with hooks that record what this rank did."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))  # fmt: skip
    torch.set_num_threads(1)
    # the package re-exports the function ``pretrain``, so fetch the module itself
    state_mod = importlib.import_module("spikegen_core.train.training_state")
    pretrain_mod = importlib.import_module("spikegen_core.train.pretrain")

    log: dict = {"saved": [], "seeds": [], "stages": {}}
    save, run_stage, stream = state_mod.save_weights, pretrain_mod.run_stage, pretrain_mod.batch_stream

    def saving(path, *args, **kwargs):
        log["saved"].append(Path(path).name)
        return save(path, *args, **kwargs)

    def running(stage, *args, **kwargs):
        ema = run_stage(stage, *args, **kwargs)
        live = {k: v.detach().clone() for k, v in stage.model.state_dict().items()}
        torch.save({"live": live, "ema": ema.module.state_dict()}, record / f"{stage.name}_rank{rank}.pt")
        return ema

    def data(*args, **kwargs):
        log["seeds"].append(kwargs.get("seed"))
        return stream(*args, **kwargs)

    state_mod.save_weights = pretrain_mod.save_weights = saving
    pretrain_mod.run_stage, pretrain_mod.batch_stream = running, data
    pretrain_mod.pretrain(cfg)
    (record / f"log_rank{rank}.json").write_text(json.dumps(log))


def _run(cfg, record: Path) -> list[dict]:
    record.mkdir(parents=True, exist_ok=True)
    mp.start_processes(_worker, args=(cfg, _free_port(), record), nprocs=WORLD, join=True, start_method="spawn")
    return [json.loads((record / f"log_rank{r}.json").read_text()) for r in range(WORLD)]


def _assert_replicas_equal(record: Path, stage: str) -> None:
    a, b = (torch.load(record / f"{stage}_rank{r}.pt", weights_only=True) for r in range(WORLD))
    for part in ("live", "ema"):
        assert a[part].keys() == b[part].keys()
        diff = [k for k in a[part] if not torch.equal(a[part][k], b[part][k])]
        assert not diff, f"{stage} {part}: replicas differ in {diff[:5]}"


def test_pretrain_ddp_gloo_two_processes(tmp_path: Path) -> None:
    from spikegen_core.train.checkpoint import read_meta
    from spikegen_core.train.config import PRETRAIN_PRESETS

    cfg = replace(
        PRETRAIN_PRESETS["tiny"], out_dir=tmp_path / "run", steps=3, vae_steps=2, batch_size=2, image_size=16,
        spike_frames=(8, 8), warmup_steps=1, lr=1e-3, vae_lr=1e-3, ckpt_every=2, log_every=1, device="cpu",
        threads=1, progress=False, prefetch=False,
    )
    logs = _run(cfg, tmp_path / "first")
    for stage in ("autoencoder", "pretrain"):
        _assert_replicas_equal(tmp_path / "first", stage)
    # the model moved away from its initialisation (the test would pass trivially on a no-op)
    first = torch.load(tmp_path / "first" / "pretrain_rank0.pt", weights_only=True)["live"]
    init = torch.load(tmp_path / "first" / "autoencoder_rank0.pt", weights_only=True)["live"]
    assert any(not torch.equal(first[k], init[k]) for k in first if "backbone" in k)
    # each rank draws its own samples (the synthetic stream is sharded by seed)
    assert len({s for log in logs for s in log["seeds"]}) == WORLD
    # checkpoints come from rank 0 only
    assert logs[1]["saved"] == []
    # (training state is written as last.next.* and renamed into last.*: training_state.py)
    assert {"last.next.safetensors", "model.safetensors", "vae.safetensors"} <= set(logs[0]["saved"])
    out = cfg.out_dir
    assert read_meta(out / "model.safetensors")["step"] == 3

    # resume: 2 more steps of the fusion stage from last.* (step 3), replicas identical again
    logs = _run(replace(cfg, steps=5, resume=True), tmp_path / "second")
    _assert_replicas_equal(tmp_path / "second", "pretrain")
    assert not (tmp_path / "second" / "autoencoder_rank0.pt").exists()  # the finished VAE stage is not rerun
    assert logs[1]["saved"] == [] and "model.safetensors" in logs[0]["saved"]
    assert read_meta(out / "model.safetensors")["step"] == 5
    assert "[pretrain] resumed from" in (out / "train.log").read_text()
    resumed = torch.load(tmp_path / "second" / "pretrain_rank0.pt", weights_only=True)["live"]
    assert any(not torch.equal(resumed[k], first[k]) for k in resumed if "backbone" in k)  # it trained on
