"""The `natural` preset and its data: natural-image statistics, spike rates = intensity / θ, θ as an input,
the REDS θ constant, and one training step end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from spikegen_core.data.natural import (
    collage_canvas,
    leaf_radius,
    natural_canvas,
    natural_sample,
    training_photos,
)
from spikegen_core.data.reds import REDS_THRESHOLD, calibrate_threshold, reds_recordings
from spikegen_core.data.textures import random_texture
from spikegen_core.models import SpikeGen, preset
from spikegen_core.models.fusion import to_grey
from spikegen_core.spikes.reconstruct import tfp


def _spectral_slope(images: list[torch.Tensor]) -> float:
    """Slope of log radially averaged power vs log frequency (natural photographs: about −2)."""
    n = images[0].shape[-1]
    power = sum(torch.fft.fftshift(torch.fft.fft2(im.mean(0) - im.mean())).abs() ** 2 for im in images)
    y, x = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    r = torch.sqrt((x**2 + y**2).float())
    fs = torch.arange(2, n // 2 - 2).float()
    ps = torch.stack([power[(r >= f - 0.5) & (r < f + 0.5)].mean() for f in fs])
    a = torch.stack([fs.log(), torch.ones_like(fs)], 1)
    return float(torch.linalg.lstsq(a, ps.log()[:, None]).solution[0])


def test_natural_canvases_have_photo_statistics() -> None:
    g = torch.Generator().manual_seed(1)
    photos = [natural_canvas(g, (64, 64), texture_fraction=0.0) for _ in range(24)]
    g = torch.Generator().manual_seed(1)
    textures = [random_texture(64, 64, generator=g) for _ in range(24)]
    # measured −2.71 (photos) vs −3.18 (procedural textures, smoother): the photographs really are used
    slope = _spectral_slope(photos)
    assert -3.0 < slope < -2.0, slope
    assert slope > _spectral_slope(textures) + 0.2
    assert min(float(p.std()) for p in photos) > 0.01  # no flat crops
    assert all(0.0 <= float(p.min()) and float(p.max()) <= 1.0 for p in photos)


def test_collages_follow_the_dead_leaves_law_and_keep_photo_statistics() -> None:
    g = torch.Generator().manual_seed(2)
    radii = torch.tensor([leaf_radius(g, 2.5, 32.0) for _ in range(4000)])
    assert 2.5 <= float(radii.min()) and float(radii.max()) <= 32.0
    # p(r) ∝ r⁻³: P(r < 2 r_min) = (1 − 1/4) / (1 − (r_min / r_max)²) = 0.755
    assert abs(float((radii < 5.0).float().mean()) - 0.755) < 0.025
    g = torch.Generator().manual_seed(1)
    collages = [collage_canvas(g, (64, 64)) for _ in range(24)]
    # measured −2.73, as the photographs they are cut from (natural images: about −2)
    assert -3.0 < _spectral_slope(collages) < -2.0
    assert all(0.0 <= float(c.min()) and float(c.max()) <= 1.0 and float(c.std()) > 0.01 for c in collages)
    again = collage_canvas(torch.Generator().manual_seed(1), (64, 64))
    assert torch.equal(again, collages[0])  # a resumed run redraws the same batches


def test_simulated_spike_rates_match_intensity_over_theta() -> None:
    for theta in (1.2, 1.67, 3.0):
        s = natural_sample(torch.Generator().manual_seed(3), 32, 41, theta, motion_scale=0.0)
        assert s["spikes"].dtype == torch.uint8 and s["spikes"].shape == (41, 32, 32)
        # still camera: every pixel's count is within 1 of ticks · grey / θ (integrate-and-fire, reset by
        # subtraction, random initial potential)
        expected = 41 * to_grey(s["sharp"]) / theta
        counts = s["spikes"].float().sum(0)
        assert float((counts - expected).abs().max()) <= 1.0 + 1e-4, theta
        assert abs(float(tfp(s["spikes"], threshold=theta).mean()) - float(to_grey(s["sharp"]).mean())) < 0.01
    noisy = natural_sample(torch.Generator().manual_seed(3), 32, 41, 2.0, motion_scale=0.0, dark_rate=0.05)
    clean = natural_sample(torch.Generator().manual_seed(3), 32, 41, 2.0, motion_scale=0.0)
    extra = float(noisy["spikes"].float().mean() - clean["spikes"].float().mean())
    rate = float(clean["spikes"].float().mean())
    assert abs(extra - 0.05 * (1 - rate)) < 0.01, (extra, rate)  # dark spikes OR-ed in


def _natural_small() -> SpikeGen:
    cfg = preset("natural")
    cfg.vae = dataclasses.replace(cfg.vae, block_out_channels=(8, 16, 16), norm_num_groups=8)
    return SpikeGen(dataclasses.replace(cfg, width=48, depth=1, heads=2, head_width=32, refiner_width=8))


def test_theta_is_an_input_that_sets_the_output_scale() -> None:
    model = _natural_small().eval()
    spikes = (torch.rand(1, 33, 16, 16) < 0.3).to(torch.uint8)
    f1 = model.temporal(spikes, torch.tensor([1.5]))
    f2 = model.temporal(spikes, torch.tensor([3.0]))
    torch.testing.assert_close(f2, 2 * f1)  # every temporal feature is in intensity units, linear in θ
    rgb = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(rgb, spikes, 0.5, threshold=1.5), model(rgb, spikes, 0.5, threshold=3.0))
        # a refiner that picks the 5-frame TFP everywhere: the output's grey level is θ × rate, exactly
        out = model.refiner.out
        out.bias[4] = 1.0  # channel 4: blend weight toward the first estimate (TFP over 5 frames)
        a = to_grey(model(rgb, spikes, 0.5, threshold=1.5))
        b = to_grey(model(rgb, spikes, 0.5, threshold=3.0))
    torch.testing.assert_close(a[0], tfp(spikes[0], window=5, threshold=1.5), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b, 2 * a, atol=1e-5, rtol=1e-5)


def test_natural_preset_trains_and_resumes_from_its_folder(tmp_path: Path) -> None:
    from spikegen_core.train.checkpoint import load_model, save_weights
    from spikegen_core.train.config import FINETUNE_PRESETS, with_overrides
    from spikegen_core.train.data import training_batches
    from spikegen_core.train.finetune import finetune
    from spikegen_core.train.objectives import FinetuneObjective

    full = SpikeGen(preset("natural"))
    assert 5e6 < sum(p.numel() for p in full.parameters()) < 12e6  # checkpoint stays well under 50 MB
    model = _natural_small()
    init = tmp_path / "init.safetensors"
    save_weights(init, model.state_dict(), {"model": model.config.to_dict()})
    cfg = with_overrides(FINETUNE_PRESETS["natural"], out_dir=tmp_path / "ft", init=init, steps=2, batch_size=2,
                         image_size=16, warmup_steps=1, ckpt_every=1, progress=False, prefetch=False, threads=1)  # fmt: skip
    finetune(cfg)
    loaded, meta = load_model(tmp_path / "ft")  # a training folder: its newest EMA
    assert meta["step"] == 2 and meta["cpu_s"] > 0
    assert loaded.config.theta_input and loaded.config.refiner_kind == "unet"
    # one more step's gradient reaches the θ embedding, the temporal features and the refiner
    batch = next(training_batches(2, 16, (33, 33), (1.5, 2.0), source="natural"))
    obj = FinetuneObjective(model, "both", 0.5, 0.75, 9, 1)
    terms = obj(batch)
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    for part in (model.theta_embed, model.temporal, model.temporal_tokens, model.refiner):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_reds_theta_is_the_data_set_constant(shared_data: Path) -> None:
    root = shared_data / "spike" / "reds_synthetic"
    assert abs(calibrate_threshold(root) - REDS_THRESHOLD) < 0.005  # measured 1.6694
    # the REDS frame we train on is not one we evaluate on
    evaluated = {p.stem for _, _, p in reds_recordings(root)}
    assert "train_203_part4_key_id151" not in evaluated
    shapes = {tuple(p.shape) for p in training_photos(str(shared_data))}
    assert (3, 250, 400) in shapes  # the REDS frame without spikes is among the training photographs


def test_held_out_natural_deblurring_set_is_fixed_and_blurred() -> None:
    from spikegen_core.metrics import psnr
    from spikegen_core.train.evaluate import held_out_natural_set

    a, b = held_out_natural_set(count=3, size=32), held_out_natural_set(count=3, size=32)
    assert all(torch.equal(x["spikes"], y["spikes"]) for x, y in zip(a, b, strict=True))
    blur = [float(psnr(to_grey(s["blurred"]), to_grey(s["sharp"]))) for s in a]
    assert max(blur) < 40, blur  # every exposure moves: the blurred frame is not the sharp one
    assert min(float(s["sharp"].std()) for s in a) > 0.02  # photo content, not flat crops
