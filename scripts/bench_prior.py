"""Benchmark: spikegen-splat with and without the core diffusion model as a prior (spikegen-splat-prior).

Generated scenes where data are scarce — few training views, sparse spikes (short windows, high threshold) —
and one where they are plentiful (the sample scene). Each arm trains with the same iterations, seed and
schedule; the test views are scored as ``ns-eval`` does (PSNR/SSIM against the sharp ground truth) and the
iterations are timed (median wall and process-CPU seconds). Writes ``benchmarks/prior.md`` and ``.json``.

Reproduce: ``python scripts/bench_prior.py --steps 1000`` (CPU: 4–8 min per run on a 2-core box). At 400 steps every
arm is still far from converged (~21 dB on all three scenes); at 1000 the few-view scene is 4.6 dB below the
plentiful one, which is where a prior has something to do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _bench_meta import bench_meta, machine_summary, markdown_table, write_results  # noqa: E402
from _splat_runs import iterate, place, start  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402
from spikegen_core.train.checkpoint import SHIPPED  # noqa: E402
from spikegen_core.utils import file_digest  # noqa: E402
from spikegen_nvs.config import make_trainer_config  # noqa: E402
from spikegen_nvs.prior_checkpoint import SPLAT_PRIOR  # noqa: E402
from spikegen_nvs.prior_config import make_prior_trainer_config  # noqa: E402

SCENES: dict[str, dict[str, Any]] = {
    "few-views": {"preset": "sample", "seed": 0, "num_train": 8},
    "sparse-spikes": {"preset": "sample", "seed": 0, "window": 16, "subframes": 5, "threshold": 4.0},
    "plentiful": {"preset": "sample", "seed": 0},
}
ARMS: dict[str, dict[str, Any] | None] = {
    "without": None,  # spikegen-splat as shipped
    "prior": {},  # spikegen-splat-prior defaults: one-pass fix by the splat prior at new poses
    # control: the same with the core checkpoint before it saw splat renders
    "prior-core": {"checkpoint": "core"},
    # control: the same with random (untrained) core weights: what the extra views and gradients do alone
    "prior-untrained": {"checkpoint": "untrained"},
    # the previous default: noise + DDIM + decode, residual target, at training poses (with spikes) too
    "prior-restore": {"checkpoint": "core", "prior_kind": "restore", "prior_poses": ("train", "between", "around")},
    "prior-sds": {"prior_kind": "sds"},
    "prior-w3": {"prior_weight": 3.0},
}


def untrained_checkpoint(path: Path) -> Path:
    """A tiny SpikeGen with random weights (seed 0), saved once: the control arm's prior."""
    if not path.is_file():
        from spikegen_core.models import SpikeGen, preset
        from spikegen_core.train.checkpoint import save_weights

        torch.manual_seed(0)
        model = SpikeGen(preset("tiny"))
        save_weights(path, model.state_dict(), {"model": model.config.to_dict(), "stage": "untrained"})
    return path


def arm_checkpoint(arm: str, work: Path, checkpoint: Path | None) -> Path | None:
    """The prior checkpoint an arm uses (None for the arm without a prior)."""
    settings = ARMS[arm]
    if settings is None:
        return None
    which = settings.get("checkpoint")
    if which == "untrained":
        return untrained_checkpoint(work / "untrained_tiny.safetensors")
    if which == "core":
        return SHIPPED
    return checkpoint or SPLAT_PRIOR


def run_key(config, checkpoint: Path | None) -> str:
    """What a saved run is keyed by: the prior's resolved settings and the checkpoint's content, so --reuse
    never mixes checkpoints or settings (and a default changed later still finds runs made with that value)."""
    if checkpoint is None:
        return ""
    model = config.pipeline.model
    fields = {k: str(tuple(v) if isinstance(v, list) else v) for k, v in sorted(vars(model).items())
              if k.startswith("prior_") and k != "prior_checkpoint"}  # fmt: skip
    digest = file_digest(checkpoint)[:12] if checkpoint.is_file() else "none"
    return "_" + hashlib.sha1(json.dumps([fields, digest]).encode()).hexdigest()[:8]


def build(arm: str, scene: Path, out: Path, steps: int, device: str, checkpoint: Path | None, extra: dict):
    settings = ARMS[arm]
    if settings is None:
        config = make_trainer_config(max_steps=steps)
    else:
        settings = {k: v for k, v in {**settings, **extra}.items() if k != "checkpoint"}
        config = make_prior_trainer_config(max_steps=steps, prior_checkpoint=checkpoint, **settings)
    return place(config, scene, out, f"prior-bench-{arm}", device)


def train_and_eval(config, steps: int) -> dict[str, Any]:
    """The Trainer's own iterations and callbacks, then ns-eval's metrics on the test views."""
    trainer = start(config)
    pipeline = trainer.pipeline
    run = iterate(trainer, steps)
    wall, cpu, prior_steps = run["wall"], run["cpu"], run["prior_steps"]
    pipeline.eval()
    metrics = pipeline.get_average_eval_image_metrics()
    return {
        "psnr": float(metrics["psnr"]), "ssim": float(metrics["ssim"]),
        "s_per_iter_wall": float(np.mean(wall[1:])), "s_per_iter_cpu": float(np.mean(cpu[1:])),
        "train_wall_s": float(sum(wall)), "gaussians": int(pipeline.model.num_points), "prior_steps": prior_steps,
    }  # fmt: skip


def _checkpoint_summary(path: Path | None) -> str:
    from spikegen_core.train.checkpoint import read_meta

    meta = read_meta(path or SPLAT_PRIOR)
    return f"stage {meta.get('stage')}, step {meta.get('step')}, sha256 {file_digest(path or SPLAT_PRIOR)[:12]}"


def report(results: dict, args: argparse.Namespace, meta: dict) -> None:
    columns = ["scene", "arm", "PSNR", "SSIM", "ΔPSNR", "s/iter wall", "s/iter CPU", "cost ×", "prior steps"]
    rows = []
    for scene, arms in results.items():
        base = arms.get("without")
        for arm, r in arms.items():
            dpsnr = r["psnr"] - base["psnr"] if base and arm != "without" else None
            cost = r["s_per_iter_cpu"] / base["s_per_iter_cpu"] if base and arm != "without" else None
            rows.append([scene, arm, round(r["psnr"], 2), round(r["ssim"], 4), None if dpsnr is None else round(dpsnr, 2),
                         round(r["s_per_iter_wall"], 3), round(r["s_per_iter_cpu"], 3),
                         None if cost is None else round(cost, 2), r["prior_steps"]])  # fmt: skip
    lines = [
        "# spikegen-splat with and without the core diffusion prior",
        "",
        f"- commit `{meta['commit']}`, {meta['date']}; {machine_summary(meta['machine'])}; "
        f"load average {meta['machine'].get('load_average_1min')}",
        f"- {args.steps} iterations per run, seed 42, same schedule; prior checkpoint: `{args.checkpoint or 'spikegen_nvs/assets/spikegen_tiny_splatfix.safetensors'}` "
        f"({_checkpoint_summary(args.checkpoint)})",
        "- arms: `without` = spikegen-splat; `prior` = spikegen-splat-prior defaults (the splat prior checkpoint's "
        "one-pass fix of renders at in-between and jittered poses, stop-gradient MSE, weight 1.5 annealed "
        "linearly, every 2nd step); `prior-core` = the same with the core checkpoint (control: what fine-tuning "
        "on splat renders adds); `prior-untrained` = the same with random weights (control); `prior-restore` = "
        "the former default (core checkpoint, noise + DDIM + decode, residual target, training poses too); "
        "`prior-sds` = score distillation; `prior-w3` = weight 3 (default 1.5)",
        "- test PSNR/SSIM as `ns-eval` computes them; s/iter = mean over the run (prior steps included); runs are "
        "deterministic on CPU (a repeated `without` run gives identical numbers), and the prior's extra renders "
        "fork the RNG, so ΔPSNR is the prior's effect, not a reshuffled random stream",
        "- read ΔPSNR of `prior` against `prior-core` and `prior-untrained`: the part of the gain the splat prior's "
        "training is responsible for",
        "",
        *markdown_table(columns, rows),
        "",
        "## Scenes",
        "",
        *[f"- `{k}`: `{json.dumps(SCENES[k])}`" for k in results],
        "",
        f"Reproduce: `python scripts/bench_prior.py --steps {args.steps}"
        + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "") + "`",
    ]
    table = {"title": f"Test views with and without the prior ({args.steps} iterations, seed 42)",
             "columns": columns, "rows": rows, "headline": True}
    result = {**meta, "benchmark": "prior", "title": "spikegen-splat with and without the core diffusion prior",
              "command": " ".join(sys.argv), "settings": {k: str(v) for k, v in vars(args).items()},
              "tables": [table], "scenes": {k: SCENES[k] for k in results}, "arms": ARMS,
              "results": results}  # fmt: skip
    write_results(ROOT / args.out, result, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="spikegen-splat's own run length by default")
    parser.add_argument("--scenes", nargs="*", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--checkpoint", type=Path, default=None, help="SpikeGen checkpoint (default: shipped)")
    parser.add_argument("--prior", type=json.loads, default={}, help='extra prior settings, e.g. \'{"prior_weight": 1}\'')
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_prior")
    parser.add_argument("--out", default="benchmarks/prior", help="report stem (relative to the repo)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reuse", action="store_true", help="reuse saved per-run results with the same steps")
    parser.add_argument("--report-only", action="store_true", help="report the saved runs only; train nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    meta = bench_meta(args.device)
    results: dict[str, dict[str, Any]] = {}
    for name in args.scenes:
        spec = dict(SCENES[name])
        scene = args.work / "scenes" / name
        if not (scene / "transforms.json").is_file():
            make_scene(scene, preset=spec.pop("preset"), seed=spec.pop("seed"), **spec)
        results[name] = {}
        for arm in args.arms:
            ckpt = arm_checkpoint(arm, args.work / "runs", args.checkpoint)
            config = build(arm, scene, args.work / "runs", args.steps, args.device, ckpt, args.prior)
            saved = args.work / "results" / f"{name}_{arm}_{args.steps}{run_key(config, ckpt)}.json"
            if (args.reuse or args.report_only) and saved.is_file():
                results[name][arm] = json.loads(saved.read_text())
                continue
            if args.report_only:
                continue
            torch.manual_seed(42)
            print(f"[bench_prior] {name}: {arm} ({args.steps} iterations)", flush=True)
            results[name][arm] = res = train_and_eval(config, args.steps)
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(res))
            print(f"[bench_prior]   PSNR {res['psnr']:.2f} SSIM {res['ssim']:.4f} {res['s_per_iter_cpu']:.3f} CPU s/iter",
                  flush=True)  # fmt: skip
        report(results, args, meta)  # after every scene, so a partial run still leaves a report
    print(f"[bench_prior] wrote {args.out}.md/.json")


if __name__ == "__main__":
    main()
