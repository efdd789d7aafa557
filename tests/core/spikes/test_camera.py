"""The spike camera model: rates, exactness of integrate-and-fire, determinism, expected counts, noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.spikes.camera import (
    CFA_PATTERNS,
    CameraModel,
    cfa_channels,
    counts_to_intensity,
    expected_counts,
    load_noise_maps,
    mosaic,
    simulate,
    to_grey,
)

NOISE_MAPS = "spike/noise_calib/spikenerf_noise_maps.npz"


def naive_if(rates: np.ndarray, phase0: np.ndarray) -> np.ndarray:
    """Reference tick-by-tick integrate-and-fire in float64 (potential in units of the threshold)."""
    v = phase0.astype(np.float64).copy()
    out = np.zeros(rates.shape, dtype=np.uint8)
    for k in range(rates.shape[0]):
        v += rates[k]
        fire = v >= 1.0
        out[k] = fire
        v[fire] -= 1.0
    return out


def test_mean_rate_matches_gain_intensity_over_threshold() -> None:
    threshold, gain = 3.0, 1.5
    intensity = torch.linspace(0.1, 1.0, 16 * 16).reshape(16, 16)  # rates 0.05 … 0.5 per tick
    stream = simulate(intensity[None], 6000, threshold=threshold, gain=gain, seed=3)
    rate = stream.spikes.double().mean(0)
    want = gain * intensity.double() / threshold
    assert torch.all((rate - want).abs() <= 0.01 * want), (rate - want).abs().max()
    assert stream.threshold == threshold and stream.num_frames == 6000


def test_bright_pixels_saturate_at_one_spike_per_tick() -> None:
    intensity = torch.tensor([[0.5, 1.0], [3.0, 10.0]])  # threshold 1: last three are at or past saturation
    spikes = simulate(intensity[None], 500, threshold=1.0, seed=0).spikes
    assert spikes.dtype == torch.uint8 and int(spikes.max()) == 1
    rate = spikes.float().mean(0)
    assert torch.allclose(rate, torch.tensor([[0.5, 1.0], [1.0, 1.0]]), atol=2e-3)


@pytest.mark.parametrize(("num_frames", "interpolation"), [(3, "linear"), (90, "linear"), (300, "linear"), (7, "hold")])
def test_matches_tick_by_tick_reference_with_subtraction_reset(num_frames: int, interpolation: str) -> None:
    # 3 frames → matmul path; 90 → per-tick lerp + cumsum; 300 = one frame per tick; hold → piecewise constant.
    total = 300
    gen = torch.Generator().manual_seed(5)
    frames = torch.rand((num_frames, 12, 10), generator=gen) * 2.4  # some pixels past the threshold (2.0)
    init = torch.rand((12, 10), generator=gen) * 2.0
    stream = simulate(frames, total, init=init, seed=0, interpolation=interpolation)
    # Reference: the same interpolation, clipped rates, reset by subtraction, one spike per tick.
    if interpolation == "hold":
        pos = np.floor(np.arange(total) * num_frames / total)
    else:
        pos = np.arange(total) * (num_frames - 1) / (total - 1)
    lo = np.minimum(np.floor(pos).astype(int), num_frames - 2)
    frac = (pos - lo)[:, None, None]
    r = (frames.double() / 2.0).clamp(0, 1).numpy()
    rates = (1 - frac) * r[lo] + frac * r[lo + 1]
    ref = naive_if(rates, init.double().numpy() / 2.0)
    mismatch = (stream.spikes.numpy() != ref).mean()
    assert mismatch < 1e-3, mismatch
    assert abs(int(stream.spikes.sum()) - int(ref.sum())) <= 2


def test_same_seed_same_stream_other_seed_differs() -> None:
    frames = torch.rand((2, 3, 16, 16), generator=torch.Generator().manual_seed(1))  # RGB input
    a = simulate(frames, 200, seed=7).spikes
    b = simulate(frames, 200, seed=7).spikes
    c = simulate(frames, 200, seed=8).spikes
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Only the initial phase depends on the seed: the counts agree within one spike per pixel.
    assert (a.sum(0).int() - c.sum(0).int()).abs().max() <= 1


def test_rgb_input_uses_luma_weights() -> None:
    rgb = torch.rand((1, 3, 8, 8), generator=torch.Generator().manual_seed(2))
    grey = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert torch.allclose(to_grey(rgb), grey, atol=1e-6)
    assert torch.equal(simulate(rgb, 100, seed=1).spikes, simulate(grey, 100, seed=1).spikes)


def test_expected_counts_match_simulated_counts_and_carry_gradient() -> None:
    k, ticks, threshold, gain = 4, 150, 2.5, 1.2
    intensity = torch.rand((k, 20, 20), generator=torch.Generator().manual_seed(4)).requires_grad_(True)
    expected = expected_counts(intensity, ticks, threshold=threshold, gain=gain)
    assert expected.shape == (k, 20, 20)
    spikes = simulate(
        intensity.detach(), k * ticks, threshold=threshold, gain=gain, seed=11, interpolation="hold"
    ).spikes
    counts = spikes.view(k, ticks, 20, 20).sum(1).double()
    # Exact IF with uniform phase: each count is within one spike of its expectation, and unbiased.
    assert (counts - expected.detach().double()).abs().max() < 1.0 + 1e-4
    assert abs(float((counts - expected.detach()).mean())) < 0.05
    expected.sum().backward()
    assert torch.allclose(intensity.grad, torch.full_like(intensity, ticks * gain / threshold))
    # TFP scaling inverts the rate.
    back = counts_to_intensity(expected.detach(), ticks, threshold=threshold, gain=gain)
    assert torch.allclose(back, intensity.detach(), atol=1e-5)


def test_camera_model_expected_counts_include_dark_rate() -> None:
    cam = CameraModel(threshold=2.0, dark_rate=0.02)
    intensity = torch.zeros((1, 32, 32))
    spikes = cam.simulate(intensity, 3000, seed=2).spikes
    measured = spikes.double().mean()
    assert abs(float(measured) - 0.02) < 0.002
    assert torch.allclose(cam.expected_counts(torch.zeros(1, 1), 3000), torch.tensor([[60.0]]))


def test_callable_of_time_matches_interpolated_frames() -> None:
    gen = torch.Generator().manual_seed(6)
    f0, f1 = torch.rand((2, 10, 12), generator=gen)
    clock, total = 20_000.0, 400

    def intensity_at(t: float) -> torch.Tensor:
        w = t * clock / (total - 1)
        return f0 + (f1 - f0) * w

    from_fn = simulate(intensity_at, total, clock_hz=clock, seed=9).spikes
    from_frames = simulate(torch.stack([f0, f1]), total, clock_hz=clock, seed=9).spikes
    assert (from_fn != from_frames).float().mean() < 1e-3
    with pytest.raises(InputMismatchError):
        simulate(intensity_at)


def test_frame_times_place_frames_on_the_clock() -> None:
    dark, bright = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    # Bright from 5 ms on: with 100 ticks at 10 kHz the first half is dark, the second fires every other tick.
    frames = torch.cat([dark, dark, bright, bright])
    spikes = simulate(frames, 100, clock_hz=10_000, frame_times=[0.0, 0.0049, 0.005, 0.01], seed=1).spikes
    assert int(spikes[:49].sum()) == 0
    assert abs(float(spikes[52:].float().mean()) - 0.5) < 0.03


def test_streaming_chunks_equal_simulate() -> None:
    frames = torch.rand((3, 9, 9), generator=torch.Generator().manual_seed(3))
    cam = CameraModel(chunk_ticks=7)
    whole = cam.simulate(frames, 50, seed=4).spikes
    chunks = torch.cat(list(cam.iter_chunks(frames, 50, seed=4)))
    assert torch.equal(whole, chunks)
    assert torch.equal(whole, CameraModel(chunk_ticks=50).simulate(frames, 50, seed=4).spikes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree() -> None:
    frames = torch.rand((3, 32, 40), generator=torch.Generator().manual_seed(8))
    cpu = simulate(frames, 500, seed=5, dark_rate=0.01).spikes
    gpu = simulate(frames, 500, seed=5, dark_rate=0.01, device="cuda").spikes
    assert gpu.device.type == "cuda"
    assert (cpu != gpu.cpu()).float().mean() < 1e-3


def test_noise_maps_from_user_path(shared_data) -> None:
    path = shared_data / NOISE_MAPS
    maps = load_noise_maps(path)
    assert maps.shape == (250, 400)
    tiled = maps.fit(300, 410)
    assert tiled.shape == (300, 410) and torch.equal(tiled.nd[250:260, :5], maps.nd[:10, :5])
    intensity = torch.full((1, 24, 30), 1.0)
    noisy = simulate(intensity, 1000, noise_maps=path, seed=0).spikes.double().mean()
    # SpikeNeRF's transform darkens full white to ≈ 0.72 on average (rate ≈ 0.36 at θ = 2).
    assert 0.25 < float(noisy) < 0.45
    dark = simulate(torch.zeros(1, 24, 30), 2000, noise_maps=maps, seed=0).spikes
    assert 0 < float(dark.double().mean()) < 0.05  # dark current fires without light
    clean = simulate(intensity, 1000, seed=0).spikes.double().mean()
    assert float(clean) == pytest.approx(0.5, abs=1e-3)


def test_missing_noise_maps_raise_naming_the_file(tmp_path) -> None:
    missing = tmp_path / "nope_maps.npz"
    with pytest.raises(SpikeFileError, match="nope_maps.npz"):
        simulate(torch.ones(1, 4, 4), 10, noise_maps=missing)
    bad = tmp_path / "wrong_keys.npz"
    np.savez(bad, foo=np.zeros((2, 2), np.float32))
    with pytest.raises(SpikeFileError, match="wrong_keys.npz.*Nd"):
        CameraModel(noise_maps=bad)


# ------------------------------------------------------------------------------------ colour (Bayer) cameras
@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_cfa_per_channel_rates_match_radiance_times_gain_over_threshold(cfa: str) -> None:
    threshold, gain, cfa_gains = 2.5, 1.2, (0.8, 1.0, 1.4)
    h, w = 12, 16
    # Three different radiances per pixel, so a pixel sampling the wrong channel cannot pass.
    rgb = torch.stack([torch.full((h, w), 0.9), torch.full((h, w), 0.5), torch.full((h, w), 0.2)])
    rgb = rgb * torch.linspace(0.6, 1.0, w)
    stream = simulate(rgb[None], 4000, threshold=threshold, gain=gain, seed=5, cfa=cfa, cfa_gains=cfa_gains)
    assert stream.cfa == cfa and stream.cfa_gains == cfa_gains
    rate = stream.spikes.double().mean(0)
    channel = cfa_channels(cfa, h, w)
    assert channel[0, 0] == "RGB".index(cfa[0]) and channel[1, 1] == "RGB".index(cfa[3])
    for c in range(3):
        sites = channel == c
        want = gain * cfa_gains[c] * rgb[c].double()[sites] / threshold
        assert torch.all((rate[sites] - want).abs() <= 0.01 * want), (cfa, c)
    # Expected counts take linear RGB and the CFA: the same rates, with a gradient to every channel.
    x = rgb[None].clone().requires_grad_(True)
    exp = expected_counts(x, 4000, threshold=threshold, gain=gain, cfa=cfa, cfa_gains=cfa_gains)
    assert exp.shape == (1, h, w)
    assert (exp[0].detach().double() / 4000 - rate).abs().max() < 1.0 / 4000 + 1e-6
    exp.sum().backward()
    assert torch.all((x.grad[0] != 0).sum(0) == 1)  # each pixel depends on exactly one channel


def test_cfa_mosaic_and_camera_model_agree_and_refuse_grey_input() -> None:
    rgb = torch.rand((2, 3, 6, 8), generator=torch.Generator().manual_seed(1))
    m = mosaic(rgb, "grbg", (1.0, 2.0, 1.0))
    assert torch.equal(m[:, 0, 0], 2.0 * rgb[:, 1, 0, 0]) and torch.equal(m[:, 0, 1], rgb[:, 0, 0, 1])
    assert torch.equal(m[:, 1, 0], rgb[:, 2, 1, 0])
    cam = CameraModel(cfa="GRBG", cfa_gains=(1.0, 2.0, 1.0))
    assert torch.allclose(cam.rate(rgb), (m / 2.0).clamp(0, 1))
    with pytest.raises(InputMismatchError, match="linear RGB"):
        cam.simulate(rgb[:, 0], 10)
    with pytest.raises(InputMismatchError, match="RGGB"):
        CameraModel(cfa="RGBG")
    with pytest.raises(InputMismatchError, match="without a colour filter"):
        CameraModel(cfa_gains=(1.0, 2.0, 1.0))


def test_integration_weights_reproduce_the_simulators_counts() -> None:
    """The potential after tick t is v0 + integration_weights[t] @ rates, the cumulative count its floor: the
    simulator's spikes, to the tick, for frames spread evenly or placed at chosen ticks."""
    from spikegen_core.spikes.camera import integration_weights

    g = torch.Generator().manual_seed(3)
    frames = torch.rand(4, 6, 7, generator=g)
    init = torch.rand(6, 7, generator=g) * 0.9
    stream = simulate(frames, 50, threshold=1.0, init=init)
    potential = init + torch.einsum("tk,khw->thw", integration_weights(4, 50), frames)
    assert torch.equal(stream.spikes.float().cumsum(0), torch.floor(potential))
    w = integration_weights(3, 10, [2.0, 5.0, 8.0])  # held before tick 2 and after tick 8
    assert torch.allclose(w[1], torch.tensor([2.0, 0.0, 0.0])) and torch.allclose(w[-1].sum(), torch.tensor(10.0))
