"""The ``spike-data`` dataparser on tiny hand-made scenes: splits, spike metadata, poses, errors, train images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spikegen_core.errors import SceneFormatError
from spikegen_core.spikes.camera import simulate
from spikegen_core.spikes.io import write_dat
from spikegen_core.spikes.reconstruct import tfp
from spikegen_nvs.dataparser import SpikeDataParserConfig


def _look_at(eye: np.ndarray, target: np.ndarray = np.zeros(3)) -> np.ndarray:
    """OpenGL camera-to-world looking from ``eye`` at ``target`` (camera looks down -z, y up)."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, :3] = np.stack([right, up, back], axis=1)
    m[:3, 3] = eye
    return m


def _render_plane(c2w: np.ndarray, size: int, focal: float) -> np.ndarray:
    """RGB (3, H, W) of a textured plane z = 0 seen by a pinhole camera (the scene every tiny test uses)."""
    v, u = np.mgrid[0:size, 0:size] + 0.5
    dirs = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1) @ c2w[:3, :3].T
    s = -c2w[2, 3] / dirs[..., 2]
    x, y = c2w[0, 3] + s * dirs[..., 0], c2w[1, 3] + s * dirs[..., 1]
    rgb = [0.5 + 0.4 * np.sin(5 * x) * np.cos(4 * y), 0.5 + 0.4 * np.sin(3 * y + 1), 0.5 + 0.4 * np.cos(6 * x - 2 * y)]
    return np.clip(np.stack(rgb), 0.0, 1.0).astype(np.float32)


def _save_linear_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.moveaxis(rgb, 0, -1) * 255).round().astype(np.uint8)).save(path)


def write_tiny_scene(
    root: Path, *, n_train: int = 4, n_test: int = 1, size: int = 24, ticks: int = 32, motion: float = 0.15, seed: int = 0,
    rgb_response: str = "linear",
) -> Path:
    """A tiny spike scene: cameras on an arc around a textured plane, each moving sideways during its window.

    Train views get a ``.dat`` spike window (simulated from sharp sub-frames), a blurred RGB (mean of the
    sub-frames, as ``file_path`` and ``blur_path``) and the sharp centre (``sharp_path``); test views a
    ``gt_path``. Only ``simulate`` and ``write_dat`` from spikegen_core are used. RGB files are encoded with
    ``rgb_response`` ("linear", "srgb" or "gamma:G"; written to the scene), spikes come from the linear light.
    """
    from spikegen_core import radiometry

    response = radiometry.from_text(rgb_response)

    def _save_png(path: Path, linear: np.ndarray) -> None:
        _save_linear_png(path, response.encode(torch.from_numpy(np.asarray(linear))).numpy())

    root.mkdir(parents=True, exist_ok=True)
    focal, threshold, clock = size * 1.2, 2.0, 20_000.0
    frames = []
    n = n_train + n_test
    test_ids = {int((k + 0.5) * n / n_test) for k in range(n_test)}  # spread between the train views
    for i in range(n):
        angle = -0.5 + 1.0 * i / max(n - 1, 1)
        eye = np.array([2.5 * math.sin(angle), 0.3 * (i % 2), 2.5 * math.cos(angle)])
        centre = _look_at(eye)
        side = centre[:3, 0] * motion  # camera slides along its own x axis during the window
        name = f"v{i:02d}"
        if i in test_ids:
            gt = f"gt/{name}.png"
            _save_png(root / gt, _render_plane(centre, size, focal))
            frames.append({"file_path": gt, "gt_path": gt, "transform_matrix": centre.tolist()})
            continue
        subs = []
        poses = []
        for s in np.linspace(-0.5, 0.5, 8):
            pose = centre.copy()
            pose[:3, 3] += side * 2 * s
            poses.append(pose)
            subs.append(_render_plane(pose, size, focal))
        sub = torch.from_numpy(np.stack(subs))
        stream = simulate(sub, num_frames=ticks, threshold=threshold, seed=seed + i)
        write_dat(root / f"spikes/{name}.dat", stream.spikes)
        _save_png(root / f"blur/{name}.png", sub.mean(0).numpy())
        _save_png(root / f"sharp/{name}.png", _render_plane(centre, size, focal))
        frames.append(
            {
                "file_path": f"blur/{name}.png",
                "transform_matrix": centre.tolist(),
                "transform_matrix_start": poses[0].tolist(),
                "transform_matrix_end": poses[-1].tolist(),
                "spike_path": f"spikes/{name}.dat",
                "spike_range": [0, ticks],
                "time": (i * ticks + ticks / 2) / clock,
                "blur_path": f"blur/{name}.png",
                "sharp_path": f"sharp/{name}.png",
            }
        )
    meta = {
        "spikegen_format": 1,
        "spike": {"clock_hz": clock, "threshold": threshold, "gain": 1.0, "height": size, "width": size},
        "rgb_response": response.to_json(),
        "camera_model": "OPENCV",
        "fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size,
        "frames": frames,
    }  # fmt: skip
    (root / "transforms.json").write_text(json.dumps(meta, indent=1))
    return root


def _parse(root: Path, split: str = "train", **kw):
    return SpikeDataParserConfig(data=root, **kw).setup().get_dataparser_outputs(split=split)


def _edit(root: Path, fn) -> None:
    meta = json.loads((root / "transforms.json").read_text())
    fn(meta)
    (root / "transforms.json").write_text(json.dumps(meta))


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_tiny_scene(tmp_path / "scene")


def test_splits_and_spike_metadata(scene: Path) -> None:
    train, test = _parse(scene, "train"), _parse(scene, "test")
    assert len(train.image_filenames) == 4 and len(test.image_filenames) == 1
    assert all("gt" in p.parts for p in test.image_filenames)
    views = train.metadata["spike_views"]
    assert [v.spike_path.name for v in views] == [p.name.replace(".png", ".dat") for p in train.image_filenames]
    assert train.cameras.metadata["c2w_start"].shape == (4, 12)
    assert train.cameras.metadata["spike_time"][:, 0].tolist() == pytest.approx([v.time for v in views])
    window = views[1].read()
    assert window.spikes.shape == (32, 24, 24) and window.spikes.dtype == torch.uint8
    assert window.threshold == 2.0
    # The window's mean rate matches the intensity it was simulated from (rate = I / θ).
    blur = torch.from_numpy(np.asarray(Image.open(views[1].blur_path), dtype=np.float32) / 255).mean(-1)
    assert (tfp(window) - blur).abs().mean() < 0.12
    # Sliced cameras keep their own edge poses (what the datamanager hands the model).
    cam = train.cameras[2:3]
    assert torch.equal(cam.metadata["c2w_end"], train.cameras.metadata["c2w_end"][2:3])


def test_edge_poses_share_the_dataparser_transform(scene: Path) -> None:
    out = _parse(scene, "train")
    raw = json.loads((scene / "transforms.json").read_text())["frames"]
    raw_train = [f for f in raw if "gt_path" not in f]
    for i, frame in enumerate(raw_train):
        centre = out.cameras.camera_to_worlds[i]
        start = out.cameras.metadata["c2w_start"][i].reshape(3, 4)
        raw_shift = np.linalg.norm(np.array(frame["transform_matrix"])[:3, 3] - np.array(frame["transform_matrix_start"])[:3, 3])
        shift = torch.linalg.norm(centre[:3, 3] - start[:3, 3]).item()
        assert shift == pytest.approx(raw_shift * out.dataparser_scale, rel=1e-4)
        assert torch.allclose(start[:3, :3], centre[:3, :3], atol=1e-5)  # the camera slides, it does not turn
        # Map back with the stored transform: the raw start pose comes back.
        back = out.transform_poses_to_original_space(start[None], camera_convention="opengl")[0]
        assert np.allclose(back.numpy(), np.array(frame["transform_matrix_start"])[:3], atol=1e-4)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["frames"][0].update(spike_path="spikes/missing.dat"), "does not exist"),
        (lambda m: m["frames"][0].update(spike_pth="x"), "unknown fields ['spike_pth']"),
        (lambda m: m.update(colour="red"), "unknown top-level fields"),
        (lambda m: m["frames"][0].pop("spike_path"), "no `spike_path`"),
        (lambda m: m["frames"][0].update(spike_hw=[24, 30]), "differs from the image size"),
        (lambda m: m["frames"][0].update(spike_range=[0, 99]), "spike_range [0, 99]"),
        (lambda m: m.pop("fl_x"), "missing top-level fields ['fl_x']"),
        (lambda m: m["spike"].update(cfa="RGBW"), "`spike.cfa` = 'RGBW' is not a Bayer pattern"),
        (lambda m: m["frames"][0].update(spike_cfa=7), "one of RGGB, BGGR, GRBG, GBRG"),
        (lambda m: m["spike"].update(cfa_gains=[1.0, 1.0]), "[gain_r, gain_g, gain_b]"),
        (lambda m: m["frames"][0].update(spike_cfa_gains=[1, 1, 1]), "`spike_cfa_gains` is given for a grey view"),
    ],
)
def test_format_errors_name_the_frame_and_the_fix(scene: Path, edit, message: str) -> None:
    _edit(scene, edit)
    with pytest.raises(SceneFormatError) as err:
        _parse(scene, "train")
    assert message in str(err.value)
    assert "transforms.json" in str(err.value) or ".png" in str(err.value)


def test_image_size_must_match(scene: Path) -> None:
    _save_linear_png(scene / "blur" / "v00.png", np.zeros((3, 24, 30), np.float32))
    with pytest.raises(SceneFormatError, match="image is 30x24 but transforms.json says w=24 h=24"):
        _parse(scene, "train")


def test_train_images_modes(scene: Path, tmp_path: Path) -> None:
    assert all("blur" in p.parts for p in _parse(scene, train_images="file").image_filenames)
    assert all("sharp" in p.parts for p in _parse(scene, train_images="sharp").image_filenames)
    out = _parse(scene, train_images="tfp", cache_dir=tmp_path / "cache")
    path = out.image_filenames[0]
    assert path.is_relative_to(tmp_path / "cache")
    png = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255)
    expected = tfp(out.metadata["spike_views"][0].read()).clamp(0, 1)
    assert png.shape == (24, 24, 3) and (png[..., 0] - expected).abs().max() <= 1 / 255 + 1e-6
    _edit(scene, lambda m: m["frames"][0].pop("sharp_path"))
    with pytest.raises(SceneFormatError, match="sharp_path"):
        _parse(scene, train_images="sharp")


def test_seed_points_follow_the_transform(scene: Path) -> None:
    from plyfile import PlyData, PlyElement

    pts = np.array([(0.0, 0.0, 0.0, 255, 0, 0), (0.5, -0.2, 0.1, 0, 255, 0)],
                   dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])  # fmt: skip
    PlyData([PlyElement.describe(pts, "vertex")]).write(str(scene / "sparse_pc.ply"))
    _edit(scene, lambda m: m.update(ply_file_path="sparse_pc.ply"))
    out = _parse(scene)
    xyz = out.metadata["points3D_xyz"]
    assert out.metadata["points3D_rgb"].tolist() == [[255, 0, 0], [0, 255, 0]]
    raw = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.5, -0.2, 0.1, 1.0]])
    assert torch.allclose(xyz, (raw @ out.dataparser_transform.T) * out.dataparser_scale, atol=1e-6)


def test_per_view_cfa_overrides_the_top_level_one(scene: Path) -> None:
    _edit(scene, lambda m: (m["spike"].update(cfa="rggb", cfa_gains=[1.0, 0.9, 1.2]), m["frames"][1].update(spike_cfa="GBRG")))
    views = _parse(scene, "train").metadata["spike_views"]
    assert [v.cfa for v in views[:2]] == ["RGGB", "GBRG"] and views[1].cfa_gains == (1.0, 0.9, 1.2)
    stream = views[1].read()
    assert stream.cfa == "GBRG" and stream.cfa_gains == (1.0, 0.9, 1.2)
