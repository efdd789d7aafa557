"""Training pairs for the splat-artifact prior: (render of a partly trained splat scene, sharp ground truth).

For each generated scene (seeds other than the benchmarks' seed 0, so bench_prior's scenes stay unseen) it
trains spikegen-splat and, at a few snapshot steps, renders the held-out test views (between the training
views and off the path: where few-view splats go wrong) and some training views (where they are nearly right,
so the prior also learns to leave good renders alone). Writes one ``pairs.npz`` (uint8 ``renders``,
``targets`` (N, H, W, 3), ``kind`` 0 = test view / 1 = training view, ``step``, ``scene``) atomically.

Reproduce: ``python scripts/dev/make_prior_pairs.py`` (CPU: about 2 min per scene on one core).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from _splat_runs import iterate, place, start  # noqa: E402

from spikegen_core.data.scene import make_scene  # noqa: E402
from spikegen_core.image import load_image  # noqa: E402
from spikegen_core.metrics import psnr  # noqa: E402
from spikegen_core.utils import atomic_write  # noqa: E402
from spikegen_nvs.config import make_trainer_config  # noqa: E402

# scarce data in both ways the benchmark tests (few views, sparse spikes) and a plentiful one
VARIANTS: list[dict] = [
    {"num_train": 8},
    {"num_train": 6},
    {"num_train": 12},
    {"num_train": 10, "window": 16, "subframes": 5, "threshold": 4.0},
]


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def scene_pairs(scene: Path, work: Path, steps: int, snapshots: list[int], train_every: int) -> dict[str, list]:
    config = place(make_trainer_config(max_steps=steps), scene, work, "pairs", "cpu")
    trainer = start(config)
    pipeline = trainer.pipeline
    out: dict[str, list] = {"renders": [], "targets": [], "kind": [], "step": []}

    def grab(step: int) -> None:
        if step + 1 not in snapshots:
            return
        pipeline.eval()
        with torch.no_grad():
            for camera, batch in pipeline.datamanager.fixed_indices_eval_dataloader:
                rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
                out["renders"].append(to_u8(rgb))
                gt = batch["image"][..., :3]
                out["targets"].append(gt.cpu().numpy() if gt.dtype == torch.uint8 else to_u8(gt))
                out["kind"].append(0)
                out["step"].append(step + 1)
            dm = pipeline.datamanager
            for i in range(0, len(dm.train_dataset), train_every):
                camera = dm.train_dataset.cameras[i : i + 1].to(pipeline.device)
                sharp = dm.spike_views[i].sharp_path
                if sharp is None:  # scenes from process-data have no sharp frames
                    break
                rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
                target = load_image(sharp).permute(1, 2, 0)  # (H, W, 3) like the render
                out["renders"].append(to_u8(rgb))
                out["targets"].append(to_u8(target))
                out["kind"].append(1)
                out["step"].append(step + 1)
        # iterate() puts the pipeline back in train mode at the start of the next step

    iterate(trainer, steps, grab)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(1, 9)))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, nargs="*", default=[300, 600, 1000])
    parser.add_argument("--train-every", type=int, default=3, help="also pair every n-th training view")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "prior_pairs")
    parser.add_argument("--out", type=Path, default=None, help="default: <work>/pairs.npz")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    total: dict[str, list] = {"renders": [], "targets": [], "kind": [], "step": [], "scene": []}
    for n, seed in enumerate(args.seeds):
        variant = VARIANTS[n % len(VARIANTS)]
        name = f"seed{seed}_" + "_".join(f"{k}{v}" for k, v in variant.items())
        scene = args.work / "scenes" / name
        part = args.work / "parts" / f"{name}_{args.steps}.npz"
        if not part.is_file():
            if not (scene / "transforms.json").is_file():
                make_scene(scene, preset="sample", seed=seed, num_test=12, num_off_track=4, overwrite=True,
                           rgb_response="linear", **variant)  # the prior learns in linear light
            print(f"[pairs] {name}: training {args.steps} steps", flush=True)
            got = scene_pairs(scene, args.work / "runs", args.steps, args.snapshots, args.train_every)
            with atomic_write(part) as f:  # a killed run leaves no half part; finished scenes are reused
                np.savez(f, **{k: np.stack(v) for k, v in got.items()})
        data = np.load(part)
        for k in ("renders", "targets", "kind", "step"):
            total[k].extend(list(data[k]))
        total["scene"].extend([n] * len(data["kind"]))
        p = psnr(*(torch.from_numpy(data[k]).float() / 255 for k in ("renders", "targets")), reduction="none").numpy()
        print(f"[pairs] {name}: {len(p)} pairs, render PSNR {p[data['kind'] == 0].mean():.2f} (test views)"
              f" {p[data['kind'] == 1].mean():.2f} (train views)", flush=True)  # fmt: skip
    out = args.out or args.work / "pairs.npz"
    with atomic_write(out) as f:
        np.savez_compressed(f, **{k: np.stack(v) for k, v in total.items()})
    with atomic_write(out.with_suffix(".json"), "w") as f:
        f.write(json.dumps({"command": " ".join(sys.argv), **vars(args)}, default=str))
    print(f"[pairs] wrote {out} ({len(total['kind'])} pairs)")


if __name__ == "__main__":
    main()
