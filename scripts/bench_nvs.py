"""Benchmark: spikegen-splat vs splatfacto-style baselines on generated high-speed spike scenes (CPU or CUDA).

For each scene (the README's sample scene and a faster, blurrier one with another seed) it trains, with the
same iterations and seed,
  - ``spikegen-splat`` (dense TFP frames + spike re-synthesis + re-blur losses),
  - ``spikegen-baseline`` on (a) TFP frames, (b) the blurred RGB frames, (c) the sharp frames (upper bound),
scores the test views as ``ns-eval`` does (PSNR/SSIM against the sharp ground truth), times the iterations
(wall and process CPU seconds) and writes ``benchmarks/nvs.md``, ``benchmarks/nvs.json`` and side-by-side
PNGs of test views (blur | TFP | spikegen-splat | sharp | ground truth) into ``docs/figures/``.

Reproduce: ``python scripts/bench_nvs.py`` (about an hour on a busy 2-core CPU; ``--steps`` to shorten).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench_meta import commit_hash, cpu_model  # noqa: E402
from _splat_runs import iterate, place, saved_run, start  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402
from spikegen_core.utils import atomic_write  # noqa: E402
from spikegen_nvs.config import make_baseline_config, make_trainer_config  # noqa: E402

METHODS = ("blur", "tfp", "spikegen-splat", "sharp")  # figure column order (ground truth is appended)
LABELS = {"blur": "splatfacto on blurred RGB", "tfp": "splatfacto on TFP", "spikegen-splat": "spikegen-splat",
          "sharp": "splatfacto on sharp frames (upper bound)"}  # fmt: skip
SCENES = {
    "sample": {"preset": "sample", "seed": 0},  # what `spikegen make-scene` writes by default
    "fast-seed1": {"preset": "sample", "seed": 1, "orbit_deg_per_s": 3600.0},  # twice the speed: ~10 px blur
}


def build_config(method: str, scene: Path, out: Path, steps: int, device: str, overrides: dict[str, Any]):
    """The trainer config ``ns-train`` would build for ``method`` (``spikegen-splat`` or a baseline's images)."""
    if method == "spikegen-splat":
        config = make_trainer_config(max_steps=steps)
    else:
        config = make_baseline_config(method, max_steps=steps)
    for key, value in overrides.items():  # "name" → the model's field, "datamanager.name" → the datamanager's
        owner, _, name = key.rpartition(".")
        setattr(config.pipeline.datamanager if owner == "datamanager" else config.pipeline.model, name, value)
    return place(config, scene, out, method, device)


def train_and_eval(method: str, scene: Path, out: Path, steps: int, device: str = "cpu",
                   overrides: dict[str, Any] | None = None, renders: Path | None = None) -> dict[str, Any]:
    """Train (the Trainer's own iteration and callbacks), then score the test views as ns-eval does."""
    config = build_config(method, scene, out, steps, device, overrides or {})
    trainer = start(config)
    pipeline = trainer.pipeline
    run = iterate(trainer, steps)
    wall, cpu = run["wall"], run["cpu"]
    trainer.save_checkpoint(steps - 1)
    pipeline.eval()
    metrics = pipeline.get_average_eval_image_metrics()
    result = {
        "psnr": float(metrics["psnr"]), "ssim": float(metrics["ssim"]),
        "s_per_iter_wall": float(np.median(wall[1:])), "s_per_iter_cpu": float(np.median(cpu[1:])),
        "train_wall_s": float(sum(wall)), "train_cpu_s": float(sum(cpu)), "gaussians": int(pipeline.model.num_points),
        "config": str(config.get_base_dir() / "config.yml"),
    }  # fmt: skip
    if renders is not None:
        pipeline.eval()  # get_average_eval_image_metrics leaves the pipeline in train mode
        renders.mkdir(parents=True, exist_ok=True)
        dm = pipeline.datamanager
        with torch.no_grad():
            for i in range(len(dm.eval_dataset)):
                camera, batch = _eval_view(dm, i)
                rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"].clamp(0, 1).cpu().numpy()
                Image.fromarray((rgb * 255).round().astype(np.uint8)).save(renders / f"{i:02d}.png")
                if method == "sharp":
                    gt = batch["image"][..., :3].float().cpu().numpy()
                    gt = gt / 255.0 if batch["image"].dtype == torch.uint8 else gt
                    Image.fromarray((gt * 255).round().astype(np.uint8)).save(renders / f"gt_{i:02d}.png")
    return result


def _eval_view(dm, i: int):
    """Camera and batch of eval view ``i`` (in order, unlike next_eval_image's random pick)."""
    camera = dm.eval_dataset.cameras[i : i + 1].to(dm.device)
    return camera, dm.cached_eval[i]


def side_by_side(render_dirs: dict[str, Path], out: Path, views: list[int], scale: int = 2) -> list[str]:
    """One PNG per test view: the methods in ``METHODS`` order, then the ground truth, upscaled ``scale``×."""
    written = []
    for i in views:
        tiles = [Image.open(render_dirs[m] / f"{i:02d}.png") for m in METHODS]
        tiles.append(Image.open(render_dirs["sharp"] / f"gt_{i:02d}.png"))
        w, h = tiles[0].size
        sheet = Image.new("RGB", (len(tiles) * w + (len(tiles) - 1) * 2, h), (255, 255, 255))
        for j, tile in enumerate(tiles):
            sheet.paste(tile.convert("RGB"), (j * (w + 2), 0))
        sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
        sheet.save(out.parent / f"{out.name}_view{i}.png", optimize=True)
        written.append(str((out.parent / f"{out.name}_view{i}.png").relative_to(ROOT)))
    return written


def write_report(report: dict[str, Any], md_path: Path, json_path: Path) -> None:
    with atomic_write(json_path, "w") as f:
        json.dump(report, f, indent=2)
    lines = [
        "# spikegen-splat vs splatfacto baselines (novel views of high-speed spike scenes)",
        "",
        f"- commit `{report['commit']}`, torch {report['torch']}, {report['date']}",
        f"- device: {report['device']}; CPU: {report['cpu']}, {report['threads']} thread(s), "
        f"load average at start {report['load_avg']}",
        f"- {report['steps']} iterations per run, seed {report['seed']}; every method uses the same schedule, "
        "densification and seed points (`spikegen_nvs.config`), baselines = `spikegen-baseline` (no spike/re-blur loss)",
        "- test PSNR/SSIM: the scene's held-out views (sharp ground truth at the window centre), as `ns-eval` computes them",
        "- s/iteration: median wall and process-CPU seconds (all threads) of one training iteration; the machine is "
        "shared (these runs were trained 4–5 at a time with other jobs), so CPU seconds are the steadier number",
        "",
        "| scene | method | PSNR | SSIM | s/iter (wall) | s/iter (CPU) | Gaussians |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scene, res in report["results"].items():
        for method in ("tfp", "blur", "spikegen-splat", "sharp"):
            r = res[method]
            lines.append(f"| {scene} | {LABELS[method]} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                         f"{r['s_per_iter_wall']:.3f} | {r['s_per_iter_cpu']:.3f} | {r['gaussians']:,} |")  # fmt: skip
    lines += ["", "Iteration-time ratio spikegen-splat / baseline (blur), CPU seconds: "
              + ", ".join(f"{s}: {v:.2f}×" for s, v in report["time_ratio_cpu"].items()), ""]  # fmt: skip
    lines += ["Gap closed (PSNR): (spikegen − best of TFP/blur) / (sharp − best of TFP/blur): "
              + ", ".join(f"{s}: {v:.0%}" for s, v in report["gap_closed"].items()), ""]  # fmt: skip
    lines += ["## Scenes", ""] + [f"- `{name}`: `{json.dumps(spec)}`" for name, spec in report["scenes"].items()]
    lines += ["", "## Settings", "", "```json", json.dumps(report["settings"], indent=1), "```", ""]
    lines += ["## Figures (blurred-RGB baseline | TFP baseline | spikegen-splat | sharp baseline | ground truth)", ""]
    lines += [f"![{p}](../{p})" for p in report["figures"]]
    lines += ["", "Reproduce: `python scripts/bench_nvs.py` (see `--help`)", ""]
    with atomic_write(md_path, "w") as f:
        f.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="iterations per run (default: the method's)")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_nvs", help="scenes and runs")
    parser.add_argument("--scenes", nargs="*", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS), help="runs to train")
    parser.add_argument("--reuse", action="store_true", help="reuse saved results of earlier runs (same steps)")
    parser.add_argument("--views", type=int, nargs="*", default=[0, 4], help="test views to put in the figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    default_steps = make_trainer_config().max_num_iterations
    steps = args.steps or default_steps
    report: dict[str, Any] = {
        "commit": commit_hash(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "device": args.device, "cpu": cpu_model(), "threads": args.threads,
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()), "steps": steps, "seed": 42,
        "scenes": {k: SCENES[k] for k in args.scenes}, "results": {}, "time_ratio_cpu": {}, "gap_closed": {},
        "figures": [],
    }  # fmt: skip
    spike_model = make_trainer_config(max_steps=steps).pipeline.model
    report["settings"] = {
        "spikegen-splat model": {k: v for k, v in dataclasses.asdict(spike_model).items()
                                 if isinstance(v, (int, float, str, bool)) or v is None},
        "spikegen-splat datamanager restorer": make_trainer_config().pipeline.datamanager.restorer,
    }  # fmt: skip
    figures = ROOT / "docs" / "figures"
    for name in args.scenes:
        spec = dict(SCENES[name])
        scene = args.work / "scenes" / name
        if not (scene / "transforms.json").is_file():
            make_scene(scene, preset=spec.pop("preset"), seed=spec.pop("seed"), **spec)
        res, dirs = {}, {}
        for method in ("tfp", "blur", "sharp", "spikegen-splat"):
            dirs[method] = args.work / "renders" / name / method
            result = saved_run(
                args.work / "results" / f"{name}_{method}_{steps}.json", reuse=args.reuse,
                wanted=method in args.methods, label=f"[bench_nvs] {name}: {method} ({steps} iterations)",
                run=partial(train_and_eval, method, scene, args.work / "runs", steps, args.device, renders=dirs[method]),
            )  # fmt: skip
            if result is not None:
                res[method] = result
        if len(res) < len(METHODS):
            print(f"[bench_nvs] {name}: only {sorted(res)} done; no report (rerun with --reuse for the rest)")
            return
        report["results"][name] = res
        report["time_ratio_cpu"][name] = res["spikegen-splat"]["s_per_iter_cpu"] / res["blur"]["s_per_iter_cpu"]
        best = max(res["tfp"]["psnr"], res["blur"]["psnr"])
        report["gap_closed"][name] = (res["spikegen-splat"]["psnr"] - best) / max(res["sharp"]["psnr"] - best, 1e-6)
        report["figures"] += side_by_side(dirs, figures / f"nvs_{name}", args.views)
    write_report(report, ROOT / "benchmarks" / "nvs.md", ROOT / "benchmarks" / "nvs.json")
    print(f"[bench_nvs] wrote benchmarks/nvs.md, benchmarks/nvs.json and {len(report['figures'])} figures")


if __name__ == "__main__":
    main()
