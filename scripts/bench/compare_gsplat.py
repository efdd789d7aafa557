"""GPU-only parity and speed check: our CPU rasteriser vs gsplat 1.4.0's CUDA ``rasterization``.

For each setting, the same scene is rendered by gsplat on CUDA and by ``render_cpu.rasterization`` on
CPU with splatfacto's arguments (``packed=False``, RGB+ED, absgrad), a fixed random linear loss on
colours, depth and alpha is back-propagated, and the script compares images, alphas, expected depth,
radii, ``means2d`` and its grad/absgrad, and the gradients of means, quats, scales, opacities and colours.
It then times forward + backward of both (median of ``--repeat``) and writes
benchmarks/rasterizer_vs_gsplat.{md,json}.  Needs a CUDA device; the first gsplat call may JIT-compile
its extension (minutes) and is excluded from timings.

    python scripts/bench/compare_gsplat.py                      # default settings
    python scripts/bench/compare_gsplat.py --sizes 10000 --cams 1 --repeat 3
    python scripts/bench/compare_gsplat.py --dry-run --sizes 300 --cams 1 --repeat 1 --out /tmp/cmp   # CPU, no gsplat

``--dry-run`` (for scripts/gpu_check.sh's CPU test) takes our torch compositor on CPU as the reference instead of
gsplat, so every step but gsplat's runs where there is no GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _bench_meta import commit_hash, write_results

from spikegen_nvs.rasterizer._scenes import random_splat_scene
from spikegen_nvs.rasterizer.cpu import compositor_name
from spikegen_nvs.rasterizer.cpu import rasterization as cpu_rasterization

REPO = Path(__file__).resolve().parents[2]
PARAMS = ("means", "quats", "scales", "opacities", "colors")
# Pass thresholds.  Both sides are float32 with different summation orders, and a splat whose α sits
# at 1/255 or a pixel whose T sits at 1e-4 may flip between them, so a handful of pixels may differ
# more: the image check is on the mean and on the 99.9th percentile of |difference|.
TOL = {"image_mean": 1e-4, "image_p999": 5e-3, "depth_p999": 5e-2, "grad_rel_l2": 2e-2}


def render(fn, scene, device: str, weights: torch.Tensor, kw: dict) -> dict:
    """One forward + backward on ``device``; returns outputs, grads and timings (CPU tensors)."""
    leaves = [p.detach().to(device).clone().requires_grad_(True) for p in scene.params()]
    viewmats, Ks = scene.viewmats.to(device), scene.Ks.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    colors, alphas, meta = fn(*leaves, viewmats, Ks, scene.width, scene.height, **kw)
    sync()
    t1 = time.perf_counter()
    meta["means2d"].retain_grad()  # what DefaultStrategy does before backward
    w = weights.to(device)
    loss = (colors[..., :3] * w[..., :3]).sum() + 0.01 * (colors[..., 3] * w[..., 3]).sum()
    loss = loss + (alphas[..., 0] * w[..., 4]).sum()
    loss.backward()
    sync()
    t2 = time.perf_counter()
    m2d = meta["means2d"]
    return {
        "colors": colors.detach().cpu(),
        "alphas": alphas.detach().cpu(),
        "radii": meta["radii"].cpu(),
        "means2d": m2d.detach().cpu(),
        "means2d_grad": m2d.grad.cpu(),
        "means2d_absgrad": m2d.absgrad.cpu() if getattr(m2d, "absgrad", None) is not None else None,
        "grads": [p.grad.cpu() for p in leaves],
        "fwd_s": t1 - t0,
        "bwd_s": t2 - t1,
    }


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def compare(ours: dict, ref: dict) -> dict:
    """Differences of ours (CPU) against gsplat (CUDA)."""
    rgb_diff = (ours["colors"][..., :3] - ref["colors"][..., :3]).abs()
    alpha_diff = (ours["alphas"] - ref["alphas"]).abs()
    covered = ref["alphas"][..., 0] > 0.05
    depth_diff = (ours["colors"][..., 3] - ref["colors"][..., 3]).abs()[covered]
    vis = ref["radii"] > 0
    out = {
        "radii_equal_fraction": float((ours["radii"] == ref["radii"]).float().mean()),
        "rgb_max": float(rgb_diff.max()),
        "rgb_mean": float(rgb_diff.mean()),
        "rgb_p999": float(torch.quantile(rgb_diff.flatten()[:10_000_000], 0.999)),
        "alpha_max": float(alpha_diff.max()),
        "alpha_mean": float(alpha_diff.mean()),
        "depth_p999": float(torch.quantile(depth_diff, 0.999)) if depth_diff.numel() else 0.0,
        "means2d_max": float((ours["means2d"] - ref["means2d"])[vis].abs().max()),
        "means2d_grad_rel_l2": rel_l2(ours["means2d_grad"][vis], ref["means2d_grad"][vis]),
    }
    if ours["means2d_absgrad"] is not None and ref["means2d_absgrad"] is not None:
        out["means2d_absgrad_rel_l2"] = rel_l2(ours["means2d_absgrad"][vis], ref["means2d_absgrad"][vis])
    for name, g_ours, g_ref in zip(PARAMS, ours["grads"], ref["grads"], strict=True):
        out[f"grad_{name}_rel_l2"] = rel_l2(g_ours, g_ref)
    grad_keys = [k for k in out if k.endswith("rel_l2")]
    out["pass"] = bool(
        out["radii_equal_fraction"] > 0.999
        and out["rgb_mean"] <= TOL["image_mean"]
        and out["alpha_mean"] <= TOL["image_mean"]
        and out["rgb_p999"] <= TOL["image_p999"]
        and out["depth_p999"] <= TOL["depth_p999"]
        and all(out[k] <= TOL["grad_rel_l2"] for k in grad_keys)
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    p.add_argument("--cams", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for our rasteriser")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "rasterizer_vs_gsplat")
    p.add_argument("--dry-run", action="store_true", help="reference = our torch compositor on CPU (no GPU needed)")
    args = p.parse_args()
    if args.dry_run:
        ref_device = "cpu"

        def gsplat_rasterization(*a, **kw):  # noqa: ANN002, ANN003 (stand-in with gsplat's signature)
            return cpu_rasterization(*a, compositor="torch", **kw)
    elif not torch.cuda.is_available():
        sys.exit("compare_gsplat.py needs a CUDA device (gsplat's rasteriser is CUDA-only); nothing written")
    else:
        ref_device = "cuda"
        from gsplat import rasterization as gsplat_rasterization

    torch.set_num_threads(args.threads)
    settings = []
    for n in args.sizes:
        for n_cams in args.cams:
            settings.append({"n": n, "cams": n_cams, "sh_degree": None, "rasterize_mode": "classic"})
    settings.append(
        {"n": args.sizes[0], "cams": args.cams[0], "sh_degree": 3, "rasterize_mode": "antialiased"}
    )

    rows = []
    for i, s in enumerate(settings):
        scene = random_splat_scene(s["n"], s["cams"], sh_degree=s["sh_degree"], seed=i)
        kw = {"packed": False, "render_mode": "RGB+ED", "sh_degree": s["sh_degree"], "absgrad": True,
              "rasterize_mode": s["rasterize_mode"], "near_plane": 0.01, "far_plane": 1e10}  # fmt: skip
        weights = torch.randn(
            s["cams"], scene.height, scene.width, 5, generator=torch.Generator().manual_seed(i)
        )
        render(gsplat_rasterization, scene, ref_device, weights, kw)  # warm-up (and JIT on the first call)
        render(cpu_rasterization, scene, "cpu", weights, kw)
        ref_runs = [render(gsplat_rasterization, scene, ref_device, weights, kw) for _ in range(args.repeat)]
        our_runs = [render(cpu_rasterization, scene, "cpu", weights, kw) for _ in range(args.repeat)]
        row = {
            **s,
            "gsplat_fwd_bwd_s": round(statistics.median(r["fwd_s"] + r["bwd_s"] for r in ref_runs), 5),
            "ours_fwd_bwd_s": round(statistics.median(r["fwd_s"] + r["bwd_s"] for r in our_runs), 4),
            **{
                k: (round(v, 7) if isinstance(v, float) else v)
                for k, v in compare(our_runs[0], ref_runs[0]).items()
            },
        }
        rows.append(row)
        print(row, flush=True)

    result = {
        "commit": commit_hash().removesuffix("-dirty"),  # this file has always recorded the bare hash
        "gpu": "none (--dry-run: reference = our torch compositor)" if args.dry_run else torch.cuda.get_device_name(0),
        "cpu_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "compositor": compositor_name(),
        "torch": torch.__version__,
        "tolerances": TOL,
        "rows": rows,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    lines = [
        "# CPU rasteriser vs gsplat 1.4.0 (CUDA)",
        "",
        f"- commit `{result['commit']}`, torch {result['torch']}, {result['date']}",
        f"- gsplat on {result['gpu']}; ours on CPU, {args.threads} thread(s), compositor {result['compositor']}",
        "- 180×240, packed=False, RGB+ED, absgrad; fixed random linear loss on RGB, depth (×0.01) and alpha",
        f"- pass: radii equal on > 99.9 %, mean |Δ| ≤ {TOL['image_mean']} (RGB, alpha), 99.9th pct |ΔRGB| ≤ "
        f"{TOL['image_p999']}, 99.9th pct |Δdepth| ≤ {TOL['depth_p999']} where alpha > 0.05, every gradient's "
        f"relative L2 error ≤ {TOL['grad_rel_l2']}",
        "",
        "| N | C | SH | mode | gsplat s | ours s | RGB mean / max | alpha max | depth p99.9 | worst grad rel L2 | pass |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        worst = max(v for k, v in r.items() if k.endswith("rel_l2"))
        lines.append(
            f"| {r['n']:,} | {r['cams']} | {r['sh_degree']} | {r['rasterize_mode']} | {r['gsplat_fwd_bwd_s']} "
            f"| {r['ours_fwd_bwd_s']} | {r['rgb_mean']:.2e} / {r['rgb_max']:.2e} | {r['alpha_max']:.2e} "
            f"| {r['depth_p999']:.2e} | {worst:.2e} | {'yes' if r['pass'] else 'NO'} |"
        )
    lines += [
        "",
        f"Reproduce: `python scripts/bench/compare_gsplat.py --repeat {args.repeat} --threads {args.threads}`",
        "",
    ]
    write_results(args.out, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
