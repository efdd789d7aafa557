"""Resumable training state in three rotating slots, so a kill or a corrupt file never loses the run.

A slot ``<prefix>`` (e.g. ``last``) is four files: ``<prefix>.safetensors`` + ``.json`` (live weights, config,
step), ``<prefix>.ema.safetensors`` (EMA weights, step in the header) and ``<prefix>.train.pt`` (optimiser, LR
schedule, RNG, step). A new state is written completely to ``<prefix>.next``; then ``<prefix>`` is renamed to
``<prefix>.prev`` and ``<prefix>.next`` to ``<prefix>``, file by file. At every instant one slot is complete,
so a SIGKILL anywhere leaves something to resume from, and the step stored in every file tells a complete slot
from a half-rotated one. Loading takes the newest complete slot that reads; a corrupt or truncated newest
checkpoint is reported and the previous good one is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from spikegen_core.errors import CheckpointError
from spikegen_core.train.checkpoint import read_meta, read_weights, save_weights
from spikegen_core.utils import atomic_path

# rename order: the JSON marks a slot as present, so it leaves a slot first and arrives last
_PARTS = (".json", ".safetensors", ".ema.safetensors", ".train.pt")


def slot_names(prefix: str) -> tuple[str, str, str]:
    """(newest, being written, previous)."""
    return prefix, f"{prefix}.next", f"{prefix}.prev"


def _files(out_dir: Path, slot: str) -> list[Path]:
    return [out_dir / f"{slot}{part}" for part in _PARTS]


def has_state(out_dir: str | Path, prefix: str) -> bool:
    """Whether any slot of ``prefix`` has left a file (then ``--resume`` must resume or explain why not)."""
    return any(f.exists() for slot in slot_names(prefix) for f in _files(Path(out_dir), slot))


def save_state(
    out_dir: Path, prefix: str, weights: dict, ema_weights: dict, train: dict[str, Any], meta: dict[str, Any]
) -> None:
    """Write a complete slot ``<prefix>.next``, then rotate it in (see the module docstring)."""
    newest, nxt, prev = slot_names(prefix)
    step = int(train["step"])
    save_weights(out_dir / f"{nxt}.ema.safetensors", ema_weights, header={"step": str(step)})
    with atomic_path(out_dir / f"{nxt}.train.pt") as tmp:
        torch.save(train, tmp)
    save_weights(out_dir / f"{nxt}.safetensors", weights, {**meta, "step": step})
    for src, dst in zip(_files(out_dir, newest), _files(out_dir, prev), strict=True):
        if src.exists():
            os.replace(src, dst)
    for src, dst in zip(reversed(_files(out_dir, nxt)), reversed(_files(out_dir, newest)), strict=True):
        os.replace(src, dst)


@dataclass
class LoadedState:
    path: Path  # the slot's weights file
    step: int
    weights: dict[str, torch.Tensor]
    ema_weights: dict[str, torch.Tensor]
    train: dict[str, Any]
    problems: list[str]  # newer slots that could not be used, and why


def _header_step(path: Path) -> int | None:
    with safe_open(str(path), framework="pt") as f:
        step = (f.metadata() or {}).get("step")
    return int(step) if step is not None else None  # older checkpoints carry no step here


def _load_slot(out_dir: Path, slot: str, meta: dict[str, Any]) -> LoadedState:
    weights_path = out_dir / f"{slot}.safetensors"
    step = int(meta.get("step", -1))
    weights = read_weights(weights_path)
    ema_path = out_dir / f"{slot}.ema.safetensors"
    ema_weights = read_weights(ema_path)
    train_path = out_dir / f"{slot}.train.pt"
    if not train_path.is_file():
        raise CheckpointError(f"{train_path}: missing; the optimiser state of {weights_path.name} was not written")
    try:
        train = torch.load(train_path, weights_only=True)
    except Exception as e:  # pickle/zip errors of a truncated file come in many types
        raise CheckpointError(f"{train_path}: cannot read the optimiser state ({e}); the file is corrupt or truncated") from e
    steps = {"weights": step, "optimiser": int(train.get("step", -1)), "ema": _header_step(ema_path)}
    if len({s for s in steps.values() if s is not None}) != 1:
        raise CheckpointError(f"{weights_path}: its files are from different steps {steps} (a save was interrupted)")
    return LoadedState(weights_path, step, weights, ema_weights, train, [])


def _slots_newest_first(out_dir: Path, prefix: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(slot, JSON) of every slot whose JSON reads, newest step first; and why the other present slots' don't."""
    readable, problems = [], []
    for slot in slot_names(prefix):
        if not any(f.exists() for f in _files(out_dir, slot)):
            continue
        try:
            readable.append((slot, read_meta(out_dir / f"{slot}.safetensors")))
        except CheckpointError as e:
            problems.append(str(e))
    readable.sort(key=lambda slot_meta: int(slot_meta[1].get("step", -1)), reverse=True)
    return readable, problems


def load_state(out_dir: str | Path, prefix: str) -> LoadedState:
    """The newest complete, readable slot; CheckpointError listing every slot's problem when none is."""
    out_dir = Path(out_dir)
    readable, problems = _slots_newest_first(out_dir, prefix)
    for slot, meta in readable:
        try:
            state = _load_slot(out_dir, slot, meta)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        state.problems = problems
        return state
    raise CheckpointError(
        f"{out_dir / (prefix + '.safetensors')}: no usable checkpoint to resume from: " + " | ".join(problems)
        + ". Start again without --resume (or in a new --out-dir)"
    )


def newest_meta(out_dir: str | Path, prefix: str) -> dict[str, Any] | None:
    """The JSON of the newest slot whose JSON reads (for rebuilding the model before loading), or None."""
    readable, _ = _slots_newest_first(Path(out_dir), prefix)
    return readable[0][1] if readable else None
