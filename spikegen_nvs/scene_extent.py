"""Where a scene's content lies relative to its cameras: the dataparser's scale and scene box, and the random
initialisation of the Gaussians inside that box.

nerfstudio's convention, and splatfacto's sizes in world units (``densify_size_thresh`` 0.01, ``cull_scale_thresh``
0.5, our ``random_scale`` 2), fit an object-centric capture scaled so that the camera origins fill [-1, 1]: the
content then lies inside that cube too. When the cameras stand inside the content (a room seen from its middle, a
forward-facing hand-held capture) that scale blows the content up by its distance over the cameras' spread (a
camera that only turns would scale it without bound), and a random init in [-1, 1] lands among the cameras instead
of on the walls. There the seed points decide: their radius becomes 1 and the scene box is their box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from spikegen_core.errors import SceneFormatError

__all__ = ["CAMERAS_INSIDE_RATIO", "SceneExtent", "random_means_in_box", "scene_extent"]

CAMERAS_INSIDE_RATIO = 2.0
"""``auto`` scales by the seed points once their radius (90th percentile, about the cameras' centre) exceeds this
many times the cameras' radius: the cameras then stand inside the content rather than around it."""

ScaleReference = Literal["auto", "poses", "points"]


@dataclass(frozen=True)
class SceneExtent:
    """``scale``: multiply centred, oriented positions by it; ``aabb``: ``(2, 3)`` scene box after scaling."""

    scale: float
    aabb: torch.Tensor
    reference: Literal["poses", "points"]


def scene_extent(
    origins: torch.Tensor,
    points: torch.Tensor | None,
    *,
    reference: ScaleReference = "auto",
    auto_scale: bool = True,
    scale_factor: float = 1.0,
    box_half_size: float = 1.0,
    where: str = "transforms.json",
) -> SceneExtent:
    """Scale and scene box of a scene from its camera origins ``(N, 3)`` and seed points ``(M, 3)`` (both already
    oriented and centred; ``points`` None when the scene has none).

    ``poses``: cameras fill [-1, 1] (nerfstudio's rule), box = the cube of half-size ``box_half_size``;
    ``points``: the points' 90th-percentile radius becomes 1, box = the points' 1-99 % box with the cameras, 5 %
    margin; ``auto``: ``points`` when the scene has seed points and the cameras stand inside them
    (:data:`CAMERAS_INSIDE_RATIO`), else ``poses``. ``auto_scale=False`` keeps the scene's units.
    """
    cam_radius = max(float(origins.norm(dim=-1).max()), 1e-8)
    has_points = points is not None and points.shape[0] >= 8
    if reference == "points" and not has_points:
        raise SceneFormatError(
            f"{where}: scale_reference 'points' needs seed points (ply_file_path with at least 8 points); "
            "add them or use --scale-reference poses"
        )
    pts_radius = float(torch.quantile(points.norm(dim=-1).float(), 0.9)) if has_points else 0.0
    use_points = reference == "points" or (
        reference == "auto" and has_points and pts_radius > CAMERAS_INSIDE_RATIO * cam_radius
    )
    if use_points:
        scale = (1.0 / max(pts_radius, 1e-8) if auto_scale else 1.0) * scale_factor
        q = torch.tensor([0.01, 0.99])
        lo = torch.minimum(torch.quantile(points.float(), q[0], dim=0), origins.min(0).values)
        hi = torch.maximum(torch.quantile(points.float(), q[1], dim=0), origins.max(0).values)
        pad = 0.05 * (hi - lo)
        return SceneExtent(scale, torch.stack([lo - pad, hi + pad]).float() * scale, "points")
    scale = (1.0 / cam_radius if auto_scale else 1.0) * scale_factor
    a = box_half_size
    return SceneExtent(scale, torch.tensor([[-a, -a, -a], [a, a, a]], dtype=torch.float32), "poses")


def random_means_in_box(means: torch.Tensor, random_scale: float, aabb: torch.Tensor) -> torch.Tensor:
    """splatfacto's random init draws ``(rand - 0.5) * random_scale`` (a cube about the origin); map those same
    draws into the scene box ``aabb`` ``(2, 3)``. Identity when the box is that cube."""
    unit = means / random_scale + 0.5  # back to the uniform [0, 1) draws
    lo, hi = aabb[0].to(means), aabb[1].to(means)
    return lo + unit * (hi - lo)
