"""RGB video deblurring with spikes, and temporal upsampling between the RGB frames.

Inputs: blurred RGB frames, their exposure ``[start, end)`` on the spike clock (ticks), and the spike stream.

1. Each blurred frame plus the spikes of its exposure goes through a restorer (the SpikeGen model, or the
   TFP baseline: spike luma in the blurred frame's chroma) → the sharp frame at the exposure centre.
2. Frames between RGB frames (``upsample`` per RGB interval) take the sharp frame of the nearest exposure
   centre and add the spike-derived intensity change from that centre to the target time
   (``TFP(t) − TFP(centre)``, both over ``luma_window`` ticks). Colour is carried from the RGB frame; the
   spikes supply the change in brightness — simple, and honest about what the spikes can tell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from spikegen_core import radiometry
from spikegen_core.errors import InputMismatchError, SpikeGenError
from spikegen_core.video.dense import video_progress
from spikegen_core.video.restorers import Restorer, make_restorer, soft_shrink
from spikegen_core.video.windows import SpikeSource
from spikegen_core.video.writer import FrameWriter

__all__ = [
    "DeblurResult",
    "deblur_frames",
    "deblur_video",
    "deblur_video_command",
    "output_times",
    "read_exposures",
    "read_rgb_frames",
]


def output_times(exposures: torch.Tensor, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Output ticks and, for each, the index of the nearest RGB frame (by exposure centre).

    ``upsample`` frames per interval between consecutive centres (1 = the RGB rate): ``(N − 1)·upsample + 1``
    frames from the first centre to the last.
    """
    if upsample < 1:
        raise InputMismatchError(f"upsample must be ≥ 1 (frames per RGB interval), got {upsample}")
    ex = torch.as_tensor(exposures).reshape(-1, 2).double()
    centres = ((ex[:, 0] + ex[:, 1]) / 2).numpy()
    if len(centres) > 1 and np.any(np.diff(centres) <= 0):
        raise InputMismatchError("exposures must be in time order (increasing centres)")
    times = [centres[0]]
    for a, b in zip(centres[:-1], centres[1:], strict=False):
        times.extend(a + (b - a) * j / upsample for j in range(1, upsample + 1))
    times = np.round(np.asarray(times)).astype(np.int64)
    nearest = np.abs(times[:, None] - np.round(centres)[None, :]).argmin(axis=1)
    return times, nearest


def _window(source: SpikeSource, centre: int, length: int) -> torch.Tensor:
    """``length`` frames around ``centre``, shifted inward at the stream's ends (never out of range)."""
    length = min(length, source.num_frames)
    start = min(max(int(centre) - length // 2, 0), source.num_frames - length)
    return source.read(start, length)


@dataclass
class DeblurResult:
    times: np.ndarray  # output ticks
    frames: torch.Tensor  # (K, 3, H, W)
    sharp: torch.Tensor  # (N, 3, H, W) the deblurred RGB-rate frames


def deblur_frames(
    blurred: Iterable[torch.Tensor],
    exposures: torch.Tensor,
    source: SpikeSource,
    restorer: Restorer | None = None,
    *,
    upsample: int = 1,
    luma_window: int = 41,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    on_sharp: Callable[[int, torch.Tensor], None] | None = None,
    shrink: float = 1.0,
    rgb_response: radiometry.RgbResponse = radiometry.LINEAR,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield ``(ticks, frames (B, 3, H, W))`` in time order; ``blurred`` may be a lazy iterator of ``(3, H, W)``.

    ``rgb_response``: how the blurred frames encode light. They are linearised before the restorer and the spike
    brightness changes (both linear) meet them, and every output frame is encoded back the same way.

    ``on_sharp(i, frame)`` receives each deblurred RGB-rate frame. Memory holds one RGB frame's spikes.
    ``shrink``: brightness changes below ``shrink · θ / luma_window`` (the TFP quantisation step) are dropped.
    """
    ex = torch.as_tensor(exposures).long().reshape(-1, 2)
    if ex.numel() == 0 or bool(((ex[:, 1] <= ex[:, 0]) | (ex[:, 0] < 0) | (ex[:, 1] > source.num_frames)).any()):
        raise InputMismatchError(
            f"{source.name}: exposures must be non-empty [start, end) tick ranges inside the {source.num_frames}-frame "
            "stream; check the exposure times and their unit (ticks vs seconds)"
        )
    restorer = restorer or make_restorer("tfp", threshold=source.threshold or 2.0, window=luma_window)
    theta = source.threshold or 2.0
    times, nearest = output_times(ex, upsample)
    centres = torch.round(ex.double().mean(dim=1)).long()
    n = 0
    for i, frame in enumerate(blurred):
        if i >= len(ex):
            raise InputMismatchError(f"more blurred frames than exposures ({len(ex)}); give one exposure per frame")
        a, b = (int(v) for v in ex[i])
        rgb = rgb_response.decode(frame.to(device, torch.float32)[None])
        sharp = restorer(source.read(a, b - a)[None].to(device), rgb)[0]
        if on_sharp is not None:
            on_sharp(i, rgb_response.encode(sharp))
        base = _window(source, int(centres[i]), luma_window).float().mean(0) * theta
        mine = np.flatnonzero(nearest == i)
        for j in range(0, len(mine), batch_size):
            ts = times[mine[j : j + batch_size]]
            luma = torch.stack([_window(source, int(t), luma_window).float().mean(0) * theta for t in ts])
            # Same shrinkage as the TFP deblur: sub-quantum changes between two TFPs are noise.
            delta = soft_shrink(luma - base, shrink * theta / luma_window).to(sharp.device)
            yield ts, rgb_response.encode(sharp[None] + delta[:, None])
        n = i + 1
    if n != len(ex):
        raise InputMismatchError(f"{n} blurred frames for {len(ex)} exposures; give one exposure per frame")


def deblur_video(
    blurred: Sequence[torch.Tensor] | torch.Tensor,
    exposures: torch.Tensor,
    source: SpikeSource,
    restorer: Restorer | None = None,
    *,
    upsample: int = 1,
    luma_window: int = 41,
    device: str | torch.device = "cpu",
    shrink: float = 1.0,
    rgb_response: radiometry.RgbResponse = radiometry.LINEAR,
) -> DeblurResult:
    """In-memory form of :func:`deblur_frames` (short clips, tests, benchmarks)."""
    sharp: dict[int, torch.Tensor] = {}
    ts, fs = [], []
    for t, f in deblur_frames(blurred, exposures, source, restorer, upsample=upsample, luma_window=luma_window,
                              device=device, shrink=shrink, on_sharp=lambda i, s: sharp.__setitem__(i, s.cpu()),
                              rgb_response=rgb_response):
        ts.append(t)
        fs.append(f.cpu())
    return DeblurResult(np.concatenate(ts), torch.cat(fs), torch.stack([sharp[i] for i in sorted(sharp)]))


# ---------------------------------------------------------------------------------------------- files
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_rgb_frames(path: str | Path) -> tuple[int, Iterator[torch.Tensor]]:
    """``(count, lazy iterator of (3, H, W) frames)`` from a folder of images (sorted) or a video file."""
    from spikegen_core.image import load_image

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SpikeGenError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)}); point at the frames")
        return len(files), (load_image(p, mode="rgb") for p in files)
    if not path.is_file():
        raise SpikeGenError(f"{path}: blurred frames not found; give a folder of images or a video file")
    import imageio.v2 as iio

    try:
        reader = iio.get_reader(path, format="FFMPEG")
        count = reader.count_frames()
    except Exception as exc:
        raise SpikeGenError(f"{path}: cannot read as a video ({exc}); give a folder of PNG frames instead") from exc

    def frames() -> Iterator[torch.Tensor]:
        with reader:
            for img in reader:
                yield torch.from_numpy(np.asarray(img)[..., :3].copy()).permute(2, 0, 1).float() / 255.0

    return count, frames()


def read_exposures(path: str | Path, clock_hz: float) -> tuple[torch.Tensor, dict]:
    """Exposures from JSON ``{"unit": "ticks"|"seconds", "exposures": [[start, end], ...]}`` → ticks ``(N, 2)``."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        ex = np.asarray(meta["exposures"], dtype=np.float64).reshape(-1, 2)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpikeGenError(
            f"{path}: cannot read exposures ({exc}); write JSON like "
            '{"unit": "ticks", "exposures": [[start, end], ...]} with one [start, end) per RGB frame'
        ) from exc
    unit = meta.get("unit", "ticks")
    if unit not in ("ticks", "seconds"):
        raise SpikeGenError(f"{path}: unit must be 'ticks' or 'seconds', got {unit!r}")
    if unit == "seconds":
        ex = ex * float(meta.get("clock_hz", clock_hz))
    return torch.from_numpy(np.round(ex).astype(np.int64)), meta


def deblur_video_command(
    frames: Path,
    exposures: Path,
    spikes: Path | None = None,
    out: Path = Path("outputs/deblur"),
    upsample: int = 1,
    luma_window: int = 41,
    restorer: Literal["tfp", "tfp_adaptive", "model", "fast"] = "tfp",
    checkpoint: Path | None = None,
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    threshold: float | None = None,
    clock_hz: float | None = None,
    mp4: bool = True,
    png: bool = False,
    play_fps: float = 30.0,
    device: str = "cpu",
    rgb_response: str = "srgb",
) -> None:
    """Deblur an RGB video with the spike stream recorded beside it, optionally adding frames between RGB frames.

    Args:
        frames: blurred RGB frames: a folder of images (sorted by name) or a video file.
        exposures: JSON {"unit": "ticks"|"seconds", "exposures": [[start, end], ...]} on the spike clock,
            one [start, end) per RGB frame (may also name "spikes").
        spikes: the spike file (default: "spikes" in the exposures JSON).
        out: output folder.
        upsample: output frames per RGB interval (1 = the RGB rate; 4 = four times the RGB rate).
        luma_window: spike frames per TFP estimate of the brightness change between frames.
        restorer: tfp (spike luma in the blurred frame's chroma), model (the SpikeGen checkpoint) or fast (the
            one-pass fast model's luma in the blurred frame's chroma).
        checkpoint: checkpoint for --restorer model or fast: a file or a shipped name (model: tiny, the
            default, or natural; fast: fast, the default).
        height: frame height for .dat files without sidecar.
        width: frame width for .dat files without sidecar.
        axes: axis order of .npz/.npy arrays, THW or HWT.
        threshold: θ of the camera (default: the file's sidecar, else 2.0).
        clock_hz: spike clock (default: the sidecar, else 20 kHz).
        mp4: write deblurred_x<upsample>.mp4.
        png: also write the frames as PNGs.
        play_fps: playback rate of the MP4.
        device: torch device for the restorer.
        rgb_response: how the RGB frames encode light: srgb (cameras, video files), linear, or gamma:G. They are
            linearised to meet the (linear) spikes, and the output is encoded the same way.
    """
    response = radiometry.from_text(rgb_response)
    meta = json.loads(Path(exposures).read_text()) if Path(exposures).is_file() else {}
    spikes = spikes or (Path(meta["spikes"]) if "spikes" in meta else None)
    if spikes is None:
        raise SpikeGenError(f"{exposures}: no spike file given; pass --spikes or add \"spikes\" to the JSON")
    src = SpikeSource.open(spikes, height=height, width=width, axes=axes, clock_hz=clock_hz, threshold=threshold)
    ex, _ = read_exposures(exposures, src.clock_hz)
    count, rgb = read_rgb_frames(frames)
    if count != len(ex):
        raise InputMismatchError(f"{frames}: {count} frames but {exposures} lists {len(ex)} exposures; give one each")
    theta = threshold or src.threshold or 2.0
    rest = make_restorer(restorer, checkpoint=checkpoint, threshold=theta, window=luma_window, device=device)
    out = Path(out)
    stem = f"deblurred_{rest.name}_x{upsample}"
    total = len(output_times(ex, upsample)[0])
    info = {"frames": str(frames), "spikes": str(spikes), "upsample": upsample, "restorer": rest.name,
            "luma_window": luma_window}
    with FrameWriter(out / f"{stem}.mp4" if mp4 else None, out / stem if png else None, play_fps=play_fps,
                     meta=info) as writer, video_progress() as bar:
        task = bar.add_task(f"deblur x{upsample}", total=total, rate=0.0)
        t0 = time.perf_counter()
        for ts, f in deblur_frames(rgb, ex, src, rest, upsample=upsample, luma_window=luma_window, device=device,
                                   rgb_response=response):
            writer.write(f)
            bar.update(task, advance=len(ts), rate=writer.count / max(time.perf_counter() - t0, 1e-9))
    print(f"wrote {writer.count} frames ({len(ex)} RGB frames × upsample {upsample}) to {out / stem}"
          f"{'.mp4' if mp4 else ''}")
