"""Scene kinds (orbit, inside-out room, forward-facing hand-held) and scenes whose cameras stand inside them:
the dataparser's scale and scene box, and the random init that fills it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spikegen_core.data.scene import KINDS, make_scene, make_scene_command, resolve_config
from spikegen_core.data.scene_textures import PHOTOS, load_photos, photo_texture_bank
from spikegen_core.errors import SceneFormatError

TINY = dict(
    width=32, height=24, num_train=6, num_test=1, window=8, subframes=2, supersample=1, texture_size=32,
    num_objects=3, seed_points=300, tfp_window=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kinds")
    return {kind: make_scene(root / kind, kind=kind, seed=1, **TINY) for kind in KINDS}


def _meta(scene: Path) -> dict:
    return json.loads((scene / "transforms.json").read_text())


def _origins_and_axes(meta: dict) -> tuple[torch.Tensor, torch.Tensor]:
    poses = torch.tensor(
        [f["transform_matrix"] for f in meta["frames"] if "gt_path" not in f], dtype=torch.float64
    )
    return poses[:, :3, 3], -poses[:, :3, 2]  # camera centres and viewing directions (OpenGL: -z)


def _ply_xyz(scene: Path) -> torch.Tensor:
    from plyfile import PlyData

    v = PlyData.read(str(scene / "sparse_pc.ply"))["vertex"]
    return torch.tensor([list(p) for p in zip(v["x"], v["y"], v["z"], strict=True)], dtype=torch.float64)


def test_every_kind_generates_a_scene_with_its_own_camera_geometry(scenes: dict[str, Path]) -> None:
    for kind, scene in scenes.items():
        meta = _meta(scene)
        assert meta["generator"]["config"]["kind"] == kind and meta["generator"]["mean_blur_px"] > 0.05
        assert len(meta["frames"]) == 7 and (scene / "sparse_pc.ply").is_file()
    # orbit: every camera looks towards the middle; room: cameras near the middle look outwards all around;
    # forward: all cameras look the same way, within a hand's shake.
    origins, axes = _origins_and_axes(_meta(scenes["orbit"]))
    assert ((axes * -origins).sum(-1) > 0).all()
    origins, axes = _origins_and_axes(_meta(scenes["room"]))
    assert origins[:, [0, 2]].norm(dim=-1).max() < 0.6  # within 0.6 m of the middle of an 8 x 7 m room
    assert axes[:, [0, 2]].sum(0).norm() < 0.5 * len(axes)  # headings spread around the circle
    pts = _ply_xyz(scenes["room"])
    assert (
        (pts - origins.mean(0)).norm(dim=-1) > 1.0
    ).float().mean() > 0.95  # seen surfaces are walls, not near
    _, axes = _origins_and_axes(_meta(scenes["forward"]))
    assert (axes @ axes.mean(0) / axes.mean(0).norm()).min() > 0.9  # all within ~25 degrees of the mean axis


def test_presets_combine_with_kinds_and_bad_kinds_are_refused(tmp_path: Path) -> None:
    cfg = resolve_config("native", kind="room")
    assert (cfg.width, cfg.height, cfg.kind) == (400, 250, "room")
    assert resolve_config().kind == "orbit" and resolve_config().textures == "auto"
    with pytest.raises(SceneFormatError, match="kind 'cave'"):
        resolve_config(kind="cave")
    out = make_scene_command(out=tmp_path / "fwd", kind="forward", width=24, height=16, num_train=2, num_test=1,
                             window=8, subframes=2, seed_points=0, supersample=1)  # fmt: skip
    assert _meta(out)["generator"]["config"]["kind"] == "forward"


def test_photo_textures_come_from_the_bundled_photographs() -> None:
    pytest.importorskip("skimage")
    photos = load_photos()
    assert len(photos) == len(PHOTOS) and all(p.shape[0] == 3 for p in photos)
    a = photo_texture_bank(4, 32, torch.Generator().manual_seed(0))
    b = photo_texture_bank(4, 32, torch.Generator().manual_seed(0))
    c = photo_texture_bank(4, 32, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (4, 3, 32, 32)
    assert 0.0199 <= float(a.min()) and float(a.max()) <= 0.9701
    # Linear light: the photographs are sRGB-decoded, so their mean sits well below the encoded file's.
    import skimage.data

    encoded = torch.from_numpy(skimage.data.chelsea()).float().mean() / 255.0
    assert PHOTOS[1] == "chelsea" and float(photos[1].mean()) < 0.8 * float(encoded)


@pytest.mark.slow  # imports nerfstudio
def test_dataparser_scales_by_the_content_when_the_cameras_stand_inside(scenes: dict[str, Path]) -> None:
    from spikegen_nvs.dataparser import SpikeDataParserConfig

    orbit = SpikeDataParserConfig(data=scenes["orbit"]).setup().get_dataparser_outputs("train")
    assert torch.equal(
        orbit.scene_box.aabb, torch.tensor([[-1.0] * 3, [1.0] * 3])
    )  # unchanged: cameras outside
    assert orbit.cameras.camera_to_worlds[:, :3, 3].norm(dim=-1).max() == pytest.approx(1.0, abs=1e-4)
    for kind in ("room", "forward"):
        out = SpikeDataParserConfig(data=scenes[kind]).setup().get_dataparser_outputs("train")
        xyz, cams = out.metadata["points3D_xyz"], out.cameras.camera_to_worlds[:, :3, 3]
        assert float(torch.quantile(xyz.norm(dim=-1), 0.9)) == pytest.approx(1.0, abs=1e-3)
        assert cams.norm(dim=-1).max() < 0.5  # the cameras are small against the content
        lo, hi = out.scene_box.aabb
        assert ((xyz >= lo) & (xyz <= hi)).all(-1).float().mean() > 0.97 and (
            (cams >= lo) & (cams <= hi)
        ).all()
        poses = (
            SpikeDataParserConfig(data=scenes[kind], scale_reference="poses").setup().get_dataparser_outputs()
        )
        assert (
            poses.dataparser_scale > 3 * out.dataparser_scale
        )  # what scaling by the cameras would have done


def _visible_fraction(means: torch.Tensor, cameras) -> float:
    """Fraction of points in front of at least one training camera and inside its image."""
    c2w = cameras.camera_to_worlds.double()
    rel = means.double()[None] - c2w[:, None, :3, 3]
    cam = torch.einsum("cij,cni->cnj", c2w[:, :3, :3], rel)  # world -> camera axes (OpenGL: -z forward)
    z = -cam[..., 2]
    u = cameras.fx.double() * cam[..., 0] / z + cameras.cx.double()
    v = -cameras.fy.double() * cam[..., 1] / z + cameras.cy.double()
    w, h = cameras.width.double(), cameras.height.double()
    inside = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    return float(inside.any(0).float().mean())


@pytest.mark.slow  # a few CPU training steps
def test_random_init_fills_the_room_the_cameras_look_at(scenes: dict[str, Path], tmp_path: Path) -> None:
    from test_nvs_train import _run, _trainer

    _, trainer = _trainer(scenes["room"], tmp_path, 3, random_init=True)
    model = trainer.pipeline.model
    cameras = trainer.pipeline.datamanager.train_dataset.cameras
    init = model.means.detach().clone()
    lo, hi = model.scene_box.aabb
    assert ((init >= lo) & (init <= hi)).all()
    # Spread over the room (its walls ~1 away after scaling), not bunched around the cameras (within ~0.1).
    assert float(init.norm(dim=-1).median()) > 0.4
    # splatfacto's own random init (a cube of side random_scale about the origin) for comparison.
    cube = (
        torch.rand(init.shape, generator=torch.Generator().manual_seed(0)) - 0.5
    ) * model.config.random_scale
    print(
        f"visible from a training view: scene box {_visible_fraction(init, cameras):.2f}, "
        f"splatfacto's cube {_visible_fraction(cube, cameras):.2f}"
    )
    assert _visible_fraction(init, cameras) > max(0.7, 2 * _visible_fraction(cube, cameras))
    history = _run(trainer, 3)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert _visible_fraction(model.means.detach(), cameras) > 0.7


def test_scene_extent_picks_the_reference_by_where_the_cameras_stand() -> None:
    from spikegen_nvs.scene_extent import random_means_in_box, scene_extent

    g = torch.Generator().manual_seed(0)
    ring = torch.nn.functional.normalize(torch.randn(16, 3, generator=g), dim=-1)
    shell = 5.0 * torch.nn.functional.normalize(torch.randn(500, 3, generator=g), dim=-1)
    inside = scene_extent(0.5 * ring, shell)  # cameras well inside the points: a room seen from its middle
    assert inside.reference == "points" and inside.scale == pytest.approx(1 / 5.0, rel=1e-3)
    assert (inside.aabb[0] < -0.9).all() and (inside.aabb[1] > 0.9).all()
    around = scene_extent(4.0 * ring, shell)  # cameras around the content (5 < 2 x 4): nerfstudio's rule
    assert around.reference == "poses" and around.scale == pytest.approx(1 / 4.0, rel=1e-3)
    assert torch.equal(around.aabb, torch.tensor([[-1.0] * 3, [1.0] * 3]))
    assert scene_extent(0.5 * ring, None).reference == "poses"
    with pytest.raises(SceneFormatError, match="needs seed points"):
        scene_extent(0.5 * ring, None, reference="points")
    cube = (torch.rand(100, 3, generator=g) - 0.5) * 2.0
    assert torch.allclose(random_means_in_box(cube, 2.0, around.aabb), cube, atol=1e-6)
    moved = random_means_in_box(cube, 2.0, inside.aabb)
    assert ((moved >= inside.aabb[0]) & (moved <= inside.aabb[1])).all()
