"""Shims for nerfstudio 1.1.5 traps, applied from our code so site-packages stays untouched.

Everything that changes a nerfstudio function at run time is in :func:`apply_nerfstudio_shims`, and only where
no subclass can do it (checkpoint saving and resuming are :class:`spikegen_nvs.trainer.SpikeGenTrainer`'s):

- ``torch.load`` defaults to ``weights_only=True`` on torch >= 2.6; nerfstudio's checkpoints hold plain
  Python objects (optimizer/scheduler state), so ``ns-eval``/``ns-render``/``ns-viewer``/``ns-export`` and
  resume fail with "Weights only load failed". The shim wraps exactly the two nerfstudio functions that load
  checkpoints (the module function ``eval_utils.eval_load_checkpoint`` and, for nerfstudio's own methods on
  our scenes, ``Trainer._load_checkpoint``) so that only *their* ``torch.load`` calls pass
  ``weights_only=False`` (a nerfstudio checkpoint is a file the user trained; torch's default stays as it is
  elsewhere). ``eval_load_checkpoint`` also skips a corrupt newest checkpoint
  (:func:`spikegen_nvs.checkpoints.eval_load_newest_good`).
- LPIPS (torchmetrics) downloads AlexNet weights on construction: :func:`lpips_weights_available` tells
  whether they are already on disk, so the model can build LPIPS only then (and say so once otherwise).
- ``absgrad`` and gsplat's CUDA-only paths: :func:`cuda_usable` is the one switch our code consults.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

_F = TypeVar("_F", bound=Callable[..., Any])
_SHIM_FLAG = "__spikegen_weights_only_shim__"
_lpips_notice_given = False


def cuda_usable(device: torch.device | str | None = None) -> bool:
    """True when ``device`` (or, when None, this machine) can run gsplat's CUDA kernels."""
    if device is not None:
        return torch.device(device).type == "cuda"
    return torch.cuda.is_available()


@contextlib.contextmanager
def _torch_load_full_pickle() -> Iterator[None]:
    """Within the block, ``torch.load`` without an explicit ``weights_only`` loads full pickles."""
    original = torch.load

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original  # type: ignore[assignment]


def _with_full_pickle(fn: _F) -> _F:
    if getattr(fn, _SHIM_FLAG, False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _torch_load_full_pickle():
            return fn(*args, **kwargs)

    setattr(wrapper, _SHIM_FLAG, True)
    return wrapper  # type: ignore[return-value]


def apply_nerfstudio_shims() -> None:
    """Make nerfstudio's checkpoint loaders work on torch >= 2.6 (and ``ns-eval`` skip a corrupt newest one).

    Idempotent; called when a pipeline is built (our dataparser and model), which is always before nerfstudio
    loads a checkpoint. It patches ``nerfstudio.utils.eval_utils.eval_load_checkpoint`` (used by
    ``eval_setup``) and ``Trainer._load_checkpoint`` only when their modules are loaded; it never imports them
    (importing eval_utils pulls in every method config, tens of seconds on a slow CPU).
    """
    from spikegen_nvs.checkpoints import eval_load_newest_good

    eval_utils = sys.modules.get("nerfstudio.utils.eval_utils")
    if eval_utils is not None and hasattr(eval_utils, "eval_load_checkpoint"):
        loader = eval_load_newest_good(eval_utils.eval_load_checkpoint)
        eval_utils.eval_load_checkpoint = _with_full_pickle(loader)
    trainer = sys.modules.get("nerfstudio.engine.trainer")
    if trainer is not None and hasattr(trainer, "Trainer"):
        trainer.Trainer._load_checkpoint = _with_full_pickle(trainer.Trainer._load_checkpoint)  # type: ignore[method-assign]


def lpips_weights_path() -> Path:
    """Where torchvision keeps the AlexNet weights that torchmetrics' LPIPS needs."""
    from torchvision.models import AlexNet_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(AlexNet_Weights.IMAGENET1K_V1.url).name


def lpips_weights_available() -> bool:
    """True when LPIPS can be built without a download; says once (per process) when it cannot."""
    global _lpips_notice_given
    path = lpips_weights_path()
    if path.is_file():
        return True
    if not _lpips_notice_given:
        _lpips_notice_given = True
        from nerfstudio.utils.rich_utils import CONSOLE

        CONSOLE.print(
            f"[yellow]LPIPS skipped: AlexNet weights not found at {path} (nothing is downloaded at run time). "
            "Copy alexnet-owt-7be5be79.pth there to get LPIPS in ns-eval."
        )
    return False
