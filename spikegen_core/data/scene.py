"""Procedural 3-D high-speed scenes: a camera on a fast orbit watches a textured room, per view a spike window.

``make_scene`` writes the scene folder of docs/INTERFACES.md ("Scene folder"), the format the ``spike-data``
dataparser reads: per training view the blurred RGB exposure of the window (``file_path``/``blur_path``),
the spike window (``spike_path`` + sidecar), the sharp centre frame (``sharp_path``) and the poses at the
window's centre, first and last tick; test views at held-out poses carry the sharp ground truth
(``gt_path``). ``sparse_pc.ply`` holds seed points for splatting.
RGB frames (blurred, sharp, test, TFP images) and seed colours are stored display-encoded as ``rgb_response``
says (default ``"srgb"``, what a real RGB camera stores); spikes are simulated from the linear radiance and the
blur is averaged in linear light before encoding, as a sensor integrates light. Facts beyond the format sit in the top-level
``generator`` block: the config, and per view (``views``, in frame order) its TFP image ``tfp_path``, the
measured motion blur ``blur_px`` (train views) and ``off_trajectory`` (test views).

Timing: within a window of ``window`` ticks the camera is rendered sharp at ``subframes`` evenly spaced
instants (first to last tick); the spike simulator interpolates them linearly to every tick, and the blurred
RGB is the exact tick-average of that same interpolation, so RGB and spikes see one exposure.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from spikegen_core import radiometry
from spikegen_core.data.raycast import (
    Box,
    Intrinsics,
    Room,
    Sphere,
    World,
    look_at,
    project,
    render,
    render_many,
    render_points,
)
from spikegen_core.data.scene_format import write_ply, write_transforms
from spikegen_core.data.scene_kinds import (
    ForwardTrajectory,
    RoomTrajectory,
    build_forward_world,
    build_room_world,
)
from spikegen_core.data.scene_textures import make_texture_bank, photo_texture_bank
from spikegen_core.errors import InputMismatchError, SceneFormatError
from spikegen_core.image import save_image
from spikegen_core.spikes.camera import check_cfa
from spikegen_core.utils import atomic_dir

__all__ = [
    "KINDS",
    "PRESETS",
    "SceneConfig",
    "Trajectory",
    "build_world",
    "exposure_weights",
    "make_scene",
    "make_scene_command",
    "make_trajectory",
    "resolve_config",
]

SCENE_FORMAT_VERSION = 1
GENERATOR_NAME = "spikegen make-scene"
ProgressFn = Callable[[str, int, int], None]
SceneKind = Literal["orbit", "room", "forward"]
KINDS: tuple[str, ...] = ("orbit", "room", "forward")
"""orbit: cameras circle objects in a room's middle; room: inside-out, the camera pans around the walls from near
the middle; forward: hand-held, LLFF-like, shaking in front of a layered scene (spikegen_core/data/scene_kinds.py)."""


@dataclass(frozen=True)
class SceneConfig:
    """Everything that shapes a generated scene (a preset plus overrides)."""

    width: int = 96
    height: int = 72
    num_train: int = 24
    num_test: int = 6
    num_off_track: int = 2  # how many of the test views sit slightly off the trajectory
    window: int = 64  # spike ticks per training view (its exposure)
    subframes: int = 9  # sharp renders per window, interpolated to every tick (<1 px of motion apart)
    threshold: float = 2.0
    gain: float = 1.0
    clock_hz: float = 20_000.0
    orbit_deg_per_s: float = 1800.0  # trajectory speed: sets how far the camera moves within a window
    arc_deg: float = 360.0  # orbit covered by the training views
    fov_deg: float = 60.0  # horizontal field of view
    supersample: int = 2  # samples per pixel side when rendering (anti-aliasing)
    texture_size: int = 128
    num_objects: int = 6
    seed_points: int = 3000  # points written to sparse_pc.ply; 0 writes no PLY
    tfp_window: int | None = None  # ticks around the window centre averaged for the TFP image (None: half)
    kind: SceneKind = "orbit"  # the world and camera path (KINDS); orbit_deg_per_s/arc_deg drive every path's phase
    textures: Literal["auto", "procedural", "photo"] = "auto"  # auto: procedural for orbit, photographs otherwise
    cfa: str | None = None  # colour spike camera: Bayer pattern (RGGB, BGGR, GRBG, GBRG); None = grey spikes
    cfa_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # its per-channel (R, G, B) gains
    rgb: bool = True  # write the RGB camera's blurred frames (False: spikes only; file_path is then the TFP)
    rgb_response: str = "srgb"  # how the RGB frames are stored: "srgb", "linear" or "gamma:G"


PRESETS: dict[str, SceneConfig] = {
    "sample": SceneConfig(),
    "large": SceneConfig(
        width=240, height=180, num_train=60, num_test=12, num_off_track=4, window=128, subframes=13,
        orbit_deg_per_s=600.0, texture_size=256, num_objects=9, seed_points=10_000,
    ),
    # The spike sensor's native readout (250 x 400, e.g. the PKU Vidar cameras of the public datasets).
    "native": SceneConfig(
        width=400, height=250, num_train=30, num_test=6, window=64, subframes=9, orbit_deg_per_s=450.0,
        texture_size=256, num_objects=8, seed_points=10_000,
    ),
}


def resolve_config(preset: str = "sample", **overrides: object) -> SceneConfig:
    """The preset's config with ``overrides`` applied and checked."""
    if preset not in PRESETS:
        raise SceneFormatError(f"make_scene: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SceneConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SceneFormatError(f"make_scene: unknown option(s) {unknown}; valid options are {sorted(names)}")
    if "num_test" in overrides and "num_off_track" not in overrides:
        overrides["num_off_track"] = min(PRESETS[preset].num_off_track, int(overrides["num_test"]))
    cfg = dataclasses.replace(PRESETS[preset], **overrides)
    if cfg.tfp_window is None:
        cfg = dataclasses.replace(cfg, tfp_window=max(1, cfg.window // 2))
    problems = []
    if cfg.width < 8 or cfg.height < 8:
        problems.append(f"resolution {cfg.width}x{cfg.height} is below 8x8")
    if cfg.num_train < 1 or cfg.num_test < 0 or not 0 <= cfg.num_off_track <= cfg.num_test:
        problems.append("need num_train >= 1 and 0 <= num_off_track <= num_test")
    if cfg.window < 2 or cfg.subframes < 2:
        problems.append("window and subframes must be at least 2")
    if not 1 <= cfg.tfp_window <= cfg.window:
        problems.append(f"tfp_window must be in [1, window={cfg.window}]")
    if cfg.threshold <= 0 or cfg.gain <= 0 or cfg.clock_hz <= 0:
        problems.append("threshold, gain and clock_hz must be positive")
    if cfg.kind not in KINDS or cfg.textures not in ("auto", "procedural", "photo"):
        problems.append(f"kind {cfg.kind!r} / textures {cfg.textures!r}: kind is one of {list(KINDS)}, "
                        "textures one of auto, procedural, photo")  # fmt: skip
    if not 0 < cfg.fov_deg < 170 or cfg.supersample < 1 or cfg.seed_points < 0:
        problems.append("fov_deg in (0, 170), supersample >= 1 and seed_points >= 0 are required")
    try:
        pattern, gains = check_cfa(cfg.cfa, cfg.cfa_gains, where="make_scene")
        cfg = dataclasses.replace(cfg, cfa=pattern, cfa_gains=gains)
    except InputMismatchError as err:
        problems.append(str(err).removeprefix("make_scene: "))
    try:
        cfg = dataclasses.replace(cfg, rgb_response=str(radiometry.from_text(str(cfg.rgb_response))))
    except SceneFormatError:
        problems.append(f"rgb_response {cfg.rgb_response!r} is not 'srgb', 'linear' or 'gamma:G'")
    if problems:
        raise SceneFormatError(f"make_scene: invalid options ({'; '.join(problems)}); fix them and rerun")
    return cfg


# ------------------------------------------------------------------------------------------------ the world
def build_world(cfg: SceneConfig, seed: int) -> World:
    """The world of ``cfg.kind``; orbit: a room with a textured floor, walls and ceiling and ``num_objects`` boxes
    and spheres near its middle (the other kinds: spikegen_core/data/scene_kinds.py)."""
    g = torch.Generator().manual_seed(int(seed))
    photo = cfg.textures == "photo" or (cfg.textures == "auto" and cfg.kind != "orbit")
    bank = photo_texture_bank if photo else make_texture_bank
    if cfg.kind == "room":
        return build_room_world(cfg.num_objects, bank(6 + cfg.num_objects, cfg.texture_size, g), g)
    if cfg.kind == "forward":
        return build_forward_world(cfg.num_objects, bank(3 + cfg.num_objects, cfg.texture_size, g), g)
    n_mat = 3 + cfg.num_objects
    textures = bank(n_mat, cfg.texture_size, g)
    tile = torch.empty(n_mat)
    tile[:3] = torch.tensor([2.0, 2.5, 3.0])  # floor, walls, ceiling
    tile[3:] = 0.7 + 0.5 * torch.rand(cfg.num_objects, generator=g)
    room = Room(half_x=5.0, half_z=5.0, height=3.5, floor_material=0, wall_material=1, ceiling_material=2)

    objects: list[Sphere | Box] = []
    placed: list[tuple[float, float, float]] = []  # (x, z, footprint radius)
    for i in range(cfg.num_objects):
        is_box = i % 2 == 0
        for _ in range(200):  # rejection sampling: no two footprints overlap
            rad = 2.0 * math.sqrt(float(torch.rand((), generator=g)))
            ang = 2 * math.pi * float(torch.rand((), generator=g))
            x, z = rad * math.cos(ang), rad * math.sin(ang)
            if is_box:
                hx, hy, hz = (0.2 + 0.4 * torch.rand(3, generator=g)).tolist()
                hy *= 1.5  # some tall boxes, to hide what stands behind them
                foot = math.hypot(hx, hz)
            else:
                r = 0.25 + 0.35 * float(torch.rand((), generator=g))
                foot = r
            if all(math.hypot(x - px, z - pz) > foot + pr + 0.15 for px, pz, pr in placed):
                break
        placed.append((x, z, foot))
        if is_box:
            yaw = math.pi * float(torch.rand((), generator=g))
            objects.append(Box(center=(x, hy, z), half_size=(hx, hy, hz), material=3 + i, yaw=yaw))
        else:
            lift = 0.4 * float(torch.rand((), generator=g)) if i % 4 == 1 else 0.0  # some float above ground
            objects.append(Sphere(center=(x, r + lift, z), radius=r, material=3 + i))
    return World(room=room, objects=objects, textures=textures, tile_size=tile, light=(1.2, 3.0, 0.8))


@dataclass(frozen=True)
class Trajectory:
    """A fast orbit with a wobbling look-at target; ``pose(t)`` is camera-to-world at time ``t`` seconds."""

    omega: float  # orbit angular speed, rad/s
    radius: float = 3.6
    height: float = 1.7
    target: tuple[float, float, float] = (0.0, 0.5, 0.0)
    phase0: float = 0.3

    def angle(self, t: float) -> float:
        return self.phase0 + self.omega * t

    def pose(self, t: float, *, radial_offset: float = 0.0, height_offset: float = 0.0) -> torch.Tensor:
        a = self.angle(t)
        r = self.radius + 0.25 * math.sin(3 * a) + radial_offset
        eye = torch.tensor([r * math.cos(a), self.height + 0.3 * math.sin(2 * a) + height_offset, r * math.sin(a)])
        # The target wobbles faster than the orbit, so the view direction sweeps too (blur everywhere,
        # not only away from the look-at point).
        tx, ty, tz = self.target
        target = torch.tensor([tx + 0.3 * math.sin(5 * a), ty + 0.15 * math.sin(7 * a), tz + 0.3 * math.cos(5 * a)])
        return look_at(eye, target)


def make_trajectory(cfg: SceneConfig) -> Trajectory | RoomTrajectory | ForwardTrajectory:
    """The camera path of ``cfg.kind``, its phase advancing at ``orbit_deg_per_s``."""
    omega = math.radians(cfg.orbit_deg_per_s)
    return {"orbit": Trajectory, "room": RoomTrajectory, "forward": ForwardTrajectory}[cfg.kind](omega=omega)


def exposure_weights(num_subframes: int, num_ticks: int) -> torch.Tensor:
    """Weight of each sub-frame in the tick-average of their linear interpolation (frame 0 at the first tick,
    the last frame at the last tick, as ``spikegen_core.spikes.camera.simulate`` spreads them)."""
    pos = torch.arange(num_ticks, dtype=torch.float64) * (num_subframes - 1) / max(num_ticks - 1, 1)
    hat = (1.0 - (pos[:, None] - torch.arange(num_subframes, dtype=torch.float64)[None]).abs()).clamp_min(0.0)
    return (hat.sum(0) / num_ticks).float()


# ------------------------------------------------------------------------------------------------ writers
def _matrix(c2w: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 8) for v in row] for row in c2w]


# ------------------------------------------------------------------------------------------------ the scene
def _blur_px(world: World, k: Intrinsics, centre: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> float:
    """Mean image travel (pixels) of the surface seen at the window centre, from first to last tick."""
    pts, _ = render_points(world, centre, k)
    pts = pts.reshape(-1, 3).double()
    uv0, z0 = project(pts, start.double(), k)
    uv1, z1 = project(pts, end.double(), k)
    ok = (z0 > 0) & (z1 > 0)
    return float((uv1 - uv0)[ok].norm(dim=-1).mean())


def _seed_points(world: World, k: Intrinsics, poses: list[torch.Tensor], n: int, seed: int,
                 response: radiometry.RgbResponse):
    """``n`` surface points with their shaded colours (encoded as the RGB frames, as SfM colours are), seen from
    the training cameras, plus small noise."""
    g = torch.Generator().manual_seed(int(seed) + 7919)
    per_view = [n // len(poses) + (1 if i < n % len(poses) else 0) for i in range(len(poses))]
    xyz, rgb = [], []
    for c2w, m in zip(poses, per_view, strict=True):
        if m == 0:
            continue
        pts, col = render_points(world, c2w, k)
        idx = torch.randint(0, k.height * k.width, (m,), generator=g)
        xyz.append(pts.reshape(-1, 3)[idx])
        rgb.append(col.reshape(-1, 3)[idx])
    xyz_t = torch.cat(xyz) + 0.01 * torch.randn(n, 3, generator=g)  # ~1 cm jitter, as a real SfM cloud has
    rgb_t = (response.encode(torch.cat(rgb)) * 255).round().to(torch.uint8)
    return xyz_t.numpy().astype(np.float32), rgb_t.numpy()


def _check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to replace a folder we did not generate (a real capture, say) unless asked to: the new scene
    replaces the whole folder."""
    if overwrite or not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    tj = out / "transforms.json"
    try:
        ours = json.loads(tj.read_text()).get("generator", {}).get("name") == GENERATOR_NAME
    except (OSError, ValueError):
        ours = False
    if not ours:
        what = f"{tj}: a scene not made by make_scene is" if tj.exists() else f"{out}: files not written by make_scene are"
        raise SceneFormatError(
            f"{what} already there and the new scene replaces the whole folder; choose another out_dir or pass "
            "overwrite=True (--overwrite)"
        )


def make_scene(
    out_dir: str | Path,
    *,
    preset: str = "sample",
    seed: int = 0,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    threads: int | None = 1,
    **overrides: object,
) -> Path:
    """Generate a procedural high-speed scene folder and return its path (the folder holding transforms.json).

    ``overrides`` are :class:`SceneConfig` fields (``width``, ``num_train``, ``window``, ``threshold``,
    ``orbit_deg_per_s``, ``seed_points=0`` for no PLY, ...). The same preset, overrides and ``seed`` give
    byte-identical files. ``progress(stage, done, total)`` is called after each view. ``threads``: torch CPU
    threads while generating (restored after); the ray batches are small, so one thread (the default) spares
    the threading overhead. ``None`` keeps torch's setting.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        out = Path(out_dir)
        _check_out_dir(out, overwrite)
        # Built beside and swapped in whole: a killed run leaves the previous scene or the new one, never a mix.
        with atomic_dir(out) as tmp:
            _make_scene(tmp, preset, seed, progress, overrides)
        return out
    finally:
        torch.set_num_threads(previous)


def _make_scene(
    out: Path, preset: str, seed: int, progress: ProgressFn | None, overrides: dict
) -> Path:
    from spikegen_core.spikes.camera import simulate
    from spikegen_core.spikes.io import write_dat
    from spikegen_core.spikes.reconstruct import colour_frame

    cfg = resolve_config(preset, **overrides)

    world = build_world(cfg, seed)
    response = radiometry.from_text(cfg.rgb_response)
    k = Intrinsics.from_fov(cfg.width, cfg.height, cfg.fov_deg)
    traj = make_trajectory(cfg)
    weights = exposure_weights(cfg.subframes, cfg.window)
    arc = math.radians(cfg.arc_deg)
    total = cfg.num_train + cfg.num_test + (1 if cfg.seed_points else 0)
    done = 0

    frames: list[dict] = []
    train_poses: list[torch.Tensor] = []
    blurs: list[float] = []
    extras: list[dict] = []  # per-view facts beyond the format: TFP image, measured blur, off-track flag
    for i in range(cfg.num_train):
        t_mid = arc * (i + 0.5) / cfg.num_train / traj.omega
        first_tick = round(t_mid * cfg.clock_hz - (cfg.window - 1) / 2)
        ticks = first_tick + torch.linspace(0, cfg.window - 1, cfg.subframes, dtype=torch.float64)
        poses = [traj.pose(float(tk) / cfg.clock_hz) for tk in ticks]
        t_centre = (first_tick + (cfg.window - 1) / 2) / cfg.clock_hz
        centre = traj.pose(t_centre)
        sub = render_many(world, poses, k, cfg.supersample)  # (K, 3, H, W) linear radiance
        sharp = sub[cfg.subframes // 2] if cfg.subframes % 2 else render(world, centre, k, cfg.supersample)
        blurred = torch.einsum("k,kchw->chw", weights, sub)
        # Spikes integrate the renders' linear radiance (a colour camera: its filter's channel per pixel).
        stream = simulate(
            sub, cfg.window, threshold=cfg.threshold, gain=cfg.gain, clock_hz=cfg.clock_hz, seed=seed * 100_003 + i,
            cfa=cfg.cfa, cfa_gains=cfg.cfa_gains if cfg.cfa else None,
        )
        c = cfg.window // 2
        tfp_img = colour_frame(stream, center=c, window=cfg.tfp_window, threshold=cfg.threshold, gain=cfg.gain)

        name = f"train_{i:04d}"
        write_dat(out / "spikes" / f"{name}.dat", stream, sidecar=True)
        # Without an RGB camera the view's image (file_path) is its TFP frame (demosaiced for colour spikes).
        save_image(out / "images" / f"{name}.png", response.encode(blurred if cfg.rgb else tfp_img))
        save_image(out / "sharp" / f"{name}.png", response.encode(sharp))
        save_image(out / "tfp" / f"{name}.png", response.encode(tfp_img))
        blur = _blur_px(world, k, centre, poses[0], poses[-1])
        blurs.append(blur)
        train_poses.append(centre)
        frame = {
            "file_path": f"images/{name}.png",
            "transform_matrix": _matrix(centre),
            "transform_matrix_start": _matrix(poses[0]),
            "transform_matrix_end": _matrix(poses[-1]),
            "time": round(t_centre, 9),
            "spike_path": f"spikes/{name}.dat",
            "spike_hw": [cfg.height, cfg.width],
            "spike_threshold": cfg.threshold,
            "blur_path": f"images/{name}.png",
            "sharp_path": f"sharp/{name}.png",
        }
        if not cfg.rgb:
            del frame["blur_path"]
        frames.append(frame)
        extras.append({"file_path": f"images/{name}.png", "tfp_path": f"tfp/{name}.png", "blur_px": round(blur, 3)})
        done += 1
        if progress:
            progress("train views", done, total)

    num_on = cfg.num_test - cfg.num_off_track
    for j in range(cfg.num_test):
        # Held-out poses halfway between two training views; the last num_off_track also step off the path.
        slot = (j * cfg.num_train) // max(cfg.num_test, 1)
        t = arc * (slot + 1.0) / cfg.num_train / traj.omega
        off = j >= num_on
        sign = 1.0 if j % 2 else -1.0
        pose = traj.pose(t, radial_offset=0.35 * sign if off else 0.0, height_offset=0.25 if off else 0.0)
        name = f"test_{j:04d}"
        save_image(out / "images" / f"{name}.png", response.encode(render(world, pose, k, cfg.supersample)))
        frames.append({
            "file_path": f"images/{name}.png",
            "gt_path": f"images/{name}.png",
            "transform_matrix": _matrix(pose),
            "time": round(t, 9),
        })
        extras.append({"file_path": f"images/{name}.png", "off_trajectory": off})
        done += 1
        if progress:
            progress("test views", done, total)

    meta: dict = {
        "camera_model": "OPENCV",
        "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy, "w": cfg.width, "h": cfg.height,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "spikegen_format": SCENE_FORMAT_VERSION,
        radiometry.FIELD: response.to_json(),
        "spike": {
            "clock_hz": cfg.clock_hz, "threshold": cfg.threshold, "gain": cfg.gain,
            "height": cfg.height, "width": cfg.width,
            **({"cfa": cfg.cfa, "cfa_gains": list(cfg.cfa_gains)} if cfg.cfa else {}),
        },
        # The dataparser rejects unknown frame fields, so what only this generator knows lives here.
        "generator": {
            "name": GENERATOR_NAME, "preset": preset, "seed": seed, "config": dataclasses.asdict(cfg),
            "mean_blur_px": round(float(np.mean(blurs)), 3), "views": extras,
        },
    }
    if cfg.seed_points:
        xyz, rgb = _seed_points(world, k, train_poses, cfg.seed_points, seed, response)
        write_ply(out / "sparse_pc.ply", xyz, rgb, comment="spikegen procedural scene seed points")
        meta["ply_file_path"] = "sparse_pc.ply"
        done += 1
        if progress:
            progress("seed points", done, total)
    meta["frames"] = frames
    write_transforms(out, meta)  # last: its presence marks a complete scene
    return out


def make_scene_command(
    out: Path = Path("data/spikegen-sample"),
    preset: Literal["sample", "large", "native"] = "sample",
    kind: SceneKind = "orbit",
    seed: int = 0,
    width: int | None = None,
    height: int | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    window: int | None = None,
    subframes: int | None = None,
    threshold: float | None = None,
    orbit_deg_per_s: float | None = None,
    seed_points: int | None = None,
    overwrite: bool = False,
    long_stream: bool = False,
    ticks: int | None = None,
    supersample: int | None = None,
    textures: Literal["auto", "procedural", "photo"] = "auto",
    cfa: Literal["RGGB", "BGGR", "GRBG", "GBRG"] | None = None,
    cfa_gains: tuple[float, float, float] | None = None,
    rgb: bool = True,
    rgb_response: str = "srgb",
) -> Path:
    """Generate a procedural high-speed 3-D scene (spike windows + blurred RGB + test views) for spikegen-splat,
    or with --long-stream only the raw capture: one continuous spike stream along the trajectory.

    Args:
        out: folder to write the scene into (created if needed).
        preset: sizes and counts: "sample" (96x72, 24 train views, seconds on a CPU), "large" (240x180, 60
            views) or "native" (400x250, the spike sensor's readout, 30 views).
        kind: the world and camera path: "orbit" (cameras circle objects in the middle of a room), "room"
            (inside-out: the camera pans around photo-papered walls from near the middle) or "forward"
            (hand-held, LLFF-like: a shaking camera in front of layered photo cards).
        seed: random seed; the same seed and options give identical files.
        width: image and spike width in pixels (None: the preset's; the same for every option below).
        height: image and spike height in pixels.
        num_train: training views (each one spike window and one blurred RGB exposure).
        num_test: held-out test views with sharp ground truth.
        window: spike ticks per training view (at 20 kHz, 64 ticks = 3.2 ms).
        subframes: sharp renders per window, interpolated to every tick.
        threshold: spike threshold θ of the simulated camera.
        orbit_deg_per_s: camera orbit speed; higher means more motion blur per window.
        seed_points: seed points in sparse_pc.ply (0: write no PLY).
        overwrite: replace a folder that holds files not made by this command (the whole folder is replaced).
        long_stream: write only raw/stream.dat (one spike stream, a frame per tick) and raw/poses.json (its
            ground-truth poses) instead of a scene, as input for spikegen-process-data.
        ticks: long-stream length in ticks (None: the time to cover the preset's orbit arc).
        supersample: render samples per pixel side (None: the preset's).
        textures: surface textures: "procedural", "photo" (scikit-image's public-domain/CC0 sample photographs)
            or "auto" (procedural for orbit, photographs for the other kinds).
        cfa: make the spike camera a colour one behind this Bayer pattern (None: grey spikes).
        cfa_gains: the colour spike camera's per-channel (R, G, B) gains (None: 1, 1, 1).
        rgb: write the RGB camera's blurred frames; --no-rgb makes a spikes-only scene (train images = TFP).
        rgb_response: how the RGB frames are stored: "srgb" (a real RGB camera), "linear" or "gamma:G"
            (display = linear^(1/G)); spikes always come from the linear radiance.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    given = {
        "width": width, "height": height, "num_train": num_train, "num_test": num_test, "window": window,
        "subframes": subframes, "threshold": threshold, "orbit_deg_per_s": orbit_deg_per_s,
        "seed_points": seed_points, "supersample": supersample, "kind": kind, "textures": textures,
        "cfa": cfa, "cfa_gains": cfa_gains, "rgb": None if rgb else False,
        "rgb_response": rgb_response,
    }
    overrides = {key: v for key, v in given.items() if v is not None}
    console = Console()
    if long_stream:
        return _long_stream_command(out, preset, seed, ticks, overrides, console)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("rendering", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        path = make_scene(out, preset=preset, seed=seed, overwrite=overwrite, progress=report, **overrides)
    meta = json.loads((path / "transforms.json").read_text())
    n_test = sum(1 for f in meta["frames"] if "gt_path" in f)
    cfg = meta["generator"]["config"]
    console.print(
        f"[green]wrote[/green] {path}: {len(meta['frames']) - n_test} training views "
        f"({cfg['window']} spike ticks each, mean motion blur {meta['generator']['mean_blur_px']:.1f} px), "
        f"{n_test} test views, {meta['w']}x{meta['h']} px"
        + (f", colour spikes ({cfg['cfa']})" if cfg.get("cfa") else "")
        + ("" if cfg.get("rgb", True) else ", no RGB camera"),
        soft_wrap=True,  # never fold or cut paths: users copy them
    )
    console.print(f"next: [bold]ns-train spikegen-splat --data {path}[/bold]", soft_wrap=True)
    return path


def _long_stream_command(out: Path, preset: str, seed: int, ticks: int | None, overrides: dict, console) -> Path:
    """``make-scene --long-stream``: the raw capture only, with the command that turns it into a scene."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from spikegen_core.data.scene_stream import make_long_stream

    overrides.pop("seed_points", None)  # a raw capture has no seed points: process-data makes them
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        stream = make_long_stream(out, preset=preset, seed=seed, ticks=ticks, progress=report, **overrides)
    console.print(
        f"[green]wrote[/green] {stream.stream_path}: {stream.num_ticks} ticks "
        f"({1e3 * stream.num_ticks / stream.clock_hz:.0f} ms), {int(stream.intrinsics['w'])}x"
        f"{int(stream.intrinsics['h'])} px; ground-truth poses in {stream.poses_path}",
        soft_wrap=True,
    )
    console.print(f"next: [bold]spikegen-process-data --data {stream.stream_path} --output-dir {out / 'scene'}"
                  "[/bold]", soft_wrap=True)
    return stream.stream_path
