"""The ``spikegen`` command line: tyro subcommands over the core package.

Each subcommand lives beside the code it drives; this module only names them. Heavy modules (the model,
diffusers) are imported by the subcommand that needs them, so ``spikegen --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import tyro


def reconstruct(
    spikes: tyro.conf.Positional[Path],
    out: Path = Path("outputs/reconstruct"),
    method: Literal["tfp", "tfi", "both", "model"] = "both",
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    center: int | None = None,
    window: int = 41,
    threshold: float | None = None,
    checkpoint: Path | None = None,
) -> None:
    """Reconstruct an image from a spike file (.dat/.npz/.npy) with TFP, TFI or the SpikeGen model.

    Args:
        spikes: the spike file. `.dat` needs --height/--width unless a sidecar JSON sits beside it.
        out: folder for the PNGs.
        method: tfp (window mean), tfi (inter-spike interval), both, or model (the SpikeGen checkpoint).
        height: frame height for `.dat` files.
        width: frame width for `.dat` files.
        axes: axis order of `.npz`/`.npy` arrays, THW or HWT.
        center: key frame (default: the middle of the stream).
        window: TFP window length in frames (the field's protocol uses 41).
        threshold: θ of the camera (default: the file's sidecar, else 2.0).
        checkpoint: SpikeGen checkpoint for --method model (default: the shipped one).
    """
    from spikegen_core.image import save_image
    from spikegen_core.spikes import load_spikes, tfi, tfp

    stream = load_spikes(spikes, height=height, width=width, axes=axes)
    theta = threshold or stream.threshold or 2.0
    c = stream.num_frames // 2 if center is None else center
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if method in ("tfp", "both"):
        w = stream.window(c, min(window, stream.num_frames))
        img = tfp(w.spikes, threshold=theta)
        written.append(save_image(out / f"{spikes.stem}_tfp.png", img.clamp(0, 1)))
    if method in ("tfi", "both"):
        img = tfi(stream.spikes, center=c, threshold=theta)
        written.append(save_image(out / f"{spikes.stem}_tfi.png", img.clamp(0, 1)))
    if method == "model":
        from spikegen_core.train import restore

        written.append(restore(spikes=spikes, out=out / f"{spikes.stem}_spikegen.png", checkpoint=checkpoint,
                               height=height, width=width, axes=axes, center=c))
    print(f"read {stream.num_frames} spike frames of {stream.height}×{stream.width} from {spikes}")
    for p in written:
        print(f"wrote {p}")


def _commands() -> dict:
    from spikegen_core.data.pairs import make_pairs_command, simulate_command
    from spikegen_core.data.scene import make_scene_command
    from spikegen_core.video import deblur_video_command, restore_video_command

    return {
        "simulate": simulate_command,
        "reconstruct": reconstruct,
        "make-pairs": make_pairs_command,
        "make-scene": make_scene_command,
        "restore-video": restore_video_command,
        "deblur-video": deblur_video_command,
    }


def main() -> None:
    tyro.extras.subcommand_cli_from_dict(_commands(), description="SpikeGen core tools.")


if __name__ == "__main__":
    main()

