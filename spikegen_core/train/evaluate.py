"""``spikegen eval``: PSNR/SSIM of the model against TFP and TFI (and the blurred input for deblurring).

Two kinds of data:

- the REDS spike benchmark layout (``spike/<name>.dat`` + ``gt/<name>.png``, 250×400): the field's protocol,
  a 41-frame window centred on the key frame, grey target 0.11·B + 0.59·G + 0.30·R;
- a pair folder (``index.json`` + ``sharp/ blurred/ spikes/``, ``spikegen_core.data.pairs``), e.g. the held-out
  deblurring set of :func:`make_held_out_pairs`, whose seed training never draws.

The REDS spikes come from another simulator whose θ is not recorded. By default the data set's constant
(``spikegen_core.data.reds.REDS_THRESHOLD``, calibrated once from the training recordings) is used for every
method and image; a number uses that θ as is; ``threshold="calibrate"`` fits one gain per recording (θ = mean(GT)
/ mean spike rate: an oracle, kept only to compare with older tables). The table says which θ was used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from spikegen_core.data.motion import random_motion
from spikegen_core.data.pairs import PairFolder, make_motion_sample, make_pairs
from spikegen_core.data.reds import REDS_THRESHOLD
from spikegen_core.data.textures import random_texture
from spikegen_core.errors import InputMismatchError
from spikegen_core.image import load_image, rgb_to_grey
from spikegen_core.metrics import psnr, ssim
from spikegen_core.models.spikegen import SpikeGen
from spikegen_core.models.temporal import WindowCNN
from spikegen_core.spikes.camera import to_grey
from spikegen_core.spikes.io import read_dat
from spikegen_core.spikes.reconstruct import tfi, tfp
from spikegen_core.train.checkpoint import load_fast_model, load_model
from spikegen_core.train.restore import DEFAULT_WINDOW, restore_tensors
from spikegen_core.utils import atomic_write

HELD_OUT_SEED = 987_654  # never used by training (training seeds are cfg.seed * 1000 + small offsets)


@dataclass
class Row:
    sample: str
    method: str
    psnr: float
    ssim: float
    note: str = ""


def _score(sample: str, method: str, pred: torch.Tensor, target: torch.Tensor, note: str = "") -> Row:
    pred = pred.clamp(0, 1)
    return Row(sample, method, float(psnr(pred, target)), float(ssim(pred, target)), note)


def reds_samples(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, .dat, gt .png) of every recording with both files."""
    root = Path(root)
    out = []
    for dat in sorted((root / "spike").glob("*.dat")):
        gt = root / "gt" / f"{dat.stem}.png"
        if gt.is_file():
            out.append((dat.stem, dat, gt))
    if not out:
        raise InputMismatchError(f"{root}: no spike/<name>.dat with a matching gt/<name>.png; is this the REDS folder?")
    return out


def evaluate_reds(
    model: SpikeGen | WindowCNN,
    root: str | Path,
    *,
    window: int = DEFAULT_WINDOW,
    threshold: float | str | None = None,
    tile: int | None = 64,
    **sample_kw: Any,
) -> list[Row]:
    """Dense reconstruction on the REDS samples: model vs TFP vs TFI (grey, 41-frame window at the key frame)."""
    rows = []
    samples = reds_samples(root)
    for name, dat, gt_path in track(samples, description="REDS samples", transient=True):
        gt_img = load_image(gt_path, mode="keep")
        gt = gt_img if gt_img.ndim == 2 else rgb_to_grey(gt_img, "reds")
        h, w = gt.shape
        stream = read_dat(dat, h, w)
        spikes = stream.window(stream.num_frames // 2, window).spikes
        if threshold == "calibrate":
            theta = float(gt.mean() / spikes.float().mean().clamp_min(1e-6))
            note = f"θ={theta:.3f} (calibrated per recording: GT mean / spike rate, an oracle)"
        elif threshold is None:
            theta = REDS_THRESHOLD
            note = f"θ={theta:.3f} (REDS data-set constant)"
        else:
            theta = float(threshold)
            note = f"θ={theta:.3f}"
        pred = restore_tensors(model, spikes, None, threshold=theta, tile=tile, **sample_kw)[0]
        rows.append(_score(name, "model", pred, gt, note))
        rows.append(_score(name, "TFP", tfp(spikes, threshold=theta), gt, note))
        rows.append(_score(name, "TFI", tfi(spikes, threshold=theta), gt, note))
    return rows


def held_out_deblur_set(
    count: int = 32, size: int = 64, num_frames: int = 32, threshold: float = 2.0, motion_scale: float = 4.0,
    seed: int = HELD_OUT_SEED,
) -> list[dict[str, torch.Tensor]]:
    """The held-out synthetic deblurring set, made in memory from a seed training never draws.

    Every sample is blurred (no still camera) and shows edges (``shapes``/``mixture`` textures): on smooth
    textures or a still camera the blurred input is already sharp and a deblurring score says nothing.
    ``motion_scale=4`` means paths of up to ~60 % of the frame over the exposure.
    """
    out = []
    for i in range(count):
        # one generator per exposure: the same scenes and motion whatever ``num_frames`` is
        g = torch.Generator().manual_seed(seed * 10_007 + i)
        canvas = random_texture(2 * size, generator=g, kind=("shapes", "mixture")[i % 2])
        motion = random_motion(g, size, motion_scale, allow_still=False)
        s = make_motion_sample(canvas, size=size, num_spike_frames=num_frames, threshold=threshold, motion=motion,
                               generator=g)
        out.append({"name": f"heldout_{i:03d}", "sharp": s.sharp, "blurred": s.blurred, "spikes": s.spikes,
                    "threshold": float(threshold)})
    return out


def held_out_natural_set(
    count: int = 16, size: int = 64, num_frames: int = 41, threshold: float = 2.0, motion_scale: float = 1.5,
    seed: int = HELD_OUT_SEED, shared: str | Path | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Held-out synthetic deblurring on natural-photo content: random crops of photographs training never sees
    (scikit-image's ``coffee`` and the two REDS ground truths that have spikes, when the shared folder is there),
    a camera that always moves, spikes from the same camera model as training."""
    from spikegen_core.data.natural import HELD_OUT_PHOTOS, photo, shared_data_dir

    photos = [photo(n) for n in HELD_OUT_PHOTOS]
    root = (Path(shared) if shared else shared_data_dir()) / "spike" / "reds_synthetic"
    if (root / "spike").is_dir():
        photos += [load_image(gt) for _, _, gt in reds_samples(root)]
    out = []
    for i in range(count):
        g = torch.Generator().manual_seed(seed * 10_007 + 31 * i + 1)
        motion = random_motion(g, size, motion_scale, allow_still=False)
        s = make_motion_sample(photos[i % len(photos)], size=size, num_spike_frames=num_frames, threshold=threshold,
                               motion=motion, generator=g)  # fmt: skip
        out.append({"name": f"natural_{i:03d}", "sharp": s.sharp, "blurred": s.blurred, "spikes": s.spikes,
                    "threshold": float(threshold)})
    return out


def make_held_out_pairs(out_dir: str | Path, count: int = 32, size: int = 64, num_frames: int = 32,
                        threshold: float = 2.0, motion_scale: float = 1.0, seed: int = HELD_OUT_SEED) -> Path:
    """A synthetic pair folder (``data.pairs.make_pairs`` layout, default motion) with a seed training never draws."""
    make_pairs(out_dir, count, size=size, num_spike_frames=num_frames, seed=seed, threshold=threshold,
               motion_scale=motion_scale, overwrite=True, progress=False)
    return Path(out_dir)


def _pair_rows(model: SpikeGen | WindowCNN, name: str, sharp: torch.Tensor, blurred: torch.Tensor, spikes: torch.Tensor,
               theta: float, tile: int | None, **sample_kw: Any) -> list[Row]:
    target = to_grey(sharp)
    deblurred = restore_tensors(model, spikes, blurred, threshold=theta, mode="deblur", tile=tile, **sample_kw)
    recon = restore_tensors(model, spikes, None, threshold=theta, tile=tile, **sample_kw)[0]
    rows = [
        _score(name, "model deblur", to_grey(deblurred), target),
        _score(name, "model spikes-only", recon, target),
        _score(name, "blurred input", to_grey(blurred), target),
        _score(name, "TFP", tfp(spikes, threshold=theta), target),
        _score(name, "TFI", tfi(spikes, threshold=theta), target),
        _score(name, "model deblur (RGB)", deblurred, sharp),
        _score(name, "blurred input (RGB)", blurred, sharp),
    ]
    if not isinstance(model, WindowCNN):  # the fast model restores from spikes; the full model also from RGB alone
        rgb_only = restore_tensors(model, None, blurred, threshold=theta, mode="deblur", tile=tile, **sample_kw)
        rows += [_score(name, "model RGB-only", to_grey(rgb_only), target),
                 _score(name, "model RGB-only (RGB)", rgb_only, sharp)]  # fmt: skip
    return rows


def evaluate_held_out(model: SpikeGen | WindowCNN, *, count: int = 32, tile: int | None = 64, **sample_kw: Any) -> list[Row]:
    """Deblurring on :func:`held_out_deblur_set` (same rows as :func:`evaluate_pairs`)."""
    rows = []
    for s in track(held_out_deblur_set(count), description="held-out exposures", transient=True):
        rows += _pair_rows(model, s["name"], s["sharp"], s["blurred"], s["spikes"], s["threshold"], tile, **sample_kw)
    return rows


def evaluate_held_out_natural(
    model: SpikeGen | WindowCNN, *, count: int = 16, tile: int | None = 64, **sample_kw: Any
) -> list[Row]:
    """Deblurring on :func:`held_out_natural_set` (same rows as :func:`evaluate_pairs`)."""
    rows = []
    for s in held_out_natural_set(count):
        rows += _pair_rows(model, s["name"], s["sharp"], s["blurred"], s["spikes"], s["threshold"], tile, **sample_kw)
    return rows


def evaluate_pairs(model: SpikeGen | WindowCNN, folder: str | Path, *, tile: int | None = 64, **sample_kw: Any) -> list[Row]:
    """Deblurring on a pairs folder, scored on grey (luma) so RGB and spike-only methods compare alike;
    RGB PSNR of the model and the blurred input is added as its own rows."""
    pairs = PairFolder(folder, spike_dtype=torch.uint8)
    theta = float(pairs.settings.get("threshold", 2.0))
    rows = []
    for i in track(range(len(pairs)), description="pairs", transient=True):
        p = pairs[i]
        name = Path(pairs.pairs[i]["sharp"]).stem
        rows += _pair_rows(model, name, p["sharp"], p["blurred"], p["spikes"], theta, tile, **sample_kw)
    return rows


def summarise(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM per method (in first-seen order)."""
    out: dict[str, dict[str, float]] = {}
    for m in dict.fromkeys(r.method for r in rows):
        sel = [r for r in rows if r.method == m]
        out[m] = {"psnr": float(np.mean([r.psnr for r in sel])), "ssim": float(np.mean([r.ssim for r in sel])),
                  "n": len(sel)}
    return out


def print_table(rows: list[Row], title: str, console: Console | None = None) -> None:
    table = Table(title=title)
    for col in ("method", "PSNR (dB)", "SSIM", "samples"):
        table.add_column(col)
    for m, s in summarise(rows).items():
        table.add_row(m, f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", str(s["n"]))
    (console or Console()).print(table)


def evaluate(
    data: str | Path,
    checkpoint: str | Path | None = None,
    *,
    window: int = DEFAULT_WINDOW,
    threshold: float | str | None = None,
    tile: int | None = 64,
    out_json: str | Path | None = None,
    device: str = "cpu",
    show: bool = True,
    fast: bool = False,
    **sample_kw: Any,
) -> dict[str, Any]:
    """Evaluate on a REDS-layout folder, a pair folder, ``"held-out"`` (the built-in synthetic deblurring set
    on textures) or ``"held-out-natural"`` (the same on held-out photographs); prints a table, returns (and optionally writes) ``{"kind", "summary", "rows"}``.
    ``fast``: score the one-pass fast model (``checkpoint``: a fast-model checkpoint, default the shipped ``fast``)."""
    model, meta = load_fast_model(checkpoint, device=device) if fast else load_model(checkpoint, device=device)
    if str(data) == "held-out":
        kind, rows = "held-out", evaluate_held_out(model, tile=tile, **sample_kw)
    elif str(data) == "held-out-natural":
        kind, rows = "held-out-natural", evaluate_held_out_natural(model, tile=tile, **sample_kw)
    elif (data := Path(data)) and (data / "spike").is_dir() and (data / "gt").is_dir() and not (data / "index.json").is_file():
        kind, rows = "reds", evaluate_reds(model, data, window=window, threshold=threshold, tile=tile, **sample_kw)
    else:
        kind, rows = "pairs", evaluate_pairs(model, data, tile=tile, **sample_kw)
    result = {"kind": kind, "data": str(data), "checkpoint": str(checkpoint or ("fast" if fast else "shipped")),
              "step": meta.get("step"), "training_cpu_s": meta.get("cpu_s"),
              "summary": summarise(rows), "rows": [asdict(r) for r in rows]}
    if show:
        trained = f", step {meta['step']}" if meta.get("step") is not None else ""
        trained += f", {meta['cpu_s'] / 3600:.2f} CPU-h of its stage" if meta.get("cpu_s") else ""
        print_table(rows, f"{kind}: {data} ({checkpoint or 'shipped'}{trained})")
    if out_json is not None:
        with atomic_write(out_json, "w") as f:
            json.dump(result, f, indent=2)
    return result
