"""Figure: strips of frames from the real spike recordings, TFP sliding windows vs our restorer.

    PYTHONPATH=. python scripts/figures/fig_video_strip.py [--videos OUT_DIR] [--checkpoint PATH]

Writes docs/figures/video_strip.png (one block per recording: a row of TFP frames over a row of ours at the
same ticks). "Ours" is the SpikeGen model when a checkpoint is given or shipped, else the motion-adaptive
TFP (training-free). With ``--videos`` it also writes both videos of each recording as MP4s into that folder
(MP4s are outputs, not repository files). Reads ../shared/data/spike/real (or $SPIKEGEN_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from spikegen_core.video import SpikeSource, TFPRestorer, restore_frames, restore_video, window_centres  # noqa: E402
from spikegen_core.video.restorers import AdaptiveTFPRestorer, ModelRestorer  # noqa: E402

SHIPPED = REPO / "spikegen_core" / "assets" / "spikegen_tiny.safetensors"
# (file, axes, long window for the adaptive restorer, ticks between strip frames)
RECORDINGS = [("uhsr_helicopter.npz", "THW", 81, 25), ("outdoor_trees.npz", "HWT", 161, 60)]


def frames_at(src: SpikeSource, centres: np.ndarray, window: int, restorer) -> np.ndarray:
    out: list[torch.Tensor] = []
    restore_frames(src, centres, window, restorer, batch_size=4, progress=False, sink=lambda c, f: out.append(f))
    return torch.cat(out)[:, 0].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SPIKEGEN_SHARED_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "video_strip.png")
    ap.add_argument("--videos", type=Path, default=None, help="also write MP4s (TFP and ours) here")
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--columns", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ckpt = args.checkpoint or (SHIPPED if SHIPPED.is_file() else None)
    model = ModelRestorer(ckpt).load() if ckpt else None
    ours_label = "SpikeGen" if model else "adaptive TFP"
    fig, axes = plt.subplots(2 * len(RECORDINGS), args.columns, figsize=(1.9 * args.columns, 2.6 * len(RECORDINGS)),
                             gridspec_kw={"hspace": 0.22, "wspace": 0.03})
    for r, (name, axes_order, long_win, every) in enumerate(RECORDINGS):
        src = SpikeSource.open(args.data / "spike" / "real" / name, axes=axes_order)
        centres = window_centres(src.num_frames, long_win, step=every)[: args.columns]
        tfp41 = frames_at(src, centres, 41, TFPRestorer(2.0))
        ours = frames_at(src, centres, 41 if model else long_win, model or AdaptiveTFPRestorer(2.0, short=41))
        gain = 0.95 / max(np.quantile(tfp41, 0.995), 1e-3)  # one display gain per recording, both rows
        for c, t in enumerate(centres):
            for k, (img, label) in enumerate(((tfp41[c], "TFP 41"), (ours[c], ours_label))):
                ax = axes[2 * r + k, c]
                ax.imshow(np.clip(img * gain, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"{label}", fontsize=7)
                if k == 0:
                    ax.set_title(f"{Path(name).stem.split('_')[-1]}  {t / src.clock_hz * 1e3:.2f} ms", fontsize=7)
        if args.videos:
            for rest, win in ((TFPRestorer(2.0), 41), (model or AdaptiveTFPRestorer(2.0, short=41), 41 if model else long_win)):
                res = restore_video(src, args.videos, fps=1000, window=win, restorer=rest, normalize=True,
                                    progress=False)
                print(f"wrote {res.mp4} ({res.frames} frames)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
