"""Image-level synthetic data: textures, motion warps, motion samples, the dataset, pair folders, commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from spikegen_core.data import (
    Motion,
    PairFolder,
    SyntheticPairs,
    make_motion_sample,
    make_pairs,
    random_texture,
    render_views,
    simulate_command,
)
from spikegen_core.data.textures import SAMPLE_PATH, TEXTURE_KINDS
from spikegen_core.errors import SpikeGenError
from spikegen_core.spikes.camera import to_grey


def _gradient_energy(img: torch.Tensor) -> float:
    return float((img[..., :, 1:] - img[..., :, :-1]).abs().mean() + (img[..., 1:, :] - img[..., :-1, :]).abs().mean())


def test_textures_are_seeded_coloured_and_textured() -> None:
    for kind in TEXTURE_KINDS:
        a = random_texture(40, 56, generator=torch.Generator().manual_seed(1), kind=kind)
        b = random_texture(40, 56, generator=torch.Generator().manual_seed(1), kind=kind)
        c = random_texture(40, 56, generator=torch.Generator().manual_seed(2), kind=kind)
        assert a.shape == (3, 40, 56) and 0 <= float(a.min()) and float(a.max()) <= 1
        assert torch.equal(a, b) and not torch.equal(a, c), kind
        assert float(a.std()) > 0.01, kind  # not flat
    with pytest.raises(ValueError, match="unknown texture"):
        random_texture(8, generator=torch.Generator(), kind="plaid")


def test_bundled_sample_image_is_small_and_colourful() -> None:
    assert SAMPLE_PATH.is_file() and SAMPLE_PATH.stat().st_size < 100_000
    img = np.asarray(Image.open(SAMPLE_PATH).convert("RGB"), dtype=np.float32) / 255
    assert img.shape == (256, 256, 3)
    assert img.std() > 0.05 and np.abs(img[..., 0] - img[..., 2]).mean() > 0.02


def test_translation_moves_views_by_whole_pixels() -> None:
    canvas = random_texture(48, 64, generator=torch.Generator().manual_seed(3), kind="noise")
    views = render_views(canvas, Motion(shift=(8.0, -4.0)), torch.tensor([-0.5, 0.0, 0.5]), (32, 40))
    first, centre, last = views
    # Canvas surplus (16, 24) is even, so the still centre view is an exact crop of the canvas.
    assert torch.allclose(centre, canvas[:, 8:40, 12:52], atol=1e-5)
    # From s = -0.5 to 0.5 the window moves 8 px right and 4 px up.
    assert torch.allclose(last[:, 4:, :-8], first[:, :-4, 8:], atol=1e-5)


def test_still_sample_blur_equals_sharp_and_spikes_give_the_intensity() -> None:
    s = make_motion_sample(size=48, num_spike_frames=400, motion=Motion(), seed=5, threshold=2.0)
    assert torch.allclose(s.blurred, s.sharp, atol=1e-5)
    grey = to_grey(s.sharp)
    # Each pixel's count is within one spike of 400 · I / θ, so TFP is within θ/400 of the intensity.
    assert (s.tfp() - grey.clamp(0, 2)).abs().max() <= 2.0 / 400 + 1e-4


def test_moving_sample_blurs_and_matches_dense_rendering() -> None:
    motion = Motion(shift=(9.0, 3.0), rotation=0.1, log_zoom=0.05, curve=0.4)
    image = random_texture(96, generator=torch.Generator().manual_seed(2), kind="checkers")
    auto = make_motion_sample(image, size=48, num_spike_frames=64, motion=motion, seed=2)
    dense = make_motion_sample(image, size=48, num_spike_frames=64, num_sharp=64, motion=motion, seed=2)
    assert 2 < auto.frames.shape[0] < 64  # sub-frames chosen from the path length, not one per tick
    assert torch.allclose(auto.sharp, dense.sharp)
    assert (auto.blurred - dense.blurred).abs().mean() < 0.01
    assert _gradient_energy(auto.blurred) < 0.8 * _gradient_energy(auto.sharp)
    # Spikes integrate the same moving scene as the blurred frame.
    assert (auto.tfp() - to_grey(auto.blurred)).abs().mean() < 0.08
    assert auto.spikes.dtype == torch.uint8 and auto.spikes.shape == (64, 48, 48)


def test_samples_from_an_image_file_use_random_crops(tmp_path) -> None:
    a = make_motion_sample(SAMPLE_PATH, size=(32, 48), seed=1, motion_scale=0.0)
    b = make_motion_sample(SAMPLE_PATH, size=(32, 48), seed=2, motion_scale=0.0)
    assert a.sharp.shape == (3, 32, 48) and not torch.allclose(a.sharp, b.sharp)
    with pytest.raises(SpikeGenError, match="missing.png"):
        make_motion_sample(tmp_path / "missing.png")


def test_dataset_is_deterministic_and_shaped() -> None:
    ds = SyntheticPairs(size=32, num_spike_frames=16, length=5, seed=7)
    item = ds[3]
    assert item["sharp"].shape == (3, 32, 32) and item["blurred"].shape == (3, 32, 32)
    assert item["spikes"].shape == (16, 32, 32) and item["spikes"].dtype == torch.float32
    assert set(item["spikes"].unique().tolist()) <= {0.0, 1.0}
    assert item["tfp"].shape == (32, 32)
    again = SyntheticPairs(size=32, num_spike_frames=16, length=5, seed=7)[3]
    assert all(torch.equal(item[k], again[k]) for k in item)
    other = ds[4]
    assert not torch.equal(item["sharp"], other["sharp"])
    assert not torch.equal(item["sharp"], SyntheticPairs(size=32, num_spike_frames=16, length=5, seed=8)[3]["sharp"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["spikes"].shape == (2, 16, 32, 32)
    with pytest.raises(IndexError):
        ds[5]


def test_dataset_crops_user_images(tmp_path) -> None:
    red = np.zeros((40, 60, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(tmp_path / "red.png")
    ds = SyntheticPairs(size=16, num_spike_frames=8, length=3, images=tmp_path, texture_fraction=0.0)
    sharp = ds[0]["sharp"]
    assert torch.allclose(sharp[0], torch.full((16, 16), 200 / 255), atol=1e-3)
    assert float(sharp[1:].abs().max()) < 1e-3


def test_make_pairs_writes_a_readable_folder(tmp_path) -> None:
    out = tmp_path / "pairs"
    index_path = make_pairs(out, 3, size=24, num_spike_frames=10, seed=4, progress=False)
    index = json.loads(index_path.read_text())
    assert index["format"] == "spikegen-pairs" and len(index["pairs"]) == 3
    for entry in index["pairs"]:
        for key in ("sharp", "blurred", "spikes"):
            assert (out / entry[key]).is_file()
    assert not list(out.rglob("*.tmp"))  # atomic writes left nothing behind
    folder = PairFolder(out)
    live = SyntheticPairs(size=24, num_spike_frames=10, length=3, seed=4)
    got, want = folder[1], live[1]
    assert torch.equal(got["spikes"], want["spikes"])
    assert (got["sharp"] - want["sharp"]).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.allclose(got["tfp"], want["tfp"])
    with pytest.raises(SpikeGenError, match="already exists"):
        make_pairs(out, 1, size=24, progress=False)


def test_simulate_command_writes_dat_and_sidecar(tmp_path, capsys) -> None:
    from spikegen_core.spikes.io import read_dat

    out = simulate_command(None, tmp_path / "sample.dat", frames=12, motion=1.0, threshold=2.0, seed=0)
    stream = read_dat(out)
    assert stream.spikes.shape == (12, 256, 256)
    rate = float(stream.spikes.float().mean())
    grey = to_grey(torch.from_numpy(np.asarray(Image.open(SAMPLE_PATH).convert("RGB"), np.float32) / 255).permute(2, 0, 1))
    assert abs(rate - float(grey.mean()) / 2.0) < 0.05
    printed = capsys.readouterr().out
    assert str(out) in printed and (tmp_path / "sample.sharp.png").is_file()
