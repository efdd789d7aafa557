"""One long raw spike stream along a generated scene's trajectory: the input ``spikegen-process-data`` expects
from a real spike camera, with the ground-truth poses kept aside to judge the poses it recovers.

``make_long_stream`` renders the scene of :mod:`spikegen_core.data.scene` (same world, same fast orbit) at key
instants a few ticks apart, simulates one continuous stream over them (the camera model interpolates the key
frames linearly to every tick) and writes::

    raw/stream.dat        PKU .dat, one frame per tick (+ stream.dat.json sidecar: height, width, clock, θ)
    raw/poses.json        intrinsics and camera-to-world (nerfstudio/OpenGL) at every key tick

Nothing else: the scene folder is what ``spikegen-process-data`` makes of ``raw/stream.dat``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikegen_core.data.raycast import Intrinsics, render_many
from spikegen_core.data.scene import GENERATOR_NAME, ProgressFn, build_world, make_trajectory, resolve_config
from spikegen_core.errors import SceneFormatError
from spikegen_core.geometry import interpolate_pose
from spikegen_core.utils import atomic_write

__all__ = ["LongStream", "load_long_stream", "make_long_stream"]

POSES_FORMAT = "spikegen-long-stream-poses/1"


@dataclass(frozen=True)
class LongStream:
    """A written long stream and its ground truth: camera-to-world ``poses`` (K, 4, 4) at key ``ticks`` (K,)."""

    stream_path: Path
    poses_path: Path
    num_ticks: int
    clock_hz: float
    ticks: np.ndarray
    poses: np.ndarray
    intrinsics: dict[str, float]

    def pose_at(self, tick: float) -> np.ndarray:
        """Camera-to-world at a (fractional) tick: slerp / linear between the two key poses around it, which
        is also how the simulated stream blends the key renders."""
        if not 0 <= tick <= self.num_ticks - 1:
            raise SceneFormatError(f"{self.poses_path}: tick {tick} outside the stream [0, {self.num_ticks - 1}]")
        return interpolate_pose(self.ticks, self.poses, tick)


def make_long_stream(
    out_dir: str | Path,
    *,
    preset: str = "sample",
    seed: int = 0,
    ticks: int | None = None,
    key_every: int | None = None,
    progress: ProgressFn | None = None,
    threads: int | None = 1,
    **overrides: object,
) -> LongStream:
    """Write ``out_dir/raw/stream.dat`` (+ sidecar) and ``out_dir/raw/poses.json``; return them with the poses.

    ``ticks``: stream length (default: the time the camera takes to cover the preset's ``arc_deg`` of orbit,
    e.g. 4000 ticks = 0.2 s for ``sample``). ``key_every``: ticks between key renders (default: the spacing of
    the preset's sub-frames, ≤ ~1 px of motion apart). ``overrides`` are :class:`SceneConfig` fields
    (``width``, ``height``, ``orbit_deg_per_s``, ``threshold``, ``supersample``, ...); the same arguments give
    identical bytes. ``progress(stage, done, total)`` is called as key frames render and ticks are simulated.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _make_long_stream(Path(out_dir), preset, seed, ticks, key_every, progress, overrides)
    finally:
        torch.set_num_threads(previous)


def _make_long_stream(out: Path, preset: str, seed: int, ticks: int | None, key_every: int | None,
                      progress: ProgressFn | None, overrides: dict) -> LongStream:
    from spikegen_core.spikes.camera import CameraModel, mosaic, to_grey
    from spikegen_core.spikes.io import encode_frames, sidecar_path

    cfg = resolve_config(preset, **overrides)
    traj = make_trajectory(cfg)
    if ticks is None:
        ticks = round(math.radians(cfg.arc_deg) / traj.omega * cfg.clock_hz)
    if key_every is None:
        key_every = max(1, round((cfg.window - 1) / (cfg.subframes - 1)))
    if ticks < 2 or key_every < 1:
        raise SceneFormatError(f"make_long_stream: need ticks >= 2 and key_every >= 1, got {ticks} and {key_every}; "
                               "pass a longer stream")
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    stream_path, poses_path = raw / "stream.dat", raw / "poses.json"
    poses_path.unlink(missing_ok=True)  # written last: its presence marks a complete stream

    world = build_world(cfg, seed)
    k = Intrinsics.from_fov(cfg.width, cfg.height, cfg.fov_deg)
    # Key renders at evenly spaced ticks, first and last tick included: exactly where simulate() puts frames.
    num_keys = math.ceil((ticks - 1) / key_every) + 1
    key_ticks = np.linspace(0.0, ticks - 1, num_keys)
    poses = [traj.pose(float(t) / cfg.clock_hz) for t in key_ticks]
    grey = torch.empty(num_keys, cfg.height, cfg.width)
    group = 32  # renders per batch: progress stays live and memory holds only grey frames
    for a in range(0, num_keys, group):
        rgb = render_many(world, poses[a : a + group], k, cfg.supersample)
        # A colour camera: each pixel's filter channel (mosaicked here, so only one plane per key frame is kept).
        grey[a : a + group] = mosaic(rgb, cfg.cfa, cfg.cfa_gains) if cfg.cfa else to_grey(rgb)
        if progress:
            progress("key frames", min(a + group, num_keys), num_keys)

    camera = CameraModel(threshold=cfg.threshold, gain=cfg.gain, clock_hz=cfg.clock_hz, chunk_ticks=256)
    done = 0
    with atomic_write(stream_path) as f:  # chunk by chunk: a long stream never sits in memory whole
        for chunk in camera.iter_chunks(grey, ticks, seed=seed * 100_003 + 99_991):
            f.write(encode_frames(chunk.numpy()).tobytes())
            done += chunk.shape[0]
            if progress:
                progress("spikes", done, ticks)
    with atomic_write(sidecar_path(stream_path), "w") as f:
        json.dump({"height": cfg.height, "width": cfg.width, "num_frames": ticks, "clock_hz": cfg.clock_hz,
                   "threshold": cfg.threshold, "gain": cfg.gain,
                   **({"cfa": cfg.cfa, "cfa_gains": list(cfg.cfa_gains)} if cfg.cfa else {}),
                   "layout": "pku-dat: ceil(H*W/8) bytes per frame, LSB-first, rows bottom-up"}, f, indent=1)

    intrinsics = {"fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy, "w": cfg.width, "h": cfg.height}
    c2w = np.stack([p.double().numpy() for p in poses])
    meta = {
        "format": POSES_FORMAT,
        "stream": stream_path.name, "num_ticks": ticks, "clock_hz": cfg.clock_hz, "key_every": key_every,
        **intrinsics,
        "generator": {"name": GENERATOR_NAME, "mode": "long-stream", "preset": preset, "seed": seed,
                      "config": dataclasses.asdict(cfg)},
        "frames": [{"tick": round(float(t), 6), "time": round(float(t) / cfg.clock_hz, 9),
                    "transform_matrix": [[round(float(v), 8) for v in row] for row in m]}
                   for t, m in zip(key_ticks, c2w, strict=True)],
    }
    with atomic_write(poses_path, "w") as f:
        json.dump(meta, f, indent=1)
    return load_long_stream(poses_path)


def load_long_stream(path: str | Path) -> LongStream:
    """Read back what :func:`make_long_stream` wrote, from ``raw/poses.json`` or the folder holding ``raw/``."""
    path = Path(path)
    if path.is_dir():
        path = path / "poses.json" if (path / "poses.json").is_file() else path / "raw" / "poses.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot read long-stream poses ({err}); regenerate with make_long_stream "
                               "or `spikegen make-scene --long-stream`") from err
    if meta.get("format") != POSES_FORMAT:
        raise SceneFormatError(f"{path}: not a long-stream poses file (format {meta.get('format')!r}, expected "
                               f"{POSES_FORMAT!r}); pass the raw/poses.json written by make_long_stream")
    frames = meta["frames"]
    return LongStream(
        stream_path=path.parent / meta["stream"], poses_path=path, num_ticks=int(meta["num_ticks"]),
        clock_hz=float(meta["clock_hz"]), ticks=np.array([f["tick"] for f in frames], dtype=np.float64),
        poses=np.array([f["transform_matrix"] for f in frames], dtype=np.float64),
        intrinsics={key: float(meta[key]) for key in ("fl_x", "fl_y", "cx", "cy", "w", "h")},
    )
