"""Analytic ray casting of a small procedural world in torch, vectorised over rays.

The world is a handful of analytic primitives: an inside-out room box (floor, walls, ceiling), oriented
boxes and spheres. Each ray keeps its nearest hit (so nearer objects hide farther ones), which returns
depth, normal, texture coordinates in world units and a material index. Shading is Lambert under one
point light with hard shadows plus ambient light. Cameras follow the nerfstudio/OpenGL convention: the
camera looks down -z, +y is up, +x is right, and poses are camera-to-world 4x4 matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from spikegen_core.data.scene_textures import sample_textures

_EPS = 1e-4
_INF = float("inf")
# Which two local axes give (u, v) texture coordinates on a face whose normal is along axis 0, 1 or 2.
_UV_AXES = torch.tensor([[2, 1], [0, 2], [0, 1]])


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    material: int


@dataclass(frozen=True)
class Box:
    """An oriented box: ``half_size`` along its local axes, turned by ``yaw`` radians about world +y."""

    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    material: int
    yaw: float = 0.0


@dataclass(frozen=True)
class Room:
    """The inside of an axis-aligned box ``[-hx, hx] x [0, height] x [-hz, hz]``, seen from within."""

    half_x: float
    half_z: float
    height: float
    floor_material: int
    wall_material: int
    ceiling_material: int
    wall_materials: tuple[int, int, int, int] | None = None  # one per wall (-x, +x, -z, +z), else wall_material


@dataclass
class World:
    """Everything the ray caster needs: geometry, texture bank, light and ambient level."""

    room: Room
    objects: list[Sphere | Box]
    textures: torch.Tensor  # (M, 3, S, S) texture images in [0, 1]
    tile_size: torch.Tensor  # (M,) world units covered by one texture tile, per material
    light: tuple[float, float, float] = (1.5, 3.0, 1.0)
    ambient: float = 0.35
    extra: dict = field(default_factory=dict)


@dataclass
class Hits:
    """Nearest hit per ray; ``t`` is ``inf`` and ``material`` is -1 where a ray hits nothing."""

    t: torch.Tensor  # (P,)
    normal: torch.Tensor  # (P, 3), unit, facing the side the ray came from
    uv: torch.Tensor  # (P, 2) in world units
    material: torch.Tensor  # (P,) long


def _empty_hits(n: int, device: torch.device) -> Hits:
    return Hits(
        t=torch.full((n,), _INF, device=device),
        normal=torch.zeros(n, 3, device=device),
        uv=torch.zeros(n, 2, device=device),
        material=torch.full((n,), -1, dtype=torch.long, device=device),
    )


def _keep_nearer(best: Hits, idx: torch.Tensor, t, normal, uv, material: int) -> None:
    """Write the hits of rays ``idx`` that are nearer than their current best."""
    nearer = t < best.t[idx]
    rows = idx[nearer]
    best.t[rows] = t[nearer]
    best.normal[rows] = normal[nearer]
    best.uv[rows] = uv[nearer]
    best.material[rows] = material


def _bounding_radius(obj: Sphere | Box) -> float:
    return obj.radius if isinstance(obj, Sphere) else math.sqrt(sum(h * h for h in obj.half_size))


def _bounding_tests(objects: list[Sphere | Box], o: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every ray and object's bounding sphere at once: does the ray pass through it, and from which ``t``.

    Most rays miss most objects, so the exact test then runs only on each object's few candidate rays.
    Expanded dot products turn the per-object work into two small matrix products.
    """
    centres = torch.tensor([obj.center for obj in objects], dtype=o.dtype, device=o.device)  # (M, 3)
    radii = torch.tensor([_bounding_radius(obj) for obj in objects], dtype=o.dtype, device=o.device)
    b = (o * d).sum(-1, keepdim=True) - d @ centres.T  # (P, M): (o - c) . d
    cc = (o * o).sum(-1, keepdim=True) - 2.0 * (o @ centres.T) + (centres * centres).sum(-1)  # |o - c|^2
    disc = b * b - cc + radii * radii
    root = torch.sqrt(disc.clamp_min(0.0))
    return (disc > 0) & (root - b > _EPS), -b - root


def _yaw_matrix(yaw: float, device: torch.device) -> torch.Tensor:
    """Local-to-world rotation about +y."""
    c, s = math.cos(yaw), math.sin(yaw)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], device=device)


def _slabs(o: torch.Tensor, d: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Per-axis entry/exit distances of rays against an axis-aligned box (the classic slab test)."""
    # Replace exact zeros so 1/d is a huge finite number with a sign, never NaN from 0 * inf.
    d = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    inv = 1.0 / d
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    return torch.minimum(t1, t2), torch.maximum(t1, t2)


def _face_uv(local_point: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    idx = _UV_AXES.to(local_point.device)[axis]  # (P, 2)
    return torch.gather(local_point, 1, idx)


def _intersect_sphere(s: Sphere, o: torch.Tensor, d: torch.Tensor):
    c = torch.tensor(s.center, device=o.device)
    oc = o - c
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - s.radius**2)
    root = torch.sqrt(disc.clamp_min(0.0))
    t0, t1 = -b - root, -b + root
    t = torch.where(t0 > _EPS, t0, torch.where(t1 > _EPS, t1, torch.full_like(t0, _INF)))
    t = torch.where(disc >= 0, t, torch.full_like(t, _INF))
    n = (o + d * t.clamp(max=1e6)[:, None] - c) / s.radius
    # Longitude/latitude as arc lengths, so texel density matches the flat surfaces.
    uv = torch.stack([torch.atan2(n[:, 2], n[:, 0]) * s.radius, torch.asin(n[:, 1].clamp(-1, 1)) * s.radius], -1)
    return t, n, uv


def _intersect_box(bx: Box, o: torch.Tensor, d: torch.Tensor):
    rot = _yaw_matrix(bx.yaw, o.device)
    c = torch.tensor(bx.center, device=o.device)
    h = torch.tensor(bx.half_size, device=o.device)
    lo_, do_ = (o - c) @ rot, d @ rot  # world -> local (rot is orthonormal)
    tnear, tfar = _slabs(lo_, do_, -h, h)
    t_in, axis = tnear.max(-1)
    t_out = tfar.min(-1).values
    hit = (t_out >= t_in) & (t_in > _EPS)
    t = torch.where(hit, t_in, torch.full_like(t_in, _INF))
    sign = -torch.sign(torch.gather(do_, 1, axis[:, None]))
    n_local = torch.zeros_like(lo_).scatter_(1, axis[:, None], sign)
    p_local = lo_ + do_ * t.clamp(max=1e6)[:, None]
    return t, n_local @ rot.T, _face_uv(p_local + h, axis)


def _intersect_room(r: Room, o: torch.Tensor, d: torch.Tensor):
    lo = torch.tensor([-r.half_x, 0.0, -r.half_z], device=o.device)
    hi = torch.tensor([r.half_x, r.height, r.half_z], device=o.device)
    _, tfar = _slabs(o, d, lo, hi)
    t, axis = tfar.min(-1)  # from inside, the ray leaves through the nearest exit face
    t = torch.where(t > _EPS, t, torch.full_like(t, _INF))
    sign = -torch.sign(torch.gather(d, 1, axis[:, None]))  # inward-facing normal
    n = torch.zeros_like(o).scatter_(1, axis[:, None], sign)
    p = o + d * t.clamp(max=1e6)[:, None]
    material = torch.full_like(axis, r.wall_material)
    if r.wall_materials is not None:
        for ax, (neg, pos) in ((0, r.wall_materials[:2]), (2, r.wall_materials[2:])):
            for m, going in ((neg, d[:, ax] < 0), (pos, d[:, ax] > 0)):
                material = torch.where((axis == ax) & going, torch.full_like(axis, m), material)
    material = torch.where((axis == 1) & (d[:, 1] < 0), torch.full_like(axis, r.floor_material), material)
    material = torch.where((axis == 1) & (d[:, 1] > 0), torch.full_like(axis, r.ceiling_material), material)
    return t, n, _face_uv(p - lo, axis), material


def intersect(world: World, origins: torch.Tensor, dirs: torch.Tensor, *, with_room: bool = True) -> Hits:
    """Nearest hit of each ray ``origins + t * dirs`` (``dirs`` unit length) among the world's primitives."""
    if with_room:
        best = Hits(*_intersect_room(world.room, origins, dirs))
    else:
        best = _empty_hits(origins.shape[0], origins.device)
    if not world.objects:
        return best
    passes, t_enter = _bounding_tests(world.objects, origins, dirs)
    for j, obj in enumerate(world.objects):
        idx = passes[:, j].nonzero().squeeze(1)
        idx = idx[t_enter[idx, j] < best.t[idx]]  # skip rays already stopped before the bounding sphere
        if idx.numel() == 0:
            continue
        o, d = origins[idx], dirs[idx]
        t, n, uv = _intersect_sphere(obj, o, d) if isinstance(obj, Sphere) else _intersect_box(obj, o, d)
        _keep_nearer(best, idx, t, n, uv, obj.material)
    return best


def shade(world: World, origins: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, Hits]:
    """Colour (P, 3) in [0, 1] and hits of each ray: texture albedo x (ambient + lit Lambert term)."""
    hits = intersect(world, origins, dirs)
    albedo = sample_textures(world.textures, world.tile_size, hits.material, hits.uv)
    points = origins + dirs * hits.t.clamp(max=1e6)[:, None]
    to_light = torch.tensor(world.light, device=origins.device) - points
    dist = to_light.norm(dim=-1).clamp_min(1e-6)
    to_light = to_light / dist[:, None]
    lambert = (hits.normal * to_light).sum(-1).clamp_min(0.0)
    # Hard shadows: anything between the surface and the light (the room cannot be, the light is inside).
    # Only surfaces facing the light need the shadow ray.
    facing = (lambert > 0).nonzero().squeeze(1)
    shadow = intersect(world, points[facing] + hits.normal[facing] * 1e-3, to_light[facing], with_room=False)
    lambert[facing] = lambert[facing] * (shadow.t >= dist[facing]).float()
    light = world.ambient + (1.0 - world.ambient) * lambert
    colour = (albedo * light[:, None]).clamp(0.0, 1.0)
    return torch.where(hits.material[:, None] >= 0, colour, torch.zeros_like(colour)), hits


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, fov_x_deg: float) -> Intrinsics:
        f = width / (2.0 * math.tan(math.radians(fov_x_deg) / 2.0))
        return cls(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0, width=width, height=height)


def camera_rays(c2w: torch.Tensor, k: Intrinsics, supersample: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space rays through each pixel (``supersample``² jittered-grid samples per pixel).

    Returns ``origins, dirs`` of shape ``(H * W * s * s, 3)``, ordered pixel-major (row, column, sample).
    """
    s = supersample
    offs = (torch.arange(s, dtype=torch.float32) + 0.5) / s  # sample centres inside the pixel
    v = torch.arange(k.height, dtype=torch.float32)[:, None, None, None] + offs[None, None, :, None]
    u = torch.arange(k.width, dtype=torch.float32)[None, :, None, None] + offs[None, None, None, :]
    v, u = torch.broadcast_tensors(v, u)
    x = (u - k.cx) / k.fx
    y = -(v - k.cy) / k.fy  # image rows grow downwards, camera +y is up
    d_cam = torch.stack([x, y, -torch.ones_like(x)], -1).reshape(-1, 3)
    c2w = c2w.to(torch.float32)
    dirs = d_cam @ c2w[:3, :3].T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(dirs), dirs


def render(world: World, c2w: torch.Tensor, k: Intrinsics, supersample: int = 2) -> torch.Tensor:
    """Anti-aliased RGB image ``(3, H, W)`` in [0, 1] seen from camera-to-world pose ``c2w``."""
    return render_many(world, [c2w], k, supersample)[0]


def render_many(
    world: World, poses: list[torch.Tensor], k: Intrinsics, supersample: int = 2, max_rays: int = 1 << 19
) -> torch.Tensor:
    """Images ``(N, 3, H, W)`` for several poses, cast together in batches of up to ``max_rays`` rays
    (one big batch costs far less Python overhead per ray than one call per frame)."""
    per_frame = k.height * k.width * supersample * supersample
    group = max(1, max_rays // per_frame)
    out = []
    for a in range(0, len(poses), group):
        rays = [camera_rays(p, k, supersample) for p in poses[a : a + group]]
        o = torch.cat([r[0] for r in rays])
        d = torch.cat([r[1] for r in rays])
        rgb, _ = shade(world, o, d)
        rgb = rgb.reshape(-1, k.height, k.width, supersample * supersample, 3).mean(3)
        out.append(rgb.permute(0, 3, 1, 2))
    return torch.cat(out).contiguous()


def render_points(world: World, c2w: torch.Tensor, k: Intrinsics) -> tuple[torch.Tensor, torch.Tensor]:
    """World hit point ``(H, W, 3)`` and colour ``(H, W, 3)`` of each pixel-centre ray."""
    o, d = camera_rays(c2w, k, 1)
    rgb, hits = shade(world, o, d)
    pts = o + d * hits.t.clamp(max=1e6)[:, None]
    return pts.reshape(k.height, k.width, 3), rgb.reshape(k.height, k.width, 3)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """Camera-to-world 4x4 (OpenGL convention: -z looks from ``eye`` towards ``target``)."""
    eye, target = eye.to(torch.float64), target.to(torch.float64)
    f = target - eye
    f = f / f.norm()
    right = torch.linalg.cross(f, torch.tensor(up, dtype=torch.float64))
    right = right / right.norm()
    true_up = torch.linalg.cross(right, f)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -f, eye
    return c2w


def project(points: torch.Tensor, c2w: torch.Tensor, k: Intrinsics) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(..., 2)`` (column, row) and camera depth of world points in camera ``c2w``."""
    c2w = c2w.to(points.dtype)
    p_cam = (points - c2w[:3, 3]) @ c2w[:3, :3]  # world -> camera: R^T (p - t)
    z = -p_cam[..., 2]
    u = k.fx * p_cam[..., 0] / z + k.cx
    v = -k.fy * p_cam[..., 1] / z + k.cy
    return torch.stack([u, v], -1), z
