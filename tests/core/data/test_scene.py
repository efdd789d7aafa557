"""The procedural 3-D scene generator: folder contract, real blur, real occlusion, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spikegen_core.data.raycast import (
    Box,
    Intrinsics,
    Room,
    Sphere,
    World,
    intersect,
    look_at,
    project,
    render,
)
from spikegen_core.data.scene import exposure_weights, make_scene, make_scene_command, resolve_config
from spikegen_core.errors import SceneFormatError
from spikegen_core.spikes.camera import simulate
from spikegen_core.spikes.io import read_dat
from spikegen_core.utils import file_digest

# Tiny but with the sample's geometry: 3 training windows, one on-track and one off-track test view.
TINY = dict(
    width=40, height=30, num_train=3, num_test=2, num_off_track=1, window=32, subframes=5,
    texture_size=64, seed_points=300, tfp_window=16, orbit_deg_per_s=3600.0,
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("scene") / "tiny", seed=3, **TINY)


def _meta(scene: Path) -> dict:
    return json.loads((scene / "transforms.json").read_text())


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float64) / 255.0


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def test_folder_follows_the_contract(scene: Path) -> None:
    meta = _meta(scene)
    h, w = TINY["height"], TINY["width"]
    assert meta["spikegen_format"] == 1 and (meta["w"], meta["h"]) == (w, h)
    assert meta["spike"] == {"clock_hz": 20000.0, "threshold": 2.0, "gain": 1.0, "height": h, "width": w}
    train = [f for f in meta["frames"] if "gt_path" not in f]
    test = [f for f in meta["frames"] if "gt_path" in f]
    assert (len(train), len(test)) == (3, 2)
    views = meta["generator"]["views"]
    assert [v["file_path"] for v in views] == [f["file_path"] for f in meta["frames"]]
    for f in meta["frames"] + views:
        for key in ("file_path", "spike_path", "blur_path", "sharp_path", "tfp_path", "gt_path"):
            if key in f:
                assert (scene / f[key]).is_file(), f"{key} -> {f[key]} missing"
        img = _png(scene / f["file_path"])
        assert img.shape == (h, w, 3)
    for f in train:
        stream = read_dat(scene / f["spike_path"])  # size from the sidecar
        assert stream.spikes.shape == (TINY["window"], *f["spike_hw"]) == (TINY["window"], h, w)
        rate = stream.spikes.float().mean().item()
        assert 0.05 < rate < 0.5  # mean intensity / θ: textured, neither dark nor saturated
    for f in test:
        assert f["file_path"] == f["gt_path"] and "spike_path" not in f
    assert [v["off_trajectory"] for v in views[3:]] == [False, True]
    times = [f["time"] for f in train]
    assert times == sorted(times) and times[0] > 0


def test_poses_are_rigid_and_the_centre_lies_between_the_window_ends(scene: Path) -> None:
    for f in _meta(scene)["frames"]:
        keys = [k for k in ("transform_matrix", "transform_matrix_start", "transform_matrix_end") if k in f]
        for key in keys:
            m = np.array(f[key])
            r = m[:3, :3]
            assert m.shape == (4, 4) and np.allclose(m[3], [0, 0, 0, 1])
            assert np.allclose(r.T @ r, np.eye(3), atol=1e-5) and abs(np.linalg.det(r) - 1) < 1e-5
        if "transform_matrix_start" in f:
            s, c, e = (np.array(f[k])[:3, 3] for k in ("transform_matrix_start", "transform_matrix",
                                                       "transform_matrix_end"))
            span = np.linalg.norm(e - s)
            assert span > 0.05  # the camera really moves within the window
            assert np.linalg.norm(s - c) + np.linalg.norm(c - e) < 1.01 * span  # c is on the way from s to e
            assert abs(np.linalg.norm(s - c) - np.linalg.norm(c - e)) < 0.1 * span  # and near halfway


def test_blur_is_real_and_tfp_follows_the_sharp_frame(scene: Path) -> None:
    meta = _meta(scene)
    for f, v in zip(meta["frames"][:3], meta["generator"]["views"][:3], strict=True):
        blur, sharp, tfp = _png(scene / f["blur_path"]), _png(scene / f["sharp_path"]), _png(scene / v["tfp_path"])
        psnr = -10 * math.log10(((blur - sharp) ** 2).mean())
        assert 12.0 < psnr < 32.0, psnr  # clearly blurred, still the same view
        assert v["blur_px"] > 1.5
        r_tfp = np.corrcoef(tfp.ravel(), _grey(sharp).ravel())[0, 1]
        assert r_tfp >= 0.8, r_tfp


def test_seed_points_lie_on_the_surfaces(scene: Path) -> None:
    o3d = pytest.importorskip("open3d")  # what nerfstudio's _load_3D_points reads the PLY with
    pcd = o3d.io.read_point_cloud(str(scene / "sparse_pc.ply"))
    xyz, rgb = np.asarray(pcd.points), np.asarray(pcd.colors)
    assert xyz.shape == (300, 3) and rgb.shape == (300, 3)
    assert 0.05 < rgb.mean() < 0.9 and rgb.std() > 0.03
    # Inside the room (5 x 3.5 x 5 half-extents, plus the 1 cm jitter), a good share on the floor.
    assert np.all(np.abs(xyz[:, [0, 2]]) < 5.1) and np.all((xyz[:, 1] > -0.1) & (xyz[:, 1] < 3.6))
    assert (np.abs(xyz[:, 1]) < 0.05).mean() > 0.1


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path: Path) -> None:
    small = dict(TINY, num_train=1, num_test=1, num_off_track=0, seed_points=50)
    a = make_scene(tmp_path / "a", seed=5, **small)
    b = make_scene(tmp_path / "b", seed=5, **small)
    c = make_scene(tmp_path / "c", seed=6, **small)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) >= 8
    assert all(file_digest(a / p) == file_digest(b / p) for p in files)
    assert file_digest(a / "images/train_0000.png") != file_digest(c / "images/train_0000.png")


def _two_spheres_world(with_near: bool) -> World:
    objects = [Sphere(center=(0.0, 1.0, -4.0), radius=1.0, material=1)]
    if with_near:
        objects.append(Sphere(center=(0.0, 1.0, -1.5), radius=0.5, material=2))
    textures = torch.stack([torch.full((3, 4, 4), v) for v in (0.2, 0.5, 0.9)])
    room = Room(half_x=5, half_z=5, height=3, floor_material=0, wall_material=0, ceiling_material=0)
    return World(room=room, objects=objects, textures=textures, tile_size=torch.ones(3))


def test_nearer_object_hides_farther_one() -> None:
    o = torch.tensor([[0.0, 1.0, 0.0]])
    d = torch.tensor([[0.0, 0.0, -1.0]])
    far_only = intersect(_two_spheres_world(False), o, d)
    assert far_only.material.item() == 1 and far_only.t.item() == pytest.approx(3.0, abs=1e-5)
    both = intersect(_two_spheres_world(True), o, d)
    assert both.material.item() == 2 and both.t.item() == pytest.approx(1.0, abs=1e-5)
    assert both.normal[0].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-5)
    # A ray that passes beside the near sphere sees the far one again (the room behind everything else).
    side = intersect(_two_spheres_world(True), torch.tensor([[0.8, 1.0, 0.0]]), d)
    assert side.material.item() == 1 and side.t.item() == pytest.approx(4.0 - math.sqrt(1 - 0.64), abs=1e-4)
    miss = intersect(_two_spheres_world(True), torch.tensor([[3.0, 1.0, 0.0]]), d)
    assert miss.material.item() == 0 and miss.t.item() == pytest.approx(5.0, abs=1e-5)  # back wall z = -5


def test_oriented_box_face_distance_and_normal() -> None:
    box = Box(center=(0.0, 1.0, -3.0), half_size=(0.5, 0.5, 0.5), material=1, yaw=math.pi / 4)
    world = World(room=_two_spheres_world(False).room, objects=[box],
                  textures=torch.rand(2, 3, 4, 4), tile_size=torch.ones(2))
    hit = intersect(world, torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[0.0, 0.0, -1.0]]))
    # Turned 45°, the box shows its edge to the ray: the hit is at the corner, 0.5·√2 before the centre.
    assert hit.material.item() == 1 and hit.t.item() == pytest.approx(3.0 - 0.5 * math.sqrt(2), abs=1e-4)


def test_camera_convention_and_render_shows_occlusion() -> None:
    c2w = look_at(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, -4.0]))
    assert torch.allclose(c2w[:3, :3], torch.eye(3, dtype=c2w.dtype), atol=1e-9)  # looking down -z, y up
    k = Intrinsics.from_fov(33, 25, 60.0)
    uv, z = project(torch.tensor([[0.0, 1.0, -4.0], [1.0, 2.0, -4.0]], dtype=torch.float64), c2w, k)
    assert uv[0].tolist() == pytest.approx([16.5, 12.5]) and z[0].item() == pytest.approx(6.0)
    assert uv[1, 0] > 16.5 and uv[1, 1] < 12.5  # +x is right, +y is up (smaller row)
    img_far = render(_two_spheres_world(False), c2w, k, supersample=1)
    img_both = render(_two_spheres_world(True), c2w, k, supersample=1)
    # The centre pixel shows sphere 2's colour (0.9 albedo) in front of sphere 1's (0.5).
    assert img_both[:, 12, 16].mean() > img_far[:, 12, 16].mean() + 0.2


def test_exposure_weights_match_the_simulated_exposure() -> None:
    k_sub, ticks = 5, 40
    w = exposure_weights(k_sub, ticks)
    assert w.sum().item() == pytest.approx(1.0) and torch.allclose(w, w.flip(0))
    levels = torch.tensor([0.2, 0.9, 0.4, 1.0, 0.1])
    frames = levels[:, None, None].expand(k_sub, 64, 64).contiguous()
    counts = simulate(frames, ticks, threshold=2.0, seed=1).spikes.float().sum(0)
    # Each pixel's count is within 1 of its expectation, so the mean over 4096 pixels pins the exposure.
    assert counts.mean().item() / ticks * 2.0 == pytest.approx(float((w * levels).sum()), abs=2e-3)


def test_invalid_options_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SceneFormatError, match="unknown preset"):
        resolve_config("huge")
    with pytest.raises(SceneFormatError, match="unknown option"):
        resolve_config(widht=10)
    with pytest.raises(SceneFormatError, match="tfp_window"):
        resolve_config(window=16, tfp_window=32)
    assert resolve_config(num_test=1).num_off_track == 1
    (tmp_path / "transforms.json").write_text('{"frames": []}')
    with pytest.raises(SceneFormatError, match="overwrite=True"):
        make_scene(tmp_path, **TINY)


def test_command_writes_a_scene_without_seed_points_and_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = make_scene_command(
        out=tmp_path / "cmd", width=24, height=16, num_train=2, num_test=1, window=16, seed_points=0
    )
    meta = _meta(out)
    assert "ply_file_path" not in meta and not (out / "sparse_pc.ply").exists()
    assert meta["generator"]["config"]["tfp_window"] == 8  # half the window unless given
    assert read_dat(out / meta["frames"][0]["spike_path"]).spikes.shape == (16, 16, 24)
    printed = capsys.readouterr().out
    assert f"ns-train spikegen-splat --data {out}" in printed.replace("\n", "") and "2 training views" in printed


@pytest.mark.slow  # imports nerfstudio (tens of seconds on a busy 2-core machine)
def test_spike_data_dataparser_reads_the_generated_scene(scene: Path) -> None:
    dataparser = pytest.importorskip("spikegen_nvs.dataparser")  # the reader this folder is made for
    train = dataparser.SpikeDataParserConfig(data=scene).setup().get_dataparser_outputs(split="train")
    test = dataparser.SpikeDataParserConfig(data=scene).setup().get_dataparser_outputs(split="test")
    assert (len(train.image_filenames), len(test.image_filenames)) == (3, 2)
    assert int(train.cameras.width[0]) == TINY["width"] and int(train.cameras.height[0]) == TINY["height"]


def test_colour_spikes_only_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--cfa RGGB --no-rgb: colour spike windows (pattern in the sidecar and the scene), no blurred RGB,
    and train images that are the demosaiced TFP, in colour and close to the sharp frame."""
    out = make_scene_command(
        out=tmp_path / "cfa", width=24, height=16, num_train=2, num_test=1, window=64, seed_points=0,
        cfa="RGGB", rgb=False,
    )
    meta = _meta(out)
    assert meta["spike"]["cfa"] == "RGGB" and meta["spike"]["cfa_gains"] == [1.0, 1.0, 1.0]
    assert "colour spikes (RGGB), no RGB camera" in capsys.readouterr().out
    frame = meta["frames"][0]
    assert "blur_path" not in frame
    stream = read_dat(out / frame["spike_path"])
    assert stream.cfa == "RGGB"
    image, sharp = _png(out / frame["file_path"]), _png(out / frame["sharp_path"])
    assert np.abs(image - sharp).mean() < 0.08  # the TFP of 64 ticks, demosaiced, follows the sharp frame
    chroma = np.abs(image - image.mean(-1, keepdims=True)).mean()
    assert chroma > 0.5 * np.abs(sharp - sharp.mean(-1, keepdims=True)).mean()  # colour, not grey
    # Spikes fire from the pixel's channel: red sites of the stream track the sharp frame's red.
    rate = stream.spikes.double().mean(0).numpy() * 2.0
    assert np.corrcoef(rate[0::2, 0::2].ravel(), sharp[0::2, 0::2, 0].ravel())[0, 1] > 0.8
    with pytest.raises(SceneFormatError, match="RGGB, BGGR, GRBG, GBRG"):
        resolve_config("sample", cfa="RGBW")


# ------------------------------------------------------------------------------------- long raw stream
LONG = dict(ticks=161, key_every=8, width=40, height=30, texture_size=64, supersample=1, orbit_deg_per_s=600.0)


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory: pytest.TempPathFactory):
    from spikegen_core.data.scene_stream import make_long_stream

    return make_long_stream(tmp_path_factory.mktemp("long") / "cap", seed=2, **LONG)


def test_long_stream_is_one_readable_stream_with_poses_at_its_key_ticks(long_stream) -> None:
    from spikegen_core.data.scene import Trajectory
    from spikegen_core.data.scene_stream import load_long_stream

    stream = read_dat(long_stream.stream_path)  # size, clock and θ from the sidecar
    assert stream.spikes.shape == (161, 30, 40) and stream.clock_hz == 20_000.0 and stream.threshold == 2.0
    assert 0.05 < stream.spikes.float().mean().item() < 0.5
    again = load_long_stream(long_stream.stream_path.parent.parent)
    np.testing.assert_array_equal(again.ticks, np.arange(0, 161, 8))  # first and last tick are key ticks
    traj = Trajectory(omega=math.radians(600.0))
    for i in (0, 7, 20):
        expected = traj.pose(again.ticks[i] / 20_000.0).double().numpy()
        np.testing.assert_allclose(again.poses[i], expected, atol=1e-7)
        np.testing.assert_allclose(again.pose_at(again.ticks[i]), expected, atol=1e-7)
    mid = again.pose_at(12.0)  # halfway between key ticks 8 and 16
    np.testing.assert_allclose(mid[:3, 3], (again.poses[1, :3, 3] + again.poses[2, :3, 3]) / 2, atol=1e-9)
    np.testing.assert_allclose(mid[:3, :3] @ mid[:3, :3].T, np.eye(3), atol=1e-9)
    # The camera really moves: ~2.4° of orbit plus the look-at wobble over 161 ticks.
    turn = np.degrees(np.arccos((np.trace(again.poses[0, :3, :3].T @ again.poses[-1, :3, :3]) - 1) / 2))
    assert turn > 2.0
    with pytest.raises(SceneFormatError, match="outside the stream"):
        again.pose_at(161.0)


def test_long_stream_tfp_shows_the_view_at_its_pose(long_stream) -> None:
    from spikegen_core.data.raycast import render
    from spikegen_core.data.scene import build_world
    from spikegen_core.spikes.camera import to_grey
    from spikegen_core.spikes.reconstruct import tfp

    cfg = resolve_config("sample", **{k: v for k, v in LONG.items() if k not in ("ticks", "key_every")})
    world, k = build_world(cfg, 2), Intrinsics.from_fov(40, 30, cfg.fov_deg)
    spikes = read_dat(long_stream.stream_path).spikes
    here = tfp(spikes, center=80, window=64).clamp(0, 1)

    def err(tick: float) -> float:
        view = to_grey(render(world, torch.from_numpy(long_stream.pose_at(tick)).float(), k, supersample=1))
        return float((here - view).abs().mean())

    assert err(80.0) < 0.06  # TFP noise and ~1 px blur only
    assert err(0.0) > 1.5 * err(80.0)  # 80 ticks earlier the view has moved


def test_colour_long_stream_carries_its_pattern(tmp_path: Path) -> None:
    from spikegen_core.data.scene_stream import make_long_stream

    cap = make_long_stream(tmp_path / "cap", seed=2, **{**LONG, "ticks": 65}, cfa="GRBG")
    stream = read_dat(cap.stream_path)
    assert stream.cfa == "GRBG" and stream.cfa_gains == (1.0, 1.0, 1.0)
    grey = read_dat(make_long_stream(tmp_path / "grey", seed=2, **{**LONG, "ticks": 65}).stream_path)
    assert not torch.equal(stream.spikes, grey.spikes)  # the pixels fire from their own channel, not luma


def test_long_stream_is_deterministic_and_refuses_bad_input(tmp_path: Path, long_stream) -> None:
    from spikegen_core.data.scene_stream import load_long_stream, make_long_stream

    again = make_long_stream(tmp_path / "again", seed=2, **LONG)
    assert file_digest(again.stream_path) == file_digest(long_stream.stream_path)
    assert file_digest(again.poses_path) == file_digest(long_stream.poses_path)
    with pytest.raises(SceneFormatError, match="ticks >= 2"):
        make_long_stream(tmp_path / "bad", ticks=1, width=16, height=12)
    (tmp_path / "poses.json").write_text('{"frames": []}')
    with pytest.raises(SceneFormatError, match="not a long-stream poses file"):
        load_long_stream(tmp_path / "poses.json")


def test_command_long_stream_writes_the_raw_capture_and_the_next_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_scene_command(out=tmp_path / "cap", long_stream=True, ticks=33, width=24, height=16, supersample=1)
    assert path == tmp_path / "cap" / "raw" / "stream.dat"
    assert read_dat(path).spikes.shape == (33, 16, 24)
    assert (tmp_path / "cap" / "raw" / "poses.json").is_file() and not (tmp_path / "cap" / "transforms.json").exists()
    printed = capsys.readouterr().out.replace("\n", "")
    assert f"spikegen-process-data --data {path} --output-dir {tmp_path / 'cap' / 'scene'}" in printed


def test_a_failed_overwrite_leaves_the_previous_scene_and_foreign_folders_are_kept(tmp_path: Path) -> None:
    """make-scene builds beside the folder and swaps it in whole: a run that dies midway leaves the old scene
    byte-identical (no mix of old and new views, no temp folder); a folder of someone else's files is refused."""
    out = make_scene(tmp_path / "scene", **TINY)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def die(stage: str, done: int, total: int) -> None:
        raise KeyboardInterrupt  # stands in for a kill after the first view was written

    with pytest.raises(KeyboardInterrupt):
        make_scene(out, **{**TINY, "seed": 1}, progress=die)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]

    foreign = tmp_path / "capture"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SceneFormatError, match=r"capture: files not written by make_scene .*--overwrite"):
        make_scene(foreign, **TINY)
    assert (foreign / "notes.txt").read_text() == "mine"
