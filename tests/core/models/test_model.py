"""The SpikeGen model: shapes, modality dropout, fusion semantics, input errors, sampling, spike-loss gradient."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from diffusers import AutoencoderKL

from spikegen_core.errors import InputMismatchError
from spikegen_core.losses import spike_stream_loss
from spikegen_core.models import ModelConfig, SpikeGen, VAEConfig, fade_to_grey, preset, sample_gamma, to_grey
from spikegen_core.models import spikegen as spikegen_module
from spikegen_core.models.vae import LatentVAE
from spikegen_core.train.objectives import PretrainObjective


def micro_config() -> ModelConfig:
    """A model small enough for sub-second tests (same code paths as ``tiny``)."""
    return ModelConfig(
        vae=VAEConfig(block_out_channels=(8, 16, 16), latent_channels=4, norm_num_groups=4),
        width=32, depth=1, heads=2, spike_widths=(4, 8, 8), head_width=32, head_depth=1, sample_steps=4,
    )


@pytest.fixture
def model() -> SpikeGen:
    return SpikeGen(micro_config()).eval()


def spikes_like(b: int, t: int, h: int, w: int, p: float = 0.3) -> torch.Tensor:
    return (torch.rand(b, t, h, w) < p).to(torch.uint8)


@pytest.mark.parametrize("t", [8, 16, 32, 64])
def test_shapes_for_window_lengths(model: SpikeGen, t: int) -> None:
    rgb = torch.rand(2, 3, 32, 48)
    spikes = spikes_like(2, t, 32, 48)
    cond, grid = model.condition(rgb, spikes, torch.tensor([0.3, 0.8]))
    assert grid == (8, 12)  # stride 4
    assert cond.shape == (2, 8 * 12, 32)
    tokens = model.spike_encoder(spikes)
    assert tokens.shape == (2, 32, 8, 12)
    out = model(rgb, spikes, 0.5)
    assert out.shape == (2, 3, 32, 48) and torch.isfinite(out).all()


def test_tiny_and_base_presets_describe_the_documented_sizes() -> None:
    tiny, base = preset("tiny"), preset("base")
    assert tiny.vae.stride == 4 and 4 <= tiny.vae.latent_channels <= 16
    assert base.vae.stride == 8 and base.vae.latent_channels == 16 and base.vae.scaling_factor == 0.2325
    assert (base.width, base.depth, base.heads, base.head_width, base.head_depth) == (768, 24, 12, 1024, 6)
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("huge")


def test_gamma_is_sampled_per_sample() -> None:
    g = sample_gamma(4000, endpoint_prob=0.2, generator=torch.Generator().manual_seed(1))
    assert g.min() >= 0 and g.max() <= 1
    ends = ((g == 0) | (g == 1)).float().mean()
    assert 0.15 < ends < 0.25
    inner = g[(g > 0) & (g < 1)]
    assert abs(inner.mean().item() - 0.5) < 0.03 and abs(inner.std().item() - 0.2887) < 0.02  # uniform


def test_pretraining_draws_a_different_gamma_for_each_sample(model: SpikeGen) -> None:
    seen = []
    real_fuse = spikegen_module.fuse

    def spy(a, b, gamma):
        seen.append(gamma.clone())
        return real_fuse(a, b, gamma)

    batch = {"sharp": torch.rand(6, 3, 32, 32), "spikes": spikes_like(6, 16, 32, 32)}
    with mock.patch.object(spikegen_module, "fuse", spy):
        PretrainObjective(model, endpoint_prob=0.0, diffusion_repeats=1)(batch)
        PretrainObjective(model, endpoint_prob=0.0, diffusion_repeats=1)(batch)
    assert seen[0].shape == (6,)
    assert len(set(seen[0].tolist())) == 6  # not a constant like the reference code's 0.5
    assert not torch.equal(seen[0], seen[1])


def test_target_fades_to_grey_as_gamma_grows() -> None:
    img = torch.rand(3, 3, 8, 8)
    out = fade_to_grey(img, torch.tensor([0.0, 0.5, 1.0]))
    grey = to_grey(img)
    assert torch.allclose(out[0], img[0])
    assert torch.allclose(out[2], grey[2].expand(3, -1, -1), atol=1e-6)
    assert torch.allclose(out[1], 0.5 * img[1] + 0.5 * grey[1], atol=1e-6)


def test_gamma_endpoints_drop_a_modality(model: SpikeGen) -> None:
    spikes = spikes_like(1, 16, 32, 32)
    rgb_a, rgb_b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        only_spikes = model.condition(None, spikes, 1.0)[0]
        assert torch.allclose(model.condition(rgb_a, spikes, 1.0)[0], only_spikes, atol=1e-5)
        assert torch.allclose(model.condition(rgb_b, spikes, 1.0)[0], only_spikes, atol=1e-5)
        only_rgb = model.condition(rgb_a, None, 0.0)[0]
        assert torch.allclose(model.condition(rgb_a, spikes_like(1, 16, 32, 32), 0.0)[0], only_rgb, atol=1e-5)
        assert not torch.allclose(model.condition(rgb_a, spikes, 0.5)[0], only_rgb, atol=1e-3)


def test_bad_inputs_raise_input_mismatch(model: SpikeGen) -> None:
    with pytest.raises(InputMismatchError, match="differs from RGB resolution"):
        model(torch.rand(1, 3, 32, 32), spikes_like(1, 16, 32, 48), 0.5)
    with pytest.raises(InputMismatchError, match="needs at least 8"):
        model(torch.rand(1, 3, 32, 32), spikes_like(1, 4, 32, 32), 0.5)
    with pytest.raises(InputMismatchError, match="not divisible"):
        model(None, spikes_like(1, 16, 30, 32), 1.0)
    with pytest.raises(InputMismatchError, match="γ must be 1"):
        model(None, spikes_like(1, 16, 32, 32), 0.5)
    with pytest.raises(InputMismatchError, match="neither"):
        model(None, None, 0.5)


def test_ddim_sampling_steps_and_temperature(model: SpikeGen) -> None:
    rgb, spikes = torch.rand(1, 3, 32, 32), spikes_like(1, 16, 32, 32)
    g = torch.Generator
    with torch.no_grad():
        a = model(rgb, spikes, 0.5, sampler="ddim", steps=3, temperature=0.0, generator=g().manual_seed(1))
        b = model(rgb, spikes, 0.5, sampler="ddim", steps=3, temperature=0.0, generator=g().manual_seed(2))
        c = model(rgb, spikes, 0.5, sampler="ddim", steps=3, temperature=1.0, generator=g().manual_seed(1))
        d = model(rgb, spikes, 0.5, sampler="ddim", steps=3, temperature=1.0, generator=g().manual_seed(2))
    assert a.shape == (1, 3, 32, 32)
    assert torch.allclose(a, b)  # temperature 0: deterministic
    assert (c - d).abs().mean() > 1e-3  # temperature 1: depends on the noise


def test_diffusion_head_loss_is_epsilon_mse_with_cosine_schedule(model: SpikeGen) -> None:
    sched = model.head.train_scheduler
    assert sched.config.beta_schedule == "squaredcos_cap_v2" and sched.config.prediction_type == "epsilon"
    # an untrained head predicts ~0 noise: the ε-MSE is then about the noise variance, 1
    loss = model.head.loss(torch.randn(4096, 4), torch.randn(4096, 32))
    assert 0.7 < loss.item() < 1.5


def test_spike_loss_matches_the_camera_model() -> None:
    spikes = (torch.rand(2, 40, 16, 16) < 0.25).to(torch.uint8)
    rate = spikes.float().mean(1)
    exact = (rate * 2.0).unsqueeze(1).expand(-1, 3, -1, -1)  # intensity whose rate is the observed one
    assert spike_stream_loss(exact, spikes, threshold=2.0).item() < 1e-10
    assert spike_stream_loss(exact * 0.5, spikes, threshold=2.0).item() > 1e-3
    theta = torch.tensor([2.0, 3.0])
    scaled = rate.unsqueeze(1).expand(-1, 3, -1, -1) * theta.view(2, 1, 1, 1)
    assert spike_stream_loss(scaled, spikes, threshold=theta).item() < 1e-10


def test_spike_loss_sends_gradient_into_the_model(model: SpikeGen) -> None:
    model.train()
    rgb, spikes = torch.rand(2, 3, 32, 32), spikes_like(2, 16, 32, 32, p=0.4)
    cond, grid = model.condition(rgb, spikes, torch.tensor([0.5, 0.5]))
    pred = model.decode(model.mean_latent(cond, grid), rgb, spikes)
    loss = spike_stream_loss(pred, spikes, threshold=2.0)
    loss.backward()
    parts = {
        "spike encoder": model.spike_encoder,
        "rgb projection": model.rgb_in,
        "transformer": model.backbone,
        "mean head": model.mean_head,
        "VAE decoder": model.vae.autoencoder.decoder,
        "pixel refiner": model.refiner,
    }
    for name, part in parts.items():
        total = sum(p.grad.abs().sum().item() for p in part.parameters() if p.grad is not None)
        assert total > 0, f"no gradient reached the {name}"


def test_refiner_starts_as_identity_and_uses_its_guides(model: SpikeGen) -> None:
    lat = torch.randn(1, 4, 8, 8)
    guide = torch.rand(1, 3, 32, 32)
    spikes = spikes_like(1, 16, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.decode(lat, guide, spikes), model.vae.decode(lat))  # zero-initialised residual
        torch.nn.init.normal_(model.refiner.net[-1].weight, std=0.1)
        a, b = model.decode(lat, guide, spikes), model.decode(lat, torch.zeros_like(guide), spikes)
        c = model.decode(lat, guide, None)
    assert (a - b).abs().mean() > 1e-4 and (a - c).abs().mean() > 1e-4


def test_vae_loads_from_a_local_diffusers_folder(tmp_path) -> None:
    ae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), latent_channels=16, norm_num_groups=4, scaling_factor=0.2325,
    )
    ae.save_pretrained(tmp_path / "vae")
    vae = LatentVAE.from_folder(tmp_path / "vae")
    assert vae.stride == 8 and vae.latent_channels == 16 and vae.config.scaling_factor == 0.2325
    cfg = micro_config()
    cfg.vae = vae.config
    m = SpikeGen(cfg, vae).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 3, 32, 32), spikes_like(1, 16, 32, 32), 0.5)
    assert out.shape == (1, 3, 32, 32)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = ae.encode(x * 2 - 1).latent_dist.mean * 0.2325
    assert torch.allclose(vae.encode(x), ref, atol=1e-6)


def test_window_cnn_is_one_more_intensity_estimate() -> None:
    """The WindowCNN estimate sits after TFI among the temporal features; with its head at zero it is exactly the
    TFP of its central ticks × θ, and windows shorter than its input still run."""
    from spikegen_core.models.temporal import MultiScaleTemporal
    from spikegen_core.spikes.reconstruct import tfp

    feats = MultiScaleTemporal((5, 9), channels=2, light_width=8, light_blocks=1, light_frames=9)
    assert (feats.estimates, feats.out_channels) == (4, 4 + 2 * 2)
    torch.nn.init.zeros_(feats.light.head.weight)
    torch.nn.init.zeros_(feats.light.head.bias)
    spikes = spikes_like(2, 21, 16, 24)
    theta = torch.tensor([2.0, 1.5])
    out = feats(spikes, theta)
    want = torch.stack([tfp(spikes[i], window=9, threshold=float(theta[i])) for i in range(2)])
    assert torch.allclose(out[:, 3], want, atol=1e-6)
    assert feats(spikes_like(2, 5, 16, 24), theta).shape == (2, 8, 16, 24)  # 5 ticks stretched to 9


def test_model_with_the_window_cnn_restores() -> None:
    cfg = micro_config()
    cfg.temporal_scales, cfg.temporal_channels, cfg.refiner_kind, cfg.theta_input = (5, 9), 2, "unet", True
    cfg.temporal_light_width, cfg.temporal_light_blocks = 8, 1
    model = SpikeGen(ModelConfig.from_dict(cfg.to_dict())).eval()  # the fields survive the checkpoint JSON
    assert model.temporal.light is not None and model.refiner.estimates == 4
    with torch.no_grad():
        out = model(None, spikes_like(1, 16, 32, 48), 1.0, threshold=2.0)
    assert out.shape == (1, 3, 32, 48) and torch.isfinite(out).all()


def test_refiner_anchored_at_the_window_cnn_starts_from_its_luma() -> None:
    cfg = micro_config()
    cfg.temporal_scales, cfg.temporal_channels, cfg.refiner_kind, cfg.theta_input = (5, 9), 2, "unet", True
    cfg.temporal_light_width, cfg.temporal_light_blocks, cfg.refiner_anchor = 8, 1, True
    refiner = SpikeGen(cfg).refiner
    assert refiner.anchor == 3  # TFP-5, TFP-9, TFI, then the WindowCNN's
    decoded, rgb = torch.rand(1, 3, 16, 16) * 0.5, torch.rand(1, 3, 16, 16)
    features = torch.rand(1, 4 + 2 * 2, 16, 16)
    out = refiner(decoded, rgb, features)  # untrained: the last layer is zero
    assert torch.allclose(to_grey(out), features[:, 3], atol=1e-6)
    assert torch.allclose(out - to_grey(out).unsqueeze(1), decoded - to_grey(decoded).unsqueeze(1), atol=1e-6)
    # RGB only: no spikes, no estimate to anchor at; the decoded image stays the base
    assert torch.equal(refiner(decoded, rgb, torch.zeros_like(features), anchored=False), decoded)
    model = SpikeGen(cfg).eval()
    with torch.no_grad():
        rgb_only = model(torch.rand(1, 3, 32, 48), None, 0.0)
    assert rgb_only.shape == (1, 3, 32, 48) and float(to_grey(rgb_only).mean()) > 0.05  # not pulled to black
    cfg.temporal_light_width = 0
    with pytest.raises(ValueError, match="refiner_anchor needs temporal_light_width"):
        SpikeGen(cfg)


def test_fast_model_gives_one_frame_everywhere_and_refuses_a_spikegen_checkpoint(tmp_path) -> None:
    """`--fast`: a WindowCNN checkpoint's estimate over the whole frame, the same through restore_tensors and the
    video/NVS restorer (batched); with RGB its luma goes into the RGB frame's chroma; a SpikeGen checkpoint (whose
    WindowCNN, if any, was trained as an input to its refiner) is refused with one line."""
    from spikegen_core.errors import CheckpointError, InputMismatchError
    from spikegen_core.models.temporal import WindowCNN
    from spikegen_core.train.checkpoint import load_fast_model, save_weights
    from spikegen_core.train.restore import restore_tensors
    from spikegen_core.video.restorers import ModelRestorer

    net = WindowCNN(9, 8, 1).eval()
    path = save_weights(tmp_path / "fast.safetensors", net.state_dict(),
                        {"model": {"window_cnn": {"frames": 9, "width": 8, "blocks": 1}}})  # fmt: skip
    loaded, _ = load_fast_model(path)
    spikes = spikes_like(2, 21, 24, 40)
    with torch.no_grad():
        want = net(spikes, torch.tensor([2.0, 2.0])).clamp(0, 1)
    one = restore_tensors(loaded, spikes[0], None, threshold=2.0)
    assert one.shape == (3, 24, 40) and torch.allclose(one[0], want[0, 0], atol=1e-6) and torch.equal(one[1], one[0])
    batch = ModelRestorer(path, threshold=2.0, fast=True)(spikes)
    assert batch.shape == (2, 1, 24, 40) and torch.allclose(batch, want, atol=1e-6)
    rgb = 0.4 + 0.2 * torch.rand(2, 3, 24, 40)
    deblurred = ModelRestorer(path, threshold=2.0, fast=True)(spikes, rgb)
    inside = ((deblurred > 0) & (deblurred < 1)).all(1)  # where no channel was clamped to [0, 1]
    assert inside.float().mean() > 0.2
    assert torch.allclose(to_grey(deblurred)[inside], want[:, 0][inside], atol=1e-5)
    chroma = (deblurred - to_grey(deblurred).unsqueeze(1)).permute(0, 2, 3, 1)[inside]
    assert torch.allclose(chroma, (rgb - to_grey(rgb).unsqueeze(1)).permute(0, 2, 3, 1)[inside], atol=1e-5)
    assert torch.allclose(restore_tensors(loaded, spikes[1], rgb[1], threshold=2.0), deblurred[1], atol=1e-6)
    with pytest.raises(InputMismatchError, match="fast model restores from spikes"):
        restore_tensors(loaded, None, rgb[0])
    full = save_weights(tmp_path / "full.safetensors", SpikeGen(micro_config()).state_dict(),
                        {"model": micro_config().to_dict()})  # fmt: skip
    with pytest.raises(CheckpointError, match="not a fast model"):
        ModelRestorer(full, fast=True).load()
    with pytest.raises(CheckpointError, match="a fast-model \\(WindowCNN\\) checkpoint, not a SpikeGen model"):
        ModelRestorer(path).load()  # and the other way round
