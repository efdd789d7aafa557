"""Real spike recordings (no ground truth): TFP vs ours with no-reference measures.

Writes ``benchmarks/real.{md,json}``. For each recording in ``../shared/data/spike/real`` and a few window
centres, it restores the frame at the centre with

- TFP and TFI over a short window (41 frames, the field's benchmark window),
- the motion-adaptive TFP (training-free: long window where still, short where moving),
- the SpikeGen model on the same short window (when a checkpoint exists, default: the shipped one),

and the long-window TFP (``--long`` frames) as the reference a good restoration should resemble. Measures:
variance of the Laplacian and gradient energy (mean squared Sobel magnitude) — sharpness, which noise also
raises — and the Pearson correlation with the long-window TFP, which noise lowers. Read them together.

The cameras' θ is unknown: one θ per recording maps the 99.5th percentile of the per-pixel spike rate over
the whole stream to intensity 0.95 (``--white``; a white point, so the long-window TFP does not clip), the same
for every method, and outputs are clipped to [0, 1] before measuring.

    python scripts/bench/bench_real.py
    python scripts/bench/bench_real.py --checkpoint none --centres 1
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_meta import bench_meta, machine_summary, markdown_table, settings_line, write_results  # noqa: E402
from bench_core import DEFAULT_DATA, central, load_checkpoint  # noqa: E402

from spikegen_core.spikes.io import read_npz  # noqa: E402
from spikegen_core.spikes.reconstruct import tfi, tfp  # noqa: E402
from spikegen_core.video.restorers import AdaptiveTFPRestorer  # noqa: E402


@dataclass(frozen=True)
class Recording:
    file: str
    axes: str  # axis order in the file
    long: int  # long window (frames): still scenes tolerate more


# The helicopter print moves fast (a long window smears it); the trees scene is mostly still.
RECORDINGS = (Recording("uhsr_helicopter.npz", "THW", 81), Recording("outdoor_trees.npz", "HWT", 161))
SHORT = 41


def load_recording(data: Path, rec: Recording) -> torch.Tensor:
    """The whole recording as (T, H, W) uint8."""
    return read_npz(data / "spike" / "real" / rec.file, axes=rec.axes).spikes


def fit_threshold(spikes: torch.Tensor, white: float, quantile: float = 0.995) -> float:
    """θ mapping the ``quantile`` of the per-pixel spike rate to intensity ``white`` (θ is not recorded)."""
    rate = spikes.float().mean(0).flatten()
    return float(white / torch.quantile(rate, quantile).clamp_min(1e-6))


def restore_methods(window: torch.Tensor, theta: float, short: int, model: Any, fast: Any = None) -> dict[str, np.ndarray]:
    """Method → (H, W) image in [0, 1] for the centre frame of ``window`` (the long window, (T, H, W))."""
    short_win = central(window, short)
    out = {
        "TFP 41": tfp(short_win, threshold=theta),
        "TFI 41": tfi(short_win, threshold=theta),
        "motion-adaptive TFP": AdaptiveTFPRestorer(theta, short=short)(window[None])[0, 0],
    }
    if model is not None:
        from spikegen_core.train import restore_tensors

        out["SpikeGen 41"] = restore_tensors(model, short_win, None, threshold=theta, mode="reconstruct")[0].cpu()
    if fast is not None:  # the fast model reads the central 33 ticks of the short window
        from spikegen_core.train import restore_tensors

        out["fast model 41"] = restore_tensors(fast, short_win, None, threshold=theta)[0].cpu()
    out["long-window TFP"] = tfp(window, threshold=theta)
    return {k: v.clamp(0, 1).numpy().astype(np.float64) for k, v in out.items()}


def laplacian_variance(img: np.ndarray) -> float:
    """Variance of the Laplacian (the classic focus measure)."""
    return float(ndimage.laplace(img, mode="reflect").var())


def gradient_energy(img: np.ndarray) -> float:
    """Mean squared Sobel gradient magnitude (Tenengrad)."""
    return float(np.mean(ndimage.sobel(img, 0, mode="reflect") ** 2 + ndimage.sobel(img, 1, mode="reflect") ** 2))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images (1 = same up to gain and offset)."""
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def measure(images: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    ref = images["long-window TFP"]
    return {m: {"laplacian_var": laplacian_variance(img), "gradient_energy": gradient_energy(img),
                "corr_long_tfp": correlation(img, ref), "mean": float(img.mean())} for m, img in images.items()}


def centres_for(num_frames: int, long: int, count: int) -> list[int]:
    """``count`` centres evenly spread where the whole long window fits."""
    lo, hi = long // 2, num_frames - (long - long // 2)
    return [int(c) for c in np.linspace(lo, hi, count + 2)[1:-1].round()] if count > 1 else [(lo + hi) // 2]


def run(args: argparse.Namespace, model: Any, fast: Any = None) -> dict[str, Any]:
    out = {}
    for rec in RECORDINGS:
        path = args.data / "spike" / "real" / rec.file
        if not path.is_file():
            continue
        spikes = load_recording(args.data, rec)
        theta = fit_threshold(spikes, args.white)
        per_centre = []
        for c in centres_for(spikes.shape[0], rec.long, args.centres):
            per_centre.append(measure(restore_methods(central(spikes, rec.long, c), theta, args.short, model, fast)))
        mean = {m: {k: float(np.mean([pc[m][k] for pc in per_centre])) for k in per_centre[0][m]}
                for m in per_centre[0]}
        out[Path(rec.file).stem] = {
            "file": f"spike/real/{rec.file}", "shape_thw": list(spikes.shape), "theta": round(theta, 4),
            "long_window": rec.long, "centres": centres_for(spikes.shape[0], rec.long, args.centres),
            "mean_rate": round(float(spikes.float().mean()), 4), "methods": mean,
        }
    return out


def table(name: str, rec: dict[str, Any]) -> dict[str, Any]:
    rows = [[m, round(v["laplacian_var"] * 1e3, 3), round(v["gradient_energy"] * 1e3, 3),
             round(v["corr_long_tfp"], 4)] for m, v in rec["methods"].items()]
    return {"name": name, "title": f"{name} ({'×'.join(map(str, rec['shape_thw']))} T×H×W, θ={rec['theta']}, "
            f"long window {rec['long_window']})",
            "columns": ["method", "Laplacian variance ×10³", "gradient energy ×10³", "corr. with long-window TFP"],
            "rows": rows, "headline": True,
            "note": f"Mean over window centres {rec['centres']}. Sharpness rises with detail and with noise; "
                    "the correlation falls with noise and with motion blur."}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--checkpoint", default=None, help="model checkpoint; default: the shipped one; 'none': no model")
    p.add_argument("--fast", default="fast", help="fast-model checkpoint (default: the shipped one); 'none': skip")
    p.add_argument("--short", type=int, default=SHORT, help="short window (frames) of TFP/TFI/the model")
    p.add_argument("--centres", type=int, default=3, help="window centres per recording")
    p.add_argument("--white", type=float, default=0.95, help="intensity the 99.5th-percentile spike rate maps to")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the model runs")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "real")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, model_info = load_checkpoint(args.checkpoint, args.device)
    fast = None
    if args.fast != "none":
        from spikegen_core.train.checkpoint import load_fast_model

        fast = load_fast_model(args.fast, device=args.device)[0]
    recordings = run(args, model, fast)

    command = "python scripts/bench/bench_real.py" + "".join(f" {a}" for a in map(shlex.quote, sys.argv[1:]))
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "data")}
    settings["long_windows"] = {Path(r.file).stem: r.long for r in RECORDINGS}
    tables = [table(name, rec) for name, rec in recordings.items()]
    result = {
        "benchmark": "real",
        "title": "Real spike recordings: TFP vs ours (no ground truth)",
        "command": command,
        **bench_meta(args.device),
        "settings": settings,
        "model": model_info or "no checkpoint: training-free rows only",
        "tables": tables,
        "recordings": recordings,
    }
    md = [f"# {result['title']}", "", f"- commit `{result['commit']}`, {result['date']}",
          f"- machine: {machine_summary(result['machine'])}",
          f"- model: {model_info['checkpoint'] if model_info else 'none'}", f"- rerun: `{command}`",
          f"- settings: {settings_line(settings)}", ""]
    for t in tables:
        md += [f"## {t['title']}", "", *markdown_table(t["columns"], t["rows"]), "", t["note"], ""]
    write_results(args.out, result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
