"""Spike file I/O: the PKU .dat layout bit by bit, round trips, partial reads, .npz axes, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.spikes.camera import simulate
from spikegen_core.spikes.io import (
    dat_num_frames,
    decode_frames,
    frame_bytes,
    load_spikes,
    read_dat,
    read_npz,
    sidecar_path,
    spike_file_cfa,
    write_dat,
    write_npz,
)
from spikegen_core.spikes.stream import SpikeStream


def _random_spikes(t: int, h: int, w: int, seed: int = 0, p: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t, h, w, generator=g) < p).to(torch.uint8)


def test_layout_lsb_first_and_rows_bottom_up(tmp_path: Path) -> None:
    # Hand-made 2 frames of 2×8: the stored first row is the image's bottom row, bit 0 is the left pixel.
    raw = bytes([0b00000001, 0b10000000, 0b00000100, 0b00000000])
    path = tmp_path / "hand.dat"
    path.write_bytes(raw)
    s = read_dat(path, 2, 8)
    assert s.spikes.shape == (2, 2, 8)
    assert s.spikes[0].tolist() == [[0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0]]
    assert s.spikes[1].tolist() == [[0] * 8, [0, 0, 1, 0, 0, 0, 0, 0]]
    write_dat(tmp_path / "again.dat", s, sidecar=False)
    assert (tmp_path / "again.dat").read_bytes() == raw


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(1, 4),
    h=st.integers(1, 13),
    w=st.integers(1, 19),
    seed=st.integers(0, 2**16),
)
def test_round_trip_any_size(
    tmp_path_factory: pytest.TempPathFactory, t: int, h: int, w: int, seed: int
) -> None:
    spikes = _random_spikes(t, h, w, seed, p=0.5)
    path = tmp_path_factory.mktemp("rt") / "s.dat"
    write_dat(path, SpikeStream(spikes, clock_hz=40_000.0, threshold=3.0))
    assert path.stat().st_size == t * frame_bytes(h, w) == t * -(-h * w // 8)
    back = read_dat(path)  # size, clock and threshold from the sidecar
    assert torch.equal(back.spikes, spikes)
    assert back.clock_hz == 40_000.0 and back.threshold == 3.0


def test_decoder_matches_per_pixel_reference() -> None:
    # An independent per-pixel decoder written straight from the layout description.
    rng = np.random.default_rng(1)
    h, w, n = 5, 24, 3
    packed = rng.integers(0, 256, size=(n, frame_bytes(h, w)), dtype=np.uint8)
    ref = np.zeros((n, h, w), np.uint8)
    for f in range(n):
        for p in range(h * w):
            ref[f, h - 1 - p // w, p % w] = (packed[f, p // 8] >> (p % 8)) & 1
    assert np.array_equal(decode_frames(packed, h, w), ref)
    assert np.array_equal(decode_frames(packed, h, w, (3, 5)), ref[:, :, 3:-5])  # unaligned crop path
    assert np.array_equal(decode_frames(packed, h, w, (8, 0)), ref[:, :, 8:])  # byte-aligned crop path


def test_decoding_into_a_reused_buffer(tmp_path: Path) -> None:
    spikes = _random_spikes(12, 6, 32, seed=4, p=0.5)
    path = write_dat(tmp_path / "cam.dat", spikes)
    buf = torch.full((4, 6, 32), 7, dtype=torch.uint8)
    for start in (0, 4, 8):  # a long stream read window by window into one buffer
        s = read_dat(path, start=start, count=4, out=buf)
        assert s.spikes.data_ptr() == buf.data_ptr() and torch.equal(buf, spikes[start : start + 4])
    flags = torch.zeros(4, 6, 16, dtype=torch.bool)
    assert torch.equal(read_dat(path, count=4, crop=(8, 8), out=flags).spikes, spikes[:4, :, 8:24].bool())
    odd = torch.empty(4, 6, 29, dtype=torch.uint8)  # unaligned crop: the np.unpackbits path, same contract
    assert torch.equal(read_dat(path, count=4, crop=(1, 2), out=odd).spikes, spikes[:4, :, 1:30])
    with pytest.raises(InputMismatchError, match=r"shape \(4, 6, 32\).*\(4, 6, 31\)"):
        read_dat(path, count=4, out=torch.empty(4, 6, 31, dtype=torch.uint8))
    with pytest.raises(InputMismatchError, match="uint8 or bool"):
        read_dat(path, count=4, out=torch.empty(4, 6, 32))


def test_partial_read_and_crop(tmp_path: Path) -> None:
    spikes = _random_spikes(20, 6, 32, seed=3)
    path = write_dat(tmp_path / "cam.dat", spikes)
    part = read_dat(path, start=5, count=7)
    assert torch.equal(part.spikes, spikes[5:12]) and part.start_frame == 5
    assert dat_num_frames(path, 6, 32) == 20
    cropped = read_dat(path, start=5, count=7, crop=(16, 0))
    assert torch.equal(cropped.spikes, spikes[5:12, :, 16:])
    # crop from the sidecar, as a 416→400 camera head would record it
    meta = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps({**meta, "crop": [2, 6]}))
    assert torch.equal(read_dat(path).spikes, spikes[:, :, 2:26])


def test_sidecar_name_fallback_and_explicit_size(tmp_path: Path) -> None:
    spikes = _random_spikes(3, 4, 10, seed=4)
    path = write_dat(tmp_path / "x.dat", spikes, sidecar=False)
    (tmp_path / "x.json").write_text(json.dumps({"height": 4, "width": 10, "clock_hz": 1000}))
    s = load_spikes(path)
    assert torch.equal(s.spikes, spikes) and s.clock_hz == 1000.0
    assert torch.equal(read_dat(path, 4, 10).spikes, spikes)


def _message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


def test_bad_dat_files(tmp_path: Path) -> None:
    path = tmp_path / "odd.dat"
    path.write_bytes(bytes(12_500 * 3 + 7))
    with pytest.raises(SpikeFileError) as e:
        read_dat(path, 250, 400)
    msg = _message(e)
    assert str(path) in msg and "37,507 bytes" in msg and "12,500 bytes each" in msg and "height=" in msg

    ok = tmp_path / "k.dat"
    ok.write_bytes(bytes(125_000 * 2))  # two 1000×1000 frames, also twenty 250×400 frames
    with pytest.raises(SpikeFileError) as e:
        read_dat(ok, 300, 300)
    assert "250×400" in _message(e) and "1000×1000" in _message(e)

    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    with pytest.raises(SpikeFileError, match="empty"):
        read_dat(empty, 250, 400)

    with pytest.raises(SpikeFileError, match=r"frames \[15, 25\).*20 frames"):
        read_dat(ok, 250, 400, start=15, count=10)
    with pytest.raises(SpikeFileError, match="no sidecar"):
        read_dat(ok)
    with pytest.raises(SpikeFileError, match="crop"):
        read_dat(ok, 250, 400, crop=(200, 200))
    with pytest.raises(SpikeFileError, match="missing.dat: spike file not found"):
        read_dat(tmp_path / "missing.dat", 250, 400)


def test_bad_sidecars(tmp_path: Path) -> None:
    path = write_dat(tmp_path / "s.dat", _random_spikes(2, 4, 8))
    side = sidecar_path(path)
    side.write_text("{height: 4")
    with pytest.raises(SpikeFileError, match=re.escape(side.name) + ".*not valid JSON"):
        read_dat(path)
    side.write_text(json.dumps({"height": "4", "width": 8}))
    with pytest.raises(SpikeFileError, match="'height' must be a positive integer"):
        read_dat(path)
    # A sidecar claiming a huge frame must fail on the size check, before anything is allocated.
    side.write_text(json.dumps({"height": 1_000_000, "width": 1_000_000}))
    with pytest.raises(SpikeFileError, match="125,000,000,000 bytes each"):
        read_dat(path)


def test_npz_axes_and_keys(tmp_path: Path) -> None:
    thw = _random_spikes(12, 5, 7, seed=5).numpy()
    np.savez(tmp_path / "t.npz", spk=thw)
    np.savez_compressed(tmp_path / "h.npz", arr_0=np.transpose(thw, (1, 2, 0)), other=np.zeros(3))
    np.save(tmp_path / "n.npy", thw.astype(bool))
    a = read_npz(tmp_path / "t.npz")
    b = load_spikes(tmp_path / "h.npz", axes="HWT", start=2, count=4)
    c = read_npz(tmp_path / "n.npy", start=10)
    assert torch.equal(a.spikes, torch.from_numpy(thw))
    assert torch.equal(b.spikes, torch.from_numpy(thw[2:6])) and b.start_frame == 2
    assert torch.equal(c.spikes, torch.from_numpy(thw[10:])) and c.spikes.dtype == torch.uint8

    with pytest.raises(SpikeFileError, match=r"no array 'spikes'.*\['arr_0', 'other'\]"):
        read_npz(tmp_path / "h.npz", key="spikes", axes="HWT")
    with pytest.raises(SpikeFileError, match="permutation of 'THW'"):
        read_npz(tmp_path / "t.npz", axes="TXY")
    with pytest.raises(SpikeFileError, match="outside"):
        read_npz(tmp_path / "t.npz", start=11, count=5)
    np.savez(tmp_path / "counts.npz", spk=thw * 3)
    with pytest.raises(SpikeFileError, match="not 0/1"):
        read_npz(tmp_path / "counts.npz")


def test_npz_swapped_axes_detected(tmp_path: Path) -> None:
    hwt = np.zeros((25, 40, 2000), np.uint8)  # time last, read as if time came first
    np.savez(tmp_path / "long.npz", spk=hwt)
    with pytest.raises(SpikeFileError, match=r"40×2000 image.*axes='HWT'"):
        read_npz(tmp_path / "long.npz", axes="THW")
    assert read_npz(tmp_path / "long.npz", axes="HWT").spikes.shape == (2000, 25, 40)
    short = np.zeros((25, 40, 3), np.uint8)  # 3 frames, time last: THW would be a 40×3 image
    np.savez(tmp_path / "short.npz", spk=short)
    with pytest.raises(SpikeFileError, match="axes='HWT'"):
        read_npz(tmp_path / "short.npz")


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(bytes(8))
    with pytest.raises(SpikeFileError, match="unknown spike file type"):
        load_spikes(tmp_path / "a.bin")
    with pytest.raises(SpikeFileError, match="b.bin: spike file not found"):  # a missing file is said first
        load_spikes(tmp_path / "b.bin")


def test_shared_recordings(shared_data: Path) -> None:
    real = shared_data / "spike" / "real"
    heli = read_npz(real / "uhsr_helicopter.npz", axes="THW")
    trees = read_npz(real / "outdoor_trees.npz", axes="HWT", start=100, count=50)
    assert heli.spikes.shape == (200, 250, 250)
    assert trees.spikes.shape == (50, 250, 400)
    assert 0.15 < trees.spikes.float().mean() < 0.3  # README: rate about 0.22
    dat = shared_data / "spike" / "reds_synthetic" / "spike" / "train_203_part2_key_id151.dat"
    assert dat_num_frames(dat, 250, 400) == 301
    window = read_dat(dat, 250, 400, start=130, count=41)
    full = read_dat(dat, 250, 400)
    assert torch.equal(window.spikes, full.spikes[130:171])
    with pytest.raises(SpikeFileError, match="250×400"):
        read_dat(dat, 1000, 1000)


def test_cfa_round_trips_through_dat_sidecar_and_npz(tmp_path: Path) -> None:
    rgb = torch.rand((1, 3, 6, 10), generator=torch.Generator().manual_seed(0))
    stream = simulate(rgb, 40, seed=1, cfa="GBRG", cfa_gains=(0.7, 1.0, 1.3))
    dat = read_dat(write_dat(tmp_path / "c.dat", stream))
    assert dat.cfa == "GBRG" and dat.cfa_gains == (0.7, 1.0, 1.3) and torch.equal(dat.spikes, stream.spikes)
    assert json.loads(sidecar_path(tmp_path / "c.dat").read_text())["cfa"] == "GBRG"
    npz = read_npz(write_npz(tmp_path / "c.npz", stream))
    assert npz.cfa == "GBRG" and npz.cfa_gains == (0.7, 1.0, 1.3) and torch.equal(npz.spikes, stream.spikes)
    # Grey streams stay grey; an explicit pattern wins over the file's; an odd left crop shifts the pattern.
    assert read_npz(write_npz(tmp_path / "g.npz", simulate(rgb, 5))).cfa is None
    assert read_dat(tmp_path / "c.dat", cfa="RGGB").cfa == "RGGB"
    assert read_dat(tmp_path / "c.dat", crop=(1, 1)).cfa == "BGGR"
    # What a file declares, without reading its frames (the model's colour-only check)
    np.save(tmp_path / "g.npy", simulate(rgb, 5).spikes.numpy())
    got = [spike_file_cfa(tmp_path / name) for name in ("c.dat", "c.npz", "g.npz", "g.npy")]
    assert got == ["GBRG", "GBRG", None, None]


def test_bad_cfa_in_sidecar_names_the_fix(tmp_path: Path) -> None:
    write_dat(tmp_path / "c.dat", np.zeros((2, 4, 4), np.uint8))
    side = sidecar_path(tmp_path / "c.dat")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "cfa": "RGBW"}))
    with pytest.raises(SpikeFileError, match=r"c\.dat\.json.*RGGB, BGGR, GRBG or GBRG"):
        read_dat(tmp_path / "c.dat")
    side.write_text(json.dumps({**meta, "cfa": "RGGB", "cfa_gains": [1, 0, 1]}))
    with pytest.raises(SpikeFileError, match="three positive numbers"):
        read_dat(tmp_path / "c.dat")


@pytest.mark.parametrize(("t", "n"), [(32, 21), (33, 21), (32, 16), (41, 41), (8, 1)])
def test_central_start_conventions(t: int, n: int) -> None:
    from spikegen_core.spikes.stream import SpikeStream, central_start

    stream = SpikeStream(torch.arange(t).view(t, 1, 1).expand(t, 1, 2).contiguous())
    key = central_start(t, n, "key")
    assert stream.window(t // 2, n).start_frame == key  # the key-frame convention of SpikeStream.window
    middle = central_start(t, n, "middle")
    assert middle == key - (t % 2 == 0 and n % 2 == 1)  # one frame earlier only for an even T and odd n
    assert 0 <= middle and middle + n <= t and 0 <= key and key + n <= t
