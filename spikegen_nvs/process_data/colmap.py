"""Structure-from-motion with pycolmap on the dense frames made by ``spikegen-process-data``.

Feature extraction → sequential (streams) or exhaustive (a handful of photos) matching → incremental
mapping; the largest model is kept and returned as plain numpy (intrinsics, poses, seed points).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from spikegen_core.errors import SpikeGenError

Matcher = Literal["sequential", "exhaustive"]
CameraModelName = Literal["SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV"]

# COLMAP parameter order per camera model, named as nerfstudio's transforms.json fields.
_PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fl_x", "fl_y", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2"),
}


class RegistrationError(SpikeGenError, RuntimeError):
    """COLMAP registered too few views to make a usable scene."""


@dataclass
class SfmResult:
    """What the scene writer needs from a reconstruction, in COLMAP's own conventions."""

    intrinsics: dict[str, float]  # fl_x fl_y cx cy w h (+ k1 k2 p1 p2); from the first registered camera
    cam_from_world: dict[str, np.ndarray]  # image name → 3×4 (OpenCV camera)
    points_xyz: np.ndarray  # N×3
    points_rgb: np.ndarray  # N×3 uint8
    mean_reprojection_error: float
    num_images: int
    per_image_intrinsics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def num_registered(self) -> int:
        return len(self.cam_from_world)


def camera_to_intrinsics(camera) -> dict[str, float]:
    """A ``pycolmap.Camera`` → nerfstudio intrinsics fields (``fl_x fl_y cx cy w h`` and distortion)."""
    name = camera.model.name
    if name not in _PARAM_NAMES:
        raise RegistrationError(f"COLMAP camera model {name} is not supported; use one of {sorted(_PARAM_NAMES)}")
    values = dict(zip(_PARAM_NAMES[name], (float(v) for v in camera.params), strict=True))
    if "f" in values:
        values["fl_x"] = values["fl_y"] = values.pop("f")
    values["w"], values["h"] = int(camera.width), int(camera.height)
    return values


def run_sfm(
    image_dir: Path,
    image_names: Sequence[str],
    work_dir: Path,
    *,
    matcher: Matcher = "sequential",
    camera_model: CameraModelName = "SIMPLE_RADIAL",
    shared_intrinsics: bool = True,
    num_threads: int = -1,
    sequential_overlap: int = 10,
    max_num_features: int = 8192,
    min_registered: int = 3,
    on_stage: Callable[[str, int, int], None] | None = None,
    verbose: bool = False,
) -> SfmResult:
    """Run pycolmap on ``image_names`` inside ``image_dir``; COLMAP files go to ``work_dir``.

    ``on_stage(stage, done, total)`` is called as work progresses (feature extraction per image, mapping
    per registered image) so the caller can draw progress bars. Raises :class:`RegistrationError` when
    fewer than ``min_registered`` views end up in the largest model.
    """
    import pycolmap  # heavy native module: import only when SfM actually runs

    pycolmap.logging.minloglevel = 0 if verbose else 2  # COLMAP logs every step at INFO; keep errors only
    report = on_stage or (lambda stage, done, total: None)
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    database.unlink(missing_ok=True)  # a stale database would mix in images from an earlier run
    names = list(image_names)

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = num_threads
    extraction.sift.max_num_features = max_num_features
    mode = pycolmap.CameraMode.SINGLE if shared_intrinsics else pycolmap.CameraMode.PER_IMAGE
    # One call per image only to drive a real progress bar; the database accumulates them all.
    for i, name in enumerate(names):
        if shared_intrinsics and i > 0:
            reader.existing_camera_id = 1  # SINGLE mode per call would create a camera per call
        pycolmap.extract_features(
            database, image_dir, image_names=[name], camera_mode=mode if i == 0 else pycolmap.CameraMode.AUTO,
            reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
        )
        report("features", i + 1, len(names))

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    report("matching", 0, 1)
    if matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = sequential_overlap
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                  device=pycolmap.Device.cpu)
    else:
        pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
    report("matching", 1, 1)

    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = num_threads
    options.random_seed = 0  # repeatable runs
    options.ba_refine_principal_point = False
    sparse_dir = work_dir / "sparse"
    sparse_dir.mkdir(exist_ok=True)
    registered = [0]

    def next_image() -> None:
        registered[0] += 1
        report("mapping", min(registered[0], len(names)), len(names))

    report("mapping", 0, len(names))
    models = pycolmap.incremental_mapping(database, image_dir, sparse_dir, options=options,
                                          next_image_callback=next_image)
    report("mapping", len(names), len(names))
    recon = max(models.values(), key=lambda r: r.num_reg_images()) if models else None
    result = _to_result(recon, len(names)) if recon is not None else None
    registered_count = result.num_registered if result is not None else 0
    if result is None or registered_count < min_registered:
        other = "sequential with a larger overlap" if matcher == "exhaustive" else "--matcher exhaustive"
        raise RegistrationError(
            f"COLMAP registered only {registered_count} of {len(names)} views in {image_dir} (need at least "
            f"{min_registered}). Try more overlap between views, longer spike windows (--window; less noisy "
            f"dense frames), another matcher ({other}), or more views."
        )
    return result


def _to_result(recon, num_images: int) -> SfmResult:
    poses: dict[str, np.ndarray] = {}
    per_image: dict[str, dict[str, float]] = {}
    for image_id in sorted(recon.reg_image_ids()):
        image = recon.image(image_id)
        poses[image.name] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        per_image[image.name] = camera_to_intrinsics(recon.camera(image.camera_id))
    first = next(iter(per_image.values()))
    points = list(recon.points3D.values())
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    return SfmResult(
        intrinsics=first, cam_from_world=poses, points_xyz=xyz, points_rgb=rgb,
        mean_reprojection_error=float(recon.compute_mean_reprojection_error()),
        num_images=num_images, per_image_intrinsics=per_image,
    )
