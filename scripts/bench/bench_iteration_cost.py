"""Benchmark: what one spikegen-splat iteration costs next to splatfacto's, and where the time goes (CPU).

Three measurements, written to ``benchmarks/iteration_cost.md`` / ``.json``:

1. ``farm-bench --vs 'B' -- A``: whole processes, A = spikegen-splat and B = the splatfacto baseline on the blurred
   frames, each training ``--steps`` iterations of the sample scene (set-up included), paired A B A B … so the
   ratio holds while the shared machine's speed drifts. Each run also writes its own median CPU seconds per
   iteration, the ratio without the start-up both share.
2. Where the time goes: cProfile of ``--profile-steps`` iterations of each, grouped (compositing forward and
   backward, projection, losses, optimiser, data).
3. Quality at that cost: the whole training runs of ``scripts/bench/bench_nvs.py`` (every scene of its grid, 1000
   iterations): test PSNR and mean CPU seconds per iteration of spikegen-splat (virtual views warped, the
   default), spikegen-splat with every virtual view rendered (``--arms rendered-views``) and splatfacto.

Reproduce: ``python scripts/bench/bench_nvs.py --arms blur tfp spikegen-splat sharp rendered-views``, then
``python scripts/bench/bench_iteration_cost.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _bench_meta import bench_meta, markdown_table, write_results  # noqa: E402

WORK = ROOT / "outputs" / "bench_iteration_cost"
SCENE = ROOT / "outputs" / "bench_radiometry" / "scenes" / "sample-seed0-srgb"  # the sample scene, sRGB frames
WARPED = "spikegen-splat (default: virtual views warped)"
RENDERED = "spikegen-splat before (K = 3 virtual views, each rendered)"
BASE = "splatfacto on blurred frames"
ARMS = {  # name -> (method, model overrides)
    WARPED: ("spikegen-splat", {}),
    RENDERED: ("spikegen-splat", {"window_views": "render", "num_virtual_views": 3}),
    BASE: ("blur", {}),
}
NVS_ARMS = {WARPED: "spikegen-splat", RENDERED: "rendered-views", BASE: "blur"}  # bench_nvs's arm names
GROUPS = {  # cProfile function name patterns -> what they are
    "compositing (forward)": r"numba_composite\.py:\d+\(_forward\)",
    "compositing (backward)": r"numba_composite\.py:\d+\(_backward\)",
    "projection (forward + backward)": r"numba_project\.py:\d+\(_project_(fwd|bwd)\)",
    "tile binning": r"tiles\.py:\d+\(intersect_tiles\)",
    "losses (photometric, spike, re-blur)": r"model\.py:\d+\(get_loss_dict\)",
    "optimiser steps": r"optimizers\.py:\d+\(optimizer_scaler_step_some\)",
    "data (next_train: image, spike window)": r"datamanager\.py:\d+\(next_train\)",
    "window poses": r"model\.py:\d+\(_window_poses\)",
    "window warp": r"window_warp\.py:\d+\(warp_views\)",
    "whole iteration": r"trainer\.py:\d+\(train_iteration\)",
}


def _slug(arm: str) -> str:
    return re.sub(r"\W+", "_", arm)


def _trainer(arm: str, out: Path):
    from _splat_runs import start
    from bench_nvs import build_config

    method, overrides = ARMS[arm]
    torch.manual_seed(42)
    return start(build_config(method, SCENE, out, 1000, "cpu", 42, overrides))


def _steps(trainer, first: int, count: int) -> list[float]:
    from nerfstudio.engine.callbacks import TrainingCallbackLocation

    cpu = []
    for step in range(first, first + count):
        c0 = time.process_time()
        trainer.pipeline.train()
        for cb in trainer.callbacks:
            cb.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        trainer.train_iteration(step)
        for cb in trainer.callbacks:
            cb.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        cpu.append(time.process_time() - c0)
    return cpu


def run_one(arm: str, steps: int, record: Path | None) -> None:
    """What farm-bench times: set up and train ``steps`` iterations; append the median CPU s/iter to ``record``."""
    torch.set_num_threads(1)
    trainer = _trainer(arm, WORK / "runs" / "farm")
    cpu = _steps(trainer, 0, steps)
    warm = trainer.pipeline.model.config.warmup_length  # spikegen-splat renders every view until then
    after = cpu[warm + 1 :] if len(cpu) > warm + 2 else cpu[1:]
    if record is not None:
        with open(record, "a") as f:
            f.write(json.dumps({"arm": arm, "median_cpu_s_per_iter": float(np.median(after))}) + "\n")


def profile(arm: str, skip: int | None, steps: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    trainer = _trainer(arm, WORK / "runs" / "profile")
    skip = trainer.pipeline.model.config.warmup_length + 5 if skip is None else skip
    _steps(trainer, 0, skip)
    prof = cProfile.Profile()
    prof.enable()
    cpu = _steps(trainer, skip, steps)
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    seconds = {}
    for group, pattern in GROUPS.items():
        key = "cumtime" if group in ("losses (photometric, spike, re-blur)", "optimiser steps", "whole iteration",
                                     "data (next_train: image, spike window)", "window poses",
                                     "tile binning", "window warp") else "tottime"  # fmt: skip
        total = 0.0
        for (file, line, name), (_, _, tottime, cumtime, _) in stats.items():
            if re.search(pattern, f"{file}:{line}({name})"):
                total += cumtime if key == "cumtime" else tottime
        seconds[group] = total / steps
    return {"gaussians": int(trainer.pipeline.model.num_points), "median_cpu_s_per_iter": float(np.median(cpu)),
            "skipped": skip,
            "seconds_per_iter_profiled": seconds}  # fmt: skip


def farm_bench(steps: int, runs: int, timeout: int) -> dict[str, Any]:
    record = WORK / f"farm_record_{int(time.time())}.jsonl"
    me = [sys.executable, str(Path(__file__).resolve()), "--steps", str(steps), "--record", str(record), "--run"]
    a = me + [WARPED]
    b = me + [BASE]
    cmd = ["farm-bench", "-n", str(runs), "--warmup", "1", "--timeout", str(timeout), "--vs", shlex.join(b), "--", *a]
    print("[bench_iteration_cost] " + shlex.join(cmd), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    text = done.stdout + done.stderr
    per_run = [json.loads(line) for line in record.read_text().splitlines()] if record.is_file() else []
    inside = {}
    for arm in (WARPED, BASE):
        values = [r["median_cpu_s_per_iter"] for r in per_run if r["arm"] == arm]
        inside[arm] = float(np.median(values)) if values else None
    ratio = re.search(r"ratio[^\n]*?cpu[^\n]*", text, flags=re.IGNORECASE)
    return {"command": shlex.join(cmd), "output": text, "ratio_line": ratio.group(0) if ratio else None,
            "in_process_median_cpu_s_per_iter": inside}  # fmt: skip


def nvs_quality(results: Path, steps: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per bench_nvs scene: test PSNR and mean CPU s/iter of each of ARMS that ran there."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm, nvs_arm in NVS_ARMS.items():
        for path in sorted(results.glob(f"*_{nvs_arm}_{steps}.json")):
            scene = path.name[: -len(f"_{nvs_arm}_{steps}.json")]
            r = json.loads(path.read_text())
            out.setdefault(scene, {})[arm] = {"psnr": r["psnr"], "cpu_s_per_iter": r["train_cpu_s"] / steps}
    return {k: v for k, v in out.items() if len(v) == len(ARMS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", choices=list(ARMS), help="internal: one timed process (what farm-bench starts)")
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=400, help="iterations per timed process (warm-up included)")
    parser.add_argument("--runs", type=int, default=3, help="farm-bench pairs")
    parser.add_argument("--timeout", type=int, default=3000, help="farm-bench's bound on the whole call (s)")
    parser.add_argument("--profile-skip", type=int, default=None, help="iterations before profiling (default: "
                        "past the warm-up, where spikegen-splat renders every view)")
    parser.add_argument("--profile-steps", type=int, default=40)
    parser.add_argument("--report-only", action="store_true", help="rebuild the markdown from the saved JSON")
    parser.add_argument("--nvs-results", type=Path, default=ROOT / "outputs" / "bench_nvs" / "results")
    parser.add_argument("--nvs-steps", type=int, default=1000, help="bench_nvs's iterations per run")
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.steps, args.record)
        return
    if not (SCENE / "transforms.json").is_file():
        from spikegen_core.data.scene import make_scene

        make_scene(SCENE, preset="sample", seed=0, rgb_response="srgb")
    saved = ROOT / "benchmarks" / "iteration_cost.json"
    if args.report_only:
        old = json.loads(saved.read_text())
        profiles, farm = old["profiles"], old["farm_bench"]
        args.steps, args.runs = old["settings"]["steps"], old["settings"]["runs"]
        args.profile_skip, args.profile_steps = old["settings"]["profile_skip"], old["settings"]["profile_steps"]
        measured = {k: old[k] for k in ("commit", "machine", "date")}
    else:
        profiles = {arm: profile(arm, args.profile_skip, args.profile_steps) for arm in ARMS}
        args.profile_skip = profiles[WARPED]["skipped"]
        farm = farm_bench(args.steps, args.runs, args.timeout)
        measured = bench_meta("cpu")
    quality = nvs_quality(args.nvs_results, args.nvs_steps)
    result = {**measured, "benchmark": "iteration_cost", "command": "python scripts/bench/bench_iteration_cost.py",
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "profiles": profiles, "farm_bench": farm, "nvs_runs": quality}  # fmt: skip
    groups = list(GROUPS)
    rows = [[g, *(profiles[a]["seconds_per_iter_profiled"].get(g, 0.0) for a in ARMS)] for g in groups]
    inside = farm["in_process_median_cpu_s_per_iter"]
    md = [
        "# spikegen-splat's iteration cost vs splatfacto's (CPU)",
        "",
        f"- commit `{result['commit']}`, {result['date']}; 1 torch thread; the sample scene with sRGB frames",
        f"- A = `{WARPED}`: one rasterisation per step, the other virtual views warped from it by its depth "
        f"(`spikegen_nvs/window_warp.py`); `{RENDERED}` rasterises all K",
        "- the machine is shared with other jobs: CPU seconds are the steadier number, and pairs keep ratios fair",
        "",
        "## farm-bench (whole processes: set-up + iterations)",
        "",
        f"`{farm['command']}`",
        "",
        "```",
        farm["output"].strip()[-2500:],
        "```",
        "",
        "Median CPU seconds per iteration inside those processes, after the warm-up (during it spikegen-splat "
        "renders every view; start-up excluded): "
        + ", ".join(f"{k}: {v:.4f}" for k, v in inside.items() if v)
        + (f" → ratio {inside[WARPED] / inside[BASE]:.2f}×" if inside.get(WARPED) and inside.get(BASE) else ""),
        "",
        f"## Where the time goes (cProfile, seconds per iteration, iterations {args.profile_skip}–"
        f"{args.profile_skip + args.profile_steps}; profiling adds overhead to every call)",
        "",
        *markdown_table(["part", *ARMS], rows, lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)),
        "",
        "Gaussians when profiled: " + ", ".join(f"{a}: {p['gaussians']:,}" for a, p in profiles.items()),
        "",
    ]
    if quality:
        md += [f"## Whole runs of `scripts/bench/bench_nvs.py` ({args.nvs_steps} iterations; test PSNR, mean CPU "
               "s/iter over the run, its Gaussians included)", ""]
        qrows = []
        for scene, arms in quality.items():
            base = arms[BASE]["cpu_s_per_iter"]
            qrows.append([scene, *(f"{arms[a]['psnr']:.2f} dB, {arms[a]['cpu_s_per_iter']:.3f} s "
                                   f"({arms[a]['cpu_s_per_iter'] / base:.2f}×)" for a in ARMS)])  # fmt: skip
        md += markdown_table(["scene", *ARMS], qrows)
        ratios = {a: float(np.mean([q[a]["cpu_s_per_iter"] / q[BASE]["cpu_s_per_iter"] for q in quality.values()]))
                  for a in (WARPED, RENDERED)}  # fmt: skip
        dpsnr = float(np.mean([q[WARPED]["psnr"] - q[RENDERED]["psnr"] for q in quality.values()]))
        md += ["", f"Mean over {len(quality)} scenes: {WARPED} {ratios[WARPED]:.2f}× splatfacto's CPU time per "
               f"iteration, {RENDERED} {ratios[RENDERED]:.2f}×; PSNR warped − rendered {dpsnr:+.2f} dB"]
        result["nvs_summary"] = {"time_ratio": ratios, "psnr_warped_minus_rendered_db": dpsnr}
    md += ["", "Reproduce: `python scripts/bench/bench_nvs.py --arms blur tfp spikegen-splat sharp rendered-views`, "
           "then `python scripts/bench/bench_iteration_cost.py`", ""]
    write_results(ROOT / "benchmarks" / "iteration_cost", result, md)
    print("[bench_iteration_cost] wrote benchmarks/iteration_cost.md")


if __name__ == "__main__":
    main()
