"""The `natural` preset (issue 20) on the REDS samples and its autoencoder on held-out photographs, per checkpoint.

Writes ``benchmarks/core_natural.{md,json}``:

- REDS dense reconstruction with the field's protocol (41-frame window centred on key frame 150, grey target
  0.11·B + 0.59·G + 0.30·R) and θ = the data set's constant (``spikegen_core.data.reds.REDS_THRESHOLD``,
  calibrated once from the training recordings; never fitted per image): TFP-41, TFI, and the model at every
  checkpoint given, each with its training step and the CPU time it had used;
- the autoencoder's reconstruction PSNR on photographs it never saw (scikit-image's ``coffee``, and the two REDS
  ground truths), from the run's autoencoder stage;
- held-out synthetic deblurring on natural-photo content (``train.evaluate.held_out_natural_set``: crops of
  photographs training never sees, a camera that always moves, θ = 2, 41 ticks), scored on luma (BT.601)
  plus RGB PSNR of the deblurred frame;
- seconds per 250×400 frame of one-pass restoration on this CPU (1 torch thread).

    python scripts/bench/bench_core_natural.py --run runs/core_natural          # every stage of a run
    python scripts/bench/bench_core_natural.py --checkpoint a.safetensors --run DIR   # extra checkpoints too

A training folder stands for the EMA weights of its newest checkpoint (a run in progress included).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_meta import (  # noqa: E402
    append_history,
    bench_meta,
    machine_summary,
    markdown_table,
    settings_line,
    write_results,
)

from spikegen_core.data.natural import HELD_OUT_PHOTOS, photo  # noqa: E402
from spikegen_core.data.reds import REDS_KEY_FRAME, REDS_THRESHOLD, REDS_WINDOW, reds_recordings  # noqa: E402
from spikegen_core.image import load_image, rgb_to_grey  # noqa: E402
from spikegen_core.metrics import psnr, ssim  # noqa: E402
from spikegen_core.spikes.camera import to_grey  # noqa: E402
from spikegen_core.spikes.io import read_dat  # noqa: E402
from spikegen_core.spikes.reconstruct import tfi, tfp  # noqa: E402
from spikegen_core.train.checkpoint import SHIPPED, load_fast_model, load_model, load_training_ema  # noqa: E402
from spikegen_core.train.evaluate import evaluate_held_out_natural, held_out_natural_set, summarise  # noqa: E402
from spikegen_core.train.restore import fast_restore, restore_tensors  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SPIKEGEN_SHARED_DATA", REPO.parent / "shared" / "data"))


def reds_inputs(root: Path) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(name, 41-frame window, grey target, RGB ground truth) per recording."""
    out = []
    for name, dat, gt_path in reds_recordings(root):
        rgb = load_image(gt_path)
        stream = read_dat(dat, *rgb.shape[-2:])
        out.append((name, stream.window(REDS_KEY_FRAME, REDS_WINDOW).spikes, rgb_to_grey(rgb, "reds"), rgb))
    return out


def score(pred: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    pred = pred.clamp(0, 1)
    return float(psnr(pred, target)), float(ssim(pred, target))


def mean_rows(label: str, scores: list[tuple[float, float]], **extra: Any) -> dict[str, Any]:
    return {"method": label, "psnr": sum(s[0] for s in scores) / len(scores),
            "ssim": sum(s[1] for s in scores) / len(scores), **extra}  # fmt: skip


def load_any(arg: str) -> tuple[Any, dict[str, Any]]:
    """A checkpoint file, a training folder (newest EMA; ``live:<folder>``: its live weights), or ``shipped``."""
    if arg == "shipped":
        return load_model(SHIPPED)
    if arg.startswith("live:"):
        return load_training_ema(arg[5:], ema=False)
    return load_model(Path(arg))


def run_checkpoints(run: Path | None, extra: list[str], live: bool = False) -> list[tuple[str, str]]:
    """(label, what to load) for every stage of ``run`` that has weights, then ``extra``."""
    out = []
    if run is not None:
        if (run / "model.safetensors").is_file():
            out.append(("pretrained (fusion stage)", str(run / "model.safetensors")))
        if (run / "finetune" / "last.json").is_file():
            out.append(("fine-tuning, newest EMA", str(run / "finetune")))
            if live:
                out.append(("fine-tuning, newest live weights", f"live:{run / 'finetune'}"))
    return out + [(Path(e).name if e != "shipped" else "shipped tiny", e) for e in extra]


@torch.no_grad()
def autoencoder_psnr(run: Path, reds: list) -> dict[str, Any] | None:
    """PSNR of the autoencoder stage (EMA) on held-out photographs (centre crops that fit its stride)."""
    if (run / "vae.safetensors").is_file():
        model, meta = load_model(run / "vae.safetensors")
    elif (run / "vae_last.json").is_file():
        model, meta = load_training_ema(run, "vae_last")
    else:
        return None
    vae = model.vae
    images = {n: photo(n) for n in HELD_OUT_PHOTOS} | {f"REDS {n}": rgb for n, _, _, rgb in reds}
    scores, luma = {}, {}
    for name, img in images.items():
        h, w = (s // 8 * 8 for s in img.shape[-2:])
        h, w = min(h, 256), min(w, 400)  # bounds the VAE's mid-block attention (memory)
        top, left = (img.shape[-2] - h) // 2, (img.shape[-1] - w) // 2
        x = img[:, top : top + h, left : left + w][None]
        y = vae.decode(vae.encode(x)).clamp(0, 1)
        scores[name] = float(psnr(y, x))
        luma[name] = float(psnr(to_grey(y), to_grey(x)))
    return {"step": meta.get("step"), "cpu_s": meta.get("cpu_s"), "psnr": scores, "psnr_luma": luma,
            "mean": sum(scores.values()) / len(scores)}  # fmt: skip


def natural_baselines(count: int) -> dict[str, dict[str, float]]:
    """Blurred input, TFP and TFI (whole window) on the held-out natural deblurring set, luma and RGB."""
    scores: dict[str, list[tuple[float, float]]] = {"blurred input": [], "TFP": [], "TFI": [], "blurred input (RGB)": []}
    for smp in held_out_natural_set(count):
        target, theta = to_grey(smp["sharp"]), smp["threshold"]
        scores["blurred input"].append(score(to_grey(smp["blurred"]), target))
        scores["TFP"].append(score(tfp(smp["spikes"], threshold=theta), target))
        scores["TFI"].append(score(tfi(smp["spikes"], threshold=theta), target))
        scores["blurred input (RGB)"].append(score(smp["blurred"], smp["sharp"]))
    return {k: {"psnr": sum(a for a, _ in v) / len(v), "ssim": sum(b for _, b in v) / len(v), "n": len(v)}
            for k, v in scores.items()}  # fmt: skip


def frame_seconds(model: Any, spikes: torch.Tensor, tile: int | None) -> float:
    restore_tensors(model, spikes, None, threshold=REDS_THRESHOLD, tile=tile)  # warm-up
    t0 = time.perf_counter()
    restore_tensors(model, spikes, None, threshold=REDS_THRESHOLD, tile=tile)
    return time.perf_counter() - t0


def fast_path_timing(net: Any, spikes: torch.Tensor, threads: int, batch: int = 8) -> dict[str, Any]:
    """The fast model on one 250×400 window and on a batch of them, as video restoration runs it: seconds per frame
    and frames per second."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        many = spikes[None].expand(batch, -1, -1, -1).contiguous()
        fast_restore(net, spikes, threshold=REDS_THRESHOLD)  # warm-up
        t0 = time.perf_counter()
        fast_restore(net, spikes, threshold=REDS_THRESHOLD)
        t1 = time.perf_counter()
        fast_restore(net, many, threshold=REDS_THRESHOLD)
        t2 = time.perf_counter()
    finally:
        torch.set_num_threads(before)
    return {"threads": threads, "s_per_frame": round(t1 - t0, 3), "batch": batch,
            "batch_frames_per_s": round(batch / (t2 - t1), 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None, help="training folder of scripts/dev/train_core_natural.sh")
    p.add_argument("--checkpoint", nargs="*", default=[], help="more checkpoints or training folders; 'shipped'")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--tile", type=int, default=64, help="restoration tile (0: whole frame)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--live", action="store_true", help="also the run's live (non-EMA) fine-tuning weights")
    p.add_argument("--count", type=int, default=16, help="held-out natural deblurring exposures")
    p.add_argument("--fast", nargs="*", default=["fast"], help="fast-model checkpoints or training folders")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "core_natural")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tile = args.tile or None
    reds = reds_inputs(args.data / "spike" / "reds_synthetic")
    theta = REDS_THRESHOLD
    rows = [
        mean_rows("TFP-41", [score(tfp(s, threshold=theta), g) for _, s, g, _ in reds]),
        mean_rows("TFI", [score(tfi(s, threshold=theta), g) for _, s, g, _ in reds]),
    ]
    # the windows of the natural preset's temporal features: which one a per-pixel choice starts from
    rows += [mean_rows(f"TFP-{n}", [score(tfp(s, window=n, threshold=theta), g) for _, s, g, _ in reds])
             for n in (5, 9, 17, 21, 33)]  # fmt: skip
    timing, fast_timing, deblur = [], [], {}
    for label, what in run_checkpoints(args.run, args.checkpoint, args.live):
        model, meta = load_any(what)
        preds = [restore_tensors(model, s, None, threshold=theta, tile=tile)[0] for _, s, _, _ in reds]
        rows.append(mean_rows(f"SpikeGen: {label}", [score(pr, g) for pr, (_, _, g, _) in zip(preds, reds, strict=True)],
                              preset=meta.get("model", {}).get("refiner_kind"), stage=meta.get("stage"),
                              step=meta.get("step"), cpu_h=round(meta["cpu_s"] / 3600, 2) if meta.get("cpu_s") else None,
                              parameters=sum(q.numel() for q in model.parameters())))  # fmt: skip
        timing.append({"method": label, "s_per_frame": round(frame_seconds(model, reds[0][1], tile), 2)})
        deblur[label] = summarise(evaluate_held_out_natural(model, count=args.count, tile=tile))
    for label in args.fast:  # the one-pass fast model(s) (`--fast`)
        net, meta = load_fast_model(label)
        preds = [restore_tensors(net, s, None, threshold=theta)[0] for _, s, _, _ in reds]
        cpu_s = meta.get("cpu_s_total", meta.get("cpu_s"))  # a continuation records the runs before it in the total
        rows.append(mean_rows(f"fast model: {label}", [score(pr, g) for pr, (_, _, g, _) in zip(preds, reds, strict=True)],
                              step=meta.get("step"), cpu_h=round(cpu_s / 3600, 2) if cpu_s else None,
                              parameters=sum(q.numel() for q in net.parameters())))  # fmt: skip
        fast_timing += [{"method": f"fast model: {label}", **fast_path_timing(net, reds[0][1], n)} for n in (1, 2)]
        deblur[f"fast model: {label}"] = summarise(evaluate_held_out_natural(net, count=args.count))
    ae = autoencoder_psnr(args.run, reds) if args.run is not None else None
    history = []
    if ae is not None:
        # every run of this script adds its autoencoder score to the run folder: PSNR vs training step
        history = append_history(args.run / "bench_autoencoder_history.jsonl",
                                 {"step": ae["step"], "cpu_s": ae["cpu_s"], "mean": ae["mean"]})  # fmt: skip

    settings = {"run": args.run, "checkpoints": args.checkpoint, "live": args.live, "count": args.count, "tile": args.tile, "threads": args.threads,
                "reds_threshold": theta, "reds_window": REDS_WINDOW, "reds_key_frame": REDS_KEY_FRAME,
                "reds_grey": "0.11·B + 0.59·G + 0.30·R"}  # fmt: skip
    meta = bench_meta("cpu")
    command = "python scripts/bench/bench_core_natural.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {**meta, "benchmark": "core_natural", "command": command, "settings": settings, "reds": rows,
              "autoencoder": ae, "autoencoder_history": history, "timing": timing, "fast_path_timing": fast_timing,
              "held_out_natural": deblur}  # fmt: skip
    md = ["# Core model, `natural` preset (issue 20): REDS samples and the autoencoder", "",
          f"- commit `{meta['commit']}`, {meta['date']}", f"- machine: {machine_summary(meta['machine'])}",
          f"- rerun: `{command}`", f"- settings: {settings_line(settings)}", "",
          f"## REDS samples, dense reconstruction (field protocol, θ = {theta} for every method and image)", ""]  # fmt: skip
    cols = ["method", "PSNR (dB)", "SSIM", "step", "training CPU-h"]
    md += markdown_table(cols, [[r["method"], round(r["psnr"], 2), round(r["ssim"], 4), r.get("step"),
                                 r.get("cpu_h")] for r in rows])  # fmt: skip
    md += ["", f"{len(reds)} recordings; PSNR/SSIM are means over them. CPU-h: CPU time of the training stage that "
           "made the checkpoint (the autoencoder and pretraining stages come before it).", ""]
    if ae is not None:
        md += ["## Autoencoder reconstruction on held-out photographs", "",
               *markdown_table(["image", "PSNR RGB (dB)", "PSNR luma (dB)"],
                               [[k, round(v, 2), round(ae["psnr_luma"][k], 2)] for k, v in ae["psnr"].items()]), "",
               f"Autoencoder stage step {ae['step']} (CPU {ae['cpu_s']} s); mean {ae['mean']:.2f} dB. Centre crops of at "
               "most 256×400; never trained on.", "",
               *markdown_table(["autoencoder step", "training CPU-h", "mean PSNR (dB)"],
                               [[h["step"], round(h["cpu_s"] / 3600, 3) if h["cpu_s"] else None, round(h["mean"], 2)]
                                for h in history]), "",
               "Every run of the script on this training folder adds a row (`bench_autoencoder_history.jsonl`).",
               ""]  # fmt: skip
    # the inputs' and TFP/TFI scores on the held-out natural set need no model
    first = natural_baselines(args.count)
    result["held_out_natural_baselines"] = first
    base = [[m, round(first[m]["psnr"], 2), round(first[m]["ssim"], 4)]
            for m in ("blurred input", "TFP", "TFI", "blurred input (RGB)")]  # fmt: skip
    model_rows = [[f"{lab}: {m}", round(v[m]["psnr"], 2), round(v[m]["ssim"], 4)] for lab, v in deblur.items()
                  for m in ("model deblur", "model spikes-only", "model deblur (RGB)", "model RGB-only",
                            "model RGB-only (RGB)") if m in v]  # fmt: skip
    md += ["## Held-out synthetic deblurring, natural-photo content (64×64, 41 ticks, θ = 2, always moving)", "",
           *markdown_table(["method", "PSNR (dB)", "SSIM"], base + model_rows), "",
           f"{first['TFP']['n']} exposures; luma unless marked RGB.", ""]  # fmt: skip
    if timing:
        md += ["## One-pass restoration time, 250×400 frame", "",
               *markdown_table(["checkpoint", "s / frame"], [[t["method"], t["s_per_frame"]] for t in timing]), "",
               f"tile={args.tile}, {args.threads} torch thread(s) on a shared machine (load included).", ""]  # fmt: skip
    if fast_timing:
        md += ["## The fast model (`--fast`: one pass over the whole frame), 250×400", "",
               *markdown_table(["checkpoint", "torch threads", "s / frame", "frames / s, batches of 8 (video)"],
                               [[t["method"], t["threads"], t["s_per_frame"], t["batch_frames_per_s"]]
                                for t in fast_timing]), "",
               "Whole frames, no tiles; 41-tick windows (the net reads the central 33). Shared machine, load included.",
               ""]  # fmt: skip
    write_results(args.out, result, md)
    print("\n".join(md))
    print(json.dumps({"reds": [(r["method"], round(r["psnr"], 2)) for r in rows]}))


if __name__ == "__main__":
    main()
