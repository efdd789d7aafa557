"""Benchmark: one generated scene with its RGB frames stored sRGB-encoded (what a camera stores) vs linear.

The same world, seed and spikes (simulated from the linear radiance either way); only the stored RGB frames (blurred,
sharp, test ground truth, seed colours) differ. Trains ``spikegen-splat`` and the splatfacto baseline on the
blurred frames (``spikegen-baseline``) on each at the quick-start schedule and scores the test views as ``ns-eval``
does, each against its own ground truth. Writes ``benchmarks/radiometry.md`` and ``benchmarks/radiometry.json``.

Reproduce: ``python scripts/bench/bench_radiometry.py`` (about 20 CPU minutes; ``--reuse`` reports saved runs,
``--responses srgb`` runs one half, so the halves can run in parallel).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _bench_meta import bench_meta, markdown_table, write_results  # noqa: E402
from bench_nvs import train_and_eval  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402

QUICKSTART_STEPS = 1000  # scripts/quickstart_nvs.sh's schedule
METHODS = {"spikegen-splat": "spikegen-splat", "blur": "splatfacto on the blurred RGB frames"}


def display_psnr(config: Path, srgb_scene: Path, linear_render: bool) -> float:
    """Mean test-view PSNR of a trained run's renders as sRGB colour against ``srgb_scene``'s ground truth."""
    import numpy as np
    import yaml
    from PIL import Image

    from spikegen_core.radiometry import SRGB

    # ns-eval's eval_setup looks the run's method name up among the registered methods; bench runs are named by
    # arm ("blur"), so set the pipeline up and load the run's last checkpoint here.
    # runs saved before the trainer classes moved from schedule.py to trainer.py
    text = config.read_text().replace("spikegen_nvs.schedule.SpikeGenTrainer", "spikegen_nvs.trainer.SpikeGenTrainer")
    trainer_config = yaml.load(text, Loader=yaml.Loader)
    pipeline = trainer_config.pipeline.setup(device="cpu", test_mode="test")
    ckpt = sorted(trainer_config.get_checkpoint_dir().glob("step-*.ckpt"))[-1]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own run's checkpoint
    pipeline.load_pipeline(state["pipeline"], state["step"])
    pipeline.eval()
    dm = pipeline.datamanager
    meta = json.loads((srgb_scene / "transforms.json").read_text())
    gts = [f["gt_path"] for f in meta["frames"] if "gt_path" in f]
    scores = []
    with torch.no_grad():
        for i, gt_path in enumerate(gts):
            camera = dm.eval_dataset.cameras[i : i + 1].to(dm.device)
            out = pipeline.model.get_outputs_for_camera(camera)
            if linear_render:  # the linear scene: its values are linear (the baseline learnt the files as they are)
                rgb = SRGB.encode(out.get("rgb_linear", out["rgb"]))
            else:
                rgb = out["rgb"]  # display colour, as ns-eval scores it
            gt = torch.from_numpy(np.asarray(Image.open(srgb_scene / gt_path).convert("RGB"), np.float32) / 255)
            scores.append(float(-10 * torch.log10(((rgb.clamp(0, 1) - gt) ** 2).mean())))
    return float(np.mean(scores))


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
    srgb_scene = args.work / "scenes" / f"sample-seed{args.seed}{f'-{args.size}' if args.size else ''}-srgb"
    for response, res in results.items():  # one yardstick: display (sRGB) colour against the sRGB ground truth
        for r in res.values():
            r["psnr_vs_srgb_gt"] = display_psnr(Path(r["config"]), srgb_scene, linear_render=response == "linear")
    rows = [[response, METHODS[m], r["psnr"], r["ssim"], r["psnr_vs_srgb_gt"], r["s_per_iter_cpu"]]
            for response, res in results.items() for m, r in res.items()]  # fmt: skip
    delta = results["srgb"]["spikegen-splat"]["psnr"] - results["linear"]["spikegen-splat"]["psnr"]
    delta_display = (results["srgb"]["spikegen-splat"]["psnr_vs_srgb_gt"]
                     - results["linear"]["spikegen-splat"]["psnr_vs_srgb_gt"])  # fmt: skip
    margin = {k: results[k]["spikegen-splat"]["psnr"] - results[k]["blur"]["psnr"] for k in results}
    command = "python scripts/bench/bench_radiometry.py" + (f" --size {args.size}" if args.size else "")
    command += f" --steps {args.steps}" if args.steps != QUICKSTART_STEPS else ""
    command += f" --crop {args.crop:g}" if args.crop is not None else ""
    result = {
        **bench_meta("cpu"), "benchmark": "radiometry", "command": command,
        "settings": {"steps": args.steps, "seed": args.seed, "train_seed": 42, "threads": args.threads,
                     "size": args.size or "96x72", "window_crop": args.crop},
        "results": results, "srgb_minus_linear_psnr": delta, "srgb_minus_linear_psnr_vs_srgb_gt": delta_display,
        "spikegen_minus_blur_psnr": margin,
    }  # fmt: skip
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) and v < 1 else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    md = [
        "# Radiometry: the same scene with sRGB-encoded vs linear RGB frames",
        "",
        f"- commit `{result['commit']}`, {result['date']}; CPU, {args.threads} torch thread(s)",
        f"- scene: `spikegen make-scene --seed {args.seed} --rgb-response srgb|linear`"
        + (f" at {args.size}" if args.size else " (the sample scene)") + "; the spikes "
        "are identical (simulated from the linear radiance), the stored RGB frames differ",
        f"- {args.steps} iterations of the quick-start schedule profile (`quick`, placed along the run), training "
        "seed 42; test PSNR/SSIM as `ns-eval`, each "
        "scene against its own ground truth (display-encoded for sRGB)",
        "",
        *markdown_table(["RGB frames", "method", "PSNR (own ground truth)", "SSIM", "PSNR (sRGB colour vs the sRGB "
                         "ground truth)", "CPU s/iter"], rows, fmt),  # fmt: skip
        "",
        "PSNR (own ground truth) is what `ns-eval` gives on each scene: linear renders against linear ground truth for "
        "the linear scene, so the two rows measure error in different units. The next column puts both on one "
        "yardstick: every run's test renders as sRGB colour (the linear spikegen-splat run's linear radiance "
        "encoded; the linear-scene baseline learnt linear values and is encoded too) against the sRGB scene's "
        "ground truth (the same views and world).",
        "",
        "Self-check: on the sRGB scene both PSNR columns score the same renders against the same ground truth, so "
        "they must agree; " + ", ".join(
            f"{METHODS[m]}: {r['psnr']:.2f} vs {r['psnr_vs_srgb_gt']:.2f}" for m, r in results["srgb"].items())
        + (" (they differ: the yardstick column, which reloads each run's checkpoint, is suspect)"
           if any(abs(r["psnr"] - r["psnr_vs_srgb_gt"]) > 0.05 for r in results["srgb"].values()) else " (they do)")
        + ".",
        "",
        f"spikegen-splat, sRGB − linear frames: {delta:+.2f} dB (own ground truth), {delta_display:+.2f} dB (sRGB "
        "yardstick). spikegen-splat − splatfacto on blurred frames (own ground truth): "
        + ", ".join(f"{k} {v:+.2f} dB" for k, v in margin.items()),
        "",
        f"Reproduce: `{command}`",
    ]
    write_results(ROOT / "benchmarks" / f"radiometry{tag}", result, md)
    print(f"[bench_radiometry] wrote benchmarks/radiometry{tag}.md ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
