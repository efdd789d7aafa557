"""Benchmark: spikegen-splat vs splatfacto baselines on generated high-speed spike scenes, scene kinds × seeds × arms.

Scene kinds (``spikegen make-scene``; KINDS below): the object-centric orbit of the sample scene, the same orbit at
twice the speed, an inside-out room, a forward-facing hand-held capture, and the room at the spike sensor's native
400×250. Each seed is a different world (scene seed) and training seed. Arms, trained with the same iterations:
  - ``spikegen-splat`` (dense TFP frames + spike re-synthesis + re-blur losses),
  - ``spikegen-baseline`` (splatfacto) on (a) the blurred RGB frames ``blur``, (b) TFP frames ``tfp``, (c) the sharp
    frames ``sharp`` (upper bound).
Test views are scored as ``ns-eval`` does (PSNR/SSIM against the sharp ground truth); iterations are timed (wall and
process CPU seconds). Writes ``<out>.md`` / ``<out>.json`` (default ``benchmarks/nvs``) and one figure per kind
(test views: arms | ground truth) into ``--figures``. Finished runs are kept under ``--work/results``; ``--reuse``
takes them instead of training again (split a grid over processes, then report it together).

    python scripts/bench/bench_nvs.py                                   # the full grid (hours on a 2-core CPU)
    python scripts/bench/bench_nvs.py --kinds room --seeds 0 --steps 300  # one cell
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from _bench_meta import bench_meta, machine_summary, markdown_table, write_results  # noqa: E402
from _splat_runs import iterate, place, start  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402
from spikegen_nvs.config import make_baseline_config, make_trainer_config  # noqa: E402

ARMS = ("blur", "tfp", "spikegen-splat", "sharp")  # figure column order (ground truth is appended)
VARIANTS: dict[str, dict[str, Any]] = {  # optional arms (--arms): spikegen-splat with these model settings
    "rendered-views": {"window_views": "render", "num_virtual_views": 3},  # the default before the warp
}
ALL_ARMS = (*ARMS, *VARIANTS)
LABELS = {"blur": "splatfacto on blurred RGB", "tfp": "splatfacto on TFP", "spikegen-splat": "spikegen-splat",
          "sharp": "splatfacto on sharp frames (upper bound)",
          "rendered-views": "spikegen-splat, K = 3 virtual views each rendered (before the warp)"}  # fmt: skip
KINDS: dict[str, dict[str, Any]] = {  # make_scene arguments (the seed comes from --seeds)
    "orbit": {"preset": "sample"},  # what `spikegen make-scene` writes by default
    "orbit-fast": {"preset": "sample", "orbit_deg_per_s": 3600.0},  # twice the speed: ~10 px blur
    "room": {"preset": "sample", "kind": "room"},
    "forward": {"preset": "sample", "kind": "forward"},
    "room-native": {"preset": "native", "kind": "room"},
}
DEFAULT_KINDS = ("orbit", "orbit-fast", "room", "forward")
TRAIN_SEED = 42  # training seed of seed 0 (seed s trains with TRAIN_SEED + s)


def build_config(
    arm: str, scene: Path, out: Path, steps: int, device: str, seed: int, overrides: dict[str, Any]
):
    """The trainer config ``ns-train`` would build for ``arm`` (``spikegen-splat`` or a baseline's images)."""
    ours = arm == "spikegen-splat" or arm in VARIANTS
    config = make_trainer_config(max_steps=steps) if ours else make_baseline_config(arm, max_steps=steps)
    for key, value in {**VARIANTS.get(arm, {}), **overrides}.items():  # "name" → the model's field, "datamanager.name" → the datamanager's
        owner, _, name = key.rpartition(".")
        setattr(config.pipeline.datamanager if owner == "datamanager" else config.pipeline.model, name, value)
    return place(config, scene, out, arm, device, seed=seed)


def train_and_eval(
    arm: str,
    scene: Path,
    out: Path,
    steps: int,
    device: str = "cpu",
    *,
    seed: int = TRAIN_SEED,
    overrides: dict[str, Any] | None = None,
    renders: Path | None = None,
) -> dict[str, Any]:
    """Train (the Trainer's own iteration and callbacks), then score the test views as ns-eval does; with
    ``renders``, write each test view's render ``NN.png`` and ground truth ``gt_NN.png`` there."""
    torch.manual_seed(seed)
    config = build_config(arm, scene, out, steps, device, seed, overrides or {})
    trainer = start(config)
    pipeline = trainer.pipeline
    run = iterate(trainer, steps)
    wall, cpu = run["wall"], run["cpu"]
    trainer.save_checkpoint(steps - 1)
    pipeline.eval()
    metrics = pipeline.get_average_eval_image_metrics()
    result = {
        "psnr": float(metrics["psnr"]), "ssim": float(metrics["ssim"]),
        "s_per_iter_wall": float(np.median(wall[1:] or wall)), "s_per_iter_cpu": float(np.median(cpu[1:] or cpu)),
        "train_wall_s": float(sum(wall)), "train_cpu_s": float(sum(cpu)), "gaussians": int(pipeline.model.num_points),
        "config": str(config.get_base_dir() / "config.yml"),
    }  # fmt: skip
    if renders is not None:
        pipeline.eval()  # get_average_eval_image_metrics leaves the pipeline in train mode
        renders.mkdir(parents=True, exist_ok=True)
        dm = pipeline.datamanager
        with torch.no_grad():
            for i in range(len(dm.eval_dataset)):
                camera = dm.eval_dataset.cameras[i : i + 1].to(dm.device)
                rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"].clamp(0, 1).cpu().numpy()
                _save(renders / f"{i:02d}.png", rgb)
                gt = dm.cached_eval[i]["image"]
                gt = gt[..., :3].float().cpu().numpy() / (255.0 if gt.dtype == torch.uint8 else 1.0)
                _save(renders / f"gt_{i:02d}.png", gt)
    return result


def _save(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)).save(path)


def kind_figure(
    render_dirs: dict[str, Path], arms: list[str], out: Path, views: list[int], scale: int = 2
) -> str:
    """One PNG per scene kind: a row per test view, the arms in ``ARMS`` order then the ground truth."""
    rows = []
    for i in views:
        if not (render_dirs[arms[0]] / f"{i:02d}.png").is_file():
            continue
        tiles = [Image.open(render_dirs[a] / f"{i:02d}.png").convert("RGB") for a in arms]
        rows.append(tiles + [Image.open(render_dirs[arms[0]] / f"gt_{i:02d}.png").convert("RGB")])
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (len(rows[0]) * (w + 2) - 2, len(rows) * (h + 2) - 2), (255, 255, 255))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * (w + 2), r * (h + 2)))
    if max(sheet.size) * scale <= 2400:
        sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)


def scene_spec(kind: str, seed: int, scene_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**KINDS[kind], "seed": seed, **scene_overrides}


def _scene_key(kind: str, seed: int, scene_overrides: dict[str, Any]) -> str:
    """Folder/run name of a scene; overrides (tiny test scenes) get a hash so they never meet the real ones."""
    key = f"{kind}_s{seed}"
    if scene_overrides:
        key += "_" + hashlib.sha1(json.dumps(scene_overrides, sort_keys=True).encode()).hexdigest()[:8]
    return key


def summarise(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per scene: gap closed, beats blur/TFP, CPU time ratio (where the arms it needs ran)."""
    out = {}
    for scene, res in results.items():
        s: dict[str, Any] = {}
        if "spikegen-splat" in res:
            ours = res["spikegen-splat"]["psnr"]
            for base in ("blur", "tfp"):
                if base in res:
                    s[f"beats_{base}"] = ours > res[base]["psnr"]
            if {"blur", "tfp", "sharp"} <= set(res):
                best = max(res["tfp"]["psnr"], res["blur"]["psnr"])
                s["gap_closed"] = (ours - best) / max(res["sharp"]["psnr"] - best, 1e-6)
            if "blur" in res:
                s["time_ratio_cpu"] = res["spikegen-splat"]["s_per_iter_cpu"] / res["blur"]["s_per_iter_cpu"]
            if "rendered-views" in res:
                s["vs_rendered_views_db"] = ours - res["rendered-views"]["psnr"]
        out[scene] = s
    return out


def write_report(report: dict[str, Any], out: Path) -> None:
    rows = []
    for scene, res in report["results"].items():
        for arm in ALL_ARMS:
            if arm in res:
                r = res[arm]
                rows.append([scene, LABELS[arm], round(r["psnr"], 2), round(r["ssim"], 4),
                             round(r["s_per_iter_wall"], 4), round(r["s_per_iter_cpu"], 4), r["gaussians"]])  # fmt: skip
    summary = report["summary"]

    def psnr(res: dict[str, Any], arm: str) -> float | None:
        return round(res[arm]["psnr"], 2) if arm in res else None

    srows = [[scene, *(psnr(report["results"][scene], a) for a in ARMS),
              None if "gap_closed" not in s else round(100 * s["gap_closed"], 1),
              None if "time_ratio_cpu" not in s else round(s["time_ratio_cpu"], 2)]
             for scene, s in summary.items()]  # fmt: skip
    cols = ["scene", "arm", "PSNR", "SSIM", "s/iter (wall)", "s/iter (CPU)", "Gaussians"]
    scols = ["scene", *(f"{LABELS[a]} (dB)" for a in ARMS), "gap closed %", "CPU s/iter vs blur"]
    gaps = [s["gap_closed"] for s in summary.values() if "gap_closed" in s]
    beats = [s.get("beats_blur", False) and s.get("beats_tfp", False) for s in summary.values()]
    overall = (f"spikegen-splat beats splatfacto on the blurred frames and on TFP frames on {sum(beats)} of "
               f"{len(beats)} scenes; gap closed {100 * float(np.mean(gaps)):.0f} % on average" if gaps else "")  # fmt: skip
    report["overall"] = {"beats_both": int(sum(beats)), "scenes": len(beats),
                         "mean_gap_closed": float(np.mean(gaps)) if gaps else None}  # fmt: skip
    report["tables"] = [
        {"title": "spikegen-splat against the baselines (test PSNR)", "columns": scols, "rows": srows,
         "headline": True, "note": "gap closed = (spikegen-splat − best of blur/TFP) / (sharp − best of blur/TFP), "
         "PSNR; " + overall},
        {"title": "test views", "columns": cols, "rows": rows},
    ]  # fmt: skip
    lines = [
        f"# {report['title']}",
        "",
        f"- commit `{report['commit']}`, {report['date']}; {machine_summary(report['machine'])}",
        f"- {report['settings']['steps']} iterations per run; scene seed s trains with seed {TRAIN_SEED} + s; every arm "
        "uses the same schedule, densification and seed points (`spikegen_nvs.config`); baselines = "
        "`spikegen-baseline` (no spike/re-blur loss)",
        "- test PSNR/SSIM: the scene's held-out views (sharp ground truth at the window centre), as `ns-eval` computes "
        "them; s/iteration: median wall and process-CPU seconds of one training iteration",
        "",
        *markdown_table(scols, srows),
        "",
        overall,
        "",
        *markdown_table(cols, rows),
        "",
        "## Scenes (`make_scene` arguments)",
        "",
        *[f"- `{name}`: `{json.dumps(spec)}`" for name, spec in report["scenes"].items()],
        "",
        "## Figures (per kind, first seed: " + " | ".join(report["settings"]["arms"]) + " | ground truth)",
        "",
        *[f"![{p}]({os.path.relpath(ROOT / p, out.parent)})" for p in report["figures"]],
        "",
        f"Reproduce: `{report['command']}`",
    ]
    write_results(out, report, lines)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), choices=list(KINDS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ALL_ARMS))
    parser.add_argument("--steps", type=int, default=None, help="iterations per run (default: the method's)")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "outputs" / "bench_nvs", help="scenes, runs, results"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "nvs", help="report stem (.md, .json)"
    )
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures", help="one PNG per kind")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reuse", action="store_true", help="take finished runs' saved results (same steps)")
    parser.add_argument("--views", type=int, nargs="+", default=[0, 4], help="test views in the figures")
    parser.add_argument(
        "--scene",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="make_scene overrides for every scene (tiny scenes for tests), e.g. width=32",
    )
    parser.add_argument("--generate-only", action="store_true", help="write the scenes, train nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps or make_trainer_config().max_num_iterations
    scene_overrides = _parse_overrides(args.scene)
    arms = [a for a in ALL_ARMS if a in args.arms]
    given = sys.argv[1:] if argv is None else argv
    command = "python scripts/bench/bench_nvs.py " + " ".join(a for a in given if a != "--reuse")
    report: dict[str, Any] = {
        "title": "spikegen-splat vs splatfacto baselines (novel views of high-speed spike scenes)",
        "command": command.strip(), **bench_meta(args.device),
        "settings": {"steps": steps, "kinds": args.kinds, "seeds": args.seeds, "arms": arms,
                     "scene_overrides": scene_overrides,
                     "spikegen-splat model": {k: v for k, v in dataclasses.asdict(make_trainer_config().pipeline.model).items()
                                              if isinstance(v, (int, float, str, bool)) or v is None}},
        "scenes": {}, "results": {}, "figures": [],
    }  # fmt: skip
    for kind in args.kinds:
        dirs: dict[str, Path] = {}
        for seed in args.seeds:
            name = _scene_key(kind, seed, scene_overrides)
            spec = scene_spec(kind, seed, scene_overrides)
            scene = args.work / "scenes" / name
            if not (scene / "transforms.json").is_file():
                print(f"[bench_nvs] generating {name}", flush=True)
                make_scene(scene, threads=args.threads, **spec)
            report["scenes"][name] = spec
            if args.generate_only:
                continue
            res: dict[str, Any] = {}
            for arm in arms:
                render_dir = args.work / "renders" / name / arm
                if seed == args.seeds[0]:
                    dirs[arm] = render_dir
                saved = args.work / "results" / f"{name}_{arm}_{steps}.json"
                if args.reuse and saved.is_file() and (render_dir / "00.png").is_file():
                    res[arm] = json.loads(saved.read_text())
                    continue
                print(f"[bench_nvs] {name}: {arm} ({steps} iterations)", flush=True)
                res[arm] = train_and_eval(arm, scene, args.work / "runs", steps, args.device, seed=TRAIN_SEED + seed,
                                          renders=render_dir)  # fmt: skip
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps(res[arm]))
                print(f"[bench_nvs]   PSNR {res[arm]['psnr']:.2f} SSIM {res[arm]['ssim']:.4f} "
                      f"{res[arm]['s_per_iter_cpu']:.3f} CPU s/iter", flush=True)  # fmt: skip
            report["results"][name] = res
        if not args.generate_only:
            report["figures"].append(kind_figure(dirs, arms, args.figures / f"{args.out.name}_{kind}.png", args.views))
    if args.generate_only:
        return report
    report["summary"] = summarise(report["results"])
    report["readme_figures"] = len(report["figures"])  # one per scene kind
    write_report(report, args.out)
    print(f"[bench_nvs] wrote {args.out}.md, {args.out}.json and {len(report['figures'])} figure(s)")
    return report


if __name__ == "__main__":
    main()
