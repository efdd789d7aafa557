"""Benchmark `.dat` decoding: our vectorised reader vs the per-frame comparator loop the field's loaders use.

Writes benchmarks/spike_io.md and benchmarks/spike_io.json. Runs in well under 30 s on one core:

    PYTHONPATH=. python scripts/bench/bench_spike_io.py [--frames 800] [--repeats 5]

The decoders read the same random 250×400 file from the page cache and produce the same upright uint8
frames (checked). Throughput is packed input bytes per second, best of ``--repeats`` runs (the machine may
be shared, so best-of is the least noisy estimate of what the code can do). The REDS samples from
../shared/data, when present, are also scored (TFP/TFI PSNR/SSIM, 41-frame window).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _bench_meta import commit_hash, cpu_model  # noqa: E402

from spikegen_core.image import load_image  # noqa: E402
from spikegen_core.metrics import psnr, ssim  # noqa: E402
from spikegen_core.spikes.io import frame_bytes, read_dat  # noqa: E402
from spikegen_core.spikes.reconstruct import tfi, tfp  # noqa: E402
from spikegen_core.utils import atomic_write  # noqa: E402

STREAM_WINDOWS = (41, 100)  # the field's TFP window, and 5 ms at 20 kHz
REDS_THRESHOLD = 1.67  # θ the REDS samples' mean spike rate implies (see tests/core/spikes/test_reconstruct.py)


def reference_decode(path: Path, height: int, width: int) -> np.ndarray:
    """The straightforward decoder: per frame, gather each pixel's byte and test its bit with a comparator."""
    raw = np.fromfile(path, dtype=np.uint8)
    size = height * width
    pix = np.arange(size).reshape(height, width)
    byte_of_pixel = pix // 8
    comparator = np.left_shift(1, pix % 8)
    n = raw.size // (size // 8)
    out = np.zeros((n, height, width), np.uint8)
    for f in range(n):
        frame = raw[f * size // 8 : (f + 1) * size // 8]
        bits = np.bitwise_and(frame[byte_of_pixel], comparator) == comparator
        out[f] = np.flipud(bits)
    return out


def best_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Best (wall, thread-CPU) seconds per function, runs interleaved so load changes hit all alike.

    CPU time counts only this thread (user + system, page faults included), so on a shared machine it
    is the closer measure of "one core"; wall time is reported next to it.
    """
    for fn in fns.values():
        fn()  # warm the page cache and allocator
    best = {name: (float("inf"), float("inf")) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.thread_time()
            fn()
            wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def write_bandwidth(nbytes: int = 200_000_000, repeats: int = 5) -> float:
    """Bytes/s this thread can write into memory (best ``fill`` of a large buffer).

    Decoding writes one byte per pixel, 8 per packed input byte, so this / 8 bounds any decoder's input rate.
    """
    buf = np.empty(nbytes, np.uint8)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        buf.fill(1)
        best = min(best, time.perf_counter() - t)
    return nbytes / best


def reds_quality(data_root: Path) -> list[dict]:
    rows = []
    for spike_file in sorted((data_root / "spike" / "reds_synthetic" / "spike").glob("*.dat")):
        gt = load_image(spike_file.parents[1] / "gt" / f"{spike_file.stem}.png", mode="grey", grey="reds")
        stream = read_dat(spike_file, 250, 400, start=130, count=41, threshold=REDS_THRESHOLD)
        row: dict = {"sample": spike_file.stem}
        for name, fn in (("tfp", tfp), ("tfi", tfi)):
            img = fn(stream).clamp(0, 1)
            row[f"{name}_psnr"] = round(psnr(img, gt).item(), 2)
            row[f"{name}_ssim"] = round(ssim(img, gt).item(), 4)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=250)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--frames", type=int, default=800, help="frames in the synthetic file (800 = 10 MB)")
    ap.add_argument("--reference-frames", type=int, default=100, help="frames the slow reference decodes")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core, as the goal is stated

    h, w = args.height, args.width
    fb = frame_bytes(h, w)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.dat"
        ref_path = Path(tmp) / "bench_ref.dat"
        packed = rng.integers(0, 256, size=args.frames * fb, dtype=np.uint8)
        packed.tofile(path)
        packed[: args.reference_frames * fb].tofile(ref_path)

        ours = read_dat(path, h, w).spikes.numpy()
        ref = reference_decode(ref_path, h, w)
        if not np.array_equal(ours[: args.reference_frames], ref):
            raise SystemExit("decoders disagree: the benchmark would compare different things")

        buf = torch.empty(args.frames, h, w, dtype=torch.uint8)
        streams = {n: torch.empty(n, h, w, dtype=torch.uint8) for n in STREAM_WINDOWS}

        def stream(n: int) -> None:
            for start in range(0, args.frames - n + 1, n):
                read_dat(path, h, w, start=start, count=n, out=streams[n])

        best = best_times(
            {
                **{f"stream{n}": (lambda n=n: stream(n)) for n in STREAM_WINDOWS},
                "ours": lambda: read_dat(path, h, w),
                "reused": lambda: read_dat(path, h, w, out=buf),
                "reference": lambda: reference_decode(ref_path, h, w),
                "window": lambda: read_dat(path, h, w, start=args.frames // 2 - 20, count=41),
            },
            args.repeats,
        )

    def mbps(name: str, frames: int, which: int) -> float:
        return frames * fb / best[name][which] / 1e6

    mbps_ours, mbps_ref = mbps("ours", args.frames, 0), mbps("reference", args.reference_frames, 0)
    cpu_ours, cpu_ref = mbps("ours", args.frames, 1), mbps("reference", args.reference_frames, 1)
    mbps_reused, cpu_reused = mbps("reused", args.frames, 0), mbps("reused", args.frames, 1)
    streamed = {n: (mbps(f"stream{n}", args.frames // n * n, 0), mbps(f"stream{n}", args.frames // n * n, 1))
                for n in STREAM_WINDOWS}  # fmt: skip
    cpu_stream = max(c for _, c in streamed.values())
    ceiling = write_bandwidth() / 8 / 1e6
    data_root = Path(os.environ.get("SPIKEGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
    commit = commit_hash()
    result = {
        "commit": "uncommitted" if commit == "unknown" else commit,  # this benchmark's word for "no git"
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "settings": {
            "height": h,
            "width": w,
            "frames": args.frames,
            "reference_frames": args.reference_frames,
            "frame_bytes": fb,
            "repeats": args.repeats,
            "torch_threads": 1,
            "timing": "best of interleaved repeats; wall clock and this thread's CPU time",
        },
        "ours_mb_per_s": round(mbps_ours, 1),
        "reference_mb_per_s": round(mbps_ref, 1),
        "speedup": round(mbps_ours / mbps_ref, 1),
        "ours_cpu_mb_per_s": round(cpu_ours, 1),
        "reference_cpu_mb_per_s": round(cpu_ref, 1),
        "speedup_cpu": round(cpu_ours / cpu_ref, 1),
        "reused_buffer_mb_per_s": round(mbps_reused, 1),
        "reused_buffer_cpu_mb_per_s": round(cpu_reused, 1),
        **{f"stream_{n}_frame_windows_cpu_mb_per_s": round(c, 1) for n, (_, c) in streamed.items()},
        "window41_ms": round(best["window"][0] * 1e3, 3),
        "memory_write_gb_per_s": round(ceiling * 8 / 1e3, 2),
        "decode_ceiling_mb_per_s": round(ceiling, 1),
        "reds_41_frame_window": reds_quality(data_root) if data_root.is_dir() else "shared data not found",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out / "spike_io.json", "w") as f:
        json.dump(result, f, indent=1)
    lines = [
        "# Spike `.dat` decoding benchmark",
        "",
        "Made by `scripts/bench/bench_spike_io.py`; packed input bytes per second, best of interleaved repeats, one "
        "thread; CPU-second figures count this thread's user + system time (page faults included).",
        "",
        f"- commit `{result['commit']}`, CPU {result['cpu']} ({result['cpu_count']} logical cores, "
        f"1-min load average {result['load_average_1m']} when run), numpy {np.__version__}, torch {torch.__version__}",
        f"- file: {h}×{w}, {args.frames} random frames ({args.frames * fb / 1e6:.1f} MB) read from the page cache; "
        f"the reference decodes the first {args.reference_frames} frames",
        "",
        "| decoder | MB/s of packed input (wall) | MB/s per CPU-second |",
        "|---|---|---|",
        *[f"| the file read window by window, {n}-frame windows, into one reused buffer (`read_dat(..., "
          f"start=, count={n}, out=buf)`: how a long stream is processed) | {wall:,.0f} | {cpu:,.0f} |"
          for n, (wall, cpu) in streamed.items()],
        f"| the whole file in one call into a reused buffer (`out=`; numba SWAR kernel, flips as it writes) | "
        f"{mbps_reused:,.0f} | {cpu_reused:,.0f} |",
        f"| the whole file in one call into a fresh array (same kernel; the OS maps and zeroes every new page) | "
        f"{mbps_ours:,.0f} | {cpu_ours:,.0f} |",
        f"| per-frame byte gather + `1 << (p % 8)` comparator + `flipud` | {mbps_ref:,.0f} | {cpu_ref:,.0f} |",
        f"| **speed-up** (fresh array vs reference) | **{result['speedup']}×** | **{result['speedup_cpu']}×** |",
        f"| ceiling: memory write bandwidth ({ceiling * 8 / 1e3:.1f} GB/s, one thread) / 8 output bytes per "
        f"input byte | {ceiling:,.0f} | — |",
        "",
        f"A 41-frame window from the middle of the file (partial read): {result['window41_ms']} ms.",
        "",
        f"Goal ≥ 1000 MB/s on one core: {'met' if cpu_stream >= 1000 else 'NOT met'} reading the file window "
        f"by window into a reused buffer (best {cpu_stream:,.0f} MB/s per CPU-second); "
        f"{'met' if cpu_reused >= 1000 else 'not met'} for the whole 80 MB output in one call ({cpu_reused:,.0f}) "
        f"and {'met' if cpu_ours >= 1000 else 'not met'} into a fresh array ({cpu_ours:,.0f}). Goal ≥ 10× the "
        f"reference: {'met' if cpu_ours / cpu_ref >= 10 else 'NOT met'} even with the fresh array "
        f"({result['speedup_cpu']}× by CPU time). The output is 8 bytes per input byte: a window's output stays in "
        "the cache and is written over in place; a whole-file output streams to memory; and a fresh array's pages "
        "are first faulted in and zeroed by the OS during the decode, which costs about as much as the decode.",
    ]
    if isinstance(result["reds_41_frame_window"], list):
        lines += [
            "",
            f"## REDS samples, 41-frame window on key frame 150, θ = {REDS_THRESHOLD} (from the mean spike rate)",
            "",
            "| sample | TFP PSNR | TFP SSIM | TFI PSNR | TFI SSIM |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['sample']} | {r['tfp_psnr']} | {r['tfp_ssim']} | {r['tfi_psnr']} | {r['tfi_ssim']} |"
            for r in result["reds_41_frame_window"]
        ]
    with atomic_write(args.out / "spike_io.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
