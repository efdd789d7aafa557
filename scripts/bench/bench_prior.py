"""Benchmark: spikegen-splat with and without the core SpikeGen model — as the restorer of the training frames
(TFP, the model's frames, or "auto", which picks by spike density) and as a prior (spikegen-splat-prior).

Generated scenes where data are scarce — few training views, sparse spikes (short windows, high threshold) —
and one where they are plentiful (the sample scene). Each arm trains with the same iterations, seed and
schedule; the test views are scored as ``ns-eval`` does (PSNR/SSIM against the sharp ground truth) and the
iterations are timed (median wall and process-CPU seconds). Writes ``benchmarks/prior.md`` and ``.json``.

Reproduce: the commands in ``REPRODUCE`` below (CPU: 4–8 min per run on a 2-core box; ``--reuse`` keeps finished
runs, ``--report-only`` rebuilds the page from them). At 400 steps every arm is still far from converged (~21 dB on
all three scenes); at 1000 the few-view scene is 4.5 dB below the plentiful one, which is where a prior has
something to do.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _bench_meta import bench_meta, machine_summary, markdown_table, write_results  # noqa: E402
from _splat_runs import iterate, place, start  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402
from spikegen_core.train.checkpoint import SHIPPED  # noqa: E402
from spikegen_core.utils import file_digest  # noqa: E402
from spikegen_nvs.config import (  # noqa: E402
    PRIOR_MAX_VIEWS,
    make_prior_trainer_config,
    make_trainer_config,  # noqa: E402
)
from spikegen_nvs.datamanager import AutoRestorer  # noqa: E402
from spikegen_nvs.dataparser import SpikeDataParserConfig  # noqa: E402
from spikegen_nvs.prior.checkpoint import SPLAT_PRIOR  # noqa: E402
from spikegen_nvs.prior.model import SpikeGenSplatPriorModelConfig  # noqa: E402

SCENES: dict[str, dict[str, Any]] = {
    "few-views": {"preset": "sample", "seed": 0, "num_train": 8},
    "twelve-views": {"preset": "sample", "seed": 0, "num_train": 12},
    "sparse-spikes": {"preset": "sample", "seed": 0, "window": 16, "subframes": 5, "threshold": 4.0},
    "plentiful": {"preset": "sample", "seed": 0},
}
# "plain": spikegen-splat without the prior; "restorer": the training views' dense frames, forced ("tfp"; "spikegen":
# the core model deblurs each view's RGB with its spikes; unset: both methods' default "auto", TFP where a window is
# spike-rich and the core model where it is sparse); "checkpoint": the prior's weights (default: the shipped splat
# prior); other keys are prior model settings
ARMS: dict[str, dict[str, Any]] = {
    # no prior: spikegen-splat's settings with the prior off (what spikegen-splat runs on scenes of more than
    # PRIOR_MAX_VIEWS training views)
    "without": {"plain": True},
    "without-tfp-frames": {"plain": True, "restorer": "tfp"},  # as before "auto" frames
    "without-core-frames": {"plain": True, "restorer": "spikegen"},
    "prior": {},  # spikegen-splat-prior defaults (what spikegen-splat runs on scenes of ≤ PRIOR_MAX_VIEWS views)
    "prior-tfp-frames": {"restorer": "tfp"},  # the prior on TFP frames whatever the spike density
    # how strong: the former default (every 2nd step, weight 1.5), every step at 1.5 and at 3 (the default: 6)
    "prior-every2": {"prior_every": 2, "prior_weight": 1.5},
    "prior-every1": {"prior_every": 1, "prior_weight": 1.5},
    "prior-every1-w3": {"prior_every": 1, "prior_weight": 3.0},
    # controls, measured at the former default strength: the core checkpoint before it saw splat renders, random
    # weights, and the weight annealed linearly to 0 by the run's end
    "prior-core": {"checkpoint": "core", "prior_every": 2, "prior_weight": 1.5},
    "prior-untrained": {"checkpoint": "untrained", "prior_every": 2, "prior_weight": 1.5},
    "prior-linear": {"prior_schedule": "linear", "prior_every": 2, "prior_weight": 1.5},
    # measured in earlier rounds (git history of benchmarks/prior.md); not in the default set
    "prior-restore": {"checkpoint": "core", "prior_kind": "restore", "prior_poses": ("train", "between", "around"),
                      "prior_every": 2, "prior_weight": 1.5},
    "prior-sds": {"prior_kind": "sds", "prior_every": 2, "prior_weight": 1.5},
}
DEFAULT_ARMS = ["without", "without-tfp-frames", "without-core-frames", "prior"]
# prior settings added after runs were saved, with the value those runs had (kept out of the run key at that value)
ADDED_FIELDS = {"prior_max_views": "0"}
WITHOUT_FOR = {None: "without", "tfp": "without-tfp-frames", "spikegen": "without-core-frames"}
REPORT_ARMS = ["without", "without-tfp-frames", "without-core-frames", "prior", "prior-every2", "prior-every1",
               "prior-every1-w3", "prior-core", "prior-untrained", "prior-linear"]
REPRODUCE = " && ".join(f"python scripts/bench/bench_prior.py --reuse {args}" for args in [
    "--seeds 42 43 44 --scenes few-views twelve-views sparse-spikes --arms without prior prior-every2",
    "--seeds 42 43 --scenes plentiful --arms without prior prior-every2",
    "--scenes few-views sparse-spikes --arms without-tfp-frames",
    "--scenes plentiful --arms without-core-frames",
    "--seeds 42 43 44 --scenes few-views --arms prior-every1 prior-every1-w3",
    "--seeds 42 43 44 --scenes twelve-views --arms prior-every1-w3",
    "--scenes few-views --arms prior-core prior-untrained",
    "--seeds 42 43 --scenes few-views --arms prior-linear",
    f"--report-only --arms {' '.join(REPORT_ARMS)}",
])  # fmt: skip


@functools.cache
def _auto_frames(scene: Path, min_spikes: float) -> str:
    auto = AutoRestorer(min_spikes=min_spikes)
    views = SpikeDataParserConfig(data=scene).setup().get_dataparser_outputs("train").metadata["spike_views"]
    return "+".join(sorted({"tfp" if auto.choose(v.read()) is auto.tfp else "spikegen" for v in views}))


def frames_of(scene: Path, config) -> str:
    """Which frames a run trained on in ``scene``: "tfp", "spikegen", or both joined by "+" ("auto" picks per view
    by spike density, so it is read off the scene's windows, once per scene)."""
    dm = config.pipeline.datamanager
    return _auto_frames(scene, dm.auto_min_spikes) if dm.restorer == "auto" else dm.restorer


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
    if settings.get("plain"):
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
    for key, before in ADDED_FIELDS.items():  # fields added later: runs made before them had their value
        if fields.get(key) == before:
            del fields[key]
    if config.pipeline.datamanager.restorer != "tfp":  # (tfp runs keep the keys they were saved under)
        fields["restorer"] = config.pipeline.datamanager.restorer
    digest = file_digest(checkpoint)[:12] if checkpoint.is_file() else "none"
    return "_" + hashlib.sha1(json.dumps([fields, digest]).encode()).hexdigest()[:8]


def build(
    arm: str, scene: Path, out: Path, steps: int, device: str, checkpoint: Path | None, extra: dict, seed: int = 42
):
    settings = dict(ARMS[arm])
    restorer = settings.pop("restorer", None)
    if settings.pop("plain", False):
        config = make_trainer_config(max_steps=steps)
    else:
        settings = {k: v for k, v in {**settings, **extra}.items() if k != "checkpoint"}
        config = make_prior_trainer_config(max_steps=steps, prior_checkpoint=checkpoint, **settings)
    if restorer is not None:
        config.pipeline.datamanager.restorer = restorer
    return place(config, scene, out, f"prior-bench-{arm}", device, seed)


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


def _paired(runs: dict[int, dict], ref: dict[int, dict] | None, key: str) -> list[float]:
    """Per-seed differences ``runs − ref`` over the seeds both have (same seed = same random stream)."""
    return [runs[s][key] - ref[s][key] for s in sorted(runs) if ref and s in ref]


PRIOR_DEFAULTS = SpikeGenSplatPriorModelConfig()


def _every(n: int) -> str:
    return "every step" if n == 1 else f"every {({2: '2nd', 3: '3rd'}).get(n, f'{n}th')} step"


def _mean(values: list[float], digits: int) -> float | None:
    return round(float(np.mean(values)), digits) if values else None


def _spread(values: list[float]) -> str | None:
    """"lowest … highest" of per-seed differences (None for fewer than two seeds)."""
    return f"{min(values):+.2f} … {max(values):+.2f}" if len(values) > 1 else None


def report(results: dict, args: argparse.Namespace, meta: dict) -> None:
    columns = ["scene", "arm", "frames", "seeds", "PSNR", "SSIM", "Δ PSNR vs without", "prior's Δ PSNR",
               "prior's Δ PSNR per seed", "prior's Δ SSIM", "s/iter CPU", "cost ×"]  # fmt: skip
    rows = []
    for scene, arms in results.items():
        base = arms.get("without")
        for arm, runs in arms.items():
            first = runs[min(runs)]
            same = None if ARMS[arm].get("plain") else arms.get(WITHOUT_FOR[ARMS[arm].get("restorer")])
            d_base = _paired(runs, base, "psnr") if arm != "without" else []
            d_same, d_ssim = _paired(runs, same, "psnr"), _paired(runs, same, "ssim")
            cpu = float(np.mean([r["s_per_iter_cpu"] for r in runs.values()]))
            base_cpu = float(np.mean([r["s_per_iter_cpu"] for r in base.values()])) if base else None
            rows.append([
                scene, arm, first["frames"], ", ".join(map(str, sorted(runs))),
                _mean([r["psnr"] for r in runs.values()], 2), _mean([r["ssim"] for r in runs.values()], 4),
                _mean(d_base, 2), _mean(d_same, 2), _spread(d_same), _mean(d_ssim, 4), round(cpu, 3),
                round(cpu / base_cpu, 2) if base_cpu and arm != "without" else None,
            ])  # fmt: skip
    lines = [
        "# spikegen-splat with and without the core model (as frame restorer and as prior)",
        "",
        f"- commit `{meta['commit']}`, {meta['date']}; {machine_summary(meta['machine'])}; "
        f"load average {meta['machine'].get('load_average_1min')}",
        f"- {args.steps} iterations per run, same schedule, training seeds as listed (a seed fixes the run's random "
        f"stream: view order, backgrounds, densification); prior checkpoint: "
        f"`{args.checkpoint or 'spikegen_nvs/assets/spikegen_tiny_splatfix.safetensors'}` ({_checkpoint_summary(args.checkpoint)})",
        "- frames = the training views' dense targets: `tfp` (grey TFP of the window's central 21 ticks) or "
        "`spikegen` (the core model deblurs the view's RGB with its spikes); both methods default to `auto`, which "
        "takes TFP where a window holds ≥ 4 spikes per pixel and the core model's frame where it does not (the "
        "sample scene's windows hold 9–14, the sparse scene's 1.1–1.8)",
        "- arms: `without` = no prior (spikegen-splat's settings with the prior off); `without-tfp-frames` / "
        "`without-core-frames` = with its frames forced to one kind; `prior` = spikegen-splat-prior's defaults (the "
        "splat prior's one-pass fix of renders at in-between and jittered poses, stop-gradient MSE, weight "
        f"{PRIOR_DEFAULTS.prior_weight:g} held constant, {_every(PRIOR_DEFAULTS.prior_every)}); "
        "`prior-every2` / `prior-every1` / `prior-every1-w3` = weight 1.5 every 2nd step (the former default), 1.5 "
        "every step, 3 every step; `prior-tfp-frames` = the prior on TFP frames; controls (8-view scene, at the former "
        "default strength): `prior-core` = the core checkpoint (what fine-tuning on splat renders adds), "
        "`prior-untrained` = random weights (what the extra views and gradients do alone), `prior-linear` = weight "
        "annealed to 0 over the run",
        f"- **spikegen-splat** runs `prior` on scenes of at most {PRIOR_MAX_VIEWS} training views (`few-views`) and "
        "`without` on larger ones (`twelve-views`; `sparse-spikes` and `plentiful` have 24): the same run, the prior "
        "is never loaded",
        "- PSNR/SSIM: test views as `ns-eval` computes them, mean over the seeds; Δ columns pair runs by seed. "
        "\"prior's Δ\" = against the arm without a prior on the same frames (the prior's own effect). A run is "
        "deterministic on CPU, and with the prior the training draws the same random numbers as without it (the "
        "prior's model load and renders fork the RNG; tested), so a per-seed Δ is the prior's effect on that "
        "stream; but the stream itself matters: one setting on two streams differed by 0.17 dB, so read "
        "single-seed |Δ| < 0.2 dB as no effect",
        "- s/iter = CPU seconds per iteration, mean over the run (prior steps included)",
        "",
        *markdown_table(columns, rows),
        "",
        "## Scenes",
        "",
        *[f"- `{k}`: `{json.dumps(SCENES[k])}`" for k in results],
        "",
        f"Reproduce: `{REPRODUCE}` (the last command rebuilds this page from the saved runs)",
    ]
    table = {"title": f"Test views with and without the core model's frames and prior ({args.steps} iterations)",
             "columns": columns, "rows": rows, "headline": True}
    result = {**meta, "benchmark": "prior", "title": "spikegen-splat with and without the core model as restorer and prior",
              "command": REPRODUCE if args.report_only else " ".join(sys.argv), "settings": {k: str(v) for k, v in vars(args).items()},
              "tables": [table], "scenes": {k: SCENES[k] for k in results}, "arms": ARMS,
              "results": results}  # fmt: skip
    write_results(ROOT / args.out, result, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="spikegen-splat's own run length by default")
    parser.add_argument("--scenes", nargs="*", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--arms", nargs="*", default=DEFAULT_ARMS, choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[42], help="training seeds (one run per arm and seed)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="SpikeGen checkpoint (default: shipped)")
    parser.add_argument("--prior", type=json.loads, default={}, help='extra prior settings, e.g. \'{"prior_weight": 1}\'')
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_prior")
    parser.add_argument("--out", default="benchmarks/prior", help="report stem (relative to the repo)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reuse", action="store_true", help="reuse saved per-run results with the same steps")
    parser.add_argument("--report-only", action="store_true", help="report the saved runs only (every seed saved)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    meta = bench_meta(args.device)
    results: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for name in args.scenes:
        spec = dict(SCENES[name])
        scene = args.work / "scenes" / name
        if not (scene / "transforms.json").is_file():
            make_scene(scene, preset=spec.pop("preset"), seed=spec.pop("seed"), **spec)
        results[name] = {}
        for arm in args.arms:
            ckpt = arm_checkpoint(arm, args.work / "runs", args.checkpoint)
            arm_config = build(arm, scene, args.work / "runs", args.steps, args.device, ckpt, args.prior)
            stem = f"{name}_{arm}_{args.steps}{run_key(arm_config, ckpt)}"  # the same for every seed
            runs: dict[int, dict[str, Any]] = {}
            if args.report_only:  # every seed saved for this arm
                for path in sorted((args.work / "results").glob(f"{stem}*.json")):
                    tail = path.stem[len(stem):]
                    if tail == "" or (tail.startswith("_s") and tail[2:].isdigit()):
                        runs[int(tail[2:]) if tail else 42] = json.loads(path.read_text())
            for seed in [] if args.report_only else args.seeds:
                saved = args.work / "results" / f"{stem}{'' if seed == 42 else f'_s{seed}'}.json"
                if args.reuse and saved.is_file():
                    runs[seed] = json.loads(saved.read_text())
                    continue
                config = build(arm, scene, args.work / "runs", args.steps, args.device, ckpt, args.prior, seed)
                torch.manual_seed(seed)
                print(f"[bench_prior] {name}: {arm}, seed {seed} ({args.steps} iterations)", flush=True)
                runs[seed] = res = train_and_eval(config, args.steps)
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps(res))
                print(f"[bench_prior]   PSNR {res['psnr']:.2f} SSIM {res['ssim']:.4f} {res['s_per_iter_cpu']:.3f} CPU s/iter",
                      flush=True)  # fmt: skip
            if runs:
                frames = frames_of(scene, arm_config)
                results[name][arm] = {seed: {**r, "frames": frames} for seed, r in sorted(runs.items())}
        report(results, args, meta)  # after every scene, so a partial run still leaves a report
    print(f"[bench_prior] wrote {args.out}.md/.json")


if __name__ == "__main__":
    main()
