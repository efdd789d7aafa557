"""The ``spikegen`` command line: tyro subcommands over the core package.

Each subcommand lives beside the code it drives; this module only names them. Heavy modules (the model,
diffusers) are imported by the subcommand that needs them, so ``spikegen --help`` stays quick.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import tyro

from spikegen_core import __version__
from spikegen_core.cli_guard import checked, run_cli

SPIKES_FLAG = "--spikes"
"""Former spelling of the spike file of ``restore-video``; every verb now takes it as its first positional."""


def reconstruct(
    spikes: tyro.conf.Positional[Path],
    out: Path = Path("outputs/reconstruct"),
    method: Literal["tfp", "tfi", "both", "model"] = "both",
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    key: str | None = None,
    force_size: bool = False,
    center: int | None = None,
    window: int | None = None,
    threshold: float | None = None,
    checkpoint: Path | None = None,
    cfa: Literal["RGGB", "BGGR", "GRBG", "GBRG"] | None = None,
    guess_cfa: bool = False,
) -> None:
    """Reconstruct an image from a spike file (.dat/.npz/.npy) with TFP, TFI or the SpikeGen model.

    Colour spike streams (a Bayer CFA, from --cfa or the file's sidecar) give colour images: TFP/TFI per
    filter site, then OpenCV demosaicing.

    Args:
        spikes: the spike file. `.dat` needs --height/--width unless a sidecar JSON sits beside it.
        out: folder for the PNGs.
        method: tfp (window mean), tfi (inter-spike interval), both, or model (the SpikeGen checkpoint).
        height: frame height for `.dat` files.
        width: frame width for `.dat` files.
        axes: axis order of `.npz`/`.npy` arrays, THW or HWT.
        key: array name inside a `.npz` (default: its only array, or spk/spikes/spike/arr_0/data).
        force_size: read a `.dat` at --height/--width even where its sidecar disagrees or the size looks wrong.
        center: key frame (default: the middle of the stream).
        window: TFP window length in frames (default: 41, the field's protocol, or the whole stream if shorter).
        threshold: θ of the camera (default: the file's sidecar, else 2.0).
        checkpoint: SpikeGen checkpoint for --method model (default: the shipped tiny one; `natural`: the shipped natural one).
        cfa: Bayer pattern of a colour spike camera (default: the file's sidecar; none = grey).
        guess-cfa: print how plausible each Bayer pattern makes the recording look and use the best one
            when neither --cfa nor the sidecar gives it (docs: README "Colour spike cameras").
    """
    from spikegen_core.errors import InputMismatchError
    from spikegen_core.image import save_image
    from spikegen_core.spikes import load_spikes, tfi, tfp
    from spikegen_core.spikes.reconstruct import cfa_scores, demosaic
    from spikegen_core.spikes.reconstruct import guess_cfa as guess
    from spikegen_core.train.restore import spike_window

    stream = load_spikes(spikes, height=height, width=width, axes=axes, key=key, force_size=force_size)
    theta = threshold if threshold is not None else (stream.threshold or 2.0)
    win = spike_window(stream, window, center)  # checks --window/--center against the stream
    c = stream.num_frames // 2 if center is None else center
    pattern = cfa or stream.cfa
    gains = stream.cfa_gains if pattern == stream.cfa else None
    if guess_cfa:
        mosaic_tfp = tfp(stream, threshold=theta)
        scores = cfa_scores(mosaic_tfp, gains=gains)
        best = guess(mosaic_tfp, gains=gains)
        print("colour fringing per Bayer pattern (lower = more plausible): "
              + ", ".join(f"{p} {v:.4f}" for p, v in sorted(scores.items(), key=lambda kv: kv[1])))
        print(f"guessed pattern: {best}" + (f" (using the given {pattern})" if pattern else ""))
        pattern = pattern or best

    def colour(img):  # noqa: ANN001, ANN202 (a tensor in, a tensor out)
        return demosaic(img, pattern, gains=gains) if pattern else img

    written: list[Path] = []
    if method in ("tfp", "both"):
        img = colour(tfp(win, threshold=theta))
        written.append(save_image(out / f"{spikes.stem}_tfp.png", img.clamp(0, 1)))
    if method in ("tfi", "both"):
        img = colour(tfi(stream.spikes, center=c, threshold=theta))
        written.append(save_image(out / f"{spikes.stem}_tfi.png", img.clamp(0, 1)))
    if method == "model" and pattern:
        raise InputMismatchError(f"{spikes}: the core model restores grey streams, this one is colour ({pattern}); "
                                 "use --method tfp, tfi or both")
    if method == "model":
        from spikegen_core.train import restore

        written.append(restore(spikes=spikes, out=out / f"{spikes.stem}_spikegen.png", checkpoint=checkpoint,
                               height=height, width=width, axes=axes, key=key, force_size=force_size, center=c,
                               window=window, threshold=threshold))  # fmt: skip
    print(f"read {stream.num_frames} spike frames of {stream.height}×{stream.width} from {spikes}"
          + (f", colour ({pattern})" if pattern else ""))
    for p in written:
        print(f"wrote {p}")


def restore(
    spikes: tyro.conf.Positional[Path],
    out: Path = Path("outputs/restored.png"),
    rgb: Path | None = None,
    checkpoint: Path | None = None,
    window: int | None = None,
    center: int | None = None,
    threshold: float | None = None,
    mode: Literal["auto", "deblur", "reconstruct"] = "auto",
    sampler: Literal["mean", "ddim"] | None = None,
    steps: int | None = None,
    temperature: float | None = None,
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    key: str | None = None,
    force_size: bool = False,
    device: str = "cpu",
    rgb_response: str = "srgb",
    fast: bool = False,
) -> None:
    """Restore a sharp frame with the SpikeGen model: a spike window (+ optional blurred RGB) in, an image out.

    Args:
        spikes: spike file (.dat/.npz/.npy).
        out: output image.
        rgb: blurred RGB frame of the same exposure (deblurring); without it: dense reconstruction.
        checkpoint: SpikeGen checkpoint (default: the shipped tiny one; `natural`: the shipped natural one).
        window: spike frames around the centre (default: 41, or the whole stream if shorter).
        center: key frame (default: the middle of the stream).
        threshold: camera θ (default: the file's sidecar, else the model's).
        mode: auto (deblur when --rgb is given), deblur or reconstruct.
        sampler: mean (one deterministic pass) or ddim (diffusion sampling).
        steps: DDIM steps.
        temperature: sampling temperature.
        height: frame height of a .dat without sidecar.
        width: frame width of a .dat without sidecar.
        axes: axis order of .npz/.npy arrays (THW or HWT).
        key: array name inside a .npz (default: its only array, or spk/spikes/spike/arr_0/data).
        force_size: read a .dat at --height/--width even where its sidecar disagrees or the size looks wrong.
        device: cpu or cuda.
        rgb_response: how --rgb encodes light (srgb: cameras and phones; linear; gamma:G); the output image is
            encoded the same way. The model works in linear light, as the spikes.
        fast: the one-pass fast model (a small CNN over the whole frame; --checkpoint default: the shipped `fast`)
            instead of the full model; with --rgb its luma goes into the RGB frame's colour.
    """
    from spikegen_core import radiometry
    from spikegen_core.train import restore as run_restore

    path = run_restore(
        spikes, out, rgb=rgb, checkpoint=checkpoint, window=window, center=center, threshold=threshold, mode=mode,
        sampler=sampler, steps=steps, temperature=temperature, height=height, width=width, axes=axes, key=key,
        force_size=force_size, device=device, rgb_response=radiometry.from_text(rgb_response), fast=fast,
    )  # fmt: skip
    print(f"wrote {path}")


def evaluate(
    data: tyro.conf.Positional[str],
    checkpoint: Path | None = None,
    window: int = 41,
    threshold: float | None = None,
    tile: int = 64,
    out_json: Path | None = None,
    device: str = "cpu",
    fast: bool = False,
) -> None:
    """PSNR/SSIM table of the model vs TFP and TFI (and the blurred input for deblurring).

    Args:
        data: a REDS-layout folder (spike/ + gt/, e.g. ../shared/data/spike/reds_synthetic), a folder written
            by `spikegen make-pairs`, "held-out" for the built-in synthetic deblurring set, or "held-out-natural"
            for the same on photographs training never sees.
        checkpoint: SpikeGen checkpoint (default: the shipped tiny one; `natural`: the shipped natural one), or a training folder (its newest EMA).
        window: spike frames around the key frame (the field's protocol: 41).
        threshold: the camera's θ for a REDS folder (default: the data set's constant, calibrated once from the
            training recordings; see spikegen_core.data.reds).
        tile: tile size of the restoration (0: the whole frame at once).
        out_json: also write the table as JSON here.
        device: cpu or cuda.
        fast: score the one-pass fast model (--checkpoint default: the shipped `fast`) instead of the full model.
    """
    from spikegen_core.train import evaluate as run_evaluate

    run_evaluate(data, checkpoint, window=window, threshold=threshold, tile=tile or None, out_json=out_json,
                 device=device, fast=fast)  # fmt: skip
    if out_json is not None:
        print(f"wrote {out_json}")


def _commands() -> dict:
    from spikegen_core.data.pairs import make_pairs_command, simulate_command
    from spikegen_core.data.scene import make_scene_command
    from spikegen_core.train.config import FINETUNE_PRESETS, PRETRAIN_PRESETS
    from spikegen_core.train.pairs import PAIRS_PRESETS
    from spikegen_core.video import deblur_video_command, restore_video_command

    pretrain_cfg = tyro.extras.subcommand_type_from_defaults(PRETRAIN_PRESETS, prefix_names=False)
    finetune_cfg = tyro.extras.subcommand_type_from_defaults(FINETUNE_PRESETS, prefix_names=False)
    pairs_cfg = tyro.extras.subcommand_type_from_defaults(PAIRS_PRESETS, prefix_names=False)

    def pretrain(cfg) -> None:  # noqa: ANN001 (annotated below: the preset type is built at run time)
        """Self-supervised pretraining (presets: tiny for a CPU, base for a GPU; torchrun for several GPUs)."""
        from spikegen_core.train import pretrain as run

        print(f"wrote {run(cfg)}")

    def finetune(cfg) -> None:  # noqa: ANN001
        """Fine-tune for spike-guided deblurring and dense reconstruction (with the spike-stream loss)."""
        from spikegen_core.train import finetune as run

        print(f"wrote {run(cfg)}")

    def finetune_pairs(cfg) -> None:  # noqa: ANN001
        """Fine-tune the RGB-only path on (degraded, sharp) image pairs, e.g. splat renders vs ground truth
        from scripts/dev/make_prior_pairs.py: the splat prior's checkpoint."""
        from spikegen_core.train.pairs import finetune_pairs as run

        print(f"wrote {run(cfg)}")

    # `spikegen pretrain tiny --steps 100`: the preset is a subcommand, its fields are flags.
    pretrain.__annotations__ = {"cfg": Annotated[pretrain_cfg, tyro.conf.arg(name="")], "return": None}
    finetune.__annotations__ = {"cfg": Annotated[finetune_cfg, tyro.conf.arg(name="")], "return": None}
    finetune_pairs.__annotations__ = {"cfg": Annotated[pairs_cfg, tyro.conf.arg(name="")], "return": None}
    commands = {
        "simulate": simulate_command,
        "reconstruct": reconstruct,
        "make-pairs": make_pairs_command,
        "make-scene": make_scene_command,
        "restore-video": restore_video_command,
        "deblur-video": deblur_video_command,
        "pretrain": pretrain,
        "finetune": finetune,
        "finetune-pairs": finetune_pairs,
        "restore": restore,
        "eval": evaluate,
    }
    # Every numeric option is checked against one table before the command runs (spikegen_core.cli_guard).
    return {name: checked(fn) for name, fn in commands.items()}


def spikes_flag_to_positional(args: Sequence[str]) -> list[str]:
    """``restore-video --spikes FILE …`` → ``restore-video FILE …`` (the alias kept for older scripts)."""
    args = list(args)
    if not args or args[0] != "restore-video":
        return args
    for i, arg in enumerate(args):
        if arg == SPIKES_FLAG and i + 1 < len(args):
            return [args[0], args[i + 1], *args[1:i], *args[i + 2 :]]
        if arg.startswith(SPIKES_FLAG + "="):
            return [args[0], arg.split("=", 1)[1], *args[1:i], *args[i + 1 :]]
    return args


def main(args: Sequence[str] | None = None) -> None:
    """``spikegen VERB …``; ``spikegen --version`` prints the installed version. A user error prints one line
    (``--debug`` or ``SPIKEGEN_DEBUG=1``: its traceback), see :mod:`spikegen_core.cli_guard`."""
    args = sys.argv[1:] if args is None else list(args)
    if args in (["--version"], ["-V"]):
        print(f"spikegen {__version__}")
        return
    command = next((a for a in args if not a.startswith("-")), None)
    run_cli(
        f"spikegen {command}" if command else "spikegen",
        lambda argv: tyro.extras.subcommand_cli_from_dict(
            _commands(),
            description=f"SpikeGen core tools (version {__version__}). An error prints one line; --debug (or "
            "SPIKEGEN_DEBUG=1) shows its traceback.",
            args=spikes_flag_to_positional(argv),
        ),
        args,
    )


if __name__ == "__main__":
    main()

