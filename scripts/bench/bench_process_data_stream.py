"""Benchmark ``spikegen-process-data`` on a generated high-speed scene given only its long raw spike stream.

1. ``make_long_stream`` writes one continuous spike stream along the generator's fast orbit (``raw/stream.dat``)
   and keeps the ground-truth poses aside (``raw/poses.json``).
2. ``spikegen-process-data`` runs on the raw stream alone (TFP dense frames, sequential matching).
3. The recovered window-centre poses are compared with the ground truth at the same ticks after a similarity
   alignment (Umeyama on camera centres): median rotation error (degrees) and median translation error
   relative to the scene size; the interpolated window-edge poses are judged the same way.
4. ``ns-train spikegen-splat`` trains on the output for a few iterations (final loss from its tensorboard log).

Writes benchmarks/process_data_stream.md and .json.

    PYTHONPATH=. python scripts/bench/bench_process_data_stream.py            # defaults = the recorded run
    PYTHONPATH=. python scripts/bench/bench_process_data_stream.py --train-iterations 0   # poses only
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _bench_meta import commit_hash, cpu_model  # noqa: E402

from spikegen_core.data.scene_stream import LongStream, make_long_stream  # noqa: E402
from spikegen_nvs.process_data.colmap import CameraModelName  # noqa: E402
from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process  # noqa: E402
from spikegen_nvs.process_data.poses import pose_errors  # noqa: E402


@dataclass
class Args:
    work_dir: Path | None = None
    """Where the stream, scene and training run go (default: a temporary folder, removed afterwards)."""
    seed: int = 0
    width: int = 160
    """Stream resolution; 96x72 (the sample preset's) registered 0-23 of 40 views, too few SIFT features."""
    height: int = 120
    orbit_deg_per_s: float = 600.0
    """Camera orbit speed (the large preset's); 1800 (sample's) smears 64-tick TFP frames beyond SIFT's reach."""
    ticks: int = 6000
    """Stream length: 6000 ticks = 0.3 s at 20 kHz = 180° of orbit at 600°/s."""
    supersample: int = 1
    """Render samples per pixel side for the key frames (1: 4x faster; the spike integration averages anyway)."""
    window: int = 64
    """Ticks per view window (TFP over it is what COLMAP sees)."""
    num_views: int = 40
    num_threads: int = 1
    """COLMAP threads; keep small on shared machines."""
    camera_model: CameraModelName = "SIMPLE_PINHOLE"
    """The generator's camera has no distortion (and spikegen-splat's datamanager crashes on k1 != 0, see report)."""
    train_iterations: int = 200
    """ns-train spikegen-splat iterations on the output; 0 skips training."""
    train_timeout_s: int = 1800
    results: Path = REPO / "benchmarks"


def _git_commit() -> str:
    """This benchmark's spelling of ``commit_hash()``: short hash, ``(+ uncommitted changes)`` for ``-dirty``."""
    commit = commit_hash()
    if commit == "unknown":
        return commit
    dirty = " (+ uncommitted changes)" if commit.endswith("-dirty") else ""
    return commit.removesuffix("-dirty")[:7] + dirty


def judge_poses(transforms: dict, truth: LongStream) -> dict:
    """Recovered centre and window-edge poses vs the generator's, each after its own similarity alignment."""
    clock = transforms["spike"]["clock_hz"]
    frames = transforms["frames"]
    centre_ticks = [f["time"] * clock for f in frames]
    errs = pose_errors([np.array(f["transform_matrix"]) for f in frames], [truth.pose_at(t) for t in centre_ticks])
    est_edges, ref_edges = [], []
    for f in frames:
        start, end = f["spike_range"]
        est_edges += [np.array(f["transform_matrix_start"]), np.array(f["transform_matrix_end"])]
        ref_edges += [truth.pose_at(start), truth.pose_at(end - 1)]
    edge = pose_errors(est_edges, ref_edges)
    return {
        **{k: v for k, v in errs.items() if k != "scale"},
        "edge_median_rotation_error_deg": edge["median_rotation_error_deg"],
        "edge_median_translation_error_rel": edge["median_translation_error_rel"],
    }


def train(scene: Path, out: Path, iterations: int, timeout_s: int) -> dict:
    """Run ``ns-train spikegen-splat`` as a user would; return time, exit code and the logged losses."""
    ns_train = shutil.which("ns-train") or str(Path(sys.executable).parent / "ns-train")
    cmd = [ns_train, "spikegen-splat", "--data", str(scene), "--max-num-iterations", str(iterations),
           "--vis", "tensorboard", "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=out.parent)
    seconds = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (out.parent / "ns_train.log").write_text(log)
    result = {"command": " ".join(["ns-train", *cmd[1:]]), "returncode": proc.returncode, "seconds": seconds,
              "checkpoints": sorted(p.name for p in out.rglob("*.ckpt"))}
    result.update(_losses(out))
    if proc.returncode != 0:
        result["log_tail"] = log[-3000:]
    return result


def _losses(out: Path) -> dict:
    """First/last value of every logged loss scalar in the run's tensorboard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict = {}
    for events in out.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            if re.search(r"loss", tag, re.IGNORECASE):
                series = acc.Scalars(tag)
                found[tag] = {"first": series[0].value, "last": series[-1].value,
                              "first_step": series[0].step, "last_step": series[-1].step}
    return {"losses": found}


def run(args: Args, work: Path) -> dict:
    t0 = time.perf_counter()
    truth = make_long_stream(work, preset="sample", seed=args.seed, ticks=args.ticks, width=args.width,
                             height=args.height, orbit_deg_per_s=args.orbit_deg_per_s,
                             supersample=args.supersample, texture_size=256)
    gen_s = time.perf_counter() - t0
    scene = work / "scene"
    cfg = ProcessDataConfig(data=truth.stream_path, output_dir=scene, window=args.window,
                            num_views=args.num_views, num_threads=args.num_threads,
                            camera_model=args.camera_model)
    t0 = time.perf_counter()
    summary = process(cfg)
    process_s = time.perf_counter() - t0
    transforms = json.loads((scene / "transforms.json").read_text())
    result = {
        "commit": _git_commit(),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
        "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()
                        if k not in ("work_dir", "results")},
                     "preset": "sample", "dense": "TFP", "matcher": "sequential"},
        "stream": {"ticks": truth.num_ticks, "seconds_of_capture": truth.num_ticks / truth.clock_hz,
                   "key_frames": len(truth.ticks), "bytes": truth.stream_path.stat().st_size,
                   "generate_s": gen_s},
        "views_total": summary.num_views,
        "views_registered": summary.num_registered,
        "points3d": summary.num_points,
        "mean_reprojection_error_px": summary.mean_reprojection_error,
        "focal_px": transforms["fl_x"],
        "true_focal_px": truth.intrinsics["fl_x"],
        **judge_poses(transforms, truth),
        "process_s": {**summary.seconds, "total": process_s},
        "warnings": summary.warnings,
    }
    if args.train_iterations > 0:
        write_report(result, args.results)  # the pose results survive a training run that is cut short
        result["train"] = train(scene, work / "train", args.train_iterations, args.train_timeout_s)
    return result


def write_report(result: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "process_data_stream.json").write_text(json.dumps(result, indent=2) + "\n")
    s, st = result["settings"], result["stream"]
    lines = [
        "# spikegen-process-data on a generated long raw spike stream",
        "",
        f"Stream: `make_long_stream` (preset sample, seed {s['seed']}), {s['width']}x{s['height']}, camera orbiting "
        f"at {s['orbit_deg_per_s']:.0f}°/s with a wobbling view direction, {st['ticks']} ticks "
        f"({1e3 * st['seconds_of_capture']:.0f} ms at 20 kHz, {st['key_frames']} key renders, generated in "
        f"{st['generate_s']:.0f} s). `spikegen-process-data` saw only `raw/stream.dat`: {s['num_views']} uniform "
        f"{s['window']}-tick windows, TFP dense frames, COLMAP {s['matcher']} matching, {s['camera_model']}, "
        "shared intrinsics. Poses compared with the generator's at the window centre ticks after a similarity "
        "alignment (Umeyama on camera centres).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| views registered | {result['views_registered']} / {result['views_total']} |",
        f"| 3-D points | {result['points3d']} |",
        f"| mean reprojection error | {result['mean_reprojection_error_px']:.3f} px |",
        f"| median rotation error | {result['median_rotation_error_deg']:.3f}° |",
        f"| max rotation error | {result['max_rotation_error_deg']:.3f}° |",
        f"| median relative rotation error (pairs, no alignment) | "
        f"{result['median_relative_rotation_error_deg']:.3f}° |",
        f"| median translation error / scene size | {result['median_translation_error_rel']:.4f} |",
        f"| max translation error / scene size | {result['max_translation_error_rel']:.4f} |",
        f"| window-edge poses (interpolated): median rotation / translation error | "
        f"{result['edge_median_rotation_error_deg']:.3f}° / {result['edge_median_translation_error_rel']:.4f} |",
        f"| focal (px) vs truth | {result['focal_px']:.1f} vs {result['true_focal_px']:.1f} |",
        f"| process-data time | {result['process_s']['total']:.0f} s "
        f"({', '.join(f'{k} {v:.1f} s' for k, v in result['process_s'].items() if k != 'total')}) |",
    ]
    tr = result.get("train")
    if tr:
        losses = tr["losses"]
        main_tag = next((t for t in losses if t.lower().endswith("train loss")), next(iter(losses), None))
        loss_txt = (f"{main_tag}: {losses[main_tag]['first']:.4f} (step {losses[main_tag]['first_step']}) → "
                    f"{losses[main_tag]['last']:.4f} (step {losses[main_tag]['last_step']})") if main_tag else "none logged"
        lines += [
            "",
            "## ns-train spikegen-splat on the output",
            "",
            f"`{tr['command']}` → exit code {tr['returncode']} in {tr['seconds']:.0f} s "
            f"(CPU), checkpoint(s): {', '.join(tr['checkpoints']) or 'none'}. Loss {loss_txt}.",
        ]
        others = [f"{t}: {v['first']:.4f} → {v['last']:.4f}" for t, v in losses.items() if t != main_tag]
        if others:
            lines += ["", "Other logged losses: " + "; ".join(others) + "."]
    lines += [
        "",
        f"Commit {result['commit']}; CPU: {result['cpu']}; {s['num_threads']} COLMAP thread(s).",
        "",
        "Reproduce: `PYTHONPATH=. python scripts/bench/bench_process_data_stream.py` (defaults are these settings).",
    ]
    (folder / "process_data_stream.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    import tyro

    args = tyro.cli(Args)
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="spikegen_stream_") as tmp:
            result = run(args, Path(tmp))
    write_report(result, args.results)
    print(json.dumps({k: v for k, v in result.items() if k not in ("warnings",)}, indent=2, default=str))


if __name__ == "__main__":
    main()
