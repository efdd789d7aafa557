"""Pose maths for ``spikegen-process-data``: COLMAP → nerfstudio convention, window-edge interpolation,
and similarity alignment (Umeyama) for judging recovered poses against a reference.

Pure numpy/scipy so it stays cheap to import and easy to test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikegen_core.geometry import interpolate_pose

__all__ = ["colmap_to_nerfstudio", "interpolate_pose", "points_to_nerfstudio", "pose_errors", "umeyama"]

# World change nerfstudio's ``colmap_to_json`` applies (swap y/z, flip the new z) so that COLMAP's
# "down is +y" world ends up roughly z-up; we apply the same one so scenes look alike in the viewer.
APPLIED_TRANSFORM = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0]])


def colmap_to_nerfstudio(cam_from_world: np.ndarray) -> np.ndarray:
    """COLMAP ``cam_from_world`` (3×4, OpenCV camera) → nerfstudio camera-to-world (4×4, OpenGL camera)."""
    w2c = np.eye(4)
    w2c[:3, :4] = np.asarray(cam_from_world, dtype=np.float64)[:3, :4]
    c2w = np.linalg.inv(w2c)
    c2w[0:3, 1:3] *= -1  # OpenCV (x right, y down, z forward) → OpenGL (y up, z backward)
    world = np.eye(4)
    world[:3] = APPLIED_TRANSFORM
    return world @ c2w


def points_to_nerfstudio(xyz: np.ndarray) -> np.ndarray:
    """COLMAP world points (N×3) → the world of :func:`colmap_to_nerfstudio`."""
    return np.asarray(xyz, dtype=np.float64) @ APPLIED_TRANSFORM[:, :3].T


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``(s, R, t)`` minimising ``Σ‖dst − (s·R·src + t)‖²`` (Umeyama 1991); src/dst are N×3."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[0] < 3:
        raise ValueError(f"umeyama needs two N×3 point sets with N ≥ 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # keep a proper rotation, not a reflection
        sign[2, 2] = -1
    rot = u @ sign @ vt
    var_s = (xs**2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var_s)
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def pose_errors(estimated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict[str, float]:
    """Compare camera-to-world poses (same camera convention) up to a similarity found on camera centres.

    Returns the median/max rotation error in degrees and the median translation error divided by the
    scene size (twice the largest distance of a reference camera centre from their centroid).
    """
    est = np.stack([np.asarray(p, dtype=np.float64) for p in estimated])
    ref = np.stack([np.asarray(p, dtype=np.float64) for p in reference])
    scale, rot, trans = umeyama(est[:, :3, 3], ref[:, :3, 3])
    centres = scale * est[:, :3, 3] @ rot.T + trans
    trans_err = np.linalg.norm(centres - ref[:, :3, 3], axis=1)
    size = 2.0 * float(np.linalg.norm(ref[:, :3, 3] - ref[:, :3, 3].mean(0), axis=1).max())
    rot_est = np.einsum("ij,njk->nik", rot, est[:, :3, :3])
    rel = np.einsum("nji,njk->nik", ref[:, :3, :3], rot_est)  # R_ref^T · R_aligned
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    rot_err = np.degrees(np.arccos(cos))
    # Alignment-free check: rotation between every pair of views, estimated vs reference.
    rel_est = np.einsum("nji,mjk->nmik", est[:, :3, :3], est[:, :3, :3])
    rel_ref = np.einsum("nji,mjk->nmik", ref[:, :3, :3], ref[:, :3, :3])
    diff = np.einsum("nmji,nmjk->nmik", rel_ref, rel_est)
    pair_err = np.degrees(np.arccos(np.clip((np.trace(diff, axis1=2, axis2=3) - 1.0) / 2.0, -1.0, 1.0)))
    pairs = pair_err[np.triu_indices(len(est), k=1)]
    return {
        "median_relative_rotation_error_deg": float(np.median(pairs)) if len(pairs) else 0.0,
        "median_rotation_error_deg": float(np.median(rot_err)),
        "max_rotation_error_deg": float(rot_err.max()),
        "median_translation_error_rel": float(np.median(trans_err) / max(size, 1e-12)),
        "max_translation_error_rel": float(trans_err.max() / max(size, 1e-12)),
        "scene_size": size,
        "scale": scale,
    }
