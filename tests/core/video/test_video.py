"""Video: sliding windows, flat memory over large files, MP4 output, deblurring, consistency, synthetic data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.metrics import psnr
from spikegen_core.spikes import SpikeStream, read_dat, tfp, write_dat
from spikegen_core.spikes.camera import simulate, to_grey
from spikegen_core.video import (
    SpikeSource,
    TFPRestorer,
    iter_window_batches,
    restore_frames,
    restore_video,
    restore_video_command,
    window_centres,
)
from spikegen_core.video.consistency import (
    consistency_report,
    flicker,
    psnr_per_frame,
    static_mask,
    temporal_error,
    warping_error,
)
from spikegen_core.video.deblur import deblur_video, deblur_video_command, output_times
from spikegen_core.video.restorers import AdaptiveTFPRestorer, luma_swap
from spikegen_core.video.synthetic import make_sequence, sequence_samples, write_sequence


@pytest.fixture(scope="module")
def seq():
    """A fast-moving sequence: 800 ticks at 48×64, an RGB exposure (160 ticks) every 200 ticks."""
    return make_sequence((48, 64), 800, rgb_period=200, exposure=160, seed=1, speed_px_per_tick=0.1)


def _read_mp4(path: Path) -> list[np.ndarray]:
    import imageio.v2 as iio

    with iio.get_reader(path, format="FFMPEG") as r:
        return [np.asarray(f) for f in r]


# ------------------------------------------------------------------------------------------- windows
def test_window_centres_at_output_rate():
    c = window_centres(2000, 41, clock_hz=20_000, fps=1000)
    assert np.all(np.diff(c) == 20)
    assert c[0] == 20 and c[-1] + 21 <= 2000 and c[-1] + 20 + 21 > 2000  # every window fits, none is missed
    c3 = window_centres(20_000, 41, clock_hz=20_000, fps=3000)  # 6.67 ticks: rounded per frame, exact on average
    assert abs((c3[-1] - c3[0]) / (len(c3) - 1) - 20_000 / 3000) < 1e-2
    part = window_centres(2000, 41, fps=1000, start=500, stop=700)
    assert part[0] == 500 and part[-1] < 700
    with pytest.raises(InputMismatchError):
        window_centres(30, 41, fps=1000)
    with pytest.raises(InputMismatchError):
        window_centres(100, 5, fps=1000, step=3)


def test_window_batches_match_direct_slices_from_dat(tmp_path):
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(300, 12, 20, generator=g) < 0.3).to(torch.uint8)
    path = write_dat(tmp_path / "s.dat", SpikeStream(spikes, threshold=2.0))
    src = SpikeSource.open(path)
    assert (src.num_frames, src.height, src.width, src.threshold) == (300, 12, 20, 2.0)
    centres = window_centres(300, 21, step=13)
    got = torch.cat([b.spikes for b in iter_window_batches(src, centres, 21, batch_size=4)])
    want = torch.stack([spikes[c - 10 : c + 11] for c in centres])
    assert torch.equal(got, want)
    # .npy (time last) is memory-mapped too and reads the same frames.
    np.save(tmp_path / "s.npy", np.transpose(spikes.numpy(), (1, 2, 0)))
    npy = SpikeSource.open(tmp_path / "s.npy", axes="HWT")
    assert npy.num_frames == 300 and torch.equal(npy.read(17, 30), spikes[17:47])
    # The built-in restorer is TFP exactly as spikegen_core.spikes.tfp computes it.
    out = TFPRestorer(2.0)(got.float())
    ref = torch.stack([tfp(spikes, center=int(c), window=21, threshold=2.0) for c in centres])
    assert torch.allclose(out[:, 0], ref.clamp(0, 1))


def test_source_errors(tmp_path):
    with pytest.raises(SpikeFileError):
        SpikeSource.open(tmp_path / "missing.dat")
    src = SpikeSource.from_stream(SpikeStream(torch.zeros(50, 4, 4, dtype=torch.uint8)))
    with pytest.raises(InputMismatchError):
        src.read(40, 20)


# ------------------------------------------------------------------------------------ dense video
def test_restore_video_writes_mp4_and_frames(tmp_path):
    # A bright square drifting right, 2 px per 20 ticks, on a mid-grey background.
    intensity = torch.full((400, 32, 48), 0.4)
    for k in range(400):
        x = 4 + k // 10
        intensity[k, 10:22, x : x + 10] = 0.9
    from spikegen_core.spikes import simulate

    stream = simulate(intensity, threshold=2.0, seed=0)
    src = SpikeSource.from_stream(stream)
    res = restore_video(src, tmp_path, fps=1000, window=21, batch_size=3, frames=True, progress=False, name="v")
    centres = window_centres(400, 21, fps=1000)
    assert res.frames == len(centres) == 19
    frames = _read_mp4(Path(res.mp4))
    assert len(frames) == res.frames and frames[0].shape == (32, 48, 3)
    pngs = sorted(Path(res.frames_dir).glob("*.png"))
    assert len(pngs) == res.frames
    from spikegen_core.image import load_image

    want = tfp(stream.spikes, center=int(centres[5]), window=21, threshold=2.0).clamp(0, 1)
    assert (load_image(pngs[5], mode="grey") - want).abs().max() <= 1 / 255 + 1e-6
    # The square moves right in the video: its brightest column advances.
    cols = [f[..., 0].astype(float)[10:22].mean(0).argmax() for f in frames]
    assert cols[-1] - cols[0] >= 25 and np.mean(np.diff(cols)) > 0
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["frames"] == 19 and meta["step_ticks"] == 20


def test_restore_video_memory_stays_flat_on_large_dat(tmp_path):
    """A 477 MB (sparse) .dat: windows spread over the whole file; memory does not grow with the stream.

    Measured in a fresh interpreter (tests/core/video/_memory_probe.py): the pytest process's heap carries every earlier
    test, and there the same measurement grew 14–15 MB in 3 of 6 full-suite runs with nothing leaking."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs glibc to pin the malloc mmap threshold")
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("_memory_probe.py")), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["frames"] == r["means"] == 100
    assert r["first_mean"] == 0.0 and r["last_mean"] == 1.0  # the windows came from the right places in the file
    assert r["growth_mb"] < 10, f"peak RSS grew {r['growth_mb']:.0f} MB more over the whole stream than over 10 windows"
    assert r["total_mb"] < 60, f"RSS grew {r['total_mb']:.0f} MB in all on a {r['stream_mb']:.0f} MB stream"


def test_restore_video_command_on_npz(tmp_path, capsys):
    spikes = (torch.rand(120, 16, 24) < 0.4).to(torch.uint8).numpy()
    np.savez_compressed(tmp_path / "rec.npz", arr_0=np.transpose(spikes, (1, 2, 0)))  # (H, W, T) like SpikingSIM
    restore_video_command(tmp_path / "rec.npz", out=tmp_path / "o", fps=2000, window=21, axes="HWT")
    mp4 = tmp_path / "o" / "rec_spikegen-fast_2000fps.mp4"  # the default restorer on a grey stream: the fast model
    assert len(_read_mp4(mp4)) == len(window_centres(120, 21, fps=2000)) == 10
    assert "10 frames" in capsys.readouterr().out


def test_restore_video_int8_auto_only_for_videos_that_repay_the_calibration(tmp_path, monkeypatch):
    """--int8 auto: float32 for a short clip, int8 once output frames × pixels reach the threshold; on/off force it."""
    import spikegen_core.video.dense as dense

    spikes = (torch.rand(120, 16, 24) < 0.4).to(torch.uint8).numpy()
    np.save(tmp_path / "rec.npy", spikes)
    used = []
    monkeypatch.setattr(dense, "make_restorer", lambda *a, **k: used.append(k["int8"]) or TFPRestorer(2.0))
    for int8 in ("auto", "on", "off"):
        restore_video_command(tmp_path / "rec.npy", out=tmp_path / "o", fps=2000, window=21, int8=int8, mp4=False)
    monkeypatch.setattr(dense, "INT8_MIN_PIXEL_FRAMES", 10 * 16 * 24)  # 10 output frames of 16×24
    restore_video_command(tmp_path / "rec.npy", out=tmp_path / "o", fps=2000, window=21, mp4=False)
    assert used == [False, True, False, True]


def test_adaptive_tfp_flickers_less_than_short_tfp(seq):
    src = SpikeSource.from_stream(seq.spikes)
    centres = window_centres(src.num_frames, 161, fps=1000)
    gt = to_grey(seq.sharp_at(centres))
    out = {}
    for name, r, win in (("short", TFPRestorer(2.0, window=41), 161), ("adaptive", AdaptiveTFPRestorer(2.0), 161)):
        frames = []
        restore_frames(src, centres, win, r, progress=False, sink=lambda c, f, frames=frames: frames.append(f))
        out[name] = consistency_report(torch.cat(frames)[:, 0], gt)
    assert out["adaptive"]["flicker_static"] < 0.6 * out["short"]["flicker_static"]
    assert out["adaptive"]["psnr_mean"] > out["short"]["psnr_mean"] + 1.0


# --------------------------------------------------------------------------------------- synthetic
def test_sequence_is_continuous_with_rgb_at_lower_rate(seq, tmp_path):
    assert seq.spikes.spikes.shape == (800, 48, 64)
    assert seq.exposures.tolist() == [[20, 180], [220, 380], [420, 580], [620, 780]]
    # Blurred frame = mean of the sharp views over its exposure.
    a, b = seq.exposures[1].tolist()
    assert torch.allclose(seq.blurred[1], seq.sharp_at(np.arange(a, b)).mean(0), atol=1e-5)
    # Continuous motion: neighbouring ticks barely differ, far-apart ticks differ a lot.
    v = seq.sharp_at([100, 101, 700])
    assert (v[1] - v[0]).abs().mean() < 0.2 * (v[2] - v[0]).abs().mean()
    # Spikes follow the intensity: long-window TFP on static pixels ≈ grey ground truth.
    gt = to_grey(seq.sharp_at(np.arange(0, 800, 20)))
    mask = static_mask(gt)
    est = tfp(seq.spikes.spikes, threshold=2.0)
    assert mask.float().mean() > 0.3
    assert (est - gt[0])[mask].abs().mean() < 0.01
    # Training samples: one per exposure, the keys of SyntheticPairs, sharp target at the exposure centre.
    samples = sequence_samples(seq)
    assert len(samples) == 4 and set(samples[0]) == {"sharp", "blurred", "spikes", "tfp"}
    assert samples[2]["spikes"].shape == (160, 48, 64)
    assert torch.allclose(samples[2]["sharp"], seq.sharp_at([500])[0])
    assert (samples[2]["tfp"] - to_grey(samples[2]["blurred"])).abs().mean() < 0.02  # same integration window
    # Streaming to .dat gives the same spikes.
    kw = {"rgb_period": 100, "exposure": 80, "seed": 2}
    mem, disk = make_sequence((24, 32), 300, **kw), make_sequence((24, 32), 300, spikes_path=tmp_path / "s.dat", **kw)
    assert disk.spikes is None and torch.equal(read_dat(disk.spikes_path).spikes, mem.spikes.spikes)


# ---------------------------------------------------------------------------------------- deblur
def test_output_times_upsample():
    ex = torch.tensor([[0, 100], [200, 300], [400, 500]])
    t, nearest = output_times(ex, 4)
    assert t.tolist() == [50, 100, 150, 200, 250, 300, 350, 400, 450]
    assert nearest.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2]  # ties go to the earlier RGB frame
    assert len(output_times(ex, 1)[0]) == 3
    with pytest.raises(InputMismatchError):
        output_times(ex, 0)


def test_read_exposures_in_seconds(tmp_path):
    from spikegen_core.errors import SpikeGenError
    from spikegen_core.video.deblur import read_exposures

    (tmp_path / "e.json").write_text(json.dumps({"unit": "seconds", "exposures": [[0.001, 0.009], [0.011, 0.019]]}))
    ex, _ = read_exposures(tmp_path / "e.json", clock_hz=20_000)
    assert ex.tolist() == [[20, 180], [220, 380]]
    (tmp_path / "bad.json").write_text(json.dumps({"exposure": []}))
    with pytest.raises(SpikeGenError, match="bad.json"):
        read_exposures(tmp_path / "bad.json", clock_hz=20_000)


def test_deblur_beats_blur_and_upsampling_beats_holding(seq):
    src = SpikeSource.from_stream(seq.spikes)
    res = deblur_video(seq.blurred, seq.exposures, src, TFPRestorer(2.0, window=41), upsample=4)
    centres = seq.exposures.double().mean(1).round().long()
    sharp_gt = seq.sharp_at(centres)
    assert res.frames.shape == (13, 3, 48, 64) and res.times.tolist()[::4] == centres.tolist()
    assert psnr(res.sharp, sharp_gt) > psnr(seq.blurred, sharp_gt) + 0.5
    gt = seq.sharp_at(res.times)
    nearest = np.abs(res.times[:, None] - centres.numpy()[None]).argmin(1)
    between = np.arange(len(res.times)) % 4 != 0
    ours = psnr_per_frame(res.frames[between], gt[between])
    held = psnr_per_frame(res.sharp[nearest][between], gt[between])
    assert float((ours - held).mean()) > 1.0  # the spikes carry the motion between RGB frames
    # At exposure centres the output is the deblurred frame itself.
    assert torch.allclose(res.frames[::4], res.sharp, atol=1e-6)


def test_deblur_rejects_mismatched_inputs(seq):
    src = SpikeSource.from_stream(seq.spikes)
    with pytest.raises(InputMismatchError):
        deblur_video(seq.blurred[:, :, :40], seq.exposures, src)  # RGB not at the spike resolution
    with pytest.raises(InputMismatchError):
        deblur_video(seq.blurred, seq.exposures + 700, src)  # exposures past the stream
    with pytest.raises(InputMismatchError):
        deblur_video(seq.blurred[:3], seq.exposures, src)


def test_deblur_video_command_end_to_end(seq, tmp_path):
    exposures = write_sequence(seq, tmp_path / "capture")
    deblur_video_command(tmp_path / "capture" / "blurred", exposures, out=tmp_path / "out", upsample=2, png=True)
    mp4 = tmp_path / "out" / "deblurred_tfp_x2.mp4"
    frames = _read_mp4(mp4)
    assert len(frames) == 7 and frames[0].shape == (48, 64, 3)
    from spikegen_core.image import load_image

    first = load_image(tmp_path / "out" / "deblurred_tfp_x2" / "frame_000000.png")
    assert psnr(first, seq.sharp_at([100])[0]) > psnr(seq.blurred[0], seq.sharp_at([100])[0])


def test_luma_swap_keeps_chroma():
    rgb = torch.rand(2, 3, 5, 5) * 0.5 + 0.25
    luma = torch.full((2, 5, 5), 0.5)
    out = luma_swap(rgb, luma)
    assert torch.allclose(to_grey(out), luma, atol=1e-5)
    assert torch.allclose(out - to_grey(out)[:, None], rgb - to_grey(rgb)[:, None], atol=1e-5)


# ------------------------------------------------------------------------------------ consistency
def test_consistency_measures_known_values():
    gt = torch.rand(1, 1, 16, 16).expand(6, 1, 16, 16).clone()
    gt[:, :, :4] = torch.rand(6, 1, 4, 16)  # top rows change every frame, the rest is static
    mask = static_mask(gt)
    assert not mask[:4].any() and mask[4:].all()
    e = 0.02
    sign = torch.tensor([1.0, -1.0] * 3).view(6, 1, 1, 1)
    pred = gt + e * sign  # alternating offset: flicker exactly 2e on static pixels, MSE e²
    assert flicker(pred, mask) == pytest.approx(2 * e, rel=1e-4)
    assert flicker(gt, mask) == 0.0
    assert temporal_error(pred, gt) == pytest.approx(2 * e, rel=1e-4)
    assert temporal_error(gt, gt) == 0.0
    assert psnr_per_frame(pred, gt).mean().item() == pytest.approx(-10 * np.log10(e * e), abs=0.01)
    assert warping_error(gt, gt) < warping_error(pred, gt)
    rep = consistency_report(pred, gt)
    assert rep["static_fraction"] == pytest.approx(0.75) and rep["psnr_std"] < 0.01


# -------------------------------------------------------------------------------------- real data
@pytest.mark.parametrize("name,axes", [("uhsr_helicopter.npz", "THW"), ("outdoor_trees.npz", "HWT")])
def test_real_recordings_to_mp4(shared_data, tmp_path, name, axes):
    path = shared_data / "spike" / "real" / name
    src = SpikeSource.open(path, axes=axes)
    res = restore_video(src, tmp_path, fps=1000, window=41, stop=min(src.num_frames, 300), progress=False,
                        normalize=True)  # the helicopter fires at 3 %: TFP alone is nearly black
    frames = np.stack(_read_mp4(Path(res.mp4))).astype(np.float32) / 255
    assert len(frames) == res.frames >= 5 and np.isfinite(frames).all()
    assert frames.std() > 0.05  # textured, not constant
    # Each frame resembles the long-window TFP (no ground truth: a no-reference sanity check).
    full = src.read(0, min(src.num_frames, 300))
    long_tfp = tfp(full, threshold=2.0).clamp(0, 1).numpy()
    corr = np.corrcoef(frames[len(frames) // 2, ..., 0].ravel(), long_tfp.ravel())[0, 1]
    assert corr > 0.5


# ------------------------------------------------------------------------------------------ model hook
def test_model_restorer_runs_a_checkpoint(tmp_path):
    """The SpikeGen hook: a (randomly initialised) tiny checkpoint restores padded, odd-sized windows."""
    pytest.importorskip("diffusers")
    from spikegen_core.errors import CheckpointError
    from spikegen_core.models.presets import tiny
    from spikegen_core.models.spikegen import SpikeGen
    from spikegen_core.train.checkpoint import save_weights
    from spikegen_core.video.restorers import ModelRestorer

    cfg = tiny()
    ckpt = save_weights(tmp_path / "m.safetensors", SpikeGen(cfg).state_dict(), {"model": cfg.to_dict()})
    rest = ModelRestorer(ckpt).load()
    spikes = (torch.rand(2, 80, 18, 30) < 0.3).to(torch.uint8)  # 18×30 is not a multiple of the stride
    grey = rest(spikes)
    colour = rest(spikes, torch.rand(2, 3, 18, 30))
    assert grey.shape == (2, 1, 18, 30) and colour.shape == (2, 3, 18, 30)
    assert torch.isfinite(colour).all() and 0 <= float(grey.min()) and float(grey.max()) <= 1
    with pytest.raises(CheckpointError):
        ModelRestorer(tmp_path / "missing.safetensors").load()


def test_grey_restorer_on_colour_spikes_per_filter_site_keeps_the_colour() -> None:
    """A grey restorer that smooths space (as a network does) mixes the filter sites' channels when it sees the
    whole mosaic; restoring each site's plane on its own keeps each channel apart, so the demosaiced colour of a
    flat orange patch comes out right, also with an odd frame size."""
    from spikegen_core.video.restorers import DemosaicRestorer

    class BoxTFP:  # grey: TFP over the window, then a 3x3 box filter
        name = "box-tfp"

        def __call__(self, spikes, rgb=None, *, threshold=2.0):
            mean = spikes.float().mean(1, keepdim=True) * threshold
            return torch.nn.functional.avg_pool2d(mean, 3, stride=1, padding=1, count_include_pad=False)

    truth = torch.tensor([0.8, 0.4, 0.1])
    scene = truth[:, None, None].expand(3, 17, 24)
    spikes = simulate(scene[None], 400, seed=0, cfa="RGGB").spikes[None]
    whole = DemosaicRestorer(BoxTFP(), "RGGB")(spikes)[0]
    sites = DemosaicRestorer(BoxTFP(), "RGGB", per_site=True)(spikes, threshold=2.0)[0]
    assert sites.shape == whole.shape == (3, 17, 24)
    inner = (slice(2, -2), slice(2, -2))  # away from the demosaicer's borders
    err_sites = (sites[:, inner[0], inner[1]].mean((1, 2)) - truth).abs().max()
    err_whole = (whole[:, inner[0], inner[1]].mean((1, 2)) - truth).abs().max()
    assert err_sites < 0.03 and err_whole > 0.15, (err_sites, err_whole)


def test_colour_stream_gives_colour_video_and_reconstruction(tmp_path, capsys):
    """A colour (RGGB) .dat: restore-video and `spikegen reconstruct` write colour frames close to the scene,
    and --guess-cfa on a stream without a sidecar pattern names the true one's green sites."""
    from spikegen_core.cli import reconstruct
    from spikegen_core.image import load_image
    from spikegen_core.spikes.io import sidecar_path

    g = torch.Generator().manual_seed(0)
    scene = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 6, generator=g), size=(16, 24), mode="bilinear")[0]
    stream = simulate(scene[None], 200, seed=0, cfa="RGGB")
    write_dat(tmp_path / "c.dat", stream)
    restore_video_command(tmp_path / "c.dat", out=tmp_path / "o", fps=2000, window=81, mp4=False, frames=True)
    frame = load_image(sorted((tmp_path / "o").glob("*/frame_*.png"))[0])
    from spikegen_core.radiometry import SRGB  # restore-video writes sRGB video by default (--rgb-response)

    assert frame.shape == (3, 16, 24) and (frame - SRGB.encode(scene)).abs().mean() < 0.06
    reconstruct(tmp_path / "c.dat", out=tmp_path / "r", method="tfp", window=200)
    tfp_rgb = load_image(tmp_path / "r" / "c_tfp.png")
    assert (tfp_rgb - scene).abs().mean() < 0.04
    assert "colour (RGGB)" in capsys.readouterr().out
    meta = json.loads(sidecar_path(tmp_path / "c.dat").read_text())
    del meta["cfa"], meta["cfa_gains"]
    sidecar_path(tmp_path / "c.dat").write_text(json.dumps(meta))
    reconstruct(tmp_path / "c.dat", out=tmp_path / "g", method="tfp", guess_cfa=True)
    assert re.search(r"guessed pattern: (RGGB|BGGR)", capsys.readouterr().out)
