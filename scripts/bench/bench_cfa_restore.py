"""Benchmark: restoring colour (Bayer CFA) spike windows to RGB frames, TFP vs the core model two ways.

On the colour-spike scenes of ``bench_cfa.py`` (``spikegen make-scene --cfa RGGB --no-rgb``, seeds 0 and 1) every
training window is restored
  - ``tfp``: TFP per site over the central ``--tfp-window`` ticks, demosaiced (the datamanager's colour frames),
  - ``model, mosaic``: the grey core model run on the whole mosaic as if it were grey, then demosaiced,
  - ``model, per site``: the grey core model run on each filter site's half-resolution plane, re-interleaved,
    demosaiced (``spikegen_core.video.restorers.DemosaicRestorer(per_site=True)``),
and scored against the window's sharp frame (both display-encoded as the scene's RGB files are). Writes
``benchmarks/cfa_restore.md``/``.json``.
Reproduce: ``python scripts/bench/bench_cfa_restore.py`` (``--checkpoint`` for other weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))
from _bench_meta import bench_meta, markdown_table, write_results  # noqa: E402
from bench_cfa import scene_path  # noqa: E402

from spikegen_core import radiometry  # noqa: E402
from spikegen_core.spikes.io import read_dat  # noqa: E402
from spikegen_core.spikes.reconstruct import colour_frame  # noqa: E402
from spikegen_core.video.restorers import DemosaicRestorer, ModelRestorer  # noqa: E402

METHODS = ("tfp", "model, mosaic", "model, per site")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(max(float(((a - b) ** 2).mean()), 1e-12)))


def score_scene(scene: Path, model: ModelRestorer, tfp_window: int) -> dict[str, dict[str, float]]:
    meta = json.loads((scene / "transforms.json").read_text())
    response = radiometry.from_text(meta.get("rgb_response", "linear"))
    scores: dict[str, list[float]] = {m: [] for m in METHODS}
    seconds: dict[str, float] = {m: 0.0 for m in METHODS}
    for frame in (f for f in meta["frames"] if "spike_path" in f):
        stream = read_dat(scene / frame["spike_path"])
        sharp = np.asarray(Image.open(scene / frame["sharp_path"]).convert("RGB"), np.float32) / 255
        theta = float(frame.get("spike_threshold", meta["spike"]["threshold"]))
        for method in METHODS:
            start = time.process_time()
            if method == "tfp":
                rgb = colour_frame(stream, window=tfp_window, threshold=theta).clamp(0, 1)
            else:
                restorer = DemosaicRestorer(model, stream.cfa, stream.cfa_gains, per_site=method.endswith("site"))
                rgb = restorer(stream.spikes[None], threshold=theta)[0]  # this window's θ
            seconds[method] += time.process_time() - start
            shown = response.encode(rgb).permute(1, 2, 0).numpy()
            scores[method].append(psnr(shown, sharp))
    n = len(scores["tfp"])
    return {m: {"psnr": float(np.mean(v)), "cpu_s_per_frame": seconds[m] / n, "windows": n} for m, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_cfa")
    parser.add_argument("--checkpoint", type=Path, default=None, help="core model weights (default: the shipped ones)")
    parser.add_argument("--tfp-window", type=int, default=21, help="TFP's central ticks (spikegen-splat's setting)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = ModelRestorer(args.checkpoint).load()
    results = {f"seed{s}": score_scene(scene_path(args.work, "colour", s), model, args.tfp_window) for s in args.seeds}
    rows = [[key, m, round(r["psnr"], 2), round(r["cpu_s_per_frame"], 3), r["windows"]]
            for key, res in results.items() for m, r in res.items()]  # fmt: skip
    mean = {m: float(np.mean([res[m]["psnr"] for res in results.values()])) for m in METHODS}
    best = max(mean, key=mean.get)
    command = "python scripts/bench/bench_cfa_restore.py" + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "")
    result = {**bench_meta("cpu"), "benchmark": "cfa_restore", "command": command,
              "settings": {"seeds": args.seeds, "tfp_window": args.tfp_window,
                           "checkpoint": str(args.checkpoint) if args.checkpoint else "shipped"},
              "results": results, "mean_psnr": mean, "best": best}  # fmt: skip
    md = [
        "# Colour (Bayer CFA) spike windows to RGB: TFP vs the core model on the mosaic vs per filter site",
        "",
        f"- commit `{result['commit']}`, {result['date']}; CPU, 1 torch thread",
        "- windows: every training window of the colour-spike scenes of `bench_cfa.py` (RGGB, 96x72, 64 ticks), "
        "scored against its sharp frame in the scene's display encoding",
        f"- core model: {'the shipped tiny checkpoint' if args.checkpoint is None else args.checkpoint}",
        "",
        *markdown_table(["scene", "method", "PSNR", "CPU s/frame", "windows"], rows),
        "",
        "Mean PSNR: " + ", ".join(f"{m} {v:.2f} dB" for m, v in mean.items()) + f"; best: **{best}**.",
        "",
        f"Reproduce: `{command}`",
    ]
    write_results(ROOT / "benchmarks" / "cfa_restore", result, md)
    print(f"[bench_cfa_restore] wrote benchmarks/cfa_restore.md; mean PSNR {mean}")


if __name__ == "__main__":
    main()
