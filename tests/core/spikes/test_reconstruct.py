"""TFP/TFI reconstructions, the image helpers and PSNR/SSIM, down to the REDS benchmark samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spikegen_core.errors import InputMismatchError
from spikegen_core.image import load_image, rgb_to_grey, save_image
from spikegen_core.metrics import psnr, ssim
from spikegen_core.spikes.camera import CFA_PATTERNS, simulate
from spikegen_core.spikes.io import read_dat
from spikegen_core.spikes.reconstruct import cfa_scores, colour_frame, demosaic, guess_cfa, tfi, tfp
from spikegen_core.spikes.stream import SpikeStream

# θ the REDS samples' mean spike rate implies (mean(gt) / mean rate = 1.671 and 1.666 on the two
# samples, whole stream); fixed here so the test does not peek at the ground truth it scores against.
REDS_THRESHOLD = 1.67
REDS_NAMES = ("train_203_part2_key_id151", "train_203_part3_key_id151")


def _integrate_and_fire(
    intensity: torch.Tensor, ticks: int, threshold: float, init: torch.Tensor
) -> torch.Tensor:
    """Reference camera (reset by subtraction), independent of spikes/camera.py."""
    potential = init.clone()
    out = torch.zeros(ticks, *intensity.shape, dtype=torch.uint8)
    for t in range(ticks):
        potential += intensity
        fire = potential >= threshold
        potential -= fire * threshold
        out[t] = fire
    return out


def test_tfp_recovers_intensity_of_ideal_camera() -> None:
    intensity = torch.linspace(0.05, 0.95, 48).view(6, 8)
    spikes = _integrate_and_fire(intensity, 400, 2.0, torch.rand(6, 8) * 2.0)
    est = tfp(spikes, threshold=2.0)
    # 400 ticks, at most one spike of quantisation error: |error| <= θ/400
    assert est.shape == (6, 8) and est.dtype == torch.float32
    assert torch.allclose(est, intensity, atol=2.0 / 400 + 1e-6)
    # gain scales the other way; window/centre pick exactly the frames SpikeStream.window picks
    assert torch.allclose(tfp(spikes, threshold=2.0, gain=2.0), est / 2)
    stream = SpikeStream(spikes, threshold=4.0)
    win = stream.window(100, 41)
    assert torch.allclose(tfp(stream, center=100, window=41), win.spikes.float().mean(0) * 4.0)


def test_tfi_regular_trains_and_fallbacks() -> None:
    t = 21  # centre = 10
    spikes = torch.zeros(t, 1, 6, dtype=torch.uint8)
    spikes[2::4, 0, 0] = 1  # spikes at 2, 6, 10, 14, 18: interval 4 around the centre
    spikes[[7, 13], 0, 1] = 1  # straddles the centre: interval 6
    spikes[[1, 4], 0, 2] = 1  # only before the centre: uses 4 - 1 = 3
    spikes[[15, 20], 0, 3] = 1  # only after: 20 - 15 = 5
    spikes[12, 0, 4] = 1  # a single spike: interval = window length 21
    est = tfi(spikes, threshold=2.0)
    expected = torch.tensor([[2 / 4, 2 / 6, 2 / 3, 2 / 5, 2 / 21, 0.0]])
    assert torch.allclose(est, expected)
    # a spike exactly at the centre counts as "at or before" it
    at_centre = torch.zeros(t, 1, 1, dtype=torch.uint8)
    at_centre[[10, 12], 0, 0] = 1
    assert torch.allclose(tfi(at_centre, threshold=1.0), torch.tensor([[0.5]]))


def test_tfi_matches_intensity_of_ideal_camera() -> None:
    intensity = torch.linspace(0.2, 1.0, 30).view(5, 6)
    spikes = _integrate_and_fire(intensity, 80, 2.0, torch.zeros(5, 6))
    est = tfi(spikes, threshold=2.0)
    # intervals are the integer rounding of θ/I: within one tick of the true interval
    true_interval = 2.0 / intensity
    est_interval = 2.0 / est
    assert ((est_interval - true_interval).abs() <= 1.0 + 1e-5).all()


def test_batched_and_bad_windows() -> None:
    spikes = (torch.rand(2, 3, 31, 4, 5) < 0.4).to(torch.uint8)
    p, i = tfp(spikes, window=11), tfi(spikes, window=11)
    assert p.shape == i.shape == (2, 3, 4, 5)
    assert torch.allclose(p[1, 2], tfp(spikes[1, 2], window=11))
    assert torch.allclose(i[1, 2], tfi(spikes[1, 2], window=11))
    with pytest.raises(InputMismatchError, match="41-frame window around frame 5"):
        tfp(spikes, center=5, window=41)
    with pytest.raises(InputMismatchError, match=r"\(\.\.\., T, H, W\)"):
        tfi(torch.zeros(4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    spikes = (torch.rand(41, 32, 48) < 0.3).to(torch.uint8)
    for fn in (tfp, tfi):
        out = fn(spikes.cuda(), threshold=2.0)
        assert out.is_cuda
        assert torch.allclose(out.cpu(), fn(spikes, threshold=2.0))


def test_grey_conventions_and_image_round_trip(tmp_path: Path) -> None:
    rgb = torch.zeros(3, 2, 2)
    rgb[0, 0, 0] = 1.0  # red
    rgb[2, 1, 1] = 1.0  # blue
    assert torch.allclose(rgb_to_grey(rgb), torch.tensor([[0.299, 0.0], [0.0, 0.114]]))
    assert torch.allclose(rgb_to_grey(rgb, "reds"), torch.tensor([[0.30, 0.0], [0.0, 0.11]]))
    assert rgb_to_grey(rgb.expand(4, 3, 2, 2)).shape == (4, 2, 2)

    img = torch.rand(3, 9, 13)
    save_image(tmp_path / "a.png", img)
    back = load_image(tmp_path / "a.png")
    assert back.shape == (3, 9, 13) and (back - img).abs().max() <= 0.5 / 255 + 1e-6
    save_image(tmp_path / "g.png", img[0])
    assert load_image(tmp_path / "g.png", mode="keep").shape == (9, 13)
    assert torch.allclose(load_image(tmp_path / "a.png", mode="grey"), rgb_to_grey(back))
    with pytest.raises(InputMismatchError, match="NaN"):
        save_image(tmp_path / "n.png", torch.full((2, 2), float("nan")))


def test_psnr_ssim_values_and_shapes() -> None:
    target = torch.rand(3, 32, 32) * 0.8
    pred = target + 0.1  # MSE 0.01 → exactly 20 dB
    assert psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(pred[0], target[0]).item() == pytest.approx(20.0, abs=1e-4)
    batch = torch.stack([target + 0.1, target + 0.01])
    per = psnr(batch, torch.stack([target, target]), reduction="none")
    assert per.shape == (2,) and per[1].item() == pytest.approx(40.0, abs=1e-3)
    assert ssim(target, target).item() == pytest.approx(1.0, abs=1e-6)
    noisy = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    assert ssim(noisy, target).item() < 0.9
    with pytest.raises(InputMismatchError, match="differ in shape"):
        psnr(target, target[:, :16])


def _reds(shared_data: Path, name: str) -> tuple[SpikeStream, torch.Tensor]:
    root = shared_data / "spike" / "reds_synthetic"
    stream = read_dat(root / "spike" / f"{name}.dat", 250, 400, start=130, count=41, threshold=REDS_THRESHOLD)
    gt = load_image(root / "gt" / f"{name}.png", mode="grey", grey="reds")
    return stream, gt


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


@pytest.mark.parametrize("name", REDS_NAMES)
def test_reds_orientation_and_quality(shared_data: Path, name: str) -> None:
    stream, gt = _reds(shared_data, name)  # frames 130..170: 41 frames centred on key frame 150
    assert gt.shape == (250, 400)
    image = tfp(stream)
    assert _pearson(image, gt) >= 0.9
    assert _pearson(image.flip(0), gt) < 0.6  # the decode without the row flip does not match
    # Measured with θ = 1.67: TFP 23.50 / 23.72 dB, TFI 24.57 / 26.20 dB; floors 1 dB below.
    tfp_psnr = psnr(image.clamp(0, 1), gt).item()
    tfi_psnr = psnr(tfi(stream).clamp(0, 1), gt).item()
    assert tfp_psnr > 22.5
    assert tfi_psnr > 23.5
    assert ssim(image.clamp(0, 1), gt).item() > 0.55


# ------------------------------------------------------------------------------------ colour (Bayer) streams
def _colour_scene() -> torch.Tensor:
    """The bundled sample image at 64x96: a static, textured, colourful scene (linear RGB in [0, 1])."""
    img = load_image(Path(__file__).parents[3] / "spikegen_core" / "assets" / "sample.png")
    return torch.nn.functional.interpolate(img[None], size=(64, 96), mode="area")[0]


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_colour_tfp_of_a_static_scene_matches_its_ground_truth_in_colour(cfa: str) -> None:
    gt = _colour_scene()
    gains = (0.9, 1.0, 0.7)
    stream = simulate(gt[None], 400, seed=0, cfa=cfa, cfa_gains=gains)
    rgb = colour_frame(stream)
    assert rgb.shape == (3, 64, 96)
    # Measured 34.8 dB (edge-aware) / 34.5 dB (bilinear); the grey TFP of the same stream is ~54 dB, so
    # the loss is demosaicing's, not the spikes'. Each channel must be right on its own, too.
    assert float(psnr(rgb.clamp(0, 1), gt)) > 33.0
    assert all(float(psnr(rgb[c].clamp(0, 1), gt[c])) > 31.0 for c in range(3))
    # Demosaicing under a wrong pattern is visibly wrong.
    for wrong in set(CFA_PATTERNS) - {cfa}:
        bad = demosaic(tfp(stream), wrong, gains=gains)
        assert float(psnr(bad.clamp(0, 1), gt)) < 25.0, wrong


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_guess_cfa_picks_the_true_pattern(cfa: str) -> None:
    gt = _colour_scene()
    stream = simulate(gt[None], 200, seed=1, cfa=cfa)
    mosaic_tfp = tfp(stream)
    scores = cfa_scores(mosaic_tfp)
    green_pair = {"RGGB", "BGGR"} if cfa in ("RGGB", "BGGR") else {"GRBG", "GBRG"}
    # Wrong green sites fringe: about 3x the chroma detail of either pattern with the right ones.
    assert min(scores[p] for p in set(CFA_PATTERNS) - green_pair) > 2.0 * max(scores[p] for p in green_pair)
    assert guess_cfa(mosaic_tfp, reference=gt) == cfa
    assert guess_cfa(stream) in green_pair
