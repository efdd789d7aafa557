"""README figures (matplotlib PNGs in docs/figures/, each under 300 kB): crops per task, PSNR vs spike frames,
real recordings TFP vs ours, and training curves when a training log is at hand.

    python scripts/figures/figures.py                    # all figures (uses benchmarks/core.json for the curves)
    python scripts/figures/figures.py --only frames      # one figure: crops_reds, crops_deblur, frames, real, training
    python scripts/figures/figures.py --checkpoint none  # training-free "ours" (motion-adaptive TFP) where it applies

"Ours" is the SpikeGen model (default: the shipped checkpoint). Without a checkpoint the crops show TFI in its
place and the real recordings the motion-adaptive TFP, and the panels say so. Novel-view figures come from
``scripts/bench/bench_nvs.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_core import (  # noqa: E402
    DEFAULT_DATA,
    HELD_OUT_SEED,
    KEY_FRAME,
    METHODS,
    MODEL,
    MODEL_DEBLUR,
    SHIPPED,
    TFI,
    TFP,
    Scorer,
    central,
    load_checkpoint,
    load_reds,
)
from bench_real import RECORDINGS, centres_for, fit_threshold, load_recording, restore_methods  # noqa: E402

from spikegen_core.metrics import psnr  # noqa: E402
from spikegen_core.spikes.camera import to_grey  # noqa: E402
from spikegen_core.train.evaluate import held_out_deblur_set  # noqa: E402
from spikegen_core.utils import atomic_write  # noqa: E402

FIGURES = REPO / "docs" / "figures"
MAX_BYTES = 300_000
FIGURE_NAMES = ("crops_reds", "crops_deblur", "frames", "real", "training")


def save_small(fig: plt.Figure, path: Path, dpi: int = 110, max_bytes: int = MAX_BYTES) -> int:
    """Save as PNG at the highest of a few resolutions that stays under ``max_bytes``; returns the size."""
    for d in (dpi, int(dpi * 0.8), int(dpi * 0.65), int(dpi * 0.5), int(dpi * 0.4)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=d, bbox_inches="tight")
        if buf.tell() <= max_bytes:
            break
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ({buf.tell() / 1024:.0f} kB)")
    return buf.tell()


def as_display(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """(H, W) grey or (3, H, W) RGB → an array imshow takes, clipped to [0, 1]."""
    a = img.detach().float().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float32)
    if a.ndim == 3:
        a = a.transpose(1, 2, 0)
    return np.clip(a, 0, 1)


def image_grid(rows: list[list[tuple[str, Any]]], row_labels: list[str], title: str, scale: float = 1.9) -> plt.Figure:
    """A grid of images; each cell is ``(caption, image)``; grey images use a grey colour map."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(scale * n_cols, scale * n_rows + 0.4), squeeze=False,
                             gridspec_kw={"wspace": 0.03, "hspace": 0.18})
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row):
                ax.axis("off")
                continue
            caption, img = row[c]
            a = as_display(img)
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(caption, fontsize=7)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=7)
    fig.suptitle(textwrap.fill(title, 16 * n_cols), fontsize=8)  # wrapped to the grid's width
    return fig


def textured_box(gt: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``² crop of ``gt`` (H, W) with the most gradient energy (a telling crop)."""
    gy, gx = torch.gradient(gt)
    energy = torch.nn.functional.avg_pool2d((gx**2 + gy**2)[None, None], size, stride=size // 2)[0, 0]
    i = int(energy.argmax())
    return (i // energy.shape[1]) * (size // 2), (i % energy.shape[1]) * (size // 2)


def fig_crops_reds(args: argparse.Namespace, model: Any, scorer: Scorer) -> None:
    samples = load_reds(args.data / "spike" / "reds_synthetic", None)
    if not samples:
        print("skipped crops_reds: no REDS samples under --data")
        return
    rows, labels = [], []
    for s in samples:
        y, x = textured_box(s.gt, args.crop)
        spikes = central(s.spikes, 41, KEY_FRAME)[:, y : y + args.crop, x : x + args.crop]
        gt = s.gt[y : y + args.crop, x : x + args.crop]
        preds = scorer.predictions(spikes, s.theta, None)
        cols = [(TFP, preds[TFP]), (TFI, preds[TFI])]
        if MODEL in preds:
            cols.append((MODEL, preds[MODEL]))
        cols = [(f"{m}  {float(psnr(p.clamp(0, 1), gt)):.2f} dB", p) for m, p in cols] + [("ground truth", gt)]
        rows.append(cols)
        labels.append(f"{s.name.split('_key')[0]}\n({args.crop}² crop at {y},{x})")
    note = "" if model is not None else " — no checkpoint: model column absent"
    save_small(image_grid(rows, labels, f"REDS reconstruction, 41 spike frames (PSNR on the crop){note}"),
               args.out / "core_crops_reds.png")


def luma_caption(name: str, img: torch.Tensor, grey: torch.Tensor) -> str:
    """``name  PSNR dB`` of ``img`` (grey or RGB) against the grey target."""
    g = to_grey(img.clamp(0, 1)) if img.ndim == 3 else img.clamp(0, 1)
    return f"{name}  {float(psnr(g, grey)):.2f} dB"


def fig_crops_deblur(args: argparse.Namespace, model: Any, scorer: Scorer) -> None:
    pairs = held_out_deblur_set(args.pool, 64, 32, 2.0, 4.0, seed=HELD_OUT_SEED)  # bench_core's deblurring set
    # the most blurred exposures of the pool; the title says so
    blur = [float(psnr(pairs[i]["blurred"], pairs[i]["sharp"])) for i in range(len(pairs))]
    rows, labels = [], []
    for i in sorted(np.argsort(blur)[: args.samples].tolist()):
        item = pairs[i]
        preds = scorer.predictions(item["spikes"], 2.0, item["blurred"])
        ours = (MODEL_DEBLUR, preds[MODEL_DEBLUR]) if MODEL_DEBLUR in preds else (TFI, preds[TFI])
        grey = to_grey(item["sharp"])
        rows.append([(luma_caption("blurred RGB", item["blurred"], grey), item["blurred"]),
                     (luma_caption(TFP, preds[TFP], grey), preds[TFP]), (luma_caption(*ours, grey), ours[1]),
                     ("ground truth", item["sharp"])])
        labels.append(f"held-out #{i}")
    note = "" if model is not None else " — no checkpoint: TFI in place of the model"
    title = (f"Deblurring: the {args.samples} most blurred of {args.pool} held-out synthetic 64² exposures, "
             f"32 spike frames (PSNR on luma){note}")
    save_small(image_grid(rows, labels, title), args.out / "core_crops_deblur.png")


def fig_frames(args: argparse.Namespace) -> None:
    path = args.benchmarks / "core.json"
    if not path.is_file():
        print(f"skipped frames: {path} missing; run scripts/bench/bench_core.py first")
        return
    data = json.loads(path.read_text())
    panels = [(k, t) for k, t in (("reds", "REDS samples (grey)"), ("synthetic", "held-out synthetic (luma)"))
              if data.get(k)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        frames = data[key]["frames"]
        ns = sorted(frames, key=int)
        for colour, method in enumerate(METHODS):  # one colour per method in both panels
            pts = [(int(n), frames[n][method]["psnr"]) for n in ns if method in frames[n]]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=method, color=f"C{colour}")
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(n) for n in ns], [str(n) for n in ns])
        ax.set_xlabel("spike frames")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Quality vs number of spike frames (benchmarks/core.json, commit {data.get('commit', '?')[:8]})",
                 fontsize=9, y=1.02)
    save_small(fig, args.out / "core_psnr_vs_frames.png")


def fig_real(args: argparse.Namespace, model: Any) -> None:
    rows, labels = [], []
    for rec in RECORDINGS:
        if not (args.data / "spike" / "real" / rec.file).is_file():
            continue
        spikes = load_recording(args.data, rec)
        theta = fit_threshold(spikes, 0.95)
        c = centres_for(spikes.shape[0], rec.long, 1)[0]
        images = restore_methods(central(spikes, rec.long, c), theta, 41, model)
        ours = "SpikeGen 41" if "SpikeGen 41" in images else "motion-adaptive TFP"
        rows.append([(m, images[m]) for m in ("TFP 41", ours, "long-window TFP")])
        labels.append(f"{Path(rec.file).stem}\nframe {c}, θ={theta:.2f}")
    if rows:
        save_small(image_grid(rows, labels, "Real recordings: TFP vs ours (whole frames, no ground truth)", 2.6),
                   args.out / "real_tfp_vs_ours.png")


LOG_LINE = re.compile(r"^\[(?P<stage>[\w-]+)\] step (?P<step>\d+) loss=(?P<loss>[\d.eE+-]+)")


def read_train_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``[stage] step N loss=...`` lines (spikegen_core.train's log) → stage → [(step, loss)]."""
    out: dict[str, list[tuple[int, float]]] = {}
    for line in path.read_text().splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.setdefault(m["stage"], []).append((int(m["step"]), float(m["loss"])))
    return out


def fig_training(args: argparse.Namespace, meta: dict[str, Any] | None) -> None:
    logs = list(args.train_log or [])
    work = ((meta or {}).get("made_by") or {}).get("recipe", {}).get("work_dir")
    if not logs and work:
        logs = [p for p in (Path(work) / "train.log", Path(work) / "finetune" / "train.log") if p.is_file()]
    curves: dict[str, list[tuple[int, float]]] = {}
    for p in logs:
        for stage, pts in read_train_log(Path(p)).items():
            curves.setdefault(stage, []).extend(pts)
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    if not curves:
        print("skipped training: no training log with two or more logged steps (pass --train-log)")
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(3.4 * len(curves), 2.8), squeeze=False)
    for ax, (stage, pts) in zip(axes[0], curves.items(), strict=True):
        steps, losses = zip(*sorted(pts), strict=True)
        ax.plot(steps, losses)
        ax.set_yscale("log")
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("training loss")
    fig.suptitle("Training curves of the checkpoint", fontsize=9, y=1.03)
    save_small(fig, args.out / "core_training_curves.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--checkpoint", default=None, help="model checkpoint; default: the shipped one; 'none': no model")
    p.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    p.add_argument("--out", type=Path, default=FIGURES)
    p.add_argument("--only", nargs="+", choices=FIGURE_NAMES, default=list(FIGURE_NAMES))
    p.add_argument("--crop", type=int, default=96, help="REDS crop size (pixels)")
    p.add_argument("--samples", type=int, default=3, help="held-out deblurring examples shown")
    p.add_argument("--pool", type=int, default=12, help="held-out exposures the examples are picked from")
    p.add_argument("--train-log", type=Path, nargs="*", help="train.log files (default: the checkpoint's)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    meta = None
    if model is not None:
        from spikegen_core.train.checkpoint import read_meta

        meta = read_meta(Path(args.checkpoint) if args.checkpoint else SHIPPED)
    scorer = Scorer(model, 64, {})
    if "crops_reds" in args.only:
        fig_crops_reds(args, model, scorer)
    if "crops_deblur" in args.only:
        fig_crops_deblur(args, model, scorer)
    if "frames" in args.only:
        fig_frames(args)
    if "real" in args.only:
        fig_real(args, model)
    if "training" in args.only:
        fig_training(args, meta)


if __name__ == "__main__":
    main()
