"""Benchmark the CPU Gaussian rasteriser (forward + backward) and write benchmarks/rasterizer.{md,json}.

Settings: 180×240, scene-like random clouds (``random_splat_scene``) of 10 k and 50 k Gaussians, one
camera and 8 cameras, RGB+ED with absgrad (what splatfacto asks for), a loss on colours and alphas,
backward to all Gaussian parameters.  Median (and min) of ``--repeat`` timed iterations after one
warm-up; the first call (numba cache load or JIT compile) is reported separately.  The dense float32
reference compositor runs in the same process where it fits (``--dense-n``, default 1 k Gaussians).
Goal: ≤ 0.1 s per iteration at 1 camera, 10 k Gaussians, 2 threads.  The machine is shared, so
the 1-minute load average is recorded with each row.

    python scripts/bench/bench_rasterizer.py                     # the reference measurement (< 2 min)
    python scripts/bench/bench_rasterizer.py --sizes 10000 --cams 1 --repeat 3   # quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _bench_meta import commit_hash, cpu_model, write_results

from spikegen_nvs.rasterizer._reference import reference_rasterization
from spikegen_nvs.rasterizer._scenes import random_splat_scene
from spikegen_nvs.rasterizer.cpu import compositor_name, rasterization

REPO = Path(__file__).resolve().parents[2]


def time_iterations(
    render: Callable, n: int, n_cams: int, repeat: int, sh_degree: int | None = None, **kw
) -> dict:
    """Forward + backward timings (seconds) of ``render`` on a fresh random scene."""
    scene = random_splat_scene(n, n_cams, sh_degree=sh_degree)
    leaves = [p.clone().requires_grad_(True) for p in scene.params()]
    info: dict = {}

    def once() -> tuple[float, float, float]:
        c0 = time.process_time()
        t0 = time.perf_counter()
        colors, alphas, meta = render(*leaves, scene.viewmats, scene.Ks, scene.width, scene.height,
                                      render_mode="RGB+ED", sh_degree=sh_degree, **kw)  # fmt: skip
        t1 = time.perf_counter()
        (colors[..., :3].mean() + 0.01 * colors[..., 3].mean() + alphas.mean()).backward()
        t2 = time.perf_counter()
        cpu = time.process_time() - c0
        for p in leaves:
            p.grad = None
        if "flatten_ids" in meta:
            info["intersections"] = int(meta["flatten_ids"].numel())
        info["visible"] = int((meta["radii"] > 0).sum())
        return t1 - t0, t2 - t1, cpu

    first = once()
    runs = [once() for _ in range(repeat)]
    totals = [f + b for f, b, _ in runs]
    return {
        "gaussians": n,
        "cameras": n_cams,
        "sh_degree": sh_degree,
        "first_call_s": round(first[0] + first[1], 4),
        "forward_median_s": round(statistics.median(r[0] for r in runs), 4),
        "backward_median_s": round(statistics.median(r[1] for r in runs), 4),
        "cpu_time_median_s": round(statistics.median(r[2] for r in runs), 4),
        "total_median_s": round(statistics.median(totals), 4),
        "total_min_s": round(min(totals), 4),
        "load_average_1min": round(os.getloadavg()[0], 2),
        **info,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    p.add_argument("--cams", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sh-degree", type=int, default=3, help="extra row with SH colours (-1 to skip)")
    p.add_argument("--dense-n", type=int, default=1000, help="Gaussians for the dense comparison (0 to skip)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "rasterizer")
    p.add_argument("--omp-spin", action="store_true", help="keep OpenMP's default busy-wait policy")
    args = p.parse_args()
    if not args.omp_spin and "OMP_WAIT_POLICY" not in os.environ:
        # On a shared machine, OpenMP workers that busy-wait between torch ops steal the cores the other
        # thread needs (1 s instead of 0.15 s per iteration at load 8 on 2 cores).  The policy is read when
        # the OpenMP runtime starts, so restart this script with it set.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    torch.set_num_threads(args.threads)
    args.sh_degree = None if args.sh_degree < 0 else args.sh_degree

    rows = []
    sizes = sorted({*args.sizes, *([args.dense_n] if args.dense_n else [])})
    for n in sizes:
        for n_cams in args.cams:
            if n == args.dense_n and n not in args.sizes and n_cams != 1:
                continue
            row = time_iterations(rasterization, n, n_cams, args.repeat, absgrad=True)
            row["renderer"] = f"tiled ({compositor_name()})"
            rows.append(row)
            print(row, flush=True)
    if args.sh_degree is not None:  # splatfacto's colours after warm-up: view-dependent SH
        row = time_iterations(
            rasterization, args.sizes[0], 1, args.repeat, sh_degree=args.sh_degree, absgrad=True
        )
        row["renderer"] = f"tiled ({compositor_name()}), SH degree {args.sh_degree}"
        rows.append(row)
        print(row, flush=True)
    if args.dense_n:
        # float32 and tile-free: every Gaussian against every pixel; O(N·H·W) memory, so small N only.
        row = time_iterations(
            reference_rasterization, args.dense_n, 1, max(1, args.repeat // 2), dtype=torch.float32
        )
        row["renderer"] = "dense reference (float32)"
        rows.append(row)
        print(row, flush=True)

    result = {
        "commit": commit_hash(),
        "cpu": cpu_model(),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "settings": {
            "width": 240,
            "height": 180,
            "render_mode": "RGB+ED",
            "absgrad": True,
            "repeat": args.repeat,
            "scene": "random_splat_scene (depth 2-6, scales 4-40 mm, focal 200 px)",
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "default"),
        },  # fmt: skip
        "rows": rows,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    lines = [
        "# CPU Gaussian rasteriser benchmark (forward + backward)",
        "",
        f"- commit `{result['commit']}`, torch {result['torch']}, {result['date']}",
        f"- CPU: {result['cpu']}, {args.threads} thread(s) of {result['cpu_count']} cores (shared machine: "
        f"see the load average per row), OMP_WAIT_POLICY={result['settings']['OMP_WAIT_POLICY']}",
        f"- 180×240, RGB+ED, absgrad, `random_splat_scene`; median / min of {args.repeat} iterations after a "
        "warm-up; first call = numba cache load (or JIT) + one iteration",
        "- goal: ≤ 0.1 s per iteration at 1 camera, 10 k Gaussians. Wall times are medians on a shared machine; "
        "'CPU time' is this process's CPU seconds per iteration (all threads), which contention inflates less",
        "",
        "| renderer | Gaussians | cameras | intersections | fwd median s | bwd median s | total median s "
        "| total min s | CPU time s | first call s | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['renderer']} | {r['gaussians']:,} | {r['cameras']} | {r.get('intersections', '—')} "
            f"| {r['forward_median_s']} | {r['backward_median_s']} | {r['total_median_s']} | {r['total_min_s']} "
            f"| {r['cpu_time_median_s']} | {r['first_call_s']} | {r['load_average_1min']} |"
        )
    lines += [
        "",
        "The dense reference is only run at the smallest size: at 10 k Gaussians its autograd graph would need "
        "tens of GB.",
        "",
        f"Reproduce: `python scripts/bench/bench_rasterizer.py --threads {args.threads} --repeat {args.repeat}`",
        "",
    ]
    write_results(args.out, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
