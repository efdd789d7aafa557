"""``spikegen-process-data``: raw spike captures (and photos) → dense frames → COLMAP poses → a scene folder.

The spike twin of ``ns-process-data``. Stages: pick views (windows) from the capture, make a dense frame
per view (TFP, or a model restorer), run pycolmap on the dense frames, convert poses to nerfstudio's
convention and write the scene folder described in docs/INTERFACES.md ("Scene folder").

Example::

    spikegen-process-data --data capture.dat --height 250 --width 400 --output-dir scenes/capture
    spikegen-process-data --data photos/ --simulate-spikes --downscale 4 --output-dir scenes/photos
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from spikegen_core import radiometry
from spikegen_core.data.scene_format import write_ply, write_transforms
from spikegen_core.errors import (
    CheckpointError,
    InputMismatchError,
    SceneFormatError,
    SpikeFileError,
    SpikeGenError,
)
from spikegen_core.image import save_image
from spikegen_core.utils import atomic_dir, atomic_path, atomic_write
from spikegen_nvs.process_data.colmap import CameraModelName, RegistrationError, SfmResult, run_sfm
from spikegen_nvs.process_data.inputs import (
    IMAGE_SUFFIXES,
    SPIKE_SUFFIXES,
    LoadedViews,
    ViewSelection,
    ViewWindow,
    attach_rgb,
    load_rgb_frames,
    views_from_photos,
    views_from_stream,
    views_from_window_folder,
)
from spikegen_nvs.process_data.poses import (
    APPLIED_TRANSFORM,
    colmap_to_nerfstudio,
    interpolate_pose,
    points_to_nerfstudio,
)

# (T, H, W) uint8 spikes → (H, W) grey or (3, H, W) RGB in [0, 1]; the core model's restoration plugs in here.
Restorer = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["ProcessDataConfig", "ProcessSummary", "Restorer", "RegistrationError", "main", "process"]


@dataclass
class ProcessDataConfig:
    """Turn a spike capture (or photos) into a scene folder for ``ns-train spikegen-splat``."""

    data: Path
    """A long spike stream (.dat/.npz/.npy), a folder of per-view spike windows, or a folder of photos."""
    output_dir: Path
    """Where the scene folder is written."""
    input_kind: Literal["auto", "stream", "windows", "photos"] = "auto"
    """What `data` is; auto: a file is a stream, a folder of spike files is windows, of images is photos."""
    simulate_spikes: bool = False
    """Photos only: simulate a spike window per photo (required for a folder of photos)."""
    height: int | None = None
    """Spike frame height of a .dat file (else read from its .json sidecar)."""
    width: int | None = None
    """Spike frame width of a .dat file (else read from its .json sidecar)."""
    force_size: bool = False
    """Read a .dat at --height/--width even where its sidecar disagrees or the size looks wrong."""
    axes: str = "THW"
    """Axis order of .npz/.npy spike arrays, e.g. HWT."""
    npz_key: str | None = None
    """Array name inside a .npz (default: its only/first array)."""
    clock_hz: float = 20_000.0
    """Spike camera clock."""
    threshold: float = 2.0
    """Spike threshold θ (TFP scale and simulation)."""
    gain: float = 1.0
    """Camera gain (TFP scale and simulation)."""
    num_views: int = 60
    """Stream: how many views (windows) to take."""
    window: int = 64
    """Window length in spike frames (ticks) per view; also the minimum length of per-view windows."""
    view_selection: ViewSelection = "uniform"
    """Stream: evenly spaced windows, or the sharpest candidate in each segment."""
    stream_output: Literal["ranges", "windows"] = "ranges"
    """Stream: reference frame ranges of one stream file in spikes/ (linked or copied), or write each window."""
    rgb: Path | None = None
    """Optional RGB frames: a folder of images or a video, attached to the nearest view."""
    rgb_times: Path | None = None
    """Text file of RGB frame times in seconds on the spike clock, one per line."""
    rgb_fps: float | None = None
    """RGB frame rate, when there is no --rgb-times file."""
    rgb_start_s: float = 0.0
    """Time of the first RGB frame on the spike clock, with --rgb-fps."""
    downscale: int = 1
    """Photos: integer downscale factor before simulating spikes."""
    jitter_px: float = 0.0
    """Photos: simulated horizontal pan across each window, in (downscaled) pixels; 0 = static camera."""
    matcher: Literal["auto", "sequential", "exhaustive"] = "auto"
    """auto: sequential for streams/windows, exhaustive for photos."""
    sequential_overlap: int = 10
    """Sequential matching: how many following views each view is matched with."""
    camera_model: CameraModelName = "SIMPLE_PINHOLE"
    """COLMAP camera model. Pinhole by default: spikegen-splat cannot yet undistort spike windows (a scene with
    k1 != 0 is refused by the spike-data dataparser); SIMPLE_RADIAL/OPENCV give better poses through a
    distorting lens, for pose studies."""
    min_registered_fraction: float = 0.5
    """Fail when fewer than this fraction of the views register."""
    max_num_features: int = 8192
    """SIFT features per image."""
    num_threads: int = -1
    """Threads for COLMAP (-1: all cores)."""
    eval_every: int = 8
    """Photos: hold out every N-th registered view as a test view (views 0, N, 2N, ..., as nerfstudio's
    `eval_interval` split): its photo becomes `gt_path` (what ns-eval scores) and it trains nothing; 0 = none."""
    checkpoint: Path | None = None
    """Weights of the --dense model: a SpikeGen checkpoint for `model` (a file, or `tiny` / `natural`: shipped ones;
    given alone it selects `model`), a fast-model checkpoint for `fast`; default: the shipped ones."""
    dense: Literal["auto", "tfp", "fast", "model"] = "auto"
    """Dense frames (what COLMAP sees): the one-pass fast model (`fast`), the full core model (`model`,
    --checkpoint), or TFP over the window (`tfp`). `auto`: the fast model on grey spikes (benchmarks/process_data.md
    compares the three), demosaiced TFP on colour spikes, and the full model when --checkpoint is given."""
    rgb_response: str = "srgb"
    """How the photos / RGB frames encode light: srgb (phones, cameras, video files), linear, or gamma:G. Photos
    are linearised before spikes are simulated from them; written to the scene as `rgb_response`."""
    seed: int = 0
    """Seed for spike simulation."""
    cfa: Literal["RGGB", "BGGR", "GRBG", "GBRG"] | None = None
    """Colour spike camera's Bayer pattern (2x2 tile from the top-left pixel of the upright frame). Photos with
    --simulate-spikes: simulate a colour camera. Recordings: the capture's pattern (default: the spike file's
    sidecar `cfa`, else grey; `spikegen reconstruct --guess-cfa` tells it from a recording)."""
    cfa_gains: tuple[float, float, float] | None = None
    """Per-channel (R, G, B) gains of the colour spike camera (default: the sidecar's, else 1, 1, 1)."""
    photos_as_rgb: bool = True
    """Photos: keep each photo as its view's RGB frame; --no-photos-as-rgb writes a spikes-only scene."""
    verbose: bool = False
    """Show COLMAP's own log."""
    overwrite: bool = False
    """Replace an --output-dir that holds files this command did not write (the whole folder is replaced)."""


@dataclass
class ProcessSummary:
    num_views: int
    num_registered: int
    num_points: int
    mean_reprojection_error: float
    output_dir: Path
    transforms_path: Path
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    num_test: int = 0  # registered views held out as test views (gt_path), among num_registered

    @property
    def ns_train_command(self) -> str:
        return f"ns-train spikegen-splat --data {self.output_dir}"


def restorer_from_checkpoint(path: Path | None, threshold: float, gain: float = 1.0, fast: bool = False) -> Restorer:
    """The core model's reconstruction from spikes alone (grey) as a :data:`Restorer`; ``threshold`` / ``gain``
    are the camera's, as for TFP; ``fast``: the one-pass fast model (``path`` None: the shipped one). Raises
    CheckpointError naming the file when it is missing or not a checkpoint of that kind."""
    from spikegen_core.train.checkpoint import checkpoint_path
    from spikegen_core.video.restorers import make_restorer

    path = checkpoint_path(path if path is not None else "fast" if fast else "tiny")
    if not path.is_file():  # (load_model's own message would advise passing --checkpoint)
        raise CheckpointError(f"{path}: checkpoint not found; pass an existing file or omit --checkpoint")
    model = make_restorer("fast" if fast else "model", checkpoint=path, threshold=threshold / gain)
    return lambda spikes: model(spikes[None])[0, 0]


def _tfp_frame(spikes: torch.Tensor, threshold: float, gain: float) -> torch.Tensor:
    from spikegen_core.spikes.reconstruct import tfp

    return tfp(spikes, threshold=threshold, gain=gain).clamp(0, 1)


def _save_image(path: Path, image: torch.Tensor) -> None:
    """(H, W) or (3, H, W) float in [0, 1] → 8-bit RGB PNG (grey is repeated so every loader sees RGB)."""
    save_image(path, image.expand(3, *image.shape) if image.ndim == 2 else image)


GENERATOR_NAME = "spikegen-process-data"
"""``transforms.json`` ``generator.name`` of the scenes this command writes (a rerun may replace them)."""


def _check_paths(cfg: ProcessDataConfig) -> None:
    """Refuse inputs inside --output-dir (the scene folder is replaced as a whole, so they would be lost) and
    an --output-dir holding someone else's files, before anything is read or written."""
    out = cfg.output_dir.resolve()
    inputs = (("--data", cfg.data), ("--rgb", cfg.rgb), ("--rgb-times", cfg.rgb_times), ("--checkpoint", cfg.checkpoint))
    for flag, path in inputs:
        if path is not None and (path.resolve() == out or out in path.resolve().parents):
            raise InputMismatchError(
                f"{path}: {flag} lies inside --output-dir {cfg.output_dir}, which this command replaces; pass an "
                f"--output-dir outside it, e.g. {cfg.output_dir.parent / (cfg.output_dir.name + '_scene')}"
            )
    if not cfg.output_dir.exists():
        return
    if not cfg.output_dir.is_dir():
        raise InputMismatchError(f"{cfg.output_dir}: --output-dir is a file, not a folder; pass a folder path")
    names = sorted(p.name for p in cfg.output_dir.iterdir())
    if cfg.overwrite or not names:
        return
    try:
        meta = json.loads((cfg.output_dir / "transforms.json").read_text())
        ours = isinstance(meta, dict) and (meta.get("generator") or {}).get("name") == GENERATOR_NAME
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        shown = ", ".join(names[:5]) + (f" … (+{len(names) - 5})" if len(names) > 5 else "")
        raise SceneFormatError(
            f"{cfg.output_dir}: --output-dir holds files spikegen-process-data did not write ({shown}); pass a new "
            "or empty --output-dir, or --overwrite to replace that folder and everything in it"
        )


@contextlib.contextmanager
def _naming_the_output_dir(out: Path) -> Iterator[Path]:
    """:func:`atomic_dir`, with errors naming ``out`` where they name the temp folder the scene is built in."""
    with atomic_dir(out) as build:
        try:
            yield build
        except SpikeGenError as err:
            if str(build) not in str(err):
                raise
            renamed = type(err)(str(err).replace(str(build), str(out)))
            raise renamed.with_traceback(err.__traceback__) from err


def _detect_kind(cfg: ProcessDataConfig) -> str:
    if cfg.input_kind != "auto":
        return cfg.input_kind
    if cfg.data.is_file():
        return "stream"
    if not cfg.data.is_dir():
        raise SpikeFileError(f"{cfg.data}: no such file or folder; pass a spike stream, a folder of spike "
                             "windows, or a folder of photos with --simulate-spikes")
    suffixes = {p.suffix.lower() for p in cfg.data.iterdir()}
    if suffixes & set(SPIKE_SUFFIXES):
        return "windows"
    if suffixes & set(IMAGE_SUFFIXES):
        return "photos"
    raise SpikeFileError(f"{cfg.data}: holds neither spike files ({', '.join(SPIKE_SUFFIXES)}) nor images; "
                         "check the path")


def _load_views(cfg: ProcessDataConfig, kind: str, dense: Callable[[torch.Tensor], torch.Tensor]) -> LoadedViews:
    if kind == "stream":
        return views_from_stream(cfg.data, num_views=cfg.num_views, window=cfg.window, mode=cfg.view_selection,
                                 clock_hz=cfg.clock_hz, dense=dense, height=cfg.height, width=cfg.width,
                                 axes=cfg.axes, key=cfg.npz_key, force_size=cfg.force_size)
    if kind == "windows":
        return views_from_window_folder(cfg.data, min_window=cfg.window, clock_hz=cfg.clock_hz, height=cfg.height,
                                        width=cfg.width, axes=cfg.axes, key=cfg.npz_key, force_size=cfg.force_size)
    if not cfg.simulate_spikes:
        raise InputMismatchError(f"{cfg.data}: a folder of photos needs --simulate-spikes (to make spike windows "
                                 "from them); for photos alone use ns-process-data")
    return views_from_photos(cfg.data, window=cfg.window, downscale=cfg.downscale, threshold=cfg.threshold,
                             gain=cfg.gain, clock_hz=cfg.clock_hz, jitter_px=cfg.jitter_px, seed=cfg.seed,
                             cfa=cfg.cfa, cfa_gains=cfg.cfa_gains, keep_rgb=cfg.photos_as_rgb,
                             rgb_response=radiometry.from_text(cfg.rgb_response))


def _capture_cfa(cfg: ProcessDataConfig, kind: str) -> tuple[str | None, tuple[float, float, float] | None]:
    """The colour filter array of the capture: --cfa, else (recordings) the first spike file's sidecar/members."""
    from spikegen_core.spikes.camera import check_cfa
    from spikegen_core.spikes.io import load_spikes

    if cfg.cfa is None and kind != "photos":
        first = cfg.data if kind == "stream" else min(p for p in cfg.data.iterdir() if p.suffix.lower() in SPIKE_SUFFIXES)
        try:
            probe = load_spikes(first, height=cfg.height, width=cfg.width, axes=cfg.axes, key=cfg.npz_key, count=1,
                                force_size=cfg.force_size)
        except SpikeFileError:
            return None, None  # unreadable: the loader reports it with the command-line fix
        pattern, gains = probe.cfa, cfg.cfa_gains or probe.cfa_gains
    else:
        pattern, gains = cfg.cfa, cfg.cfa_gains
    pattern, gains = check_cfa(pattern, gains, where="spikegen-process-data --cfa")
    return pattern, (gains if pattern else None)


def _yaw(pose: np.ndarray, shift_px: float, focal: float) -> np.ndarray:
    """The pose turned about its own up axis so image content moves right by ``shift_px`` (small pan)."""
    a = math.atan2(shift_px, focal)
    rot = np.eye(4)
    rot[[0, 0, 2, 2], [0, 2, 0, 2]] = [math.cos(a), math.sin(a), -math.sin(a), math.cos(a)]
    return pose @ rot


def _edge_poses(views: list[ViewWindow], poses: dict[str, np.ndarray], ordered: bool, clock_hz: float,
                focal: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pose at each window's first and last tick: interpolated between neighbouring registered views for a
    stream, the simulated pan for photos, else the centre pose (a static camera)."""
    registered = [v for v in views if v.name in poses]
    times = [v.time_s for v in registered]
    out = {}
    for v in registered:
        half = (v.spikes.shape[0] - 1) / (2 * clock_hz)
        if v.edge_shift_px is not None:
            out[v.name] = (_yaw(poses[v.name], v.edge_shift_px[0], focal), _yaw(poses[v.name], v.edge_shift_px[1], focal))
        elif ordered and len(registered) > 1:
            stack = [poses[r.name] for r in registered]
            out[v.name] = (interpolate_pose(times, stack, v.time_s - half), interpolate_pose(times, stack, v.time_s + half))
        else:
            out[v.name] = (poses[v.name], poses[v.name])
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # same file system: no copy of a possibly huge stream
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def _write_stream(loaded: LoadedViews, spikes_dir: Path, cfg: ProcessDataConfig) -> str:
    """Put the long stream in spikes/ as a .dat with sidecar; returns its path relative to the scene."""
    from spikegen_core.spikes.io import read_npz, sidecar_path, write_dat

    src = loaded.stream_path
    assert src is not None
    dst = spikes_dir / f"{src.stem}.dat"
    if src.suffix == ".dat":
        _link_or_copy(src, dst)
        # Keep the source's own sidecar (it may carry a crop); fill in what the command line told us.
        found = [p for p in (sidecar_path(src), src.with_suffix(".json")) if p.is_file()]
        meta = json.loads(found[0].read_text()) if found else {"height": loaded.height, "width": loaded.width}
        if cfg.force_size and cfg.height is not None and cfg.width is not None:
            meta = {"height": cfg.height, "width": cfg.width}  # the size the user forced, not the sidecar's
        meta.setdefault("clock_hz", cfg.clock_hz)
        meta.setdefault("threshold", cfg.threshold)
        with atomic_write(sidecar_path(dst), "w") as f:
            json.dump(meta, f, indent=2)
    else:  # the dataparser reads .dat ranges memory-mapped; convert an .npz/.npy once
        stream = read_npz(src, axes=cfg.axes, key=cfg.npz_key)
        stream.clock_hz, stream.threshold = cfg.clock_hz, cfg.threshold
        write_dat(dst, stream)
    return f"spikes/{dst.name}"


def _frame_entries(loaded: LoadedViews, sfm: SfmResult, cfg: ProcessDataConfig, spike_paths: dict[str, str],
                   image_paths: dict[str, str], sharp_paths: dict[str, str]) -> list[dict]:
    poses = {name.rsplit(".", 1)[0]: colmap_to_nerfstudio(m) for name, m in sfm.cam_from_world.items()}
    edges = _edge_poses(loaded.views, poses, loaded.ordered, cfg.clock_hz, float(sfm.intrinsics["fl_x"]))
    frames = []
    for v in loaded.views:
        if v.name not in poses:
            continue
        frame: dict = {"file_path": image_paths[v.name], "transform_matrix": poses[v.name].tolist(),
                       "spike_path": spike_paths[v.name], "time": v.time_s,
                       "transform_matrix_start": edges[v.name][0].tolist(),
                       "transform_matrix_end": edges[v.name][1].tolist()}
        if v.spike_range is not None and cfg.stream_output == "ranges":
            frame["spike_range"] = list(v.spike_range)
        if v.rgb is not None:
            frame["blur_path"] = image_paths[v.name]
        if v.name in sharp_paths:
            frame["sharp_path"] = sharp_paths[v.name]
        frames.append(frame)
    if cfg.eval_every > 0:
        for i, frame in enumerate(frames):
            if i % cfg.eval_every == 0 and "sharp_path" in frame:
                # A test view carries only its pose and ground truth: nothing of it reaches training.
                frames[i] = {"file_path": frame["sharp_path"], "gt_path": frame["sharp_path"],
                             "transform_matrix": frame["transform_matrix"], "time": frame["time"]}  # fmt: skip
    return frames


def process(cfg: ProcessDataConfig, restorer: Restorer | None = None, *, quiet: bool = False) -> ProcessSummary:
    """Run every stage and write the scene folder; returns what happened (see :class:`ProcessSummary`).

    ``restorer`` overrides ``cfg.checkpoint``: any callable from a (T, H, W) spike window to a dense frame.
    Raises :class:`RegistrationError` when too few views register, other SpikeGenError types for bad inputs.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=quiet)
    response = radiometry.from_text(cfg.rgb_response)  # checked before any work
    if cfg.dense == "tfp" and cfg.checkpoint is not None:
        raise InputMismatchError(f"--checkpoint {cfg.checkpoint} is for --dense model or fast, not tfp; drop one")
    method = cfg.dense if cfg.dense != "auto" else "model" if cfg.checkpoint is not None else "fast"
    auto_fast = restorer is None and cfg.dense == "auto" and method == "fast"  # colour captures: TFP instead
    if restorer is None and method != "tfp" and not auto_fast:  # a named model loads (a bad one fails) before any work
        restorer = restorer_from_checkpoint(cfg.checkpoint, cfg.threshold, cfg.gain, fast=method == "fast")

    if cfg.eval_every == 1:
        raise InputMismatchError("--eval-every 1 would hold out every view and leave none to train on; "
                                 "use 0 (no test views) or at least 2")  # fmt: skip
    _check_paths(cfg)  # before anything is read or written: nothing of the user's is touched on a bad call
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    kind = _detect_kind(cfg)
    cfa, cfa_gains = _capture_cfa(cfg, kind)
    if auto_fast and not cfa:  # the shipped fast model, only once the capture is known to be grey
        restorer = restorer_from_checkpoint(None, cfg.threshold, cfg.gain, fast=True)
    if cfa and restorer is not None:
        raise InputMismatchError(f"{cfg.data}: the core models restore grey spike streams, this capture is colour "
                                 f"({cfa}); pass --dense tfp (or auto) for demosaiced TFP frames")

    def dense(spikes: torch.Tensor) -> torch.Tensor:
        if restorer is not None:
            frame = restorer(spikes)
        elif cfa:  # colour spikes: TFP per filter site, demosaiced
            from spikegen_core.spikes.reconstruct import demosaic

            frame = demosaic(_tfp_frame(spikes, cfg.threshold, cfg.gain), cfa, gains=cfa_gains)
        else:
            frame = _tfp_frame(spikes, cfg.threshold, cfg.gain)
        return frame.detach().float().clamp(0, 1)

    with console.status(f"reading {kind} from {cfg.data}"):
        loaded = _load_views(cfg, kind, dense)
    warnings = list(loaded.warnings)
    if cfg.rgb is not None:
        frames, times = load_rgb_frames(cfg.rgb, times_file=cfg.rgb_times, fps=cfg.rgb_fps, start_s=cfg.rgb_start_s)
        warnings += attach_rgb(loaded.views, frames, times, loaded.height, loaded.width,
                               max_gap_s=cfg.window / cfg.clock_hz)
    seconds["load"] = time.perf_counter() - t0
    n = len(loaded.views)
    min_registered = max(3, math.ceil(cfg.min_registered_fraction * n))
    if n < min_registered:
        raise RegistrationError(f"{cfg.data}: only {n} usable views ({len(warnings)} skipped: "
                                f"{'; '.join(warnings) or 'none'}); need at least {min_registered}. "
                                "Take more views (--num-views), a shorter --window, or fix the listed files.")

    out = cfg.output_dir
    # The scene is built in a temp folder beside --output-dir and swapped in when complete: a failed or killed
    # run leaves the previous scene as it was (or no folder), never a mix of two runs.
    with _naming_the_output_dir(out) as build:
        columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        image_paths: dict[str, str] = {}
        spike_paths: dict[str, str] = {}
        sharp_paths: dict[str, str] = {}
        with Progress(*columns, console=console, disable=quiet) as progress:
            t0 = time.perf_counter()
            task = progress.add_task("dense frames", total=n)
            stream_rel = _write_stream(loaded, build / "spikes", cfg) if (
                loaded.stream_path is not None and cfg.stream_output == "ranges") else None
            from spikegen_core.spikes.io import write_dat
            from spikegen_core.spikes.stream import SpikeStream

            for v in loaded.views:
                frame = dense(v.spikes)
                _save_image(build / "dense" / f"{v.name}.png", frame)
                image_paths[v.name] = f"images/{v.name}.png"
                # Without an RGB frame the view's image is its (linear) dense frame, encoded like the scene's RGB.
                _save_image(build / image_paths[v.name], v.rgb if v.rgb is not None else response.encode(frame))
                if v.sharp is not None and v.rgb is not None and not torch.equal(v.sharp, v.rgb):
                    sharp_paths[v.name] = f"sharp/{v.name}.png"
                    _save_image(build / sharp_paths[v.name], v.sharp)
                elif v.sharp is not None:
                    sharp_paths[v.name] = image_paths[v.name]
                if stream_rel is not None:
                    spike_paths[v.name] = stream_rel
                else:
                    spike_paths[v.name] = f"spikes/{v.name}.dat"
                    write_dat(build / spike_paths[v.name], SpikeStream(v.spikes, clock_hz=cfg.clock_hz,
                                                                      threshold=cfg.threshold, cfa=cfa,
                                                                      cfa_gains=cfa_gains))
                progress.advance(task)
            seconds["dense"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            tasks: dict[str, int] = {}

            def on_stage(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            matcher = cfg.matcher if cfg.matcher != "auto" else ("sequential" if loaded.ordered else "exhaustive")
            try:
                sfm = run_sfm(build / "dense", [f"{v.name}.png" for v in loaded.views], build / "colmap",
                              matcher=matcher, camera_model=cfg.camera_model, shared_intrinsics=True,
                              num_threads=cfg.num_threads, sequential_overlap=cfg.sequential_overlap,
                              max_num_features=cfg.max_num_features, min_registered=min_registered,
                              on_stage=on_stage, verbose=cfg.verbose)
            except RegistrationError:
                for w in warnings:  # skipped inputs may be why too few views registered: list them too
                    console.print(f"[yellow]warning:[/yellow] {w}")
                raise
            seconds["colmap"] = time.perf_counter() - t0

        frames = _frame_entries(loaded, sfm, cfg, spike_paths, image_paths, sharp_paths)
        missing = [v.name for v in loaded.views if f"{v.name}.png" not in sfm.cam_from_world]
        if missing:
            warnings.append(f"{len(missing)} views not registered by COLMAP, left out: {', '.join(missing)}")
        intr = dict(sfm.intrinsics)
        if any(intr.get(k) for k in ("k1", "k2", "p1", "p2")):
            warnings.append(f"camera model {cfg.camera_model} found lens distortion: ns-train spikegen-splat refuses "
                            "such scenes; rerun with --camera-model SIMPLE_PINHOLE to train on it")
        transforms = {
            "camera_model": "OPENCV",
            **{k: intr[k] for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")},
            **{k: intr.get(k, 0.0) for k in ("k1", "k2", "p1", "p2")},
            "spikegen_format": 1,
            radiometry.FIELD: response.to_json(),
            "spike": {"clock_hz": cfg.clock_hz, "threshold": cfg.threshold, "gain": cfg.gain,
                      "height": loaded.height, "width": loaded.width,
                      **({"cfa": cfa, "cfa_gains": list(cfa_gains or (1.0, 1.0, 1.0))} if cfa else {})},
            "applied_transform": APPLIED_TRANSFORM.tolist(),
            "generator": {"name": GENERATOR_NAME},
            "ply_file_path": "sparse_pc.ply",
            "frames": frames,
        }
        write_ply(build / "sparse_pc.ply", points_to_nerfstudio(sfm.points_xyz), sfm.points_rgb)
        write_transforms(build, transforms)

    summary = ProcessSummary(num_views=n, num_registered=sfm.num_registered, num_points=len(sfm.points_xyz),
                             mean_reprojection_error=sfm.mean_reprojection_error, output_dir=out,
                             transforms_path=out / "transforms.json", warnings=warnings, seconds=seconds,
                             num_test=sum("gt_path" in f for f in frames))
    _print_summary(console, summary)
    return summary


def _print_summary(console, s: ProcessSummary) -> None:
    from rich.table import Table

    table = Table(title="spikegen-process-data", show_header=False)
    table.add_row("views registered", f"{s.num_registered} / {s.num_views}")
    table.add_row("test views (held out)", str(s.num_test))
    table.add_row("3-D points", str(s.num_points))
    table.add_row("mean reprojection error", f"{s.mean_reprojection_error:.3f} px")
    table.add_row("scene written to", str(s.output_dir))
    table.add_row("time", ", ".join(f"{k} {v:.1f} s" for k, v in s.seconds.items()))
    console.print(table)
    for w in s.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    console.print(f"next: [bold]{s.ns_train_command}[/bold]")


def main() -> None:
    """Console entry point ``spikegen-process-data``."""
    import tyro

    from spikegen_core.cli_guard import check_options, run_cli

    def run(args: list[str]) -> None:
        cfg = tyro.cli(
            ProcessDataConfig,
            description="Turn a spike capture (or photos) into a scene folder for ns-train spikegen-splat. An "
            "error prints one line; --debug (or SPIKEGEN_DEBUG=1) shows its traceback.",
            args=args,
        )
        check_options({"cfg": cfg})  # every numeric option, before anything is read or written
        process(cfg)

    run_cli("spikegen-process-data", run)


if __name__ == "__main__":
    main()
