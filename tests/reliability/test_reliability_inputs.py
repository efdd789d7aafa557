"""Inputs users get wrong: each gets one of our own errors with a clear message and a suggestion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spikegen_core.errors import SceneFormatError, SpikeFileError, SpikeGenError
from spikegen_core.spikes.camera import simulate
from spikegen_core.spikes.io import read_dat, read_npz, write_dat


def test_dat_with_wrong_size_names_the_sizes_that_divide_it(tmp_path: Path) -> None:
    spikes = (torch.rand(10, 250, 400) < 0.2).to(torch.uint8)
    path = write_dat(tmp_path / "rec.dat", spikes, sidecar=False)
    with pytest.raises(SpikeFileError) as err:
        read_dat(path, 256, 256)  # 125,000 bytes is not a whole number of 8,192-byte frames
    msg = str(err.value)
    assert "rec.dat" in msg and "125,000 bytes" in msg and "256×256" in msg
    assert "250×400" in msg and "400×250" in msg  # the sizes that do divide it, as the suggestion
    assert "height=/width=" in msg
    assert torch.equal(read_dat(path, 250, 400).spikes, spikes)  # following the suggestion works


def test_npz_with_time_last_says_which_order_it_looks_like(tmp_path: Path) -> None:
    intensity = torch.rand(4, 32, 48, generator=torch.Generator().manual_seed(0))
    spikes = simulate(intensity, 60, threshold=2.0).spikes.numpy()  # (T, H, W) = (60, 32, 48)
    path = tmp_path / "rec.npz"
    np.savez(path, spk=np.transpose(spikes, (1, 2, 0)))  # stored (H, W, T), as SpikingSIM does
    with pytest.raises(SpikeFileError) as err:
        read_npz(path)  # default axes="THW" would give 32 frames of 48×60 images: plausible sizes, wrong data
    msg = str(err.value)
    assert "rec.npz" in msg and "axes='HWT'" in msg and "axis 2" in msg
    assert np.array_equal(read_npz(path, axes="HWT").spikes.numpy(), spikes)
    np.save(tmp_path / "rec.npy", spikes)  # the right order is not refused
    assert np.array_equal(read_npz(tmp_path / "rec.npy").spikes.numpy(), spikes)


def test_upright_recordings_keep_their_order(shared_data: Path) -> None:
    stream = read_npz(shared_data / "spike/real/uhsr_helicopter.npz")  # (T, H, W), noisy real sensor
    assert stream.spikes.shape == (200, 250, 250)


def test_real_time_last_recording_is_detected(shared_data: Path) -> None:
    path = shared_data / "spike/real/outdoor_trees.npz"  # (H, W, T) = (250, 400, 500)
    with pytest.raises(SpikeFileError, match=r"axes='HWT'"):
        read_npz(path)
    assert read_npz(path, axes="HWT").spikes.shape == (500, 250, 400)


def _scene(tmp_path: Path, **overrides) -> Path:
    from test_dataparser import write_tiny_scene

    root = write_tiny_scene(tmp_path / "scene", n_train=2, n_test=1, size=16, ticks=8)
    meta = json.loads((root / "transforms.json").read_text())
    for frame in meta["frames"]:
        for key, value in overrides.items():
            if "spike_path" in frame:
                if value is None:
                    frame.pop(key, None)
                else:
                    frame[key] = value
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


def _parse(root: Path):
    from spikegen_nvs.dataparser import SpikeDataParserConfig

    return SpikeDataParserConfig(data=root).setup().get_dataparser_outputs(split="train")


def test_images_and_spikes_of_different_sizes(tmp_path: Path) -> None:
    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    train = next(f for f in meta["frames"] if "spike_path" in f)
    Image.new("RGB", (32, 32)).save(root / train["file_path"])  # image 32×32, spikes 16×16
    with pytest.raises(SpikeGenError) as err:
        _parse(root)
    msg = str(err.value)
    assert Path(train["file_path"]).name in msg and "32x32" in msg and "w=16 h=16" in msg and "Resize" in msg


def test_spike_hw_differs_from_the_image_size(tmp_path: Path) -> None:
    root = _scene(tmp_path, spike_hw=[16, 24])
    with pytest.raises(SceneFormatError) as err:
        _parse(root)
    assert "transforms.json" in str(err.value) and "[16, 24]" in str(err.value) and "resample" in str(err.value)


def test_dat_of_another_resolution_than_the_scene(tmp_path: Path) -> None:
    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    train = next(f for f in meta["frames"] if "spike_path" in f)
    # 400 B = 12.5 scene frames; the scene's own 16×16 sidecar stays, so the size check is the reader's
    write_dat(root / train["spike_path"], torch.zeros(8, 20, 20, dtype=torch.uint8), sidecar=False)
    with pytest.raises(SpikeFileError) as err:
        _parse(root)
    msg = str(err.value)
    assert Path(train["spike_path"]).name in msg and "16×16" in msg and "height=/width=" in msg


def test_dat_whose_sidecar_disagrees_with_the_scene(tmp_path: Path) -> None:
    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    train = next(f for f in meta["frames"] if "spike_path" in f)
    write_dat(root / train["spike_path"], torch.zeros(8, 24, 24, dtype=torch.uint8))  # sidecar says 24×24
    with pytest.raises(SpikeGenError, match=r"24.*16|16.*24") as err:
        _parse(root)  # 576 B = 18 frames of 16×16: it divides, so only the sidecar tells
    msg = str(err.value)
    assert Path(train["spike_path"]).name in msg and ".dat.json" in msg and "24x24" in msg and "16x16" in msg


def test_dat_with_a_cropping_sidecar_is_read_with_its_own_size(tmp_path: Path) -> None:
    """A 16×20 readout whose sidecar crops 4 left columns fits a 16×16 scene and is read through the sidecar."""
    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    train = next(f for f in meta["frames"] if "spike_path" in f)
    spikes = (torch.rand(8, 16, 20, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.uint8)
    path = write_dat(root / train["spike_path"], spikes)
    side = path.with_name(path.name + ".json")
    side.write_text(json.dumps({**json.loads(side.read_text()), "crop": [4, 0]}))
    view = _parse(root).metadata["spike_views"][0]
    assert (view.height, view.width) == (16, 16)
    assert torch.equal(view.read().spikes, spikes[:, :, 4:])


def test_scene_whose_views_have_no_spike_windows(tmp_path: Path) -> None:
    root = _scene(tmp_path, spike_path=None, spike_range=None)
    with pytest.raises(SceneFormatError) as err:
        _parse(root)
    msg = str(err.value)
    assert "transforms.json" in msg and "no `spike_path`" in msg and "gt_path" in msg  # what to add instead


def test_empty_spike_window(tmp_path: Path) -> None:
    root = _scene(tmp_path, spike_range=[4, 4])
    with pytest.raises(SceneFormatError, match=r"spike_range \[4, 4\].*Fix `spike_range`"):
        _parse(root)


def test_scene_with_lens_distortion_says_to_use_pinhole(tmp_path: Path) -> None:
    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    meta.update(camera_model="OPENCV", k1=-0.05)  # what process-data wrote with --camera-model SIMPLE_RADIAL
    (root / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(SceneFormatError, match=r"distortion \{'k1': -0.05\}.*SIMPLE_PINHOLE"):
        _parse(root)
