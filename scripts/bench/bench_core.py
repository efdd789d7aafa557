"""Core reconstruction and deblurring quality: the SpikeGen model vs TFP, TFI and the blurred input.

Writes ``benchmarks/core.{md,json}``. Two data sets:

- the shared REDS spike samples (``../shared/data/spike/reds_synthetic``): the field's protocol, a 41-frame
  window centred on the key frame (150), grey target 0.11·B + 0.59·G + 0.30·R. Their simulator's θ is not
  recorded: θ is fitted once per recording from the whole stream (mean(GT) / mean spike rate) and used for
  every method alike (``--threshold`` to fix it instead);
- held-out synthetic exposures (``spikegen_core.train.evaluate.held_out_deblur_set``: textures with edges, a
  camera that always moves, motion ×4, a seed training never draws): deblurring (blurred RGB + spikes), scored
  on luma so spike-only methods compare alike.

Then PSNR/SSIM vs the number of spike frames (8, 16, 32, 64) per method: on REDS a window of that many frames
around the key frame; on the synthetic set the same scenes and motion with that many spike frames across the
exposure. Model rows appear when a checkpoint exists (default: the shipped one). LPIPS (AlexNet) is added only
when its weights are already on disk (nothing is downloaded).

    python scripts/bench/bench_core.py                         # the reference run
    python scripts/bench/bench_core.py --checkpoint none       # TFP/TFI/blurred rows only
    python scripts/bench/bench_core.py --count 4 --frames 8 32  # quick check
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_meta import bench_meta, machine_summary, markdown_table, settings_line, write_results  # noqa: E402

from spikegen_core.image import load_image, rgb_to_grey  # noqa: E402
from spikegen_core.metrics import psnr, ssim  # noqa: E402
from spikegen_core.spikes.camera import to_grey  # noqa: E402
from spikegen_core.spikes.io import read_dat  # noqa: E402
from spikegen_core.spikes.reconstruct import tfi, tfp  # noqa: E402
from spikegen_core.train.evaluate import HELD_OUT_SEED, held_out_deblur_set  # noqa: E402
from spikegen_core.utils import file_digest  # noqa: E402

SHIPPED = REPO / "spikegen_core" / "assets" / "spikegen_tiny.safetensors"
DEFAULT_DATA = Path(os.environ.get("SPIKEGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
KEY_FRAME = 150  # the REDS samples' ground truth is the stream's frame 150
PUBLISHED_REDS = {"TFP": 24.29, "TFI": 16.50, "Spk2ImgNet": 38.62, "WGSE": 38.87}  # full test set, Spike-Zoo

# Row order of every table (methods absent from a run are left out).
BLURRED, TFP, TFI, MODEL, MODEL_DEBLUR = "blurred input", "TFP", "TFI", "SpikeGen (spikes)", "SpikeGen (RGB + spikes)"
METHODS = (BLURRED, TFP, TFI, MODEL, MODEL_DEBLUR)


@dataclass
class RedsSample:
    name: str
    spikes: torch.Tensor  # (T, H, W) uint8, the whole stream
    gt: torch.Tensor  # (H, W) grey target
    theta: float


def load_reds(root: Path, threshold: float | None) -> list[RedsSample]:
    """Every ``spike/<name>.dat`` with a ``gt/<name>.png``; θ fitted per recording unless given."""
    out = []
    for dat in sorted((root / "spike").glob("*.dat")):
        gt_path = root / "gt" / f"{dat.stem}.png"
        if not gt_path.is_file():
            continue
        gt = rgb_to_grey(load_image(gt_path), "reds")
        spikes = read_dat(dat, *gt.shape).spikes
        theta = threshold if threshold is not None else float(gt.mean() / spikes.float().mean().clamp_min(1e-6))
        out.append(RedsSample(dat.stem, spikes, gt, theta))
    return out


def central(spikes: torch.Tensor, frames: int, center: int | None = None) -> torch.Tensor:
    """``frames`` spike frames around ``center`` (``SpikeStream.window``'s convention: start = c − n//2)."""
    center = spikes.shape[0] // 2 if center is None else center
    start = center - frames // 2
    return spikes[start : start + frames]


def load_checkpoint(arg: str | None, device: str = "cpu") -> tuple[Any, dict[str, Any] | None]:
    """``(model, info)`` or ``(None, None)`` when there is no checkpoint (``none``, or nothing shipped yet)."""
    if arg == "none" or (arg is None and not SHIPPED.is_file()):
        return None, None
    from spikegen_core.train import load_model  # imported late: the TFP/TFI rows need none of the model code
    from spikegen_core.train.checkpoint import checkpoint_path

    path = checkpoint_path(arg) if arg else SHIPPED  # a file, or a shipped name ("natural")
    model, meta = load_model(path, device=device)
    try:
        shown = str(path.resolve().relative_to(REPO))
    except ValueError:
        shown = str(path)
    info = {"checkpoint": shown, "sha256": file_digest(path), "stage": meta.get("stage"), "step": meta.get("step"),
            "parameters": sum(p.numel() for p in model.parameters())}
    return model, info


def lpips_metric() -> tuple[Any, str]:
    """torchmetrics' LPIPS (AlexNet) when its weights are on disk, else None; nothing is downloaded."""
    try:
        from spikegen_nvs.compat import lpips_weights_path

        path = lpips_weights_path()
    except ImportError as err:
        return None, f"skipped: {err}"
    if not path.is_file():
        return None, f"skipped: AlexNet weights not found at {path}"
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).eval(), "AlexNet, on grey ×3"


class Scorer:
    """Runs the methods on one input and scores them against a grey target (and RGB where both are RGB)."""

    def __init__(self, model: Any, tile: int, sample_kw: dict[str, Any], lpips: Any = None) -> None:
        self.model, self.tile, self.sample_kw, self.lpips = model, tile, sample_kw, lpips

    def predictions(self, spikes: torch.Tensor, theta: float, blurred: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Method → prediction ((H, W) grey, or (3, H, W) RGB for the blurred input and the deblurred frame)."""
        preds: dict[str, torch.Tensor] = {}
        if blurred is not None:
            preds[BLURRED] = blurred
        preds[TFP] = tfp(spikes, threshold=theta)
        preds[TFI] = tfi(spikes, threshold=theta)
        if self.model is not None:
            from spikegen_core.train import restore_tensors

            kw = {"threshold": theta, "tile": self.tile, **self.sample_kw}
            preds[MODEL] = restore_tensors(self.model, spikes, None, mode="reconstruct", **kw)[0].cpu()
            if blurred is not None:
                preds[MODEL_DEBLUR] = restore_tensors(self.model, spikes, blurred, mode="deblur", **kw).cpu()
        return preds

    def score(self, preds: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, dict[str, float]]:
        """PSNR/SSIM (and LPIPS when available) on grey (``target`` (3, H, W) RGB or (H, W) grey);
        RGB PSNR too where both are RGB."""
        grey = to_grey(target) if target.ndim == 3 else target
        out = {}
        for method, pred in preds.items():
            p = pred.clamp(0, 1)
            g = to_grey(p) if p.ndim == 3 else p
            row = {"psnr": float(psnr(g, grey)), "ssim": float(ssim(g, grey))}
            if self.lpips is not None:
                with torch.no_grad():
                    row["lpips"] = float(self.lpips(g.expand(1, 3, *g.shape), grey.expand(1, 3, *grey.shape)))
            if p.ndim == 3 and target.ndim == 3:
                row["psnr_rgb"] = float(psnr(p, target))
            out[method] = row
        return out


def mean_rows(per_sample: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean of every metric per method over the samples, in METHODS order."""
    out = {}
    for method in METHODS:
        rows = [s[method] for s in per_sample if method in s]
        if rows:
            out[method] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} | {"n": len(rows)}
    return out


def run_reds(samples: list[RedsSample], scorer: Scorer, window: int, frames: list[int]) -> dict[str, Any]:
    per_sample, sweep = [], {n: [] for n in frames}
    for s in samples:
        scores = scorer.score(scorer.predictions(central(s.spikes, window, KEY_FRAME), s.theta, None), s.gt)
        per_sample.append(scores)
        for n in frames:
            sweep[n].append(scorer.score(scorer.predictions(central(s.spikes, n, KEY_FRAME), s.theta, None), s.gt))
    return {
        "samples": [{"name": s.name, "theta": round(s.theta, 4), **{m: v for m, v in p.items()}}
                    for s, p in zip(samples, per_sample, strict=True)],
        "mean": mean_rows(per_sample),
        "frames": {str(n): mean_rows(rows) for n, rows in sweep.items()},
    }


def run_synthetic(args: argparse.Namespace, scorer: Scorer) -> dict[str, Any]:
    def scores_for(frames: int) -> list[dict[str, dict[str, float]]]:
        out = []
        for item in held_out_deblur_set(args.count, args.size, frames, args.synthetic_threshold, args.motion,
                                        seed=args.seed):
            preds = scorer.predictions(item["spikes"], args.synthetic_threshold, item["blurred"])
            out.append(scorer.score(preds, item["sharp"]))
        return out

    main = scores_for(args.synthetic_frames)
    sweep = {n: main if n == args.synthetic_frames else scores_for(n) for n in args.frames}
    return {"mean": mean_rows(main), "frames": {str(n): mean_rows(rows) for n, rows in sweep.items()}}


def training_step_times(steps: int = 5) -> dict[str, dict[str, float]]:
    """Seconds per optimiser step of the ``tiny`` preset (batch 8, 64×64, T = 16), pretraining and fine-tuning
    objectives as ``spikegen pretrain/finetune`` run them (mean of ``steps`` after a warm-up step)."""
    from spikegen_core.models import SpikeGen, preset
    from spikegen_core.train.data import training_batches
    from spikegen_core.train.objectives import FinetuneObjective, PretrainObjective
    from spikegen_core.train.pretrain import set_trainable

    torch.manual_seed(0)
    batch = next(training_batches(8, 64, (16, 16), (1.5, 3.0), seed=1))
    out = {}
    for stage in ("pretrain", "finetune"):
        model = SpikeGen(preset("tiny")).train()
        if stage == "pretrain":
            set_trainable(model, vae_encoder=False, vae_decoder=False, fusion=True)
            objective = PretrainObjective(model, 0.25, 1)
        else:
            set_trainable(model, vae_encoder=False, vae_decoder=True, fusion=True, refiner=True)
            objective = FinetuneObjective(model, "both", 0.5, 0.5, spike_window=9, diffusion_repeats=1)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        for i in range(steps + 1):
            if i == 1:  # the first step is a warm-up (allocations, lazy inits)
                w0, c0 = time.perf_counter(), time.process_time()
            loss = sum(objective(batch).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out[stage] = {"wall_s": (time.perf_counter() - w0) / steps, "cpu_s": (time.process_time() - c0) / steps}
    return out


def quality_table(name: str, title: str, mean: dict[str, dict[str, float]], note: str) -> dict[str, Any]:
    rgb = any("psnr_rgb" in v for v in mean.values())
    lp = any("lpips" in v for v in mean.values())
    columns = ["method", "PSNR (dB)", "SSIM"] + (["LPIPS"] if lp else []) + (["RGB PSNR (dB)"] if rgb else [])
    rows = [[m, round(v["psnr"], 2), round(v["ssim"], 4)]
            + ([round(v["lpips"], 4)] if lp else [])
            + ([round(v["psnr_rgb"], 2) if "psnr_rgb" in v else None] if rgb else []) + [v["n"]]
            for m, v in mean.items()]
    columns.append("samples")
    return {"name": name, "title": title, "columns": columns, "rows": rows, "headline": True, "note": note}


def frames_table(name: str, title: str, frames: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    ns = list(frames)
    methods = [m for m in METHODS if any(m in frames[n] for n in ns)]
    rows = [[m] + [round(frames[n][m]["psnr"], 2) if m in frames[n] else None for n in ns] for m in methods]
    return {"name": name, "title": title, "columns": ["method"] + [f"{n} frames" for n in ns], "rows": rows,
            "note": "PSNR (dB) on grey."}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--checkpoint", default=None, help="model checkpoint; default: the shipped one; 'none': no model")
    p.add_argument("--window", type=int, default=41, help="REDS window (the field's protocol: 41)")
    p.add_argument("--threshold", type=float, default=None, help="REDS θ (default: fitted per recording)")
    p.add_argument("--count", type=int, default=24, help="held-out synthetic exposures")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--synthetic-frames", type=int, default=32, help="spike frames per exposure in the main table")
    p.add_argument("--synthetic-threshold", type=float, default=2.0)
    p.add_argument("--motion", type=float, default=4.0,
                   help="motion scale of the held-out exposures (training draws 0-4; 4 = paths of ~60%% of the frame)")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32, 64], help="spike-frame counts to sweep")
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--sampler", default=None, help="model sampler (default: the checkpoint's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the model runs (TFP/TFI always on the CPU)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "core")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, model_info = load_checkpoint(args.checkpoint, args.device)
    lpips, lpips_note = lpips_metric()
    scorer = Scorer(model, args.tile, {"sampler": args.sampler} if args.sampler else {}, lpips)
    reds_root = args.data / "spike" / "reds_synthetic"
    samples = load_reds(reds_root, args.threshold) if reds_root.is_dir() else []
    reds = run_reds(samples, scorer, args.window, args.frames) if samples else None
    synthetic = run_synthetic(args, scorer)

    command = "python scripts/bench/bench_core.py" + "".join(f" {a}" for a in map(shlex.quote, sys.argv[1:]))
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "data")}
    settings |= {"reds_key_frame": KEY_FRAME, "reds_grey": "0.11·B + 0.59·G + 0.30·R",
                 "reds_threshold": "fitted: mean(GT) / mean spike rate of the whole stream"
                 if args.threshold is None else args.threshold,
                 "synthetic": "held_out_deblur_set (edged procedural textures, always moving), scored on luma (BT.601)", "lpips": lpips_note}
    tables = []
    if reds:
        thetas = ", ".join(f"{s['name']}: θ={s['theta']}" for s in reds["samples"])
        tables.append(quality_table(
            "reds", f"REDS samples: dense reconstruction ({args.window}-frame window, grey)", reds["mean"],
            f"{len(samples)} recordings ({thetas}). Published on the full REDS test set: "
            + ", ".join(f"{k} {v}" for k, v in PUBLISHED_REDS.items()) + " dB."))
    tables.append(quality_table(
        "synthetic", f"Held-out synthetic exposures: deblurring ({args.size}×{args.size}, "
        f"{args.synthetic_frames} spike frames, θ={args.synthetic_threshold}, motion ×{args.motion:g})", synthetic["mean"],
        f"{args.count} exposures, seed {args.seed}; PSNR/SSIM on luma, RGB PSNR where the method outputs colour."))
    if reds:
        tables.append(frames_table("reds_frames", "REDS: PSNR vs number of spike frames", reds["frames"]))
    tables.append(frames_table("synthetic_frames", "Synthetic: PSNR vs number of spike frames", synthetic["frames"]))
    times = training_step_times()
    tables.append({"name": "train_step", "title": "Training step of the tiny preset (batch 8, 64×64, T = 16)",
                   "columns": ["stage", "s/step (wall)", "CPU s/step"],
                   "rows": [[k, round(v["wall_s"], 3), round(v["cpu_s"], 3)] for k, v in times.items()],
                   "note": f"{args.threads} torch thread(s), mean of 5 steps after a warm-up, this machine's load "
                           "included; optimiser step of the parts each stage trains."})  # fmt: skip

    result = {
        "benchmark": "core",
        "title": "Core model: reconstruction and deblurring quality",
        "command": command,
        **bench_meta(args.device),
        "settings": settings,
        "model": model_info or "no checkpoint: TFP/TFI/blurred rows only",
        "tables": tables,
        "reds": reds,
        "synthetic": synthetic,
    }
    md = [f"# {result['title']}", "", f"- commit `{result['commit']}`, {result['date']}",
          f"- machine: {machine_summary(result['machine'])}",
          f"- model: {model_info['checkpoint'] + ' (sha256 ' + model_info['sha256'][:12] + ')' if model_info else 'none'}",
          f"- rerun: `{command}`", f"- settings: {settings_line(settings)}", ""]
    for t in tables:
        md += [f"## {t['title']}", "", *markdown_table(t["columns"], t["rows"]), "", t.get("note", ""), ""]
    write_results(args.out, result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
