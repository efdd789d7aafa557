"""spikegen-process-data: pose maths, input handling, and pycolmap end to end on tiny rendered frames.

The frames come from a small ray caster (the inside corner of a textured box seen from a camera arc), so the
true poses are known and the recovered ones can be judged up to a similarity transform.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.spatial.transform import Rotation

from spikegen_core.errors import SpikeFileError, SpikeGenError
from spikegen_core.geometry import interpolate_pose
from spikegen_core.spikes import read_dat, simulate, write_dat
from spikegen_nvs.process_data.colmap import RegistrationError
from spikegen_nvs.process_data.inputs import ViewWindow, attach_rgb, load_rgb_frames, views_from_window_folder
from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process
from spikegen_nvs.process_data.poses import colmap_to_nerfstudio, pose_errors, umeyama

H, W, FOCAL = 96, 128, 110.0
TARGET = np.array([0.6, 0.6, 0.5])


# ------------------------------------------------------------------------------------- tiny renderer


def look_at(eye: np.ndarray, target: np.ndarray = TARGET) -> np.ndarray:
    """Camera-to-world, OpenGL convention (x right, y up, looking down −z), world z up."""
    back = eye - target
    back = back / np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
    return c2w


def arc_pose(u: float) -> np.ndarray:
    """Camera on an arc around the box corner, u in [0, 1]; height varies so centres are not coplanar."""
    phi = np.radians(15 + 60 * u)
    return look_at(np.array([0.7 + 2.0 * np.cos(phi), 0.7 + 2.0 * np.sin(phi), 1.5 + 0.6 * u]))


def corner_textures(seed: int = 0, res: int = 48) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(3):
        coarse = F.interpolate(torch.rand(1, 1, res // 4, res // 4, generator=g), size=(res, res), mode="bicubic")
        out.append((0.6 * coarse + 0.4 * torch.rand(1, 1, res, res, generator=g)).clamp(0, 1))
    return out


def render(c2w: np.ndarray, textures: list[torch.Tensor], size: float = 2.0) -> torch.Tensor:
    """Grey (H, W) view of the planes x=0, y=0, z=0 (each textured over [0, size]²) from inside the box."""
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    d_cam = torch.stack([(xs - W / 2) / FOCAL, -(ys - H / 2) / FOCAL, -torch.ones_like(xs)], -1).double()
    d = d_cam @ torch.from_numpy(c2w[:3, :3]).T
    c = torch.from_numpy(c2w[:3, 3])
    t = torch.where(d < 0, -c / d, torch.full_like(d, float("inf")))
    tmin, axis = t.min(-1)
    p = c + tmin[..., None] * d
    img = torch.zeros(H, W)
    for a in range(3):
        uv = (p[..., [i for i in range(3) if i != a]] / size * 2 - 1)[None].float()
        img = torch.where(axis == a, F.grid_sample(textures[a], uv, align_corners=False)[0, 0], img)
    return img.clamp(0, 1)


def save_grey(path, img: torch.Tensor) -> None:
    Image.fromarray((img.numpy() * 255 + 0.5).astype(np.uint8)).convert("RGB").save(path)


def frame_poses(transforms: dict, key: str = "transform_matrix") -> dict[str, np.ndarray]:
    return {f["file_path"].split("/")[-1].rsplit(".", 1)[0]: np.array(f[key]) for f in transforms["frames"]}


# ---------------------------------------------------------------------------------------- pose maths


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 3))
    rot = Rotation.from_rotvec([0.3, -1.1, 0.5]).as_matrix()
    dst = 2.5 * src @ rot.T + np.array([1.0, -2.0, 0.5])
    scale, r, t = umeyama(src, dst)
    assert scale == pytest.approx(2.5, rel=1e-9)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [1.0, -2.0, 0.5], atol=1e-9)


def test_pose_errors_are_zero_up_to_similarity_and_see_a_rotated_camera() -> None:
    poses = [arc_pose(u) for u in np.linspace(0, 1, 6)]
    world = np.eye(4)
    world[:3, :3] = Rotation.from_rotvec([0.2, 0.4, -0.3]).as_matrix()
    world[:3, 3] = [3.0, 1.0, -2.0]
    moved = []
    for p in poses:
        q = world @ p
        q[:3, 3] = 0.5 * q[:3, 3]  # scale the world too
        moved.append(q)
    errs = pose_errors(moved, poses)
    assert errs["median_rotation_error_deg"] < 1e-6 and errs["median_translation_error_rel"] < 1e-9
    moved[0] = moved[0].copy()
    moved[0][:3, :3] = moved[0][:3, :3] @ Rotation.from_rotvec([0, np.radians(5), 0]).as_matrix()
    assert pose_errors(moved, poses)["max_rotation_error_deg"] == pytest.approx(5.0, abs=1e-6)


def test_interpolate_pose_slerps_between_and_extrapolates_beyond() -> None:
    p0, p1 = np.eye(4), np.eye(4)
    p1[:3, :3] = Rotation.from_rotvec([0, 0, np.radians(40)]).as_matrix()
    p1[:3, 3] = [2.0, 0, 0]
    mid = interpolate_pose([0.0, 1.0], [p0, p1], 0.5)
    assert np.degrees(Rotation.from_matrix(mid[:3, :3]).magnitude()) == pytest.approx(20.0)
    np.testing.assert_allclose(mid[:3, 3], [1.0, 0, 0])
    beyond = interpolate_pose([0.0, 1.0], [p0, p1], 1.25)
    assert np.degrees(Rotation.from_matrix(beyond[:3, :3]).as_rotvec()[2]) == pytest.approx(50.0)
    np.testing.assert_allclose(beyond[:3, 3], [2.5, 0, 0])


def test_colmap_pose_becomes_an_opengl_camera_at_the_same_place() -> None:
    rot = Rotation.from_rotvec([0.4, -0.2, 0.9]).as_matrix()
    centre = np.array([1.0, 2.0, 3.0])
    cam_from_world = np.hstack([rot, (-rot @ centre)[:, None]])
    c2w = colmap_to_nerfstudio(cam_from_world)
    from spikegen_nvs.process_data.poses import points_to_nerfstudio

    np.testing.assert_allclose(c2w[:3, 3], points_to_nerfstudio(centre[None])[0], atol=1e-12)
    # COLMAP looks along +z of its camera; an OpenGL camera looks along −z.
    view_dir = points_to_nerfstudio((rot.T @ np.array([0.0, 0.0, 1.0]))[None])[0]
    np.testing.assert_allclose(-c2w[:3, 2], view_dir, atol=1e-12)


# -------------------------------------------------------------------------------------------- inputs


def test_window_folder_skips_short_and_unreadable_windows(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i, frames in enumerate([32, 8, 32]):
        write_dat(tmp_path / f"w{i}.dat", torch.from_numpy(rng.integers(0, 2, (frames, 16, 24), dtype=np.uint8)))
    (tmp_path / "w3.npy").write_bytes(b"not an array")
    loaded = views_from_window_folder(tmp_path, min_window=16, clock_hz=20_000.0)
    assert [v.name for v in loaded.views] == ["w0", "w2"]
    assert (loaded.height, loaded.width) == (16, 24)
    assert any("w1.dat" in w and "8 frames" in w for w in loaded.warnings)
    assert any("w3.npy" in w for w in loaded.warnings)


def test_stream_shorter_than_a_window_is_a_clear_error(tmp_path) -> None:
    write_dat(tmp_path / "short.dat", torch.zeros(10, 16, 24, dtype=torch.uint8))
    cfg = ProcessDataConfig(data=tmp_path / "short.dat", output_dir=tmp_path / "out", window=32)
    with pytest.raises(SpikeFileError, match="short.dat.*10 frames.*--window"):
        process(cfg, quiet=True)


def test_dat_stream_without_size_names_the_flags_and_a_failed_run_keeps_the_earlier_scene(tmp_path) -> None:
    (tmp_path / "bare.dat").write_bytes(bytes(64 * 16 * 24 // 8))  # 64 frames of 16×24, no sidecar
    out = tmp_path / "out"
    out.mkdir()
    earlier = '{"generator": {"name": "spikegen-process-data"}, "frames": []}'  # an earlier run's result
    (out / "transforms.json").write_text(earlier)
    with pytest.raises(SpikeFileError, match="bare.dat.*--height and --width"):
        process(ProcessDataConfig(data=tmp_path / "bare.dat", output_dir=out), quiet=True)
    assert (out / "transforms.json").read_text() == earlier  # inputs are checked before the scene is replaced
    # With the size given, the same file reads (and fails later, for being shorter than a window).
    with pytest.raises(SpikeFileError, match="64 frames, shorter than one window of 128"):
        process(ProcessDataConfig(data=tmp_path / "bare.dat", output_dir=out, height=16, width=24, window=128),
                quiet=True)


def test_rgb_frames_attach_to_the_nearest_window_at_spike_resolution(tmp_path) -> None:
    rgb_dir = tmp_path / "rgb"
    rgb_dir.mkdir()
    for i in range(5):  # 100 fps, frame i has grey level i/10, twice the spike resolution
        Image.fromarray(np.full((32, 48, 3), 25 * i, dtype=np.uint8)).save(rgb_dir / f"f{i}.png")
    frames, times = load_rgb_frames(rgb_dir, fps=100.0, start_s=0.001)
    np.testing.assert_allclose(times, [0.001, 0.011, 0.021, 0.031, 0.041])
    views = [ViewWindow(name=f"v{i}", spikes=torch.zeros(8, 16, 24, dtype=torch.uint8), time_s=t)
             for i, t in enumerate([0.0105, 0.0298, 0.5])]
    warnings = attach_rgb(views, frames, times, 16, 24, max_gap_s=0.002)
    assert views[0].rgb.shape == (3, 16, 24)
    assert views[0].rgb.mean().item() == pytest.approx(25 / 255, abs=1e-3)
    assert views[1].rgb.mean().item() == pytest.approx(75 / 255, abs=1e-3)
    assert views[2].rgb is None and len(warnings) == 1 and "v2" in warnings[0]


# ------------------------------------------------------------------------------------ pycolmap runs


@pytest.fixture(scope="module")
def textures() -> list[torch.Tensor]:
    return corner_textures()


def test_photos_with_simulated_spikes_become_a_posed_scene(tmp_path, textures) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    gt = {}
    for i, u in enumerate(np.linspace(0, 1, 8)):
        gt[f"v{i}"] = arc_pose(u)
        save_grey(photos / f"v{i}.png", render(gt[f"v{i}"], textures))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    cfg = ProcessDataConfig(data=photos, output_dir=tmp_path / "scene", simulate_spikes=True, window=64,
                            num_threads=1, eval_every=4, jitter_px=2.0)
    summary = process(cfg, quiet=True)

    assert summary.num_views == 8 and summary.num_registered >= 7
    assert any("broken.jpg" in w for w in summary.warnings)
    assert summary.mean_reprojection_error < 1.0
    transforms = json.loads((tmp_path / "scene" / "transforms.json").read_text())
    est = frame_poses(transforms)
    errs = pose_errors([est[k] for k in est], [gt[k] for k in est])
    assert errs["median_rotation_error_deg"] < 2.0
    assert errs["median_translation_error_rel"] < 0.02
    assert transforms["fl_x"] == pytest.approx(FOCAL, rel=0.05)

    frame = next(f for f in transforms["frames"] if "gt_path" not in f)  # view 0 is held out for testing
    spikes = read_dat(tmp_path / "scene" / frame["spike_path"]).spikes
    assert spikes.shape == (64, H, W) and 0.05 < spikes.float().mean() < 0.5
    assert Image.open(tmp_path / "scene" / frame["file_path"]).size == (W, H)
    # The simulated pan turns the camera: window-edge poses differ from the centre by atan(1 px / f).
    start, end = np.array(frame["transform_matrix_start"]), np.array(frame["transform_matrix_end"])
    turn = np.degrees(Rotation.from_matrix(start[:3, :3].T @ end[:3, :3]).magnitude())
    assert turn == pytest.approx(np.degrees(2 * np.arctan(1.0 / transforms["fl_x"])), rel=1e-6)
    assert sum("gt_path" in f for f in transforms["frames"]) == summary.num_test == len(range(0, summary.num_registered, 4))
    assert transforms["rgb_response"] == "srgb"  # photos are sRGB: linearised before the spikes were simulated
    from plyfile import PlyData

    ply = PlyData.read(tmp_path / "scene" / "sparse_pc.ply")  # binary, like make-scene's
    assert ply["vertex"].count == summary.num_points > 50
    assert len(ply["vertex"].data) == summary.num_points and not ply.text


def test_photo_scene_holds_out_every_eighth_view_for_ns_eval(tmp_path, textures) -> None:
    """By default (nerfstudio's eval interval, 8) views 0 and 8 of 9 photos are test views: their photos are the
    ground truth the dataparser's test split serves, and nothing of them is trained on."""
    from spikegen_nvs.dataparser import SpikeDataParserConfig

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, u in enumerate(np.linspace(0, 1, 9)):
        save_grey(photos / f"v{i}.png", render(arc_pose(u), textures))
    with pytest.raises(SpikeGenError, match="eval-every 1"):
        process(ProcessDataConfig(data=photos, output_dir=tmp_path / "bad", simulate_spikes=True, eval_every=1),
                quiet=True)  # fmt: skip
    cfg = ProcessDataConfig(data=photos, output_dir=tmp_path / "scene", simulate_spikes=True, window=32, num_threads=1)
    summary = process(cfg, quiet=True)
    assert summary.num_registered == 9 and summary.num_test == 2
    frames = json.loads((tmp_path / "scene" / "transforms.json").read_text())["frames"]
    test = [f for f in frames if "gt_path" in f]
    assert [Path(f["gt_path"]).stem for f in test] == ["v0", "v8"]
    assert all(set(f) == {"file_path", "gt_path", "transform_matrix", "time"} for f in test)

    parser = SpikeDataParserConfig(data=tmp_path / "scene").setup()
    train, held_out = parser.get_dataparser_outputs("train"), parser.get_dataparser_outputs("test")
    assert len(train.image_filenames) == 7 and [p.stem for p in held_out.image_filenames] == ["v0", "v8"]
    assert {v.spike_path.stem for v in train.metadata["spike_views"]}.isdisjoint({"v0", "v8"})
    gt = np.asarray(Image.open(held_out.image_filenames[1]).convert("L"), dtype=np.float64)
    photo = np.asarray(Image.open(photos / "v8.png").convert("L"), dtype=np.float64)
    assert np.abs(gt - photo).max() <= 1.0  # the photo itself (8-bit round trip), not a spike-derived frame


def test_long_stream_becomes_ranges_with_interpolated_window_edges(tmp_path, textures) -> None:
    """A camera sweeping the arc during one stream; views are windows of it, poses judged at their times."""
    ticks, keys = 8 * 48, 49
    frames = torch.stack([render(arc_pose(u), textures) for u in np.linspace(0, 1, keys)])
    write_dat(tmp_path / "sweep.dat", simulate(frames, ticks, seed=3))
    cfg = ProcessDataConfig(data=tmp_path / "sweep.dat", output_dir=tmp_path / "scene", num_views=8, window=32,
                            num_threads=1)

    def inverted_tfp(spikes: torch.Tensor) -> torch.Tensor:  # a stand-in restorer COLMAP can still match
        return 1.0 - spikes.float().mean(0) * 2.0

    summary = process(cfg, restorer=inverted_tfp, quiet=True)
    assert summary.num_registered >= 7

    transforms = json.loads((tmp_path / "scene" / "transforms.json").read_text())
    frames_json = transforms["frames"]
    clock = transforms["spike"]["clock_hz"]
    gt = {f["file_path"]: arc_pose(f["time"] * clock / (ticks - 1)) for f in frames_json}
    est = {f["file_path"]: np.array(f["transform_matrix"]) for f in frames_json}
    errs = pose_errors(list(est.values()), [gt[k] for k in est])
    assert errs["median_rotation_error_deg"] < 2.0 and errs["median_translation_error_rel"] < 0.02

    # Ranges point into one copy of the stream and hold the same spikes as the source.
    f = frames_json[len(frames_json) // 2]
    start, end = f["spike_range"]
    assert end - start == 32 and f["spike_path"] == "spikes/sweep.dat"
    here = read_dat(tmp_path / "scene" / f["spike_path"], start=start, count=32).spikes
    assert torch.equal(here, read_dat(tmp_path / "sweep.dat", start=start, count=32).spikes)
    # Dense frames are the restorer's output.
    dense = np.asarray(Image.open(tmp_path / "scene" / "dense" / Path(f["file_path"]).name).convert("L"), dtype=np.float32) / 255
    expected = inverted_tfp(read_dat(tmp_path / "sweep.dat", start=start, count=32).spikes).clamp(0, 1).numpy()
    assert np.abs(dense - expected).max() < 1 / 255 + 1e-6
    # Window edges: the turn between start and end matches the true turn over the window.
    true_turn = Rotation.from_matrix(arc_pose(start / (ticks - 1))[:3, :3].T @ arc_pose((end - 1) / (ticks - 1))[:3, :3])
    s, e = np.array(f["transform_matrix_start"]), np.array(f["transform_matrix_end"])
    est_turn = Rotation.from_matrix(s[:3, :3].T @ e[:3, :3])
    assert np.degrees(est_turn.magnitude()) == pytest.approx(np.degrees(true_turn.magnitude()), abs=0.5)
    assert np.degrees(true_turn.magnitude()) > 2.0  # the check above is not trivially about zero motion


def test_too_few_registered_views_fail_with_counts_and_advice(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    g = torch.Generator().manual_seed(5)
    for i in range(4):  # unrelated noise images: nothing can match
        save_grey(photos / f"n{i}.png", torch.rand(H, W, generator=g))
    cfg = ProcessDataConfig(data=photos, output_dir=tmp_path / "scene", simulate_spikes=True, num_threads=1)
    with pytest.raises(RegistrationError, match=r"(?s)(0|only \d) of 4 views.*overlap") as info:
        process(cfg, quiet=True)
    assert isinstance(info.value, SpikeGenError)


def test_checkpoint_dense_frames_come_from_the_core_model(tmp_path, textures) -> None:
    """--checkpoint: dense frames are the core model's reconstruction from the spike window (grey). From a sparse
    window (16 ticks, θ 4: ~1.5 spikes per pixel) it is far closer to the true view than TFP (measured 25.0 vs
    19.8 dB); a missing checkpoint stops before any work, naming the file."""
    from spikegen_core.metrics import psnr
    from spikegen_core.train.checkpoint import SHIPPED
    from spikegen_nvs.process_data.pipeline import _tfp_frame, restorer_from_checkpoint

    view = render(arc_pose(0.5), textures)[:64, :64]
    spikes = simulate(view, 16, threshold=4.0, seed=0).spikes
    restore = restorer_from_checkpoint(SHIPPED, threshold=4.0)
    frame = restore(spikes)
    assert frame.shape == (64, 64) and 0.0 <= float(frame.min()) and float(frame.max()) <= 1.0
    model_db = float(psnr(frame[None, None], view[None, None]))
    tfp_db = float(psnr(_tfp_frame(spikes, 4.0, 1.0)[None, None], view[None, None]))
    assert model_db > tfp_db + 3.0, (model_db, tfp_db)
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(SpikeGenError, match="nope.safetensors.*omit --checkpoint"):
        process(ProcessDataConfig(data=tmp_path, output_dir=tmp_path / "out", checkpoint=missing), quiet=True)
    with pytest.raises(SpikeGenError, match="--checkpoint .* is for --dense model or fast, not tfp"):
        process(ProcessDataConfig(data=tmp_path, output_dir=tmp_path / "out", checkpoint=SHIPPED, dense="tfp"),
                quiet=True)  # fmt: skip


def test_photos_to_a_colour_spikes_only_scene(tmp_path, textures) -> None:
    """--simulate-spikes --cfa GRBG --no-photos-as-rgb: colour spike windows, demosaiced TFP frames, no RGB."""
    photos = tmp_path / "photos"
    photos.mkdir()
    truth = {}
    for i, u in enumerate(np.linspace(0, 1, 6)):
        grey = render(arc_pose(u), textures)
        truth[f"v{i}"] = torch.stack([grey, grey**2, 1.0 - 0.8 * grey])  # colourful, channel by channel different
        Image.fromarray((truth[f"v{i}"].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(photos / f"v{i}.png")
    cfg = ProcessDataConfig(data=photos, output_dir=tmp_path / "scene", simulate_spikes=True, window=128,
                            num_threads=1, cfa="GRBG", photos_as_rgb=False)
    summary = process(cfg, quiet=True)
    assert summary.num_registered >= 5
    transforms = json.loads((tmp_path / "scene" / "transforms.json").read_text())
    assert transforms["spike"]["cfa"] == "GRBG"
    frame = next(f for f in transforms["frames"] if "spike_path" in f)
    assert "blur_path" not in frame
    assert read_dat(tmp_path / "scene" / frame["spike_path"]).cfa == "GRBG"
    name = frame["file_path"].split("/")[-1].rsplit(".", 1)[0]
    image = torch.from_numpy(np.asarray(Image.open(tmp_path / "scene" / frame["file_path"]), np.float32) / 255)
    err = (image.permute(2, 0, 1) - truth[name]).abs().mean(dim=(1, 2))
    assert torch.all(err < 0.08), err  # every channel of the demosaiced TFP follows the photo's
    # `auto` (the default) chose demosaiced TFP for the colour capture; the grey fast model, asked for, is refused
    with pytest.raises(SpikeGenError, match="core models restore grey spike streams.*--dense tfp"):
        process(ProcessDataConfig(data=photos, output_dir=tmp_path / "scene2", simulate_spikes=True, window=128,
                                  num_threads=1, cfa="GRBG", dense="fast"), quiet=True)  # fmt: skip
