"""Fuzzing the spike readers, their JSON sidecar and the ``transforms.json`` parser with malformed inputs.

The contract (issue 7): a malformed input either reads as sane spikes or fails with one of our own exception
types whose message names the file; never a library exception, a crash, a hang, or a huge allocation when a
header or sidecar claims a huge size.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import resource
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegen_core.errors import SpikeGenError
from spikegen_core.spikes.io import load_spikes, read_dat, read_npz, write_dat

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = itertools.count()

# JSON values of every type, including the ones that break naive int()/float() calls.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 8, 250, 400, 10**9, 10**18, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _fresh(workdir: Path) -> Path:
    """A new folder per hypothesis example (function-scoped tmp_path is shared across examples)."""
    d = workdir / f"ex{next(_counter)}"
    d.mkdir()
    return d


def _check_outcome(call, path: Path, *also: Path) -> Any:
    """Run ``call``; a failure must be ours and name ``path`` (or its sidecar); a success must be 0/1 spikes."""
    try:
        stream = call()
    except SpikeGenError as e:
        names = [p.name for p in (path, *also)]
        assert any(n in str(e) for n in names), f"message names none of {names}: {e}"
        return None
    except Exception as e:  # noqa: BLE001 - the point of the test: anything else is a defect
        pytest.fail(f"{path.name}: {type(e).__name__} escaped instead of our own error: {e}")
    spikes = stream.spikes
    assert spikes.dtype == torch.uint8 and spikes.ndim == 3 and min(spikes.shape) > 0
    assert int(spikes.max()) <= 1
    return stream


# -- .dat + sidecar ------------------------------------------------------------------------------------
sidecars = st.one_of(
    st.none(),  # no sidecar
    st.binary(max_size=40),  # not JSON / not UTF-8
    st.builds(json.dumps, json_values),  # JSON but not an object
    st.fixed_dictionaries(
        {},
        optional={k: json_values for k in ("height", "width", "crop", "clock_hz", "threshold", "num_frames")},
    ).map(json.dumps),
)


@FUZZ
@given(
    data=st.binary(max_size=3000),
    sidecar=sidecars,
    size=st.one_of(st.none(), st.tuples(st.integers(-3, 70), st.integers(-3, 70))),
    window=st.tuples(st.integers(-2, 30), st.one_of(st.none(), st.integers(-2, 30))),
    sidecar_name=st.sampled_from([".dat.json", ".json"]),
)
def test_dat_and_sidecar_fuzz(workdir: Path, data, sidecar, size, window, sidecar_name) -> None:
    folder = _fresh(workdir)
    path = folder / "s.dat"
    path.write_bytes(data)
    side = folder / ("s" + sidecar_name)
    if sidecar is not None:
        side.write_bytes(sidecar if isinstance(sidecar, bytes) else sidecar.encode())
    h, w = size if size is not None else (None, None)
    start, count = window
    stream = _check_outcome(lambda: read_dat(path, h, w, start=start, count=count), path, side)
    if stream is not None and size is not None:  # explicit size: whole frames, exactly the asked window
        fb = -(-h * w // 8)
        assert len(data) % fb == 0 and stream.height == h
        assert stream.num_frames == (count if count is not None else len(data) // fb - start)


def test_dat_round_trip_survives_fuzzed_sizes(workdir: Path) -> None:
    """The happy path stays exact next to the fuzzing: what write_dat wrote, read_dat reads back."""
    folder = _fresh(workdir)
    spikes = (torch.rand(7, 13, 21) < 0.3).to(torch.uint8)
    write_dat(folder / "ok.dat", spikes)
    assert torch.equal(read_dat(folder / "ok.dat").spikes, spikes)


@pytest.mark.parametrize(
    "claim",
    [
        {"height": 10**9, "width": 400},
        {"height": 10**9, "width": 10**9},
        {"height": 10**400, "width": 1},
        {"height": 250, "width": 400, "crop": [1e308, 0]},
        {"height": 250, "width": 400, "clock_hz": "fast"},
        {"height": 250, "width": 400, "threshold": [2]},
    ],
    ids=["huge-h", "huge-hw", "beyond-float", "inf-crop", "text-clock", "list-threshold"],
)
def test_sidecar_claims_are_bounded(tmp_path: Path, claim: dict) -> None:
    path = tmp_path / "s.dat"
    path.write_bytes(bytes(12_500 * 3))  # 3 real 250×400 frames
    path.with_name("s.dat.json").write_text(json.dumps(claim))
    before = _peak_rss_mb()
    with pytest.raises(SpikeGenError, match=r"s\.dat"):
        read_dat(path)
    assert _peak_rss_mb() - before < 50


def test_deeply_nested_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "s.dat"
    path.write_bytes(bytes(16))
    path.with_name("s.dat.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpikeGenError, match=r"s\.dat\.json"):
        read_dat(path)


# -- .npy / .npz ---------------------------------------------------------------------------------------
def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


arrays = st.builds(
    lambda shape, dtype, seed, high: np.random.default_rng(seed).integers(0, high + 1, size=shape).astype(dtype),
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple),
    dtype=st.sampled_from([np.uint8, np.int16, np.bool_, np.float32, np.int64]),
    seed=st.integers(0, 99),
    high=st.sampled_from([1, 1, 3]),
)


def _mutate(blob: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(blob if cut is None else blob[: cut % (len(blob) + 1)])
    for pos, val in flips:
        if out:
            out[pos % len(out)] = val
    return bytes(out)


mutations = st.tuples(
    st.one_of(st.none(), st.integers(0, 10**6)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)
)


@FUZZ
@given(arr=arrays, mutation=mutations, axes=st.sampled_from(["THW", "HWT", "TWH", "thw", "TH", "XYZ"]),
       window=st.tuples(st.integers(-1, 5), st.one_of(st.none(), st.integers(-1, 5))))  # fmt: skip
def test_npy_fuzz(workdir: Path, arr: np.ndarray, mutation, axes: str, window) -> None:
    path = _fresh(workdir) / "s.npy"
    path.write_bytes(_mutate(_npy_bytes(arr), *mutation))
    stream = _check_outcome(lambda: read_npz(path, axes=axes, start=window[0], count=window[1]), path)
    if stream is not None and mutation == (None, []):  # an unmutated file reads back exactly
        t_axis = axes.upper().index("T")
        expect = np.moveaxis(arr, [axes.upper().index(a) for a in "THW"], [0, 1, 2])
        assert t_axis >= 0 and torch.equal(stream.spikes, torch.from_numpy(
            expect[window[0] : window[0] + stream.num_frames].astype(np.uint8)))  # fmt: skip


@FUZZ
@given(arrs=st.dictionaries(st.sampled_from(["spk", "arr_0", "x", "y"]), arrays, max_size=3),
       mutation=mutations, compress=st.booleans(), key=st.sampled_from([None, "spk", "missing"]))  # fmt: skip
def test_npz_fuzz(workdir: Path, arrs: dict, mutation, compress: bool, key: str | None) -> None:
    path = _fresh(workdir) / "s.npz"
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrs)
    path.write_bytes(_mutate(buf.getvalue(), *mutation))
    _check_outcome(lambda: load_spikes(path, key=key), path)


def _npz_with_header(shape: tuple[int, ...], payload: bytes, compress: bool) -> bytes:
    """An .npz whose member's .npy header claims ``shape`` but carries only ``payload`` bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr("spk.npy", np.lib.format.magic(1, 0) + header.getvalue() + payload)
    return out.getvalue()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", [(10**6, 10**6, 10**6), (100_000, 250, 400), (2**62, 2, 2)])
def test_npz_header_claiming_huge_shape(tmp_path: Path, shape: tuple[int, ...], compress: bool) -> None:
    path = tmp_path / "s.npz"
    path.write_bytes(_npz_with_header(shape, bytes(1000), compress))
    before = _peak_rss_mb()
    with pytest.raises(SpikeGenError, match=r"s\.npz"):
        read_npz(path)
    assert _peak_rss_mb() - before < 50  # no multi-GB buffer was filled


def test_npy_header_claiming_huge_shape(tmp_path: Path) -> None:
    path = tmp_path / "s.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 10**6)})
    path.write_bytes(np.lib.format.magic(1, 0) + header.getvalue() + bytes(100))
    with pytest.raises(SpikeGenError, match=r"s\.npy"):
        read_npz(path)


# -- transforms.json of the spike-data dataparser --------------------------------------------------------
@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from test_dataparser import write_tiny_scene

    root = write_tiny_scene(tmp_path_factory.mktemp("scene") / "s", n_train=2, n_test=1, size=16, ticks=8)
    return root, json.loads((root / "transforms.json").read_text())


def _paths(meta: dict) -> list[tuple]:
    """Every place a fuzzed value can go: top-level fields, `spike` fields, and each frame's fields."""
    out: list[tuple] = [(k,) for k in meta]
    if isinstance(meta.get("spike"), dict):  # an earlier edit may have replaced it with any JSON value
        out += [("spike", k) for k in meta["spike"]]
    frames = meta.get("frames")
    if isinstance(frames, list):
        out += [("frames", i, k) for i, f in enumerate(frames) if isinstance(f, dict) for k in f]
    return out


def _set(meta: dict, path: tuple, value: Any, delete: bool) -> None:
    target = meta
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@FUZZ
@given(data=st.data())
def test_transforms_json_fuzz(scene: tuple[Path, dict], data: st.DataObject) -> None:
    from spikegen_nvs.dataparser import SpikeDataParserConfig

    root, base = scene
    meta = json.loads(json.dumps(base))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(_paths(meta)), label="path")
        _set(meta, path, data.draw(json_values, label="value"), data.draw(st.booleans(), label="delete"))
    json_path = root / f"t{next(_counter)}.json"
    json_path.write_text(json.dumps(meta))
    try:
        out = SpikeDataParserConfig(data=json_path).setup().get_dataparser_outputs(split="train")
    except SpikeGenError as e:
        assert json_path.name in str(e) or str(root) in str(e), f"message names no scene file: {e}"
        return
    except Exception as e:  # noqa: BLE001 - anything but our own error is a defect
        pytest.fail(f"{json_path.name}: {type(e).__name__} escaped instead of SceneFormatError: {e}")
    cams = out.cameras
    assert torch.isfinite(cams.camera_to_worlds).all() and len(out.image_filenames) >= 1
    assert bool((cams.fx > 0).all() and (cams.fy > 0).all() and torch.isfinite(cams.cx).all()), "bad intrinsics accepted"
    for v in out.metadata["spike_views"]:  # the recording settings must be usable, not silently absurd
        assert v.num_frames >= 1 and v.clock_hz > 0 and v.gain > 0 and v.threshold > 0 and math.isfinite(v.time)
