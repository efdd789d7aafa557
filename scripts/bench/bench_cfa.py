"""Benchmark: colour spike cameras (Bayer CFA) without any RGB camera, on generated high-speed scenes.

For each scene (a world kind of ``spikegen make-scene`` at the sample preset's size, and a seed) it generates the
same world and trajectory twice,
  - ``colour``: colour spikes only (``spikegen make-scene --cfa RGGB --no-rgb``),
  - ``grey+rgb``: grey spikes + motion-blurred RGB frames (``spikegen make-scene``, the README's setup),
and trains, with the same iterations and seed,
  - ``spikegen-splat`` on the colour-spikes scene (colour spike loss through the CFA, demosaiced TFP frames),
  - ``spikegen-baseline`` (splatfacto) on the colour scene's demosaiced TFP frames (``--train-images tfp``),
  - ``spikegen-splat`` on the grey-spikes + blurred-RGB scene (colour from the re-blur loss),
then scores the test views as ``ns-eval`` does and writes ``benchmarks/cfa.md``/``.json`` and one figure per
scene in ``docs/figures/`` (TFP baseline | colour spikegen-splat | grey + RGB spikegen-splat | ground truth).
It also runs ``guess_cfa`` on every colour training window and reports how often it names the true pattern.
The colour-spike settings were chosen on seed 0 of each world and seed 1 of the orbit (``TUNED_ON``); room and
forward seed 1 were not looked at while choosing them, and are reported as such.

Reproduce: ``nice -n 10 python scripts/bench/bench_cfa.py`` (``--steps`` to shorten, ``--reuse`` to report saved runs).
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _bench_meta import bench_meta, markdown_table, write_results  # noqa: E402
from _splat_runs import saved_run  # noqa: E402
from bench_nvs import train_and_eval  # noqa: E402

from spikegen_core.data.scene import KINDS, make_scene  # noqa: E402
from spikegen_core.spikes.io import read_dat  # noqa: E402
from spikegen_core.spikes.reconstruct import guess_cfa, tfp  # noqa: E402
from spikegen_nvs.config import make_trainer_config  # noqa: E402

CFA = "RGGB"
SCENES = {"colour": {"cfa": CFA, "rgb": False}, "grey+rgb": {}}
# (run name, scene kind, method for bench_nvs.train_and_eval)
RUNS = (
    ("tfp-splatfacto", "colour", "tfp"),
    ("colour-splat", "colour", "spikegen-splat"),
    ("grey+rgb-splat", "grey+rgb", "spikegen-splat"),
)
LABELS = {
    "tfp-splatfacto": "splatfacto on demosaiced TFP (colour spikes)",
    "colour-splat": "spikegen-splat, colour spikes only",
    "grey+rgb-splat": "spikegen-splat, grey spikes + blurred RGB",
}


# The scenes (WORLD:SEED) the colour-spike defaults were chosen on; every other scene is held out.
TUNED_ON = ("orbit:0", "orbit:1", "room:0", "forward:0")


def scene_key(world: str, seed: int) -> str:
    """``seed0`` for the sample scene's own (orbit) world, ``room-seed0`` for the others."""
    return f"seed{seed}" if world == "orbit" else f"{world}-seed{seed}"


def scene_path(work: Path, kind: str, seed: int, world: str = "orbit") -> Path:
    scene = work / "scenes" / f"{kind}-{scene_key(world, seed)}"
    if not (scene / "transforms.json").is_file():
        make_scene(scene, preset="sample", seed=seed, kind=world, **SCENES[kind])
    return scene


def cfa_check(scene: Path) -> dict[str, Any]:
    """``guess_cfa`` on each colour training window (no reference, then with the sharp frame as reference)."""
    meta = json.loads((scene / "transforms.json").read_text())
    blind, with_ref, green = 0, 0, 0
    frames = [f for f in meta["frames"] if "spike_path" in f]
    for f in frames:
        stream = read_dat(scene / f["spike_path"])
        mosaic_tfp = tfp(stream)
        ref = torch.from_numpy(np.asarray(Image.open(scene / f["sharp_path"]), np.float32) / 255).permute(
            2, 0, 1
        )
        blind_guess = guess_cfa(mosaic_tfp)
        blind += blind_guess == stream.cfa
        green += blind_guess in (("RGGB", "BGGR") if stream.cfa in ("RGGB", "BGGR") else ("GRBG", "GBRG"))
        with_ref += guess_cfa(mosaic_tfp, reference=ref) == stream.cfa
    return {"windows": len(frames), "green_sites_right": green, "right_without_reference": blind,
            "right_with_reference": with_ref}  # fmt: skip


def figure(render_dirs: dict[str, Path], gt_scene: Path, out: Path, view: int, scale: int = 2) -> str:
    tiles = [Image.open(render_dirs[name] / f"{view:02d}.png").convert("RGB") for name, _, _ in RUNS]
    tiles.append(Image.open(gt_scene / "images" / f"test_{view:04d}.png").convert("RGB"))
    w, h = tiles[0].size
    sheet = Image.new("RGB", (len(tiles) * w + (len(tiles) - 1) * 2, h), (255, 255, 255))
    for j, tile in enumerate(tiles):
        sheet.paste(tile, (j * (w + 2), 0))
    sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
    sheet.save(out, optimize=True)
    return str(out.relative_to(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="iterations per run (default: the method's)")
    parser.add_argument(
        "--scenes", nargs="*", default=[*TUNED_ON, "room:1", "forward:1"],
        help=f"WORLD:SEED per scene (worlds: {', '.join(KINDS)})",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench_cfa", help="scenes and runs")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", nargs="*", default=[r[0] for r in RUNS], choices=[r[0] for r in RUNS])
    parser.add_argument(
        "--reuse", action="store_true", help="reuse saved results of earlier runs (same steps)"
    )
    parser.add_argument("--view", type=int, default=0, help="test view shown in the figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or make_trainer_config().max_num_iterations
    results: dict[str, dict[str, Any]] = {}
    specs: dict[str, str] = {}  # scene key -> its WORLD:SEED
    checks: dict[str, Any] = {}
    figures: list[str] = []
    scenes = []
    for spec in args.scenes:
        world, _, seed = spec.partition(":")
        if world not in KINDS or not seed.isdigit():
            parser.error(f"--scenes {spec!r}: use WORLD:SEED with WORLD one of {', '.join(KINDS)}, e.g. room:0")
        scenes.append((world, int(seed)))
    for world, seed in scenes:
        key = scene_key(world, seed)
        specs[key] = f"{world}:{seed}"
        res, dirs = {}, {}
        for name, kind, method in RUNS:
            scene = scene_path(args.work, kind, seed, world)
            dirs[name] = args.work / "renders" / key / name
            result = saved_run(
                args.work / "results" / f"{key}_{name}_{steps}.json", reuse=args.reuse, wanted=name in args.runs,
                label=f"[bench_cfa] {key}: {name} ({steps} iterations)",
                run=partial(train_and_eval, method, scene, args.work / "runs" / kind, steps, args.device,
                            renders=dirs[name]),
            )  # fmt: skip
            if result is not None:
                res[name] = result
        checks[key] = cfa_check(scene_path(args.work, "colour", seed, world))
        if len(res) < len(RUNS):
            print(f"[bench_cfa] {key}: only {sorted(res)} done; no report (rerun with --reuse for the rest)")
            return
        results[key] = res
        sheet = ROOT / "docs" / "figures" / f"cfa_{key}.png"
        figures.append(figure(dirs, scene_path(args.work, "colour", seed, world), sheet, args.view))

    rows, deltas = [], {}
    for key, res in results.items():
        for name, _, _ in RUNS:
            r = res[name]
            rows.append(
                [key, LABELS[name], round(r["psnr"], 2), round(r["ssim"], 4), round(r["s_per_iter_cpu"], 3)]
            )
        deltas[key] = {
            "colour_vs_tfp_db": res["colour-splat"]["psnr"] - res["tfp-splatfacto"]["psnr"],
            "colour_vs_grey_rgb_db": res["colour-splat"]["psnr"] - res["grey+rgb-splat"]["psnr"],
            "tuned_on": specs[key] in TUNED_ON,
        }
    delta_columns = ["scene", "settings chosen on it", "colour-splat − TFP splatfacto (dB)",
                     "colour-splat − grey+RGB splat (dB)"]  # fmt: skip
    delta_rows = [[k, "yes" if d["tuned_on"] else "no (held out)", round(d["colour_vs_tfp_db"], 2),
                   round(d["colour_vs_grey_rgb_db"], 2)] for k, d in deltas.items()]  # fmt: skip
    check_columns = [
        "scene",
        "windows",
        "green sites right",
        "pattern right (no reference)",
        "pattern right (sharp frame as reference)",
    ]
    check_rows = [
        [k, c["windows"], c["green_sites_right"], c["right_without_reference"], c["right_with_reference"]]
        for k, c in checks.items()
    ]
    result = {
        **bench_meta(args.device),
        "benchmark": "cfa",
        "title": "Colour spike cameras (Bayer CFA), no RGB camera",
        "tables": [
            {
                "title": "test views",
                "columns": ["scene", "method", "PSNR", "SSIM", "CPU s/iter"],
                "rows": rows,
                "headline": True,
            },
            {"title": "deltas", "columns": delta_columns, "rows": delta_rows, "headline": True},
            {"title": "guess_cfa on the colour training windows", "columns": check_columns, "rows": check_rows},
        ],
        "command": "nice -n 10 python scripts/bench/bench_cfa.py " + " ".join(a for a in sys.argv[1:] if a != "--reuse"),
        "settings": {"steps": steps, "scenes": args.scenes, "cfa": CFA, "scene": "sample preset", "train_seed": 42,
                     "load_avg_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg())},
        "results": results, "deltas": deltas, "cfa_check": checks, "figures": figures,
        "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }  # fmt: skip
    lines = [
        "# Colour spike cameras (Bayer CFA): novel views from colour spikes alone",
        "",
        f"- commit `{result['commit']}`, {result['date']}; {steps} iterations per run, training seed 42, CPU "
        "(shared machine: CPU seconds are the steadier timing)",
        f"- scenes: `spikegen make-scene` worlds at the sample preset's size (96x72, 24 train + 6 test views): "
        f"{', '.join(args.scenes)} (`seedN` is the sample scene's orbit world), each generated as colour spikes only "
        f"(`--cfa {CFA} --no-rgb`) and as grey spikes + blurred RGB (same world and poses)",
        f"- the colour-spike defaults were chosen on {', '.join(TUNED_ON)}; the other scenes were held out",
        "- test PSNR/SSIM: held-out sharp views, as `ns-eval` computes them",
        "",
        *markdown_table(["scene", "method", "PSNR", "SSIM", "CPU s/iter"], rows),
        "",
        *markdown_table(delta_columns, delta_rows),
        "",
        "## Wrong-pattern check (`guess_cfa` on each colour training window's TFP)",
        "",
        *markdown_table(check_columns, check_rows),
        "",
        "## Figures (TFP splatfacto | colour-spikes spikegen-splat | grey + RGB spikegen-splat | ground truth)",
        "",
        *[f"![{p}](../{p})" for p in figures],
        "",
        "Reproduce: `nice -n 10 python scripts/bench/bench_cfa.py` (see `--help`)",
        "",
    ]
    write_results(ROOT / "benchmarks" / "cfa", result, lines)
    print("[bench_cfa] wrote benchmarks/cfa.md, benchmarks/cfa.json and", ", ".join(figures))


if __name__ == "__main__":
    main()
