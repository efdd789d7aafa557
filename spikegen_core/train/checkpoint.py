"""Checkpoints: safetensors weights + a JSON config beside them, written atomically, loaded strictly.

Layout of a training folder::

    model.safetensors / model.json        EMA weights + ModelConfig (what restore/eval/finetune load)
    last.safetensors / last.json          live weights of the newest step
    last.ema.safetensors                  EMA weights of the newest step
    last.train.pt                         optimiser, LR schedule, step, RNG (for --resume)
    last.prev.*                           the checkpoint before (used when last.* is corrupt; training_state.py)

A tensor that is not finite is never written: saving raises CheckpointError instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spikegen_core.errors import CheckpointError
from spikegen_core.models.spikegen import ModelConfig, SpikeGen
from spikegen_core.models.temporal import WindowCNN
from spikegen_core.utils import atomic_path, atomic_write

FORMAT = "spikegen-checkpoint"
VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "spikegen_tiny.safetensors"
SHIPPED_NAMES = {
    "tiny": SHIPPED,
    "natural": SHIPPED.with_name("spikegen_natural.safetensors"),
    "fast": SHIPPED.with_name("spikegen_fast.safetensors"),  # the one-pass fast model (a WindowCNN)
}
"""Checkpoints inside the package, by the name a user may pass instead of a path (model cards beside them)."""


def checkpoint_path(path: str | Path) -> Path:
    """A shipped checkpoint's name (``"tiny"``, ``"natural"``, ``"fast"``) → its file; anything else is a path."""
    return SHIPPED_NAMES.get(str(path), Path(path))


def config_path(weights: str | Path) -> Path:
    """``x.safetensors`` → ``x.json``."""
    return Path(weights).with_suffix(".json")


def _check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(
            f"{path}: refusing to write non-finite weights ({', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}); "
            "lower the learning rate or enable --nonfinite skip"
        )


def save_weights(
    path: str | Path,
    state: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
    header: dict[str, str] | None = None,
) -> Path:
    """Write ``state`` as safetensors (optionally cast, e.g. float16 for shipping) and ``meta`` as JSON beside;
    ``header`` adds string fields to the safetensors metadata."""
    path = Path(path)
    _check_finite(state, path)
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata={"format": FORMAT, "version": str(VERSION), **(header or {})})
    if meta is not None:
        with atomic_write(config_path(path), "w") as f:
            json.dump({"format": FORMAT, "version": VERSION, **meta}, f, indent=2, default=str)
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON beside a checkpoint."""
    cfg = config_path(path)
    if not cfg.is_file():
        raise CheckpointError(f"{path}: no config {cfg.name} beside the weights; copy it along with the weights")
    try:
        meta = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg}: not valid JSON ({e}); restore the file from the training folder") from e
    if meta.get("format") != FORMAT or "model" not in meta:
        raise CheckpointError(f"{cfg}: not a SpikeGen checkpoint config (format/model fields missing)")
    return meta


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors checkpoint, all finite; CheckpointError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint not found; pass a checkpoint file, a training folder or a shipped name "
            f"({', '.join(SHIPPED_NAMES)}), or train one with `spikegen pretrain`"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({e}); the file is corrupt or truncated") from e
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # else the model runs and the NaN surfaces as a bad output image, far from its cause
        raise CheckpointError(
            f"{path}: weights hold NaN/Inf in {', '.join(sorted(bad)[:5])}{' …' if len(bad) > 5 else ''}; the "
            "checkpoint is damaged or from a diverged run: use an earlier checkpoint or the shipped one"
        )
    return state


def _check_not_config(path: Path) -> None:
    """A checkpoint is the weights file; its ``.json`` config beside it is a common wrong pick."""
    is_json = path.suffix.lower() == ".json"
    if not is_json and path.stat().st_size < 1 << 20:  # a renamed config (a safetensors file is not JSON)
        try:
            json.loads(path.read_bytes())
            is_json = True
        except (ValueError, UnicodeDecodeError):
            pass
    if is_json:
        weights = path.with_suffix(".safetensors")
        raise CheckpointError(
            f"{path}: is the JSON config of a checkpoint, not its weights; pass the .safetensors file"
            + (f" beside it: {weights}" if weights.is_file() else "")
        )


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load with every key accounted for; CheckpointError names missing/unexpected/mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or extra or shapes:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" … (+{len(keys) - 6})" if len(keys) > 6 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if extra:
            parts.append(f"unexpected keys: {show(extra)}")
        if shapes:
            parts.append(f"shape mismatch: {show(sorted(shapes))}")
        raise CheckpointError(
            f"{path}: weights do not fit the model ({'; '.join(parts)}); "
            "check that the .json beside it belongs to these weights"
        )
    dtype_state = {k: v.to(own[k].dtype) for k, v in state.items()}
    module.load_state_dict(dtype_state, strict=True)


def _model_config(meta: dict[str, Any], where: str | Path) -> ModelConfig:
    """The SpikeGen config of a checkpoint's JSON; a fast-model (WindowCNN) checkpoint is named as such."""
    if "window_cnn" in meta["model"]:
        raise CheckpointError(f"{where}: a fast-model (WindowCNN) checkpoint, not a SpikeGen model; pass it with "
                              "--fast (restorer 'fast' / 'spikegen-fast'), or give a SpikeGen checkpoint")  # fmt: skip
    return ModelConfig.from_dict(meta["model"])


def _checkpoint_file(path: str | Path | None, default: Path, fix: str, kind: str = "checkpoint") -> Path:
    """The weights file a user named (a path or a shipped name; None: ``default``), checked to exist and not to be
    the JSON config beside it; CheckpointError names it with ``fix``."""
    where = checkpoint_path(path) if path is not None else default
    if not where.is_file():
        raise CheckpointError(f"{where}: {kind} not found; {fix}")
    _check_not_config(where)
    return where


def _training_slot(folder: str | Path, prefix: str, ema: bool) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
    """(path, JSON with its ``step``, EMA or live weights) of a training folder's newest complete checkpoint slot."""
    from spikegen_core.train.training_state import load_state  # imports this module

    state = load_state(folder, prefix)
    return state.path, {**read_meta(state.path), "step": state.step}, state.ema_weights if ema else state.weights


def load_training_ema(folder: str | Path, prefix: str = "last", *, ema: bool = True) -> tuple[SpikeGen, dict]:
    """The EMA weights (``ema=False``: the live ones) of the newest complete checkpoint slot of a training folder
    (a run still in progress included); the returned JSON has its ``step`` and ``cpu_s`` (CPU seconds so far)."""
    where, meta, weights = _training_slot(folder, prefix, ema)
    cfg = _model_config(meta, where)
    cfg.vae.folder = None
    model = SpikeGen(cfg)
    load_state_strict(model, weights, where)
    return model.eval(), {**meta, "weights": "ema" if ema else "live"}


def load_model(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> tuple[SpikeGen, dict]:
    """Build the model from ``<path>.json`` and load ``path`` (default: the shipped tiny checkpoint).
    A training folder (holding ``last.*``) loads the EMA weights of its newest checkpoint."""
    if path is not None and Path(path).is_dir():
        model, meta = load_training_ema(path)
        return model.to(device), meta
    path = _checkpoint_file(path, SHIPPED, f"pass a checkpoint file, a training folder or a shipped name "
                            f"({', '.join(SHIPPED_NAMES)}), or train one with `spikegen pretrain`")  # fmt: skip
    meta = read_meta(path)
    cfg = _model_config(meta, path)
    cfg.vae.folder = None  # the VAE's weights are inside the checkpoint; the folder need not exist any more
    model = SpikeGen(cfg)
    load_state_strict(model, read_weights(path), path)
    return model.to(device).eval(), meta


def load_fast_model(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> tuple[WindowCNN, dict]:
    """The one-pass fast model (``--fast``): a WindowCNN checkpoint, whose JSON names ``{"model": {"window_cnn":
    {"frames", "width", "blocks"}}}`` (default: the shipped ``fast``; a training folder of
    ``scripts/bench/bench_core_sidebyside.py train`` gives its newest EMA). A SpikeGen checkpoint is refused: the
    WindowCNN inside one is trained with the rest of the model, as an input to its refiner, not to stand alone."""
    if path is not None and Path(path).is_dir():
        where, meta, weights = _training_slot(path, "last", ema=True)
    else:
        where = _checkpoint_file(path, SHIPPED_NAMES["fast"], "pass a WindowCNN checkpoint file or training folder, "
                                 "or omit --checkpoint for the shipped `fast` one", kind="fast-model checkpoint")  # fmt: skip
        meta, weights = read_meta(where), read_weights(where)
    spec = meta["model"].get("window_cnn")
    if not isinstance(spec, dict):
        raise CheckpointError(
            f"{where}: a SpikeGen checkpoint, not a fast model (WindowCNN); --fast takes the shipped `fast` (its "
            "default) or a checkpoint of scripts/bench/bench_core_sidebyside.py train; drop --fast to run this model"
        )
    net = WindowCNN(int(spec["frames"]), int(spec["width"]), int(spec["blocks"]))
    load_state_strict(net, weights, where)
    return net.to(device).eval(), meta
