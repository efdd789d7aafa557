"""Side-by-side (issue 20): one of the field's light reconstruction nets, trained on the *same* data stream and
CPU as the `natural` preset, judged on the same shared samples.

The light net follows the design of the field's smallest nets (Spike-Zoo's ``base``: a few 3×3 convolutions over
the spike window taken as image channels, ~0.2 M parameters), written from that description:
``spikegen_core.models.temporal.WindowCNN`` with the central 33 frames (the natural preset's shortest window). It is told θ as our model is (no oracle scale), trains with L1 on the luma of the
sharp frame, and gets the natural fine-tuning preset's batches (``train.data.batch_stream``: photographs,
θ ∈ [1.2, 3], modest motion, dark noise), optimiser, EMA and resumable checkpoints (``train.loop.run_stage``).
Trained alone it is the benchmark's yardstick.

    python scripts/bench/bench_core_sidebyside.py train --out runs/light --steps 40000   # resumable, background
    python scripts/bench/bench_core_sidebyside.py eval --out runs/light --spikegen "SpikeGen=runs/core_natural/finetune"

``eval`` adds the light net's newest EMA (step, CPU-h) to ``<out>/history.jsonl`` and writes
``benchmarks/core_sidebyside.{md,json}``: REDS samples (field protocol, θ = the data set's constant), held-out
natural reconstruction from spikes (luma), and seconds per 250×400 frame, beside our model's newest EMA.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
from bench_core_natural import DEFAULT_DATA, frame_seconds, reds_inputs, score  # noqa: E402

from spikegen_core.data.reds import REDS_THRESHOLD  # noqa: E402
from spikegen_core.models.temporal import WindowCNN  # noqa: E402
from spikegen_core.spikes.camera import to_grey  # noqa: E402
from spikegen_core.train.checkpoint import load_fast_model, load_model, read_meta  # noqa: E402
from spikegen_core.train.config import FINETUNE_PRESETS, with_overrides  # noqa: E402
from spikegen_core.train.data import batch_stream  # noqa: E402
from spikegen_core.train.distributed import setup, teardown  # noqa: E402
from spikegen_core.train.evaluate import evaluate_held_out_natural, held_out_natural_set, summarise  # noqa: E402
from spikegen_core.train.loop import Stage, run_stage  # noqa: E402
from spikegen_core.train.restore import restore_tensors  # noqa: E402
from spikegen_core.train.training_state import load_state  # noqa: E402

FRAMES, WIDTH, BLOCKS = 33, 48, 4


class LightObjective(nn.Module):
    def __init__(self, net: WindowCNN) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            "l1": F.l1_loss(
                self.net(batch["spikes"], batch["threshold"]), to_grey(batch["sharp"]).unsqueeze(1)
            )
        }


def train(out: Path, steps: int, lr: float, init: str | None = None, motion_max: float | None = None,
          seed: int | None = None, collage: float | None = None) -> None:
    """``init``: start from a fast-model checkpoint or training folder (its newest EMA) instead of from scratch;
    ``motion_max``: the camera-motion scale's upper bound (the natural stream's 1 unless given); ``seed``: the
    stream's seed (a continuation draws other batches than the run it starts from); ``collage``: the fraction of
    photo-collage canvases (``data.natural.collage_canvas``; none unless given)."""
    extra = {"motion_range": None if motion_max is None else (0.0, motion_max), "seed": seed, "collage_fraction": collage,
             "init": init}  # fmt: skip
    extra = {k: v for k, v in extra.items() if v is not None}
    cfg = with_overrides(FINETUNE_PRESETS["natural"], out_dir=out, steps=steps, lr=lr, warmup_steps=100,
                         ckpt_every=250, resume=True, threads=1, **extra)  # fmt: skip
    torch.set_num_threads(1)
    rt = setup(cfg.device)
    try:
        torch.manual_seed(cfg.seed)
        net = WindowCNN(FRAMES, WIDTH, BLOCKS)
        if init is not None:  # a resumed run loads its own last slot over these in run_stage
            net.load_state_dict(load_fast_model(init)[0].state_dict())
        data = batch_stream(cfg, seed=cfg.seed * 1000 + 7 + rt.rank)  # the natural fine-tuning stream itself

        def meta() -> dict:
            return {
                "model": {"window_cnn": {"frames": FRAMES, "width": WIDTH, "blocks": BLOCKS}},
                "train": cfg.to_dict(),
                "stage": "light",
            }

        run_stage(Stage("light", LightObjective(net), net, {}, steps, lr, "last", meta), cfg, rt, data)
    finally:
        teardown(rt)


def load_light(out: Path) -> tuple[WindowCNN, dict[str, Any]]:
    state = load_state(out, "last")
    net = WindowCNN(FRAMES, WIDTH, BLOCKS)
    net.load_state_dict(state.ema_weights)
    meta = read_meta(state.path)
    return net.eval(), {"step": state.step, "cpu_h": round(meta.get("cpu_s", 0) / 3600, 2)}


@torch.no_grad()
def light_restore(net: WindowCNN, spikes: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(T, H, W)`` → ``(H, W)`` in [0, 1]."""
    return net(spikes[None], torch.tensor([threshold]))[0, 0].clamp(0, 1)


def seconds(fn: Any) -> float:
    fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def spikegen_row(label: str, path: str, reds: list, count: int) -> dict[str, Any]:
    """SpikeGen (a checkpoint or a training folder's newest EMA) from spikes alone, as the light net is scored."""
    model, meta = load_model(Path(path))
    reds_scores = [
        score(restore_tensors(model, s, None, threshold=REDS_THRESHOLD, tile=64)[0], g) for _, s, g, _ in reds
    ]
    held = summarise(evaluate_held_out_natural(model, count=count, tile=64))["model spikes-only"]
    frame = frame_seconds(model, reds[0][1], 64)
    # a model made by scripts/dev/add_window_cnn.py (or exported from one): the CPU behind its starting point
    init = meta.get("init")
    made = meta.get("made_from") or (
        read_meta(init).get("made_from", {}) if init not in (None, "None") else {}
    )
    before = (made.get("base_cpu_s") or 0) + (made.get("window_cnn_cpu_s") or 0)
    before += (made.get("rgb_only_refiner") or {}).get("cpu_s") or 0  # its RGB-only stage, trained after
    return {"label": label, "path": path, "step": meta.get("step"), "cpu_h": round(meta.get("cpu_s", 0) / 3600, 2),
            "cpu_h_before": round(before / 3600, 2), "parameters": sum(p.numel() for p in model.parameters()),
            "reds_psnr": sum(a for a, _ in reds_scores) / len(reds), "reds_ssim": sum(b for _, b in reds_scores) / len(reds),
            "held_psnr": held["psnr"], "held_ssim": held["ssim"], "s_per_frame": round(frame, 2)}  # fmt: skip


def evaluate(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    reds = reds_inputs(args.data / "spike" / "reds_synthetic")
    held = held_out_natural_set(args.count)
    net, info = load_light(args.out)
    params = sum(p.numel() for p in net.parameters())
    reds_light = [score(light_restore(net, s, REDS_THRESHOLD), g) for _, s, g, _ in reds]
    held_light = [score(light_restore(net, x["spikes"], x["threshold"]), to_grey(x["sharp"])) for x in held]
    row = {"step": info["step"], "cpu_h": info["cpu_h"], "parameters": params,
           "reds_psnr": sum(a for a, _ in reds_light) / len(reds), "reds_ssim": sum(b for _, b in reds_light) / len(reds),
           "held_psnr": sum(a for a, _ in held_light) / len(held), "held_ssim": sum(b for _, b in held_light) / len(held),
           "s_per_frame": round(seconds(lambda: light_restore(net, reds[0][1], REDS_THRESHOLD)), 3)}  # fmt: skip
    history = append_history(args.out / "history.jsonl", row)
    ours = [
        spikegen_row(label, path, reds, args.count)
        for label, path in (a.split("=", 1) for a in args.spikegen)
    ]
    settings = {"light_run": args.out, "spikegen": args.spikegen, "count": args.count, "threads": args.threads,
                "reds_threshold": REDS_THRESHOLD, "light_frames": FRAMES}  # fmt: skip
    meta = bench_meta("cpu")
    command = "python scripts/bench/bench_core_sidebyside.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    result = {**meta, "benchmark": "core_sidebyside", "command": command, "settings": settings, "light": history,
              "ours": ours}  # fmt: skip
    cols = [
        "model",
        "step",
        "training CPU-h",
        "+ CPU-h of the stages it started from",
        "parameters",
        "REDS PSNR",
        "REDS SSIM",
        "held-out PSNR (luma)",
        "held-out SSIM",
        "s / 250×400 frame",
    ]
    rows = [[f"light net ({FRAMES} frames as channels)", h["step"], h["cpu_h"], 0, h["parameters"], round(h["reds_psnr"], 2),
             round(h["reds_ssim"], 4), round(h["held_psnr"], 2), round(h["held_ssim"], 4), h["s_per_frame"]]
            for h in history]  # fmt: skip
    rows += [[r["label"], r["step"], r["cpu_h"], r["cpu_h_before"], r["parameters"], round(r["reds_psnr"], 2), round(r["reds_ssim"], 4),
              round(r["held_psnr"], 2), round(r["held_ssim"], 4), r["s_per_frame"]] for r in ours]  # fmt: skip
    title = "Side-by-side: a light field-style net vs SpikeGen on the same data and CPU (issue 20)"
    note = (
        "Both train on the natural fine-tuning preset's batch stream (photographs, θ ∈ [1.2, 3]) on one CPU thread "
        "(a SpikeGen stage with `--threads 2` says so in its settings). CPU-h: the stage's own CPU time; then that "
        "of the fine-tuning stages it started from (a model made by scripts/dev/add_window_cnn.py: the base "
        "fine-tuning and the WindowCNN's training); SpikeGen's autoencoder and pretraining stages are not counted. "
        f"REDS: the {len(reds)} shared samples, θ = {REDS_THRESHOLD}, field protocol. Held-out: {len(held)} "
        "exposures of photographs training never sees, 41 ticks, θ = 2, from spikes alone. Time: one 250×400 "
        f"frame, {args.threads} thread(s), on a shared machine; SpikeGen tiled at 64 as in benchmarks/core_natural.md."
    )
    result |= {
        "title": title,
        "tables": [
            {
                "title": "REDS samples and held-out natural reconstruction (spikes only)",
                "columns": cols,
                "rows": rows,
                "note": note,
                "headline": True,
            }
        ],
    }
    md = [
        f"# {title}",
        "",
        f"- commit `{meta['commit']}`, {meta['date']}",
        f"- machine: {machine_summary(meta['machine'])}",
        f"- rerun: `{command}`",
        f"- settings: {settings_line(settings)}",
        "",
        *markdown_table(cols, rows),
        "",
        note,
        "",
    ]
    write_results(args.bench, result, md)
    print("\n".join(md))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the light net (resumable)")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=40_000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--init", help="fast-model checkpoint or training folder to continue from (default: scratch)")
    t.add_argument("--motion-max", type=float, help="upper bound of the camera-motion scale (default: the stream's 1)")
    t.add_argument("--seed", type=int, help="batch-stream seed (default: the natural preset's)")
    t.add_argument("--collage", type=float, help="fraction of photo-collage canvases in the stream (default: none)")
    e = sub.add_parser("eval", help="score the light net's newest EMA beside SpikeGen's")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--spikegen", nargs="*", default=[], metavar="LABEL=PATH",
                   help="SpikeGen checkpoints or training folders (newest EMA) to score beside it")  # fmt: skip
    e.add_argument("--data", type=Path, default=DEFAULT_DATA)
    e.add_argument("--count", type=int, default=8)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--bench", type=Path, default=REPO / "benchmarks" / "core_sidebyside")
    args = p.parse_args()
    if args.cmd == "train":
        train(args.out, args.steps, args.lr, args.init, args.motion_max, args.seed, args.collage)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
