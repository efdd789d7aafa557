"""Benchmark the spike camera simulator (and synthetic-pair generation) and write benchmarks/simulator.{md,json}.

Default: one second of spike time (20,000 ticks at 20 kHz) at 250×400 on ONE CPU thread, driven by a few
intensity frames linearly interpolated to every tick. Chunks are streamed (``CameraModel.iter_chunks``) and
counted, not kept: the whole second would be 2 GB of uint8. Target: under 10 s.

    python scripts/bench/bench_simulator.py                 # the reference measurement
    python scripts/bench/bench_simulator.py --ticks 2000    # quick check
    python scripts/bench/bench_simulator.py --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _bench_meta import commit_hash, cpu_model, write_results

from spikegen_core.data.pairs import SyntheticPairs
from spikegen_core.spikes.camera import CameraModel

REPO = Path(__file__).resolve().parents[2]


def bench_simulator(args: argparse.Namespace) -> dict:
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand((args.frames, args.height, args.width), generator=gen)
    camera = CameraModel(threshold=args.threshold, chunk_ticks=args.chunk_ticks, dark_rate=args.dark_rate)
    times, cpu_times, spikes = [], [], 0
    for _ in range(args.repeat):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        total = 0
        for chunk in camera.iter_chunks(frames, args.ticks, seed=1, device=args.device):
            total += chunk.shape[0]
            if args.count_spikes:
                spikes += int(chunk.sum())
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        assert total == args.ticks
    best = min(times)
    return {
        "seconds": round(best, 3),
        "seconds_all": [round(t, 3) for t in times],
        # CPU time of this process: on a shared machine wall time also counts waiting for a core.
        "cpu_seconds": round(min(cpu_times), 3),
        "ticks_per_s": round(args.ticks / best, 1),
        "pixel_ticks_per_s": round(args.ticks * args.height * args.width / best, 1),
        "spike_time_s": args.ticks / camera.clock_hz,
        "realtime_factor": round(args.ticks / camera.clock_hz / best, 4),
        "mean_rate": spikes / (args.repeat * args.ticks * args.height * args.width) if args.count_spikes else None,
    }


def bench_pairs(n: int) -> dict:
    ds = SyntheticPairs(size=64, num_spike_frames=32, length=n + 1, seed=0)
    ds[n]  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(n):
        ds[i]
    per, cpu_per = (time.perf_counter() - start) / n, (time.process_time() - cpu_start) / n
    return {
        "size": 64, "num_spike_frames": 32, "samples": n,
        "ms_per_sample": round(per * 1000, 2), "cpu_ms_per_sample": round(cpu_per * 1000, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=20_000)
    p.add_argument("--height", type=int, default=250)
    p.add_argument("--width", type=int, default=400)
    p.add_argument("--frames", type=int, default=3, help="intensity frames spread over the stream")
    p.add_argument("--threshold", type=float, default=2.0)
    p.add_argument("--dark-rate", type=float, default=0.0)
    p.add_argument("--chunk-ticks", type=int, default=32)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--pairs", type=int, default=100, help="synthetic 64×64 samples to time (0 to skip)")
    p.add_argument("--count-spikes", action="store_true", help="also sum the spikes (adds a pass)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "simulator")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"}
    result = {
        "commit": commit_hash(),
        "cpu": cpu_model(),
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "settings": settings,
        "simulator": bench_simulator(args),
        "pairs": bench_pairs(args.pairs) if args.pairs else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    sim = result["simulator"]
    lines = [
        "# Spike camera simulator benchmark",
        "",
        f"- commit `{result['commit']}`, torch {result['torch']}, {result['date']}",
        f"- CPU: {result['cpu']} ({args.threads} thread(s)); device: {result['device']}; "
        f"load average {result['load_average_1min']} on {result['cpu_count']} cores at the end of the run",
        f"- settings: {args.height}×{args.width}, {args.ticks} ticks ({sim['spike_time_s']:g} s at 20 kHz), "
        f"{args.frames} intensity frames linearly interpolated, θ={args.threshold}, dark rate {args.dark_rate}, "
        f"chunks of {args.chunk_ticks} ticks, streamed (not stored), best of {args.repeat}",
        "",
        "| wall seconds | CPU seconds | ticks/s (wall) | pixel-ticks/s (wall) | real-time factor |",
        "|---:|---:|---:|---:|---:|",
        f"| {sim['seconds']} | {sim['cpu_seconds']} | {sim['ticks_per_s']:,.0f} | {sim['pixel_ticks_per_s']:,.0f} "
        f"| {sim['realtime_factor']} |",
    ]
    if result["pairs"]:
        pr = result["pairs"]
        lines += ["", f"Synthetic pairs (`SyntheticPairs`, 64×64, T=32): {pr['ms_per_sample']} ms wall, "
                  f"{pr['cpu_ms_per_sample']} ms CPU per sample (mean of {pr['samples']})."]
    lines += ["", f"Reproduce: `python scripts/bench/bench_simulator.py --ticks {args.ticks} --threads {args.threads}`", ""]
    write_results(args.out, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
