"""Benchmark video restoration: output frames/s at 250×400 and temporal consistency on a generated sequence.

Writes benchmarks/video.md and benchmarks/video.json. About two minutes on one shared CPU core:

    PYTHONPATH=. python scripts/bench/bench_video.py [--device cuda] [--checkpoint PATH]

1. Speed: a random 250×400 stream (written as `.dat`, read back through memory mapping) → one frame every
   20 ticks (1,000 frames/s from 20 kHz). Output frames/s for TFP sliding windows (41 ticks), the
   motion-adaptive TFP (161/41), the SpikeGen restorer when a checkpoint exists, and TFP end to end with
   MP4 writing. Best of ``--repeats`` runs.
2. Quality: a generated sequence with ground truth (static background, moving sprites, RGB exposures at
   100 Hz): per-frame PSNR mean ± std, flicker on static regions, temporal and warping error, for the
   dense restorers and for deblurring (RGB rate and 4× upsampled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _bench_meta import commit_hash, cpu_model  # noqa: E402

from spikegen_core.spikes import SpikeStream, write_dat  # noqa: E402
from spikegen_core.spikes.camera import to_grey  # noqa: E402
from spikegen_core.video import SpikeSource, TFPRestorer, restore_frames, restore_video, window_centres  # noqa: E402
from spikegen_core.video.consistency import consistency_report, psnr_per_frame  # noqa: E402
from spikegen_core.video.deblur import deblur_video  # noqa: E402
from spikegen_core.video.restorers import AdaptiveTFPRestorer, ModelRestorer  # noqa: E402
from spikegen_core.video.synthetic import make_sequence  # noqa: E402

SHIPPED = REPO / "spikegen_core" / "assets" / "spikegen_tiny.safetensors"


def frames_per_s(src: SpikeSource, centres: np.ndarray, window: int, restorer, batch: int, device: str,
                 repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        n, sec = restore_frames(src, centres, window, restorer, batch_size=batch, device=device, progress=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, sec)
    return n / best


def speed(args: argparse.Namespace, tmp: Path, model: ModelRestorer | None, fast: ModelRestorer | None = None,
          fast_int8: ModelRestorer | None = None) -> dict:
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(args.frames, 250, 400, generator=g) < 0.2).to(torch.uint8)
    path = write_dat(tmp / "speed.dat", SpikeStream(spikes, threshold=2.0))
    del spikes
    src = SpikeSource.open(path)
    centres41 = window_centres(src.num_frames, 161, fps=1000)  # same centres for every restorer
    out = {"stream": f"250×400, {src.num_frames} ticks (.dat, memory-mapped)", "output_fps": 1000,
           "frames": int(len(centres41)), "batch": args.batch, "device": args.device}
    out["tfp41"] = frames_per_s(src, centres41, 41, TFPRestorer(2.0), args.batch, args.device, args.repeats)
    out["tfp_adaptive"] = frames_per_s(src, centres41, 161, AdaptiveTFPRestorer(2.0), args.batch, args.device,
                                       args.repeats)
    t0 = time.perf_counter()
    res = restore_video(src, tmp, fps=1000, window=41, batch_size=args.batch, device=args.device, progress=False)
    out["tfp41_with_mp4"] = res.frames / (time.perf_counter() - t0)
    if fast is not None:  # restore-video's default on grey streams
        out["fast"] = frames_per_s(src, centres41, 41, fast, args.batch, args.device, args.repeats)
    if fast_int8 is not None:  # its one calibration (first call, per θ) timed on its own
        t0 = time.perf_counter()
        restore_frames(src, centres41[: args.batch], 41, fast_int8, batch_size=args.batch, device=args.device,
                       progress=False)
        out["fast_int8_first_batch_s"] = time.perf_counter() - t0
        out["fast_int8"] = frames_per_s(src, centres41, 41, fast_int8, args.batch, args.device, args.repeats)
    if model is not None:
        few = centres41[: args.model_frames]
        out["model"] = frames_per_s(src, few, 41, model, min(args.batch, 4), args.device, 1)
        out["model_frames_timed"] = int(len(few))
    return out


def quality(args: argparse.Namespace, model: ModelRestorer | None, fast: ModelRestorer | None = None,
            fast_int8: ModelRestorer | None = None) -> dict:
    t0 = time.perf_counter()
    seq = make_sequence(tuple(args.quality_size), args.quality_ticks, rgb_period=200, exposure=160, sprites=3,
                        speed_px_per_tick=args.speed, seed=args.seed)
    gen_s = time.perf_counter() - t0
    src = SpikeSource.from_stream(seq.spikes)
    centres = window_centres(src.num_frames, 161, fps=1000)
    gt = to_grey(seq.sharp_at(centres))
    dense = {}
    runs = [("TFP 41 (sliding window)", TFPRestorer(2.0), 41), ("TFP 161", TFPRestorer(2.0), 161),
            ("motion-adaptive TFP 161/41", AdaptiveTFPRestorer(2.0), 161)]
    if fast is not None:
        runs.append(("fast model (41)", fast, 41))
    if fast_int8 is not None:
        runs.append(("fast model, int8 (41)", fast_int8, 41))
    if model is not None:
        runs.append(("SpikeGen model (41)", model, 41))
    for label, rest, win in runs:
        frames: list[torch.Tensor] = []
        restore_frames(src, centres, win, rest, batch_size=4, device=args.device, progress=False,
                       sink=lambda c, f, frames=frames: frames.append(f.cpu()))
        dense[label] = consistency_report(torch.cat(frames)[:, 0], gt)
    ex_centres = seq.exposures.double().mean(1).round().long()
    sharp_gt = seq.sharp_at(ex_centres)
    deblur = {"blurred input (RGB rate)": _stats(psnr_per_frame(seq.blurred, sharp_gt))}
    variants = [("TFP deblur, shrink 1", TFPRestorer(2.0, window=41), 1.0),
                ("TFP deblur, no shrink", TFPRestorer(2.0, window=41, shrink=0.0), 0.0)]
    if model is not None:
        variants.append(("SpikeGen model deblur", model, 1.0))
    up = {}
    for label, rest, shrink in variants:
        res = deblur_video(seq.blurred, seq.exposures, src, rest, upsample=4, shrink=shrink, device=args.device)
        deblur[label + " (RGB rate)"] = _stats(psnr_per_frame(res.sharp, sharp_gt))
        gt_t = seq.sharp_at(res.times)
        up[label + " ×4"] = consistency_report(res.frames, gt_t)
        if "hold" not in up:
            nearest = np.abs(res.times[:, None] - ex_centres.numpy()[None]).argmin(1)
            up["hold nearest deblurred frame ×4 (no spikes between frames)"] = consistency_report(
                res.sharp[nearest], gt_t)
            up["hold"] = True
    up.pop("hold")
    return {"sequence": seq.settings, "generation_s": gen_s, "dense_1000fps": dense, "deblur_psnr": deblur,
            "upsampled_x4": up}


def _stats(per: torch.Tensor) -> dict:
    return {"psnr_mean": float(per.mean()), "psnr_std": float(per.std(unbiased=False)), "frames": int(per.numel())}


def write_md(result: dict, path: Path) -> None:
    s, q = result["speed"], result["quality"]
    lines = [
        "# Video restoration benchmark",
        "",
        "Made by `scripts/bench/bench_video.py`. Output frames per second (best of repeats) and temporal consistency "
        "against ground truth on a generated sequence.",
        "",
        f"- commit `{result['commit']}`, CPU {result['cpu']} ({os.cpu_count()} logical cores, 1-min load "
        f"{result['load']:.2f} when run), torch {torch.__version__}, {result['threads']} torch thread(s), "
        f"device `{s['device']}`",
        f"- speed stream: {s['stream']}; {s['frames']} output frames at {s['output_fps']} frames/s "
        f"(one every 20 ticks), batch {s['batch']}",
        f"- model: {result['model']}",
        "- GPU: " + ("this run" if s["device"].startswith("cuda") else
                     "not measured in this run (no GPU was available); rerun with `--device cuda` on one"),
        "",
        "## Speed (250×400)",
        "",
        "| restorer | output frames/s | ratio to TFP sliding windows |",
        "|---|---|---|",
    ]
    base = s["tfp41"]
    for key, label in (("tfp41", "TFP sliding windows (41 ticks), restore only"),
                       ("tfp_adaptive", "motion-adaptive TFP (161/41)"),
                       ("tfp41_with_mp4", "TFP 41 + MP4 writing (end to end)"),
                       ("fast", "fast model (41 ticks), restore only"),
                       ("fast_int8", "fast model in int8 (41 ticks), restore only, after its calibration"),
                       ("model", f"SpikeGen restorer ({s.get('model_frames_timed', 0)} frames timed)")):
        if key in s:
            lines.append(f"| {label} | {s[key]:.1f} | {s[key] / base:.3f} |")
    if "fast_int8_first_batch_s" in s:
        lines += ["", f"The int8 fast model's first batch ({s['batch']} frames, its calibration included) took "
                  f"{s['fast_int8_first_batch_s']:.1f} s."]
    seq = q["sequence"]
    lines += [
        "",
        f"## Dense reconstruction at 1,000 frames/s: generated {seq['size'][0]}×{seq['size'][1]} sequence, "
        f"{seq['num_frames']} ticks, {seq['sprites']} sprites at ~{seq['speed_px_per_tick']} px/tick (grey GT)",
        "",
        "Flicker = mean |frame(t+1) − frame(t)| on pixels static in the ground truth (GT: 0); temporal error = "
        "mean |Δpred − ΔGT|; warping error with OpenCV Farnebäck flow of the GT.",
        "",
        "| restorer | PSNR mean ± std (dB) | flicker (static) | temporal error | warping error |",
        "|---|---|---|---|---|",
    ]
    for label, r in q["dense_1000fps"].items():
        lines.append(f"| {label} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['flicker_static']:.4f} | "
                     f"{r['temporal_error']:.4f} | {r['warping_error']:.4f} |")
    lines += ["", f"Static fraction of the frame: {next(iter(q['dense_1000fps'].values()))['static_fraction']:.2f}.",
              "", "## Deblurring (RGB, exposures of 160 ticks every 200 ticks)", "",
              "| frames | PSNR mean ± std (dB) | frames |", "|---|---|---|"]
    for label, r in q["deblur_psnr"].items():
        lines.append(f"| {label} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['frames']} |")
    lines += ["", "| 4× upsampled video | PSNR mean ± std (dB) | flicker (static) | temporal error | warping error |",
              "|---|---|---|---|---|"]
    for label, r in q["upsampled_x4"].items():
        lines.append(f"| {label} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['flicker_static']:.4f} | "
                     f"{r['temporal_error']:.4f} | {r['warping_error']:.4f} |")
    lines += ["", "Settings: " + json.dumps(result["settings"]), ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", type=Path, default=None, help="SpikeGen checkpoint (default: shipped, if any)")
    ap.add_argument("--fast", default="fast", help="fast-model checkpoint (default: the shipped one); 'none': skip")
    ap.add_argument("--frames", type=int, default=1400, help="ticks of the speed stream")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model-frames", type=int, default=8)
    ap.add_argument("--quality-size", type=int, nargs=2, default=[96, 160])
    ap.add_argument("--quality-ticks", type=int, default=1000)
    ap.add_argument("--speed", type=float, default=0.08, help="sprite speed, px per tick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = args.checkpoint or (SHIPPED if SHIPPED.is_file() else None)
    model = ModelRestorer(ckpt, device=args.device).load() if ckpt else None
    fast = None if args.fast == "none" else ModelRestorer(args.fast, device=args.device, fast=True).load()
    int8 = fast is not None and args.device == "cpu"

    def fast_int8() -> ModelRestorer | None:  # a new one per stream: it calibrates on the first stream it sees
        return ModelRestorer(args.fast, device=args.device, fast=True, int8=True).load() if int8 else None

    with tempfile.TemporaryDirectory() as tmp:
        sp = speed(args, Path(tmp), model, fast, fast_int8())
    commit = commit_hash()  # video.json has always held the short hash, without a -dirty mark
    commit = "uncommitted" if commit == "unknown" else commit.removesuffix("-dirty")[:7]
    result = {
        "commit": commit, "cpu": cpu_model(), "load": os.getloadavg()[0], "threads": args.threads,
        "model": str(ckpt) if ckpt else "no checkpoint yet: TFP restorers only",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "speed": sp, "quality": quality(args, model, fast, fast_int8()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video.json").write_text(json.dumps(result, indent=1))
    write_md(result, args.out / "video.md")
    print((args.out / "video.md").read_text())


if __name__ == "__main__":
    main()
