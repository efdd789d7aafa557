"""Inputs of ``spikegen-process-data`` turned into per-view spike windows.

Three kinds of capture: one long spike stream (``.dat``/``.npz``/``.npy``), a folder of per-view windows,
or a folder of ordinary photos from which spike windows are simulated (static or slightly panning camera).
Unreadable files and too-short windows are skipped and listed in ``warnings``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from spikegen_core.errors import ImageFileError, InputMismatchError, SpikeFileError, SpikeGenError
from spikegen_core.image import load_image as read_image
from spikegen_core.radiometry import SRGB, RgbResponse
from spikegen_core.spikes.camera import to_grey

SPIKE_SUFFIXES = (".dat", ".npz", ".npy")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
ViewSelection = Literal["uniform", "sharpness"]


@dataclass
class ViewWindow:
    """One training view: a spike window and what else is known about it."""

    name: str  # file stem used for every output of this view
    spikes: torch.Tensor  # (T, H, W) uint8 0/1, upright
    time_s: float  # window centre on the spike clock
    spike_range: tuple[int, int] | None = None  # [start, end) in the long stream, when there is one
    rgb: torch.Tensor | None = None  # (3, H, W) RGB whose exposure is the window (blurred if the camera moved)
    sharp: torch.Tensor | None = None  # (3, H, W) sharp frame at the window centre, when known
    edge_shift_px: tuple[float, float] | None = None  # simulated pan: image shift at the first/last tick


@dataclass
class LoadedViews:
    views: list[ViewWindow]
    height: int
    width: int
    ordered: bool  # views follow the capture's time order (→ sequential matching)
    warnings: list[str] = field(default_factory=list)
    stream_path: Path | None = None  # the long stream, when views are ranges into one


def load_image(path: Path, downscale: int = 1) -> torch.Tensor:
    """An image file → (3, H, W) float in [0, 1], box-downscaled by an integer factor (a partial box at the
    edge averages the pixels it holds, like PIL's ``reduce``); an unreadable file is a ``SpikeFileError``."""
    try:
        img = read_image(path, mode="rgb")
    except ImageFileError as err:
        raise SpikeFileError(f"{err}; or remove it") from err
    if downscale > 1:  # box filter: averages, so no aliasing for SIFT to latch onto
        img = F.avg_pool2d(img[None], downscale, ceil_mode=True)[0]
    return img.contiguous()


# --------------------------------------------------------------------------------------------- streams


class StreamReader:
    """Frame ranges of one long spike stream; ``.dat`` is memory-mapped so only asked-for frames are read."""

    def __init__(self, path: Path, *, height: int | None = None, width: int | None = None,
                 axes: str = "THW", key: str | None = None, force_size: bool = False) -> None:
        from spikegen_core.spikes import io as spike_io

        self.path = Path(path)
        self._io = spike_io
        if not self.path.is_file():
            raise SpikeFileError(f"{self.path}: no such spike file; check the path")
        if self.path.suffix == ".dat":
            sidecars = (spike_io.sidecar_path(self.path), self.path.with_suffix(".json"))
            if (height is None or width is None) and not any(p.is_file() for p in sidecars):
                raise SpikeFileError(
                    f"{self.path}: a .dat stream has no header and there is no sidecar ({sidecars[0].name}) "
                    "giving its frame size; pass --height and --width (e.g. --height 250 --width 400 for "
                    "REDS-style captures)"
                )
            first = spike_io.read_dat(self.path, height, width, start=0, count=1, force_size=force_size)
            self._force_size = force_size
            self.height, self.width = first.height, first.width
            self.num_frames = spike_io.dat_num_frames(self.path, self.height, self.width)
            self._whole = None
            self._hw = (height, width)
        elif self.path.suffix in (".npz", ".npy"):
            # npz members cannot be memory-mapped (they may be compressed): hold the stream once.
            self._whole = spike_io.read_npz(self.path, axes=axes, key=key).spikes
            self.num_frames, self.height, self.width = (int(s) for s in self._whole.shape)
        else:
            raise SpikeFileError(f"{self.path}: unknown spike file type; use .dat, .npz or .npy")

    def read(self, start: int, count: int) -> torch.Tensor:
        if self._whole is not None:
            return self._whole[start : start + count]
        return self._io.read_dat(self.path, *self._hw, start=start, count=count, force_size=self._force_size).spikes


def sharpness(image: torch.Tensor) -> float:
    """Variance of the Laplacian: high for crisp texture, low for blur (the usual frame-picking score)."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float32)
    lap = F.conv2d(image.float()[None, None], kernel[None, None])
    return float(lap.var())


def choose_centres(reader: StreamReader, num_views: int, window: int, mode: ViewSelection,
                   dense: Callable[[torch.Tensor], torch.Tensor], candidates: int = 5) -> list[int]:
    """Centre frames of ``num_views`` windows of ``window`` ticks spread over the stream.

    ``uniform``: evenly spaced. ``sharpness``: in each of ``num_views`` equal segments, the candidate window
    whose dense frame has the highest Laplacian variance (the camera was steadiest there).
    """
    lo, hi = window // 2, reader.num_frames - (window - window // 2)
    if hi < lo:
        raise SpikeFileError(
            f"{reader.path}: the stream has {reader.num_frames} frames, shorter than one window of {window}; "
            "use a shorter --window or a longer capture"
        )
    num_views = min(num_views, hi - lo + 1)
    if mode == "uniform":
        return [int(round(c)) for c in np.linspace(lo, hi, num_views)]
    edges = np.linspace(lo, hi + 1, num_views + 1)
    centres = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        options = np.unique(np.linspace(a, max(a, b - 1), candidates).round().astype(int))
        scores = [sharpness(dense(reader.read(int(c) - window // 2, window))) for c in options]
        centres.append(int(options[int(np.argmax(scores))]))
    return centres


def views_from_stream(path: Path, *, num_views: int, window: int, mode: ViewSelection, clock_hz: float,
                      dense: Callable[[torch.Tensor], torch.Tensor], height: int | None = None,
                      width: int | None = None, axes: str = "THW", key: str | None = None,
                      force_size: bool = False) -> LoadedViews:
    reader = StreamReader(path, height=height, width=width, axes=axes, key=key, force_size=force_size)
    views = []
    for i, centre in enumerate(choose_centres(reader, num_views, window, mode, dense)):
        start = centre - window // 2
        views.append(ViewWindow(name=f"view_{i:04d}", spikes=reader.read(start, window),
                                time_s=(start + (window - 1) / 2) / clock_hz,
                                spike_range=(start, start + window)))
    return LoadedViews(views, reader.height, reader.width, ordered=True, stream_path=reader.path)


# ------------------------------------------------------------------------------- folder of windows


def views_from_window_folder(folder: Path, *, min_window: int, clock_hz: float, height: int | None = None,
                             width: int | None = None, axes: str = "THW", key: str | None = None,
                             force_size: bool = False) -> LoadedViews:
    """Every spike file in ``folder`` (sorted by name) is one view; times follow file order unless a
    sidecar ``<file>.json`` carries ``"time"`` (seconds)."""
    from spikegen_core.spikes import io as spike_io

    files = sorted(p for p in Path(folder).iterdir() if p.suffix in SPIKE_SUFFIXES)
    views: list[ViewWindow] = []
    warnings: list[str] = []
    size: tuple[int, int] | None = None
    clock_s = 0.0
    for path in files:
        try:
            stream = (spike_io.read_dat(path, height, width, force_size=force_size) if path.suffix == ".dat"
                      else spike_io.read_npz(path, axes=axes, key=key))
        except (SpikeGenError, OSError, ValueError) as err:
            warnings.append(f"skipped {path.name}: unreadable ({err})")
            continue
        if stream.num_frames < min_window:
            warnings.append(f"skipped {path.name}: {stream.num_frames} frames, fewer than --window {min_window}")
            continue
        if size is None:
            size = (stream.height, stream.width)
        elif (stream.height, stream.width) != size:
            warnings.append(f"skipped {path.name}: {stream.height}×{stream.width}, other views are {size[0]}×{size[1]}")
            continue
        time_s = clock_s + (stream.num_frames - 1) / (2 * clock_hz)  # centre tick
        sidecar = path.with_name(path.name + ".json")
        if sidecar.is_file():
            time_s = float(json.loads(sidecar.read_text()).get("time", time_s))
        clock_s += stream.num_frames / clock_hz
        views.append(ViewWindow(name=path.stem, spikes=stream.spikes, time_s=time_s))
    if size is None:
        raise SpikeFileError(f"{folder}: no readable spike windows ({len(files)} spike files); "
                             + ("; ".join(warnings) or "put .dat/.npz/.npy windows there"))
    views.sort(key=lambda v: v.time_s)
    return LoadedViews(views, size[0], size[1], ordered=True, warnings=warnings)


# -------------------------------------------------------------------------------------------- photos


def _shifted(image: torch.Tensor, shifts_px: Sequence[float]) -> torch.Tensor:
    """(C, H, W) image translated horizontally by each shift (pixels) → (K, C, H, W); borders repeat."""
    c, h, w = image.shape
    theta = torch.zeros(len(shifts_px), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * torch.tensor(shifts_px, dtype=torch.float32) / w  # content moves right for +shift
    grid = F.affine_grid(theta, [len(shifts_px), c, h, w], align_corners=False)
    return F.grid_sample(image.expand(len(shifts_px), c, h, w), grid, padding_mode="border", align_corners=False)


def views_from_photos(folder: Path, *, window: int, downscale: int, threshold: float, gain: float,
                      clock_hz: float, jitter_px: float = 0.0, seed: int = 0,
                      sub_frames: int = 8, cfa: str | None = None,
                      cfa_gains: tuple[float, float, float] | None = None, keep_rgb: bool = True,
                      rgb_response: RgbResponse = SRGB) -> LoadedViews:
    """Simulate a spike window per photo: a static camera, or one panning by ``jitter_px`` pixels (in the
    downscaled image) across the window. The photo (blurred by the pan when there is one) is the view's RGB
    (``keep_rgb=False``: no RGB, a spikes-only capture). ``cfa``: a colour spike camera behind that Bayer
    pattern (each pixel fires from its channel of the photo), else grey spikes from the photo's luma.

    Photos store display values (``rgb_response``): spikes are simulated from the linearised photo, and the pan's
    blur is averaged in linear light and encoded again, as a camera would record it."""
    from spikegen_core.spikes.camera import simulate

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    views: list[ViewWindow] = []
    warnings: list[str] = []
    size: tuple[int, int] | None = None
    for path in files:
        try:
            photo = load_image(path, downscale)
        except SpikeFileError as err:
            warnings.append(f"skipped {path.name}: {err}")
            continue
        if size is None:
            size = (photo.shape[1], photo.shape[2])
        elif tuple(photo.shape[1:]) != size:
            warnings.append(f"skipped {path.name}: {photo.shape[1]}×{photo.shape[2]} after downscale, "
                            f"other photos are {size[0]}×{size[1]}")
            continue
        index = len(views)
        if jitter_px > 0:
            shifts = np.linspace(-jitter_px / 2, jitter_px / 2, sub_frames).tolist()
            frames = rgb_response.decode(_shifted(photo, shifts))
            rgb, edges = rgb_response.encode(frames.mean(0)), (shifts[0], shifts[-1])
        else:
            frames, rgb, edges = rgb_response.decode(photo)[None], photo, None
        grey = frames if cfa else torch.stack([to_grey(f) for f in frames])  # linear light: what the sensor sees
        if len(grey) == 1:
            grey = grey.expand(2, *grey.shape[1:])  # simulate spreads ≥ 2 key frames over the window
        stream = simulate(grey.clamp(0, 1), window, threshold=threshold, gain=gain, clock_hz=clock_hz,
                          seed=seed + index, cfa=cfa, cfa_gains=cfa_gains)
        views.append(ViewWindow(name=path.stem, spikes=stream.spikes.to(torch.uint8),
                                time_s=(index * window + (window - 1) / 2) / clock_hz,
                                rgb=rgb if keep_rgb else None, sharp=photo, edge_shift_px=edges))
    if size is None:
        raise SpikeFileError(f"{folder}: no readable photos among {len(files)} image files; "
                             + ("; ".join(warnings) or f"put {', '.join(IMAGE_SUFFIXES)} files there"))
    return LoadedViews(views, size[0], size[1], ordered=False, warnings=warnings)


# ------------------------------------------------------------------------------------------------ RGB


def load_rgb_frames(source: Path, *, times_file: Path | None = None, fps: float | None = None,
                    start_s: float = 0.0) -> tuple[list[Path] | np.ndarray, np.ndarray]:
    """RGB frames (a folder of images or a video) and their timestamps in seconds on the spike clock.

    Times come from ``times_file`` (one number per line, one per frame), else ``start_s + i / fps``.
    Returns (image paths, or a T×H×W×3 uint8 array for a video) and the times.
    """
    source = Path(source)
    if source.is_dir():
        frames: list[Path] | np.ndarray = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        import imageio.v3 as iio

        frames = np.asarray(iio.imread(source, plugin="pyav"))
    else:
        raise SpikeFileError(f"{source}: RGB input must be a folder of images or a video ({', '.join(VIDEO_SUFFIXES)})")
    n = len(frames)
    if times_file is not None:
        times = np.loadtxt(times_file, dtype=np.float64).reshape(-1)
        if len(times) != n:
            raise InputMismatchError(f"{times_file}: {len(times)} timestamps for {n} RGB frames in {source}; "
                                     "give one time (seconds) per frame")
    elif fps is not None:
        times = start_s + np.arange(n) / fps
    else:
        raise InputMismatchError(f"{source}: RGB frames need timestamps; pass --rgb-times FILE or --rgb-fps")
    return frames, times


def attach_rgb(views: list[ViewWindow], frames: list[Path] | np.ndarray, times: np.ndarray,
               height: int, width: int, max_gap_s: float) -> list[str]:
    """Give each view the RGB frame nearest its window centre (resized to the spike resolution);
    views with no frame within ``max_gap_s`` stay spike-only. Returns warnings."""
    warnings = []
    for view in views:
        i = int(np.argmin(np.abs(times - view.time_s)))
        if abs(times[i] - view.time_s) > max_gap_s:
            warnings.append(f"{view.name}: no RGB frame within {max_gap_s * 1e3:.1f} ms of its window")
            continue
        try:
            rgb = load_image(frames[i]) if isinstance(frames, list) else (
                torch.from_numpy(frames[i]).permute(2, 0, 1).float() / 255.0)
        except SpikeFileError as err:
            warnings.append(f"{view.name}: RGB frame skipped ({err})")
            continue
        if tuple(rgb.shape[1:]) != (height, width):
            rgb = F.interpolate(rgb[None], size=(height, width), mode="bilinear", antialias=True)[0]
        view.rgb = rgb
    return warnings
