"""Scene kinds beyond the object-centric orbit: worlds and camera paths of the generator (spikegen_core/data/scene.py).

- ``room``: inside-out. The camera stands near the middle of a photo-papered room and pans around, looking at the
  walls and at the furniture standing in front of them (parallax between the two); its position wanders a little.
- ``forward``: forward-facing hand-held (LLFF-like). The camera is held in front of a layered scene (photo cards
  and balls at several depths, a photo on the back wall) and sweeps a small figure-of-eight while it shakes.

Both follow :class:`spikegen_core.data.scene.Trajectory`'s interface: ``omega`` (rad/s of the path's phase, from
the config's ``orbit_deg_per_s``) and ``pose(t, radial_offset=, height_offset=)`` (camera-to-world at ``t`` s;
the offsets step off the path for the off-trajectory test views). The orbit lives in scene.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spikegen_core.data.raycast import Box, Room, Sphere, World, look_at

__all__ = ["ForwardTrajectory", "RoomTrajectory", "build_forward_world", "build_room_world"]


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


# ------------------------------------------------------------------------------------------------ room
ROOM_HALF_X, ROOM_HALF_Z, ROOM_HEIGHT = 4.0, 3.5, 3.0


def build_room_world(num_objects: int, textures: torch.Tensor, g: torch.Generator) -> World:
    """A room (a different texture on each wall) with ``num_objects`` boxes and balls standing in front of the
    walls, well away from the middle where the camera stands. ``textures``: ``(6 + num_objects, 3, S, S)``."""
    tile = torch.empty(textures.shape[0])
    tile[:6] = torch.tensor([3.0, 3.0, 3.5, 3.5, 3.5, 3.5])  # floor, ceiling, four walls: a photo per ~3.5 m
    objects: list[Sphere | Box] = []
    placed: list[tuple[float, float, float]] = []
    for i in range(num_objects):
        is_box = i % 2 == 0
        for _ in range(200):  # rejection sampling: footprints inside the room, not overlapping, >= 1.8 m out
            if is_box:
                hx, hy, hz = _uniform(g, 0.2, 0.5), _uniform(g, 0.3, 0.9), _uniform(g, 0.2, 0.5)
                foot = math.hypot(hx, hz)
            else:
                r = _uniform(g, 0.2, 0.45)
                foot = r
            x = _uniform(g, -ROOM_HALF_X + foot + 0.1, ROOM_HALF_X - foot - 0.1)
            z = _uniform(g, -ROOM_HALF_Z + foot + 0.1, ROOM_HALF_Z - foot - 0.1)
            if math.hypot(x, z) > 1.8 + foot and all(
                math.hypot(x - px, z - pz) > foot + pr + 0.15 for px, pz, pr in placed
            ):
                break
        placed.append((x, z, foot))
        material = 6 + i
        tile[material] = _uniform(g, 0.8, 1.2)
        if is_box:
            objects.append(
                Box(center=(x, hy, z), half_size=(hx, hy, hz), material=material, yaw=_uniform(g, 0, math.pi))
            )
        else:
            lift = _uniform(g, 0.0, 0.8) if i % 4 == 1 else 0.0
            objects.append(Sphere(center=(x, r + lift, z), radius=r, material=material))
    room = Room(half_x=ROOM_HALF_X, half_z=ROOM_HALF_Z, height=ROOM_HEIGHT, floor_material=0, wall_material=2,
                ceiling_material=1, wall_materials=(2, 3, 4, 5))  # fmt: skip
    return World(room=room, objects=objects, textures=textures, tile_size=tile, light=(0.4, 2.7, -0.3))


@dataclass(frozen=True)
class RoomTrajectory:
    """Pan around from near the room's middle: the heading turns at ``omega``, the eye wanders within ~0.5 m."""

    omega: float
    height: float = 1.5
    phase0: float = 0.3

    def angle(self, t: float) -> float:
        return self.phase0 + self.omega * t

    def pose(self, t: float, *, radial_offset: float = 0.0, height_offset: float = 0.0) -> torch.Tensor:
        a = self.angle(t)
        wander = 0.3 + 0.12 * math.sin(2 * a)
        heading = torch.tensor([math.cos(a), 0.0, math.sin(a)])
        eye = torch.tensor([wander * math.cos(1.7 * a + 1.0), self.height + 0.12 * math.sin(3 * a) + height_offset,
                            wander * math.sin(1.7 * a + 1.0)]) + radial_offset * heading  # fmt: skip
        # The gaze bobs and sways faster than the pan, so blur runs in several directions.
        look = heading * 3.0 + torch.tensor(
            [0.3 * math.sin(5 * a), -0.25 + 0.3 * math.sin(7 * a), 0.3 * math.cos(5 * a)]
        )
        return look_at(eye, eye + look)


# ------------------------------------------------------------------------------------------------ forward
FORWARD_HALF_X, FORWARD_HALF_Z, FORWARD_HEIGHT = 3.0, 4.0, 3.0
FORWARD_EYE = (0.0, 1.3, 2.8)


def build_forward_world(num_objects: int, textures: torch.Tensor, g: torch.Generator) -> World:
    """Layers in front of a hand-held camera: ``num_objects`` photo cards (thin boxes turned roughly towards the
    camera) and balls at depths of 1.5-5.5 m, inside the view cone, a photo on the back wall.
    ``textures``: ``(3 + num_objects, 3, S, S)`` (floor, walls, ceiling, then one per object)."""
    tile = torch.empty(textures.shape[0])
    tile[:3] = torch.tensor([3.0, 2 * FORWARD_HALF_X, 3.0])  # one photo across the back wall
    objects: list[Sphere | Box] = []
    ex, ey, ez = FORWARD_EYE
    for i in range(num_objects):
        depth = 1.5 + 4.0 * (i + _uniform(g, 0.0, 1.0)) / max(num_objects, 1)  # spread over the depth range
        z = ez - depth
        spread = 0.45 * depth  # stay inside a ~50 degree cone around the view axis
        x = ex + _uniform(g, -spread, spread)
        material = 3 + i
        if i % 3 == 2:
            r = _uniform(g, 0.2, 0.4)
            y = max(r, ey + _uniform(g, -0.3, 0.3) * depth)
            objects.append(Sphere(center=(x, y, z), radius=r, material=material))
            tile[material] = _uniform(g, 0.8, 1.2)
        else:
            hx, hy = _uniform(g, 0.3, 0.8), _uniform(g, 0.25, 0.6)
            y = max(hy, ey + _uniform(g, -0.25, 0.25) * depth)
            objects.append(
                Box(center=(x, y, z), half_size=(hx, hy, 0.03), material=material, yaw=_uniform(g, -0.4, 0.4))
            )
            tile[material] = 2 * hx  # one photo crop per card face
    room = Room(half_x=FORWARD_HALF_X, half_z=FORWARD_HALF_Z, height=FORWARD_HEIGHT, floor_material=0,
                wall_material=1, ceiling_material=2)  # fmt: skip
    return World(room=room, objects=objects, textures=textures, tile_size=tile, light=(0.8, 2.8, 1.5))


def _rotation(yaw: float, pitch: float, roll: float) -> torch.Tensor:
    """Camera-local rotation: yaw about +y, then pitch about +x, then roll about +z (float64 3x3)."""
    cy, sy, cp, sp, cr, sr = (
        math.cos(yaw),
        math.sin(yaw),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(roll),
        math.sin(roll),
    )
    ry = torch.tensor([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]], dtype=torch.float64)
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]], dtype=torch.float64)
    rz = torch.tensor([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return ry @ rx @ rz


@dataclass(frozen=True)
class ForwardTrajectory:
    """A hand-held sweep: a figure-of-eight of ~0.9 x 0.5 m in front of the scene, plus a fast shake of a few
    degrees (several incommensurate frequencies, as a hand's tremor has)."""

    omega: float
    phase0: float = 0.3

    def angle(self, t: float) -> float:
        return self.phase0 + self.omega * t

    def pose(self, t: float, *, radial_offset: float = 0.0, height_offset: float = 0.0) -> torch.Tensor:
        a = self.angle(t)
        ex, ey, ez = FORWARD_EYE
        eye = torch.tensor([ex + 0.45 * math.sin(a), ey + 0.25 * math.sin(2 * a + 0.7) + height_offset,
                            ez + 0.15 * math.sin(3 * a + 1.0) - radial_offset])  # fmt: skip
        c2w = look_at(eye, torch.tensor([0.0, 1.1, ez - 6.0]))
        shake = _rotation(
            0.07 * math.sin(7 * a + 0.3) + 0.04 * math.sin(13 * a),
            0.05 * math.sin(11 * a + 1.1) + 0.03 * math.sin(17 * a),
            0.04 * math.sin(5 * a),
        )
        c2w[:3, :3] = c2w[:3, :3] @ shake
        return c2w
