"""Benchmark: one generated scene with its RGB frames stored sRGB-encoded (what a camera stores) vs linear.

The same world, seed and spikes (simulated from the linear radiance either way); only the stored RGB frames (blurred,
sharp, test ground truth, seed colours) differ. Trains ``spikegen-splat`` and the splatfacto baseline on the
blurred frames (``spikegen-baseline``) on each at the quick-start schedule and scores the test views as ``ns-eval``
does, each against its own ground truth. Writes ``benchmarks/radiometry.md`` and ``benchmarks/radiometry.json``.

Reproduce: ``python scripts/bench_radiometry.py`` (about 20 CPU minutes; ``--reuse`` reports saved runs,
``--responses srgb`` runs one half, so the halves can run in parallel).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _bench_meta import bench_meta, markdown_table, write_results  # noqa: E402
from bench_nvs import train_and_eval  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402

QUICKSTART_STEPS = 1000  # scripts/quickstart_nvs.sh's schedule
METHODS = {"spikegen-splat": "spikegen-splat", "blur": "splatfacto on the blurred RGB frames"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=QUICKSTART_STEPS)
    parser.add_argument("--seed", type=int, default=0, help="scene seed (the sample scene is seed 0)")
    parser.add_argument("--size", default=None, help="WxH instead of the sample's 96x72 (e.g. 48x36: 4x cheaper)")
    parser.add_argument("--crop", type=float, default=None, help="spikegen-splat's window_crop (default: its own)")
    parser.add_argument("--responses", nargs="*", default=["srgb", "linear"], choices=["srgb", "linear"])
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_radiometry")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="report runs saved by earlier invocations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    size = dict(zip(("width", "height"), map(int, args.size.split("x")), strict=True)) if args.size else {}
    tag = f"-{args.size}" if args.size else ""
    overrides = {"window_crop": args.crop} if args.crop is not None else {}
    tag += f"-crop{args.crop:g}" if args.crop is not None else ""
    for response in ("srgb", "linear"):
        scene = args.work / "scenes" / f"sample-seed{args.seed}{f'-{args.size}' if args.size else ''}-{response}"
        for method in METHODS:
            saved = args.work / "results" / f"{scene.name}{tag if method != 'blur' else ''}_{method}_{args.steps}.json"
            if saved.is_file() and (args.reuse or response not in args.responses):
                results.setdefault(response, {})[method] = json.loads(saved.read_text())
                continue
            if response not in args.responses:
                continue
            if not (scene / "transforms.json").is_file():
                make_scene(scene, preset="sample", seed=args.seed, rgb_response=response, **size)
            torch.manual_seed(42)
            print(f"[bench_radiometry] {response}: {method} ({args.steps} iterations)", flush=True)
            res = train_and_eval(method, scene, args.work / "runs", args.steps,
                                 overrides=overrides if method != "blur" else {})  # fmt: skip
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(res))
            results.setdefault(response, {})[method] = res
            print(f"[bench_radiometry]   PSNR {res['psnr']:.2f} SSIM {res['ssim']:.4f}", flush=True)
    if set(results) != {"srgb", "linear"} or any(len(r) < len(METHODS) for r in results.values()):
        print("[bench_radiometry] not every run is done; rerun with --reuse once they are")
        return
    rows = [[response, METHODS[m], r["psnr"], r["ssim"], r["s_per_iter_cpu"]]
            for response, res in results.items() for m, r in res.items()]  # fmt: skip
    delta = results["srgb"]["spikegen-splat"]["psnr"] - results["linear"]["spikegen-splat"]["psnr"]
    margin = {k: results[k]["spikegen-splat"]["psnr"] - results[k]["blur"]["psnr"] for k in results}
    command = "python scripts/bench_radiometry.py" + (f" --size {args.size}" if args.size else "")
    command += f" --crop {args.crop:g}" if args.crop is not None else ""
    result = {
        **bench_meta("cpu"), "benchmark": "radiometry", "command": command,
        "settings": {"steps": args.steps, "seed": args.seed, "train_seed": 42, "threads": args.threads,
                     "size": args.size or "96x72", "window_crop": args.crop},
        "results": results, "srgb_minus_linear_psnr": delta, "spikegen_minus_blur_psnr": margin,
    }  # fmt: skip
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) and v < 1 else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    md = [
        "# Radiometry: the same scene with sRGB-encoded vs linear RGB frames",
        "",
        f"- commit `{result['commit']}`, {result['date']}; CPU, {args.threads} torch thread(s)",
        f"- scene: `spikegen make-scene --seed {args.seed} --rgb-response srgb|linear`"
        + (f" at {args.size}" if args.size else " (the sample scene)") + "; the spikes "
        "are identical (simulated from the linear radiance), the stored RGB frames differ",
        f"- {args.steps} iterations (the quick-start schedule), training seed 42; test PSNR/SSIM as `ns-eval`, each "
        "scene against its own ground truth (display-encoded for sRGB)",
        "",
        *markdown_table(["RGB frames", "method", "PSNR", "SSIM", "CPU s/iter"], rows, fmt),
        "",
        f"spikegen-splat, sRGB − linear: {delta:+.2f} dB. spikegen-splat − splatfacto on blurred frames: "
        + ", ".join(f"{k} {v:+.2f} dB" for k, v in margin.items()),
        "",
        f"Reproduce: `{command}`",
    ]
    write_results(ROOT / "benchmarks" / f"radiometry{tag}", result, md)
    print(f"[bench_radiometry] wrote benchmarks/radiometry{tag}.md ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
