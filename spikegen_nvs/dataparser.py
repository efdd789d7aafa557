"""The ``spike-data`` dataparser: a spike scene folder (docs/INTERFACES.md, "Scene folder") → DataparserOutputs.

Train views are the frames without ``gt_path``; each carries a spike window (file, frame range, size,
threshold), a timestamp and the camera poses at the window's edges. Frames with ``gt_path`` form the eval
split and are scored against that sharp ground truth at the window centre.

Only nerfstudio modules that ``nerfstudio.configs.dataparser_configs`` has already imported are imported
here at module level: nerfstudio loads our dataparser entry point while its own modules are half-initialised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from nerfstudio.cameras import camera_utils
from nerfstudio.cameras.cameras import CAMERA_MODEL_TO_TYPE, Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.utils.rich_utils import CONSOLE

from spikegen_core.errors import SceneFormatError
from spikegen_core.radiometry import RgbResponse
from spikegen_nvs import scene_fields as fields
from spikegen_nvs.scene_extent import scene_extent

SUPPORTED_FORMAT = 1
DEFAULT_SPIKE = {"clock_hz": 20_000.0, "threshold": 2.0, "gain": 1.0}

# Fields the format defines (anything else is a typo or a newer format: we say so rather than ignore it).
TOP_LEVEL_FIELDS = {
    "spikegen_format", "spike", "camera_model", "fl_x", "fl_y", "cx", "cy", "w", "h",
    "k1", "k2", "k3", "k4", "p1", "p2", "ply_file_path", "frames", "applied_transform", "applied_scale",
    "generator", "description", "rgb_response",
}  # fmt: skip
REQUIRED_TOP_LEVEL = ("fl_x", "fl_y", "cx", "cy", "w", "h", "frames")
SPIKE_FIELDS = {"clock_hz", "threshold", "gain", "height", "width", "cfa", "cfa_gains"}
FRAME_FIELDS = {
    "file_path", "transform_matrix", "spike_path", "spike_range", "spike_hw", "spike_threshold", "time",
    "transform_matrix_start", "transform_matrix_end", "blur_path", "sharp_path", "gt_path", "colmap_im_id",
    "spike_cfa", "spike_cfa_gains",
}  # fmt: skip
SPIKE_SUFFIXES = {".dat", ".npz", ".npy"}


@dataclass(frozen=True)
class SpikeView:
    """Where one view's spike window lives and how it was recorded (all paths absolute)."""

    spike_path: Path
    start: int
    end: int
    height: int
    width: int
    threshold: float
    gain: float
    clock_hz: float
    time: float
    blur_path: Path | None = None
    sharp_path: Path | None = None
    cfa: str | None = None
    """Bayer pattern of a colour spike camera (scene field `spike.cfa` / `spike_cfa`); None: the file's, else grey."""
    cfa_gains: tuple[float, float, float] | None = None

    @property
    def num_frames(self) -> int:
        return self.end - self.start

    def read(self):  # -> SpikeStream (imported lazily: see the module docstring)
        """The window's frames, upright ``(T, H, W)`` uint8; only these frames are read from disk."""
        from spikegen_core.spikes.io import load_spikes

        size = {}
        if self.spike_path.suffix == ".dat" and not _sidecar_size(self.spike_path):
            size = {"height": self.height, "width": self.width}  # else the sidecar's size (and crop) apply
        stream = load_spikes(self.spike_path, start=self.start, count=self.num_frames, **size)
        stream.threshold = self.threshold
        stream.clock_hz = self.clock_hz
        if self.cfa:  # the scene's pattern wins over the file's
            stream.cfa, stream.cfa_gains = self.cfa, self.cfa_gains or (1.0, 1.0, 1.0)
        return stream


@dataclass
class SpikeDataParserConfig(DataParserConfig):
    """Spike scene folders written by ``spikegen make-scene`` / ``spikegen-process-data``."""

    _target: type = field(default_factory=lambda: SpikeDataParser)
    data: Path = Path()
    """Scene folder (or its transforms.json)."""
    train_images: Literal["file", "tfp", "blur", "sharp"] = "file"
    """Images train views use: `file_path`, the TFP of the spike window, `blur_path`, or `sharp_path`
    (the last three for baselines, e.g. `ns-train splatfacto ... spike-data --train-images blur`)."""
    scale_factor: float = 1.0
    """Extra scale applied to camera origins after auto-scaling."""
    scene_scale: float = 1.0
    """Half-size of the scene box."""
    orientation_method: Literal["pca", "up", "vertical", "none"] = "up"
    center_method: Literal["poses", "focus", "none"] = "poses"
    auto_scale_poses: bool = True
    """Scale the scene to unit size (see `scale_reference`)."""
    scale_reference: Literal["auto", "poses", "points"] = "auto"
    """What fills unit size: `poses` (camera origins in [-1, 1], scene box the cube of `scene_scale`), `points`
    (the seed points' radius becomes 1, scene box their box: cameras inside the scene, e.g. a room seen from its
    middle or a forward-facing capture), `auto` (`points` when the cameras stand inside the seed points)."""
    load_3D_points: bool = True
    """Load seed points from `ply_file_path` when the scene has one."""
    cache_dir: Path | None = None
    """Where derived images (TFP) are written; default `<scene>/.spikegen_cache`."""


def _fail(where: Path | str, problem: str, fix: str) -> SceneFormatError:
    return fields.fail(where, problem, fix)


def _matrix(value: Any, where: Path, what: str) -> np.ndarray:
    """A 4×4 (or 3×4) camera-to-world matrix as float64 4×4."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise _fail(where, f"{what} is not a numeric matrix ({err})", "Write it as a 4x4 list of lists") from err
    if m.shape == (3, 4):
        m = np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]], axis=0)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise _fail(where, f"{what} has shape {m.shape} or non-finite values", "Write a finite 4x4 camera-to-world")
    rot = m[:3, :3]
    off = float(np.abs(rot.T @ rot - np.eye(3)).max())
    det = float(np.linalg.det(rot))
    if off > ROTATION_TOLERANCE or det < 0:  # a scaled, sheared or mirrored camera trains without a word otherwise
        raise _fail(
            where,
            f"{what}'s 3x3 is not a rotation (|RᵀR − I| up to {off:.3g}, det {det:.3g})",
            "Write the camera-to-world with an orthonormal rotation (det +1); re-export the poses",
        )
    return m


ROTATION_TOLERANCE = 1e-3
"""Largest entry of |RᵀR − I| accepted in a pose: float32 round-trips and 6-digit JSON stay far below it."""


def _repeated_views(frames: list[dict], indices: list[int]) -> list[str]:
    """One line per spike window that more than one train frame lists (same `spike_path` and `spike_range`)."""
    seen: dict[str, list[int]] = {}
    for i in indices:
        frame = frames[i]
        if "spike_path" in frame:
            seen.setdefault(repr((frame["spike_path"], frame.get("spike_range"))), []).append(i)
    return [
        f"frames {ids} are the same view (spike_path {frames[ids[0]]['spike_path']!r}, spike_range "
        f"{frames[ids[0]].get('spike_range')}) listed {len(ids)} times, so it trains with {len(ids)}x the weight "
        "of the others; remove the copies"
        for ids in seen.values()
        if len(ids) > 1
    ]


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise _fail(path, f"not a readable image ({err})", "Point the field at a PNG/JPEG file") from err


def _sidecar_size(path: Path) -> bool:
    """True when the ``.dat`` sidecar gives the readout size (then it, with its crop, decides how to read)."""
    from spikegen_core.spikes.io import read_sidecar

    return {"height", "width"} <= read_sidecar(path).keys()


def _spike_file_frames(path: Path, height: int, width: int) -> int:
    """Number of spike frames in ``path`` (``.dat`` from its size; ``.npy`` memory-mapped; ``.npz`` read)."""
    from spikegen_core.spikes import io as spike_io

    if path.suffix == ".dat":
        if not _sidecar_size(path):
            return int(spike_io.dat_num_frames(path, height, width))
        # The file's own sidecar knows its size: reading it with the scene's h×w instead would silently
        # decode garbage whenever the byte count happens to divide (e.g. 24×24 frames read as 16×16).
        first = spike_io.read_dat(path, start=0, count=1)  # validates size, crop and whole frames
        if (first.height, first.width) != (height, width):
            raise _fail(
                path,
                f"its sidecar {spike_io.sidecar_path(path).name} says the frames are {first.height}x{first.width} "
                f"but the scene says {height}x{width}",
                "Regenerate the spike file at the scene's size, or fix the sidecar or transforms.json `w`/`h`",
            )
        meta = spike_io.read_sidecar(path)
        return int(spike_io.dat_num_frames(path, int(meta["height"]), int(meta["width"])))
    stream = spike_io.load_spikes(path)
    if (stream.height, stream.width) != (height, width):
        raise _fail(
            path,
            f"spike frames are {stream.height}x{stream.width} but the scene says {height}x{width}",
            "Regenerate the spike file or fix `spike_hw` / the top-level `spike.height/width`",
        )
    return stream.num_frames


class SpikeDataParser(DataParser):
    """Reads and validates a spike scene folder; see the module docstring."""

    config: SpikeDataParserConfig
    includes_time: bool = False
    # FullImageDatamanager sets this in inference mode; images are used at their stored size.
    downscale_factor: int = 1

    def __init__(self, config: SpikeDataParserConfig) -> None:
        super().__init__(config=config)
        self.downscale_factor = 1
        from spikegen_nvs.compat import apply_nerfstudio_shims

        # Built inside eval_setup before the checkpoint loads: splatfacto baselines on spike scenes
        # (ns-eval/ns-render on torch >= 2.6) get the shim too.
        apply_nerfstudio_shims()

    # -- reading --------------------------------------------------------------------------------------
    def _scene_paths(self) -> tuple[Path, Path]:
        data = Path(self.config.data)
        json_path = data if data.suffix == ".json" else data / "transforms.json"
        if not json_path.is_file():
            raise _fail(json_path, "no transforms.json found", "Point --data at a scene folder made by "
                        "`spikegen make-scene` or `spikegen-process-data`")  # fmt: skip
        return json_path, json_path.parent

    def load_meta(self) -> tuple[dict, Path, Path]:
        """The parsed and validated ``transforms.json``, its path, and the scene folder."""
        json_path, root = self._scene_paths()
        try:
            meta = json.loads(json_path.read_text())
        except json.JSONDecodeError as err:
            raise _fail(json_path, f"not valid JSON ({err})", "Fix the file or regenerate the scene") from err
        self._validate_top_level(meta, json_path)
        return meta, json_path, root

    def _validate_top_level(self, meta: dict, json_path: Path) -> None:
        if not isinstance(meta, dict):
            raise _fail(json_path, "top level is not a JSON object", "Regenerate the scene")
        unknown = sorted(set(meta) - TOP_LEVEL_FIELDS)
        if unknown:
            raise _fail(json_path, f"unknown top-level fields {unknown}",
                        f"Remove or rename them; known fields: {sorted(TOP_LEVEL_FIELDS)}")  # fmt: skip
        missing = [k for k in REQUIRED_TOP_LEVEL if k not in meta]
        if missing:
            raise _fail(json_path, f"missing top-level fields {missing}",
                        "Per-frame intrinsics are not supported: give fl_x fl_y cx cy w h once at the top level")  # fmt: skip
        fmt = meta.get("spikegen_format", SUPPORTED_FORMAT)
        if fmt != SUPPORTED_FORMAT:
            raise _fail(json_path, f"spikegen_format {fmt} is not supported (this reader knows {SUPPORTED_FORMAT})",
                        "Upgrade spikegen or regenerate the scene")  # fmt: skip
        fields.rgb_response(meta, json_path)
        spike = fields.obj(meta.get("spike", {}), json_path, "spike")
        if set(spike) - SPIKE_FIELDS:
            raise _fail(json_path, f"`spike` has unknown fields {sorted(set(spike) - SPIKE_FIELDS)}",
                        f"Use only {sorted(SPIKE_FIELDS)}")  # fmt: skip
        # Typed once here, so later code may use plain int()/float() on these fields.
        for key in ("clock_hz", "threshold", "gain"):
            if key in spike:
                fields.number(spike[key], json_path, f"spike.{key}", positive=True)
        for key in ("height", "width"):
            if key in spike:
                fields.integer(spike[key], json_path, f"spike.{key}", minimum=1)
        if "cfa" in spike:
            spike["cfa"] = fields.cfa(spike["cfa"], json_path, "spike.cfa")
        if "cfa_gains" in spike:
            spike["cfa_gains"] = fields.cfa_gains(spike["cfa_gains"], json_path, "spike.cfa_gains")
            if not spike.get("cfa"):
                raise _fail(json_path, "`spike.cfa_gains` is given without `spike.cfa`",
                            "Add `spike.cfa` (RGGB, BGGR, GRBG or GBRG) or remove the gains")  # fmt: skip
        for key in ("fl_x", "fl_y"):
            fields.number(meta[key], json_path, key, positive=True)
        for key in ("cx", "cy", *(k for k in ("k1", "k2", "k3", "k4", "p1", "p2") if k in meta)):
            fields.number(meta[key], json_path, key)
        for key in ("w", "h"):
            fields.integer(meta[key], json_path, key, minimum=1)
        # nerfstudio undistorts (and crops) the images, but spike windows cannot be resampled the same way
        # without mixing neighbouring pixels' counts: the frames and the spikes would disagree in size.
        lens = {k: meta[k] for k in ("k1", "k2", "k3", "k4", "p1", "p2") if meta.get(k)}
        if lens:
            raise _fail(json_path, f"lens distortion {lens} is not supported for spike scenes",
                        "Use undistorted pinhole frames: rerun spikegen-process-data with "
                        "--camera-model SIMPLE_PINHOLE (its default) or PINHOLE")  # fmt: skip
        for centre, size in (("cx", "w"), ("cy", "h")):  # a principal point far off the image is a unit mix-up
            if not -meta[size] <= meta[centre] <= 2 * meta[size]:
                raise _fail(json_path, f"`{centre}` = {meta[centre]} is far outside the image ({size} = {meta[size]})",
                            f"Give `{centre}` in pixels, about {size}/2 for a centred lens")  # fmt: skip
        if not isinstance(meta["frames"], list) or not meta["frames"]:
            raise _fail(json_path, "`frames` is empty or not a list", "A scene needs at least one train view")
        for i, frame in enumerate(meta["frames"]):
            fields.obj(frame, json_path, f"frames[{i}]")

    def _parse_view(self, frame: dict, idx: int, meta: dict, root: Path, json_path: Path) -> SpikeView:
        """Validate the spike fields of train frame ``idx`` and resolve them to a :class:`SpikeView`."""
        where = Path(f"{json_path} frames[{idx}] ({frame.get('file_path', '?')})")
        spike = {**DEFAULT_SPIKE, **meta.get("spike", {})}
        w, h = int(meta["w"]), int(meta["h"])
        if "spike_path" not in frame:
            raise _fail(where, "train view has no `spike_path`",
                        "Add the view's spike window, or give it a `gt_path` to make it a test view")  # fmt: skip
        spike_path = fields.relative_path(frame["spike_path"], root, where, "spike_path", must_exist=False)
        if spike_path.suffix not in SPIKE_SUFFIXES:
            raise _fail(where, f"spike_path {spike_path.name} has suffix {spike_path.suffix!r}",
                        f"Use one of {sorted(SPIKE_SUFFIXES)}")  # fmt: skip
        if not spike_path.is_file():
            raise _fail(where, f"spike file {spike_path} does not exist",
                        "Regenerate the scene or fix `spike_path` (relative to the scene folder)")  # fmt: skip
        hw = frame.get("spike_hw", [spike.get("height", h), spike.get("width", w)])
        if fields.integer_pair(hw, where, "spike_hw", minimum=1) != (h, w):
            raise _fail(where, f"spike size {hw} differs from the image size [h, w] = [{h}, {w}]",
                        "Spike resolution must equal image resolution: resample the images or the spikes")  # fmt: skip
        total = _spike_file_frames(spike_path, h, w)
        rng = frame.get("spike_range", [0, total])
        start, end = fields.integer_pair(rng, where, "spike_range")
        if not 0 <= start < end <= total:
            raise _fail(where, f"spike_range {rng} is not a non-empty [start, end) inside the file's {total} frames",
                        "Fix `spike_range` or regenerate the spike file")  # fmt: skip
        clock_hz = float(spike["clock_hz"])  # checked positive and finite in _validate_top_level
        time = fields.number(frame["time"], where, "time") if "time" in frame else (start + end) / 2 / clock_hz
        extras = {}
        for key in ("blur_path", "sharp_path"):
            if key in frame:
                extras[key] = fields.relative_path(frame[key], root, where, key)
        threshold = fields.number(frame.get("spike_threshold", spike["threshold"]), where, "spike_threshold", positive=True)
        extras.update(self._view_cfa(frame, spike, where))
        return SpikeView(spike_path, start, end, h, w, threshold, float(spike["gain"]), clock_hz, time, **extras)

    @staticmethod
    def _view_cfa(frame: dict, spike: dict, where: Path) -> dict:
        """A view's colour filter array: `spike_cfa`/`spike_cfa_gains` override the top-level `spike.cfa*`."""
        pattern = fields.cfa(frame["spike_cfa"], where, "spike_cfa") if "spike_cfa" in frame else spike.get("cfa")
        if "spike_cfa_gains" in frame:
            gains = fields.cfa_gains(frame["spike_cfa_gains"], where, "spike_cfa_gains")
            if not pattern:
                raise _fail(where, "`spike_cfa_gains` is given for a grey view",
                            "Add `spike_cfa` (or the top-level `spike.cfa`) or remove the gains")  # fmt: skip
        else:
            gains = spike.get("cfa_gains")
        return {"cfa": pattern, "cfa_gains": tuple(gains) if pattern and gains else None} if pattern else {}

    # -- images for train views -----------------------------------------------------------------------
    def _cache_dir(self, root: Path) -> Path:
        return Path(self.config.cache_dir) if self.config.cache_dir is not None else root / ".spikegen_cache"

    def _tfp_image(self, view: SpikeView, root: Path, response: RgbResponse) -> Path:
        """The TFP of the view's window as an 8-bit PNG in the cache (written once, atomically), display-encoded
        as the scene's RGB frames so a baseline trained on it is scored like for like."""
        from spikegen_core.image import save_image
        from spikegen_core.spikes.reconstruct import colour_frame

        stream = view.read()
        key = hashlib.sha256(
            f"{view.spike_path.resolve()}|{view.spike_path.stat().st_mtime_ns}|{view.start}|{view.end}|"
            f"{view.threshold}|{view.gain}|{stream.cfa}|{stream.cfa_gains}|{response}".encode()
        ).hexdigest()[:20]
        out = self._cache_dir(root) / "tfp" / f"{view.spike_path.stem}_{view.start}_{key}.png"
        if not out.is_file():
            # Grey, or demosaiced linear RGB for a colour (CFA) stream; display-encoded like the scene's RGB.
            frame = response.encode(colour_frame(stream, threshold=view.threshold, gain=view.gain))
            save_image(out, frame if frame.ndim == 3 else frame.expand(3, *frame.shape))  # RGB for every loader
        return out

    def _train_image(
        self, frame: dict, view: SpikeView, idx: int, root: Path, json_path: Path, response: RgbResponse
    ) -> Path:
        mode = self.config.train_images
        where = Path(f"{json_path} frames[{idx}]")
        if mode == "tfp":
            return self._tfp_image(view, root, response)
        if mode == "file":
            if "file_path" not in frame:
                raise _fail(where, "missing `file_path`", "Every frame needs an image (`file_path`)")
            return fields.relative_path(frame["file_path"], root, where, "file_path", must_exist=False)
        path = view.blur_path if mode == "blur" else view.sharp_path
        if path is None:
            raise _fail(where, f"--train-images {mode} needs `{mode}_path` in every train view",
                        "Pick another --train-images or regenerate the scene with that extra")  # fmt: skip
        return path

    @staticmethod
    def _camera_type(meta: dict, json_path: Path) -> CameraType:
        model = fields.text(meta.get("camera_model", "OPENCV"), json_path, "camera_model")
        if model not in CAMERA_MODEL_TO_TYPE:
            raise _fail(json_path, f"camera_model {model!r} is unknown",
                        f"Use one of {sorted(CAMERA_MODEL_TO_TYPE)}")  # fmt: skip
        return CAMERA_MODEL_TO_TYPE[model]

    # -- seed points ----------------------------------------------------------------------------------
    @staticmethod
    def _load_points(ply: Path, transform: torch.Tensor, scale: float) -> dict[str, torch.Tensor]:
        """Seed points (xyz in dataparser coordinates, uint8 rgb) from a PLY with x y z [red green blue]."""
        from plyfile import PlyData

        vertex = PlyData.read(str(ply))["vertex"]
        xyz = torch.from_numpy(np.stack([vertex["x"], vertex["y"], vertex["z"]], -1).astype(np.float32))
        names = vertex.data.dtype.names or ()
        if {"red", "green", "blue"} <= set(names):
            rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], -1).astype(np.uint8)
        else:  # grey seeds: splatfacto still needs a colour per point
            rgb = np.full((len(xyz), 3), 128, np.uint8)
        xyz = (torch.cat([xyz, torch.ones_like(xyz[:, :1])], -1) @ transform.T) * scale
        return {"points3D_xyz": xyz, "points3D_rgb": torch.from_numpy(rgb)}

    def _seed_points(self, meta: dict, root: Path, json_path: Path, transform: torch.Tensor) -> dict | None:
        """The scene's seed points, oriented and centred (not scaled), or None. Read even with
        ``load_3D_points`` off, so the scene's scale does not depend on it (a damaged PLY is then ignored)."""
        if "ply_file_path" not in meta:
            return None
        from plyfile import PlyParseError

        try:
            ply = fields.relative_path(meta["ply_file_path"], root, json_path, "ply_file_path")
        except SceneFormatError:
            if not self.config.load_3D_points:
                return None
            raise
        try:
            return self._load_points(ply, transform, 1.0)
        except (PlyParseError, OSError, ValueError, KeyError) as err:  # a damaged PLY or one without vertices
            if not self.config.load_3D_points:
                return None
            raise _fail(ply, f"cannot read seed points ({type(err).__name__}: {err})",
                        "Write a PLY with a `vertex` element holding x y z, or remove `ply_file_path`") from err

    # -- main -----------------------------------------------------------------------------------------
    def _generate_dataparser_outputs(self, split: str = "train", **kwargs: Any) -> DataparserOutputs:
        meta, json_path, root = self.load_meta()
        frames: list[dict] = meta["frames"]
        w, h = int(meta["w"]), int(meta["h"])

        for i, frame in enumerate(frames):
            unknown = sorted(set(frame) - FRAME_FIELDS)
            if unknown:
                raise _fail(Path(f"{json_path} frames[{i}]"), f"unknown fields {unknown}",
                            f"Remove or rename them; known frame fields: {sorted(FRAME_FIELDS)}")  # fmt: skip
            if "transform_matrix" not in frame:
                raise _fail(Path(f"{json_path} frames[{i}]"), "missing `transform_matrix`",
                            "Give every frame its camera-to-world at the window centre")  # fmt: skip

        eval_ids = [i for i, f in enumerate(frames) if "gt_path" in f]
        train_ids = [i for i, f in enumerate(frames) if "gt_path" not in f]
        if not train_ids:
            raise _fail(json_path, "every frame has `gt_path`, so there is no train view",
                        "Train views are the frames without `gt_path`")  # fmt: skip
        if split == "train":
            indices = train_ids
            for line in _repeated_views(frames, train_ids):
                CONSOLE.print(f"[yellow]warning: {json_path}: {line}")
        elif not eval_ids:
            CONSOLE.print(f"[yellow]{json_path}: no frame has `gt_path`; evaluating on the train views.")
            indices = train_ids
        else:
            indices = eval_ids
        is_train = indices is train_ids

        centre = [_matrix(f["transform_matrix"], json_path, f"frames[{i}].transform_matrix") for i, f in enumerate(frames)]
        poses = torch.from_numpy(np.stack(centre).astype(np.float32))
        poses, transform = camera_utils.auto_orient_and_center_poses(
            poses, method=self.config.orientation_method, center_method=self.config.center_method
        )
        points = self._seed_points(meta, root, json_path, transform)
        extent = scene_extent(
            poses[:, :3, 3], None if points is None else points["points3D_xyz"],
            reference=self.config.scale_reference, auto_scale=self.config.auto_scale_poses,
            scale_factor=self.config.scale_factor, box_half_size=self.config.scene_scale, where=str(json_path),
        )  # fmt: skip
        scale = extent.scale
        poses[:, :3, 3] *= scale

        def to_dataparser_frame(m: np.ndarray) -> torch.Tensor:
            """A raw camera-to-world → the same orientation/centre/scale as the centre poses."""
            out = transform @ torch.from_numpy(m.astype(np.float32))
            out[:3, 3] *= scale
            return out

        image_filenames: list[Path] = []
        response = fields.rgb_response(meta, json_path)
        # How the scene's RGB files encode light (the model renders linear radiance and encodes for display).
        metadata: dict[str, Any] = {"rgb_response": response}
        camera_meta: dict[str, torch.Tensor] = {}
        if is_train:
            views, starts, ends = [], [], []
            for i in indices:
                frame = frames[i]
                view = self._parse_view(frame, i, meta, root, json_path)
                views.append(view)
                for key, out in (("transform_matrix_start", starts), ("transform_matrix_end", ends)):
                    raw = frame.get(key, frame["transform_matrix"])  # no edge pose: static camera in the window
                    out.append(to_dataparser_frame(_matrix(raw, json_path, f"frames[{i}].{key}"))[:3, :4])
                image_filenames.append(self._train_image(frame, view, i, root, json_path, response))
            metadata["spike_views"] = views
            # Cameras broadcast metadata over their batch dim with one trailing dim: poses go flattened.
            camera_meta = {
                "c2w_start": torch.stack(starts).reshape(len(indices), 12),
                "c2w_end": torch.stack(ends).reshape(len(indices), 12),
                "spike_time": torch.tensor([[v.time] for v in views], dtype=torch.float32),
            }
        else:
            image_filenames = [
                fields.relative_path(frames[i]["gt_path"], root, f"{json_path} frames[{i}]", "gt_path", must_exist=False)
                for i in indices
            ]

        for i, path in zip(indices, image_filenames, strict=True):
            if not path.is_file():
                raise _fail(Path(f"{json_path} frames[{i}]"), f"image {path} does not exist",
                            "Regenerate the scene or fix the path (relative to the scene folder)")  # fmt: skip
            size = _image_size(path)
            if size != (w, h):
                raise _fail(path, f"image is {size[0]}x{size[1]} but transforms.json says w={w} h={h}",
                            "Resize the image or fix `w`/`h`")  # fmt: skip

        idx = torch.tensor(indices, dtype=torch.long)
        distortion = camera_utils.get_distortion_params(
            **{k: float(meta.get(k, 0.0)) for k in ("k1", "k2", "k3", "k4", "p1", "p2")}
        )
        cameras = Cameras(
            camera_to_worlds=poses[idx, :3, :4],
            fx=float(meta["fl_x"]),
            fy=float(meta["fl_y"]),
            cx=float(meta["cx"]),
            cy=float(meta["cy"]),
            width=w,
            height=h,
            distortion_params=distortion,
            camera_type=self._camera_type(meta, json_path),
            metadata=camera_meta,
        )

        if self.config.load_3D_points and points is not None:
            metadata.update({"points3D_xyz": points["points3D_xyz"] * scale, "points3D_rgb": points["points3D_rgb"]})

        return DataparserOutputs(
            image_filenames=image_filenames,
            cameras=cameras,
            scene_box=SceneBox(aabb=extent.aabb),
            dataparser_scale=scale,
            dataparser_transform=transform,
            metadata=metadata,
        )
