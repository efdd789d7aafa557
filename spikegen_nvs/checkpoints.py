"""Safe nerfstudio checkpoints for the spikegen methods (used by :class:`spikegen_nvs.trainer.SpikeGenTrainer`).

nerfstudio 1.1.5 writes ``step-XXXXXXXXX.ckpt`` with a plain ``torch.save`` (a kill mid-write leaves a torn file),
keeps only the newest by default (nothing to fall back to), saves whatever the weights hold (NaN included), and
picks the checkpoint to resume from by parsing every name in the folder (one stray file breaks it). It also
leaves out run state that a resumed run needs to continue like an uninterrupted one: the global RNGs, the
datamanager's camera order, and the densification strategy's running statistics. With the helpers below:

- checkpoints are written to a temp file in the run folder (outside ``nerfstudio_models/``, whose names
  nerfstudio parses) and renamed into place;
- a checkpoint whose pipeline holds NaN/Inf is refused (``CheckpointError``), the previous ones stay;
- with ``save_only_latest_checkpoint`` (nerfstudio's default) the newest :data:`KEEP_LATEST` are kept;
- resuming (``--load-dir``) and ``ns-eval``/``ns-render`` (:func:`eval_load_newest_good`, applied by
  :func:`spikegen_nvs.compat.apply_nerfstudio_shims`) skip a corrupt or truncated newest checkpoint, say so,
  and use the previous good one;
- the checkpoint carries :data:`RUN_STATE_KEY` (RNG states, camera order, strategy statistics), restored on
  resume; older checkpoints without it still load.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikegen_core.errors import CheckpointError
from spikegen_core.utils import atomic_path

KEEP_LATEST = 2
"""Checkpoints kept when nerfstudio would keep only the latest: the newest plus one to fall back to."""
RUN_STATE_KEY = "spikegen_run_state"
CHECKPOINT_NAME = re.compile(r"^step-(\d{9})\.ckpt$")
_EVAL_FLAG = "__spikegen_newest_good__"
_REQUIRED_KEYS = ("step", "pipeline", "optimizers", "scalers")


def console_print(message: str) -> None:
    from nerfstudio.utils.rich_utils import CONSOLE

    CONSOLE.print(message)


def checkpoint_path(folder: Path, step: int) -> Path:
    """nerfstudio's name for the checkpoint of ``step``."""
    return Path(folder) / f"step-{step:09d}.ckpt"


def checkpoint_steps(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoints in ``folder``, oldest first; other names (temp files, notes) ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / m.group(0)) for m in map(CHECKPOINT_NAME.match, os.listdir(folder)) if m]
    return sorted(found)


def non_finite_tensors(state: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state dict that hold NaN or Inf."""
    bad: list[str] = []
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad.append(name)
        elif isinstance(value, Mapping):
            bad += non_finite_tensors(value, f"{name}.")
    return bad


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a nerfstudio checkpoint; ``CheckpointError`` names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist. Check --load-dir / --load-step / --load-checkpoint")
    try:
        # Full pickle: nerfstudio checkpoints hold optimizer/scheduler state (a file the user trained).
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - whatever torch/zip/pickle raise, the file cannot be used
        raise CheckpointError(
            f"{path}: checkpoint is corrupt or truncated ({type(err).__name__}: {err}). "
            "Delete it to resume from the previous checkpoint, or train from scratch"
        ) from err
    missing = [k for k in _REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a nerfstudio checkpoint (missing {missing}). Point at a step-*.ckpt file")
    bad = non_finite_tensors(state["pipeline"])
    if bad:
        raise CheckpointError(f"{path}: checkpoint weights hold NaN/Inf in {bad[:5]}. Resume from an earlier step")
    return state


def newest_good_checkpoint(folder: Path, report: Callable[[str], None] = console_print) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint in ``folder`` that loads and checks, with its state; bad newer ones are reported."""
    problems: list[str] = []
    for _, path in reversed(checkpoint_steps(folder)):
        try:
            state = read_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err))
            report(f"[yellow]Skipping {path.name}: {err}")
            continue
        if problems:
            report(f"[yellow]Resuming from the previous good checkpoint {path}")
        return path, state
    detail = "; ".join(problems) if problems else "it holds no step-XXXXXXXXX.ckpt file"
    raise CheckpointError(
        f"{folder}: no usable checkpoint ({detail}). Point --load-dir at a nerfstudio_models folder of a run "
        "that saved at least once, or omit it to train from scratch"
    )


def write_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically; refuse (``CheckpointError``) when its pipeline weights hold NaN/Inf."""
    bad = non_finite_tensors(state["pipeline"])
    if bad:
        raise CheckpointError(
            f"{path}: refusing to save step {state['step']}: weights hold NaN/Inf in {bad[:5]}. The previous "
            "checkpoints are kept; resume from them with --load-dir and a lower learning rate"
        )
    # The temp file lives beside the folder, not in it: nerfstudio's loaders parse every name there as step-N.
    # atomic_path also gives the file the umask's mode (a bare mkstemp file would stay 0600).
    with atomic_path(path, temp_dir=Path(path).parent.parent) as tmp:
        torch.save(state, tmp)


def prune_checkpoints(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints in ``folder``; returns the deleted paths."""
    old = [path for _, path in checkpoint_steps(folder)][:-keep] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)
    return old


# -- run state nerfstudio does not save -----------------------------------------------------------------
def unwrap_pipeline(pipeline: Any) -> Any:
    return getattr(pipeline, "module", pipeline)  # DDP wraps the pipeline


def capture_run_state(trainer: Any) -> dict[str, Any]:
    """RNG states, the datamanager's camera order and the strategy's statistics, as plain CPU objects."""
    pipeline = unwrap_pipeline(trainer.pipeline)
    dm, model = pipeline.datamanager, pipeline.model
    state: dict[str, Any] = {
        "python_random": random.getstate(),
        "numpy_random": np.random.get_state(),
        "torch_random": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda_random"] = torch.cuda.get_rng_state_all()
    for name in ("train_unseen_cameras", "eval_unseen_cameras"):
        if isinstance(getattr(dm, name, None), list):
            state[name] = list(getattr(dm, name))
    if isinstance(getattr(dm, "random_generator", None), random.Random):
        state["camera_sampler"] = dm.random_generator.getstate()
    strategy = getattr(model, "strategy_state", None)
    if isinstance(strategy, dict):
        state["strategy_state"] = {
            k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in strategy.items()
        }
    return state


def restore_run_state(trainer: Any, state: Mapping[str, Any] | None) -> None:
    """Put back what :func:`capture_run_state` saved (a checkpoint without it resumes as nerfstudio does)."""
    if not state:
        return
    pipeline = unwrap_pipeline(trainer.pipeline)
    dm, model = pipeline.datamanager, pipeline.model
    random.setstate(state["python_random"])
    np.random.set_state(state["numpy_random"])
    torch.set_rng_state(state["torch_random"])
    if "cuda_random" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_random"])
    for name in ("train_unseen_cameras", "eval_unseen_cameras"):
        if name in state and hasattr(dm, name):
            setattr(dm, name, list(state[name]))
    if "camera_sampler" in state and isinstance(getattr(dm, "random_generator", None), random.Random):
        dm.random_generator.setstate(state["camera_sampler"])
    if "strategy_state" in state and isinstance(getattr(model, "strategy_state", None), dict):
        device = next(model.parameters()).device
        model.strategy_state.update(
            {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state["strategy_state"].items()}
        )


# -- ns-eval / ns-render ------------------------------------------------------------------------------
def eval_load_newest_good(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap nerfstudio's ``eval_load_checkpoint`` so that ``--load-dir`` without a step skips a corrupt newest
    checkpoint (nerfstudio's eval loader is a module function: there is no class to subclass)."""
    if getattr(original, _EVAL_FLAG, False):
        return original

    @functools.wraps(original)
    def eval_load_checkpoint(config: Any, pipeline: Any) -> Any:
        if config.load_dir is not None and config.load_step is None:
            path, _ = newest_good_checkpoint(Path(config.load_dir))
            config = dataclasses.replace(config, load_step=int(CHECKPOINT_NAME.match(path.name).group(1)))
        return original(config, pipeline)

    setattr(eval_load_checkpoint, _EVAL_FLAG, True)
    return eval_load_checkpoint
