"""Benchmark: the dense frames spikegen-splat trains on, against the truth (issue 20: where do the core model's
frames beat TFP's?).

A. Every training view of generated scenes (the bench_nvs scenes, made by ``scripts/bench/bench_nvs.py``; the
   quick start's sample scene is orbit_s0): luma PSNR of each display-encoded frame against the view's sharp frame, for the
   blurred RGB frame, TFP over the central 21 ticks (``auto``'s former choice for spike-rich windows), TFP over the
   whole window and the fast model (``--fast``, the shipped ``fast`` checkpoint).
B. Spike density: held-out natural exposures (photographs training never sees, always moving, 41 ticks, θ = 2)
   dimmed ×1 … ×1/8, so windows hold about 7 … 0.9 spikes per pixel; TFP-41, TFP-21, the fast model, the full
   natural model from spikes alone and with the blurred frame, and the blurred frame (noise-free here); PSNR
   relative to the scene's range.
C. ``--splat``: spikegen-splat on the sample scene at the quick start's schedule with its default ``auto`` frames
   and with TFP-21 frames (``restorer tfp``), scored like ``ns-eval``.

Writes benchmarks/dense_frames.md and .json.   ``python scripts/bench/bench_dense_frames.py [--splat]``
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _bench_meta import bench_meta, machine_summary, markdown_table, settings_line, write_results  # noqa: E402

from spikegen_core import radiometry  # noqa: E402
from spikegen_core.data.motion import random_motion  # noqa: E402
from spikegen_core.data.natural import HELD_OUT_PHOTOS, photo, shared_data_dir  # noqa: E402
from spikegen_core.data.pairs import make_motion_sample  # noqa: E402
from spikegen_core.image import load_image  # noqa: E402
from spikegen_core.metrics import psnr  # noqa: E402
from spikegen_core.models.fusion import to_grey  # noqa: E402
from spikegen_core.spikes.io import load_spikes  # noqa: E402
from spikegen_core.spikes.reconstruct import tfp  # noqa: E402
from spikegen_core.train.checkpoint import load_fast_model, load_model  # noqa: E402
from spikegen_core.train.evaluate import HELD_OUT_SEED, reds_samples  # noqa: E402
from spikegen_core.train.restore import restore_tensors  # noqa: E402

SCALES = (1.0, 0.5, 0.25, 0.125)
SAMPLE_STEPS = 1000  # the quick start's schedule


def _score(frame: torch.Tensor, sharp: torch.Tensor) -> float:
    return float(psnr(frame.clamp(0, 1), sharp))


def scene_frames(scene: Path, fast: Any) -> dict[str, Any]:
    """Mean luma PSNR of each kind of frame against the sharp frame, over the scene's training views."""
    meta = json.loads((scene / "transforms.json").read_text())
    response = radiometry.of_scene(meta, scene / "transforms.json")
    rows: dict[str, list[float]] = {}
    per_pixel = []
    for f in meta["frames"]:
        if "spike_path" not in f or "sharp_path" not in f:
            continue
        sharp = to_grey(load_image(scene / f["sharp_path"]))
        stream = load_spikes(scene / f["spike_path"])
        theta = float(f.get("spike_threshold", meta["spike"]["threshold"]))
        spikes = stream.spikes
        per_pixel.append(float(spikes.float().mean()) * spikes.shape[0])
        frames = {
            "TFP-21": tfp(spikes, window=min(21, spikes.shape[0]), threshold=theta),
            "TFP, whole window": tfp(spikes, threshold=theta),
            "fast model": restore_tensors(fast, spikes, None, threshold=theta)[0],
        }
        rows.setdefault("blurred RGB", []).append(_score(to_grey(load_image(scene / f["blur_path"])), sharp))
        for name, linear in frames.items():  # linear intensity → the scene's encoding, as the sharp frame is stored
            rows.setdefault(name, []).append(_score(to_grey(response.encode(linear.clamp(0, 1).expand(3, -1, -1))), sharp))
    out: dict[str, Any] = {k: sum(v) / len(v) for k, v in rows.items()}
    out["views"] = len(per_pixel)
    out["spikes_per_pixel"] = sum(per_pixel) / len(per_pixel)
    out["size"] = f"{meta['w']}×{meta['h']}"
    return out


def density_sweep(model: Any, fast: Any, count: int) -> list[dict[str, Any]]:
    """Part B: the held-out natural exposures dimmed by each of :data:`SCALES` at θ = 2."""
    photos = [photo(n) for n in HELD_OUT_PHOTOS]
    photos += [load_image(gt) for _, _, gt in reds_samples(shared_data_dir() / "spike" / "reds_synthetic")]
    theta, out = 2.0, []
    for scale in SCALES:
        rows: dict[str, list[float]] = {}
        for i in range(count):
            g = torch.Generator().manual_seed(HELD_OUT_SEED * 10_007 + 31 * i + 1)  # held_out_natural_set's draws
            motion = random_motion(g, 64, 1.5, allow_still=False)
            s = make_motion_sample(photos[i % len(photos)] * scale, size=64, num_spike_frames=41, threshold=theta,
                                   motion=motion, generator=g)  # fmt: skip
            truth, spikes = (to_grey(s.sharp) / scale).clamp(0, 1), s.spikes
            frames = {
                "TFP-41": tfp(spikes, threshold=theta),
                "TFP-21": tfp(spikes, window=21, threshold=theta),
                "fast model": restore_tensors(fast, spikes, None, threshold=theta)[0],
                "full model, spikes only": restore_tensors(model, spikes, None, threshold=theta)[0],
                "full model, spikes + blurred RGB": to_grey(
                    restore_tensors(model, spikes, s.blurred, threshold=theta, mode="deblur")),
                "blurred RGB (noise-free)": to_grey(s.blurred),
            }  # fmt: skip
            rows.setdefault("spikes per pixel", []).append(float(spikes.float().mean()) * spikes.shape[0])
            for name, frame in frames.items():
                rows.setdefault(name, []).append(_score((frame.clamp(0, 1) / scale).clamp(0, 1), truth))
        out.append({"scale": scale, **{k: sum(v) / len(v) for k, v in rows.items()}})
    return out


def sample_splats(work: Path) -> dict[str, Any]:
    """Part C: spikegen-splat on the sample scene with `auto` frames (the default) and with TFP-21 frames."""
    from bench_nvs import TRAIN_SEED, train_and_eval

    from spikegen_core.data.scene import make_scene

    scene = work / "sample"
    if not (scene / "transforms.json").is_file():
        make_scene(scene)
    arms = {"auto (default)": {}, "TFP-21 (restorer tfp)": {"datamanager.restorer": "tfp"}}
    return {name: train_and_eval("spikegen-splat", scene, work / "runs" / f"arm{i}", SAMPLE_STEPS, "cpu",
                                 seed=TRAIN_SEED, overrides=over)  # fmt: skip
            for i, (name, over) in enumerate(arms.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=Path, nargs="*", default=None,
                   help="scene folders (default: outputs/bench_nvs/scenes/* and the sample scene)")  # fmt: skip
    p.add_argument("--checkpoint", default="natural", help="the full core model of part B")
    p.add_argument("--fast", default="fast", help="the fast model (a checkpoint or training folder)")
    p.add_argument("--count", type=int, default=8, help="held-out exposures per brightness")
    p.add_argument("--splat", action="store_true", help="also train spikegen-splat on the sample scene (2 runs)")
    p.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_dense_frames")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "dense_frames")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    fast, fast_meta = load_fast_model(args.fast)
    scenes = args.scenes
    if scenes is None:  # the sample scene is orbit_s0; without the bench scenes, it alone
        scenes = sorted((ROOT / "outputs" / "bench_nvs" / "scenes").glob("*_s[0-9]"))
        if not scenes:
            from spikegen_core.data.scene import make_scene

            scenes = [args.work / "sample"]
            if not (scenes[0] / "transforms.json").is_file():
                make_scene(scenes[0])
    per_scene = {s.name: scene_frames(s, fast) for s in scenes if (s / "transforms.json").is_file()}
    sweep = density_sweep(model, fast, args.count)
    splats = sample_splats(args.work) if args.splat else None

    meta = bench_meta("cpu")
    command = "python scripts/bench/bench_dense_frames.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    settings = {"checkpoint": args.checkpoint, "fast": args.fast, "fast_step": fast_meta.get("step"),
                "count": args.count, "scenes": [s.name for s in scenes]}  # fmt: skip
    result = {**meta, "benchmark": "dense_frames", "command": command, "settings": settings, "scenes": per_scene,
              "density": sweep, "sample_splats": splats}  # fmt: skip
    kinds = ["blurred RGB", "TFP-21", "TFP, whole window", "fast model"]
    md = ["# Dense frames against the truth: TFP vs the core models (issue 20)", "",
          f"- commit `{meta['commit']}`, {meta['date']}", f"- machine: {machine_summary(meta['machine'])}",
          f"- rerun: `{command}`", f"- settings: {settings_line(settings)}", "",
          "## A. Training views of generated scenes (luma PSNR vs the sharp frame, dB)", "",
          *markdown_table(["scene", "size", "views", "spikes / pixel / window", *kinds],
                          [[n, r["size"], r["views"], round(r["spikes_per_pixel"], 1), *[round(r[k], 2) for k in kinds]]
                           for n, r in per_scene.items()]), "",  # fmt: skip
          "Display-encoded frames (the scene's `rgb_response`) against the stored sharp frames. The quick start's "
          "sample scene is orbit_s0. Orbit scenes wear the scene generator's procedural textures, which no model "
          "trained on; room and forward wear photographs that are among the fast model's training photographs "
          "(coffee excepted).", "",
          "## B. Spike density: held-out natural exposures, dimmed (PSNR relative to the scene's range, dB)", ""]  # fmt: skip
    cols = ["spikes per pixel", "TFP-41", "TFP-21", "fast model", "full model, spikes only",
            "full model, spikes + blurred RGB", "blurred RGB (noise-free)"]  # fmt: skip
    md += markdown_table(["brightness", *cols], [[f"×{r['scale']:g}", *[round(r[c], 2) for c in cols]] for r in sweep])
    md += ["", f"{args.count} exposures per brightness, 64×64, 41 ticks, θ = 2, always moving; photographs training "
           "never sees. The blurred frame is noise-free here (a real one is not in dim light).", ""]  # fmt: skip
    if splats:
        md += [f"## C. spikegen-splat on the sample scene ({SAMPLE_STEPS} iterations, test views)", "",
               *markdown_table(["dense frames", "PSNR", "SSIM", "LPIPS"],
                               [[k, round(v["psnr"], 2), round(v["ssim"], 4), round(v.get("lpips", float("nan")), 4)]
                                for k, v in splats.items()]), ""]  # fmt: skip
    write_results(args.out, result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
