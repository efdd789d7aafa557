"""Dense high-frame-rate reconstruction: a long spike stream → one frame every ``clock_hz / fps`` ticks.

Windows are read batch by batch through :class:`~spikegen_core.video.windows.SpikeSource` (memory-mapped),
restored by any :class:`~spikegen_core.video.restorers.Restorer`, and streamed to a :class:`FrameWriter`, so
memory does not grow with the stream. A rich progress bar shows output frames/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from spikegen_core import radiometry
from spikegen_core.errors import InputMismatchError
from spikegen_core.radiometry import LINEAR, RgbResponse
from spikegen_core.video.restorers import DemosaicRestorer, Restorer, make_restorer
from spikegen_core.video.windows import SpikeSource, iter_window_batches, window_centres
from spikegen_core.video.writer import FrameWriter

__all__ = ["RestoreResult", "restore_frames", "restore_video", "restore_video_command", "video_progress"]


@dataclass
class RestoreResult:
    frames: int
    seconds: float
    frames_per_s: float
    fps: float
    window: int
    restorer: str
    mp4: str | None
    frames_dir: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def video_progress(disable: bool = False) -> Progress:
    """A rich bar with the output rate in frames/s (frames, not iterations, since batches vary)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} frames/s"), TimeRemainingColumn(), disable=disable,
    )


def restore_frames(
    source: SpikeSource,
    centres: np.ndarray,
    window: int,
    restorer: Restorer,
    *,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    sink: Callable[[np.ndarray, torch.Tensor], None] | None = None,
    progress: bool = True,
    description: str = "restoring",
) -> tuple[int, float]:
    """Restore one frame per centre and hand each batch ``(centres, frames (B, C, H, W))`` to ``sink``.

    Returns ``(frames, seconds)``. Nothing is kept, so the caller decides what to hold.
    """
    n, t0 = 0, time.perf_counter()
    with video_progress(disable=not progress) as bar:
        task = bar.add_task(description, total=len(centres), rate=0.0)
        for batch in iter_window_batches(source, centres, window, batch_size):
            frames = restorer(batch.spikes.to(device))
            if sink is not None:
                sink(batch.centres, frames)
            n += len(batch.centres)
            bar.update(task, advance=len(batch.centres), rate=n / max(time.perf_counter() - t0, 1e-9))
    return n, time.perf_counter() - t0


def restore_video(
    source: SpikeSource | str | Path,
    out_dir: str | Path,
    *,
    fps: float = 1000.0,
    window: int = 41,
    restorer: Restorer | None = None,
    batch_size: int = 8,
    start: int = 0,
    stop: int | None = None,
    mp4: bool = True,
    frames: bool = False,
    play_fps: float = 30.0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    name: str | None = None,
    normalize: bool = False,
    rgb_response: RgbResponse = LINEAR,
) -> RestoreResult:
    """Restore a frame every ``clock_hz / fps`` ticks of ``source`` and write ``<name>.mp4`` / ``<name>/*.png``.

    ``window``: spike frames per output frame (centred on it); ``start``/``stop``: frame range of the stream.
    ``restorer`` defaults to TFP with the stream's threshold. ``normalize``: one gain for the whole video
    that maps the first batch's 99.5th percentile to 0.95 (for dim real recordings; constant, so no flicker).
    ``rgb_response``: the encoding the (linear) restored frames are written in, e.g. sRGB to sit beside the
    frames of an RGB camera.
    """
    src = source if isinstance(source, SpikeSource) else SpikeSource.open(source)
    theta = src.threshold or 2.0
    restorer = restorer or make_restorer("tfp", threshold=theta)
    centres = window_centres(src.num_frames, window, clock_hz=src.clock_hz, fps=fps, start=start, stop=stop)
    if len(centres) == 0:
        raise InputMismatchError(
            f"{src.name}: no {window}-frame window fits in frames [{start}, {stop or src.num_frames}) of "
            f"{src.num_frames}; use a shorter window or a longer range"
        )
    out_dir = Path(out_dir)
    stem = name or f"{Path(src.name.split('[')[0]).stem}_{restorer.name}_{fps:g}fps"
    mp4_path = out_dir / f"{stem}.mp4" if mp4 else None
    frames_dir = out_dir / stem if frames else None
    meta = {"source": src.name, "fps": fps, "window": window, "restorer": restorer.name,
            "clock_hz": src.clock_hz, "first_centre": int(centres[0]), "step_ticks": src.clock_hz / fps}
    gain: list[float] = []

    def sink(_c: np.ndarray, f: torch.Tensor) -> None:
        if normalize and not gain:
            gain.append(0.95 / max(float(torch.quantile(f.float().flatten()[:1_000_000], 0.995)), 1e-3))
            meta["gain"] = gain[0]
        writer.write(rgb_response.encode(f * gain[0] if gain else f))

    with FrameWriter(mp4_path, frames_dir, play_fps=play_fps, meta=meta) as writer:
        n, seconds = restore_frames(src, centres, window, restorer, batch_size=batch_size, device=device,
                                    sink=sink, progress=progress, description=f"{restorer.name} {fps:g} fps")
    return RestoreResult(n, seconds, n / max(seconds, 1e-9), fps, window, restorer.name,
                         str(mp4_path) if mp4_path else None, str(frames_dir) if frames_dir else None)


INT8_MIN_PIXEL_FRAMES = 6_000_000
"""restore-video's ``--int8 auto`` threshold (output frames × pixels). The first calibration costs a few seconds
(FX tracing included): on 2 threads, 20 frames of 250×400 took 8.0 s in int8 against 6.5 s in float32 and 40 frames
11.6 s against 12.4 s, so int8 pays from about 30 such frames; auto asks for twice that."""


def restore_video_command(
    spikes: tyro.conf.Positional[Path],
    out: Path = Path("outputs/video"),
    fps: float = 1000.0,
    window: int = 41,
    restorer: Literal["auto", "tfp", "tfp_adaptive", "model", "fast"] = "auto",
    checkpoint: Path | None = None,
    short_window: int = 41,
    batch_size: int = 8,
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    key: str | None = None,
    force_size: bool = False,
    threshold: float | None = None,
    clock_hz: float | None = None,
    start: int = 0,
    stop: int | None = None,
    mp4: bool = True,
    frames: bool = False,
    play_fps: float = 30.0,
    normalize: bool = False,
    device: str = "cpu",
    cfa: Literal["RGGB", "BGGR", "GRBG", "GBRG"] | None = None,
    rgb_response: str = "srgb",
    int8: Literal["auto", "on", "off"] = "auto",
) -> None:
    """Turn a long spike stream into a high-frame-rate video (MP4 and/or PNG frames).

    Args:
        spikes: the spike file (.dat with sidecar or --height/--width, .npy, or .npz); `--spikes FILE`
            also works.
        out: output folder.
        fps: output frames per second on the spike clock (1000 from a 20 kHz stream = one frame every 20 ticks).
        window: spike frames per output frame, centred on it.
        restorer: auto (fast for grey streams, tfp for colour ones), tfp (window mean), tfp_adaptive (long
            window where still, short where moving), model (the SpikeGen checkpoint) or fast (the one-pass fast
            model; benchmarks/dense_frames.md compares it with TFP).
        checkpoint: checkpoint for --restorer model or fast: a file or a shipped name (model: tiny, the
            default, or natural; fast: fast, the default).
        short_window: the short window of tfp_adaptive (--window is its long one).
        batch_size: windows restored per batch.
        height: frame height for .dat files without sidecar.
        width: frame width for .dat files without sidecar.
        axes: axis order of .npz/.npy arrays, THW or HWT.
        key: array name inside a .npz (default: its only array, or spk/spikes/spike/arr_0/data).
        force_size: read a .dat at --height/--width even where its sidecar disagrees or the size looks wrong.
        threshold: θ of the camera (default: the file's sidecar, else 2.0).
        clock_hz: spike clock (default: the sidecar, else 20 kHz).
        start: first spike frame to use.
        stop: end of the spike frame range (default: the whole stream).
        mp4: write <stem>.mp4.
        frames: write <stem>/frame_*.png.
        play_fps: playback rate of the MP4 (high-rate output plays in slow motion).
        normalize: brighten dim recordings with one gain for the whole video (from the first batch).
        device: torch device for the restorer.
        cfa: Bayer pattern of a colour spike camera (default: the file's sidecar; none = grey). Colour
            streams give colour video: the TFP restorers per filter site, then demosaicing.
        rgb_response: the encoding of the output frames: srgb (as RGB cameras and video players expect), linear
            (the spikes' intensity as is), or gamma:G.
        int8: the fast model on CPU in int8, calibrated on the first batch for the stream's θ (faster per frame,
            slightly less exact; benchmarks/video.md measures both): on, off (float32), or auto (on when the
            video is long enough to repay the calibration).
    """
    response = radiometry.from_text(rgb_response)
    src = SpikeSource.open(spikes, height=height, width=width, axes=axes, key=key, clock_hz=clock_hz,
                           threshold=threshold, force_size=force_size)  # fmt: skip
    theta = threshold if threshold is not None else (src.threshold or 2.0)
    pattern = cfa or src.cfa
    if restorer == "auto":  # colour: demosaiced TFP (the models per filter site are unmeasured / below it)
        restorer = "tfp" if pattern else "fast"
    out_frames = len(window_centres(src.num_frames, window, clock_hz=src.clock_hz, fps=fps, start=start, stop=stop))
    use_int8 = int8 == "on" or (int8 == "auto" and out_frames * src.height * src.width >= INT8_MIN_PIXEL_FRAMES)
    rest = make_restorer(restorer, checkpoint=checkpoint, threshold=theta, device=device,
                         window=short_window if restorer == "tfp_adaptive" else None, int8=use_int8)
    if pattern:
        # The grey model restores each filter site's plane on its own (benchmarks/cfa_restore.md: +2.5 dB over the
        # whole mosaic as if grey); TFP is per pixel either way.
        rest = DemosaicRestorer(rest, pattern, src.cfa_gains if pattern == src.cfa else None,
                                per_site=restorer in ("model", "fast"))  # fmt: skip
    res = restore_video(src, out, fps=fps, window=window, restorer=rest, batch_size=batch_size, start=start,
                        stop=stop, mp4=mp4, frames=frames, play_fps=play_fps, device=device,
                        normalize=normalize, rgb_response=response)
    print(f"{res.frames} frames at {fps:g} fps from {src.num_frames} spike frames of {src.height}×{src.width} "
          f"in {res.seconds:.1f} s ({res.frames_per_s:.1f} frames/s)")
    for p in (res.mp4, res.frames_dir):
        if p:
            print(f"wrote {p}")
