"""Run by test_video.py in a fresh interpreter: peak RSS of restore_frames + restore_video on a 477 MB .dat,
over the first 10 windows (warm-up) and then over all 100. Prints one JSON line.

A fresh process, because a long pytest process's heap depends on every test that ran before: in full-suite runs the
same measurement grew 14–15 MB in 3 of 6 runs, alone it grows about 1 MB.   usage: python _memory_probe.py DIR
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

from spikegen_core.spikes.io import frame_bytes, sidecar_path
from spikegen_core.video import SpikeSource, TFPRestorer, restore_frames, restore_video, window_centres


def main(tmp: Path) -> dict:
    # RSS tracks live memory only if freed blocks go back to the OS: glibc keeps blocks below its mmap threshold
    # in the heap, and the per-window buffers (512 kB reads, 800 kB frames) fragment it (RSS swung ±4 MB between
    # passes with a 1 MiB threshold); from 64 kB up they are mmapped and returned when freed.
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 << 10)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 64 << 10)  # M_TRIM_THRESHOLD
    torch.set_num_threads(1)  # one malloc arena
    h, w, n = 250, 400, 40_000
    fb = frame_bytes(h, w)
    path = tmp / "long.dat"
    with open(path, "wb") as f:
        f.truncate(fb * n)  # sparse zeros: instant to write, 477 MB to read (3.8 GB once decoded)
        f.seek(fb * (n - 400))
        f.write(b"\xff" * fb * 400)  # the last 400 frames fire everywhere
    sidecar_path(path).write_text(json.dumps({"height": h, "width": w, "threshold": 2.0}))
    src = SpikeSource.open(path)
    centres = window_centres(src.num_frames, 41, clock_hz=src.clock_hz, fps=50)  # one every 400 ticks
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak, stop = [before], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    means: list[float] = []

    def run(upto: int | None) -> int:
        restore_frames(src, centres[:upto], 41, TFPRestorer(2.0), batch_size=2, progress=False,
                       sink=lambda c, f: means.extend(f.mean(dim=(1, 2, 3)).tolist()))
        return restore_video(path, tmp / "out", fps=50, window=41, batch_size=2, mp4=False, progress=False,
                             stop=None if upto is None else int(centres[upto - 1]) + 21).frames

    t = threading.Thread(target=watch)
    t.start()
    try:
        # Warm-up: the same calls on the first 10 windows. Besides one batch's working set, a first call pays
        # one-time costs (torch pages in each kernel's code on first use: ~4 MB for to_uint8's).
        run(10)
        time.sleep(0.01)
        warm_peak = peak[0]
        means.clear()
        frames = run(None)
        time.sleep(0.01)
    finally:
        stop.set()
        t.join()
    return {"frames": frames, "means": len(means), "first_mean": means[0], "last_mean": means[-1],
            "growth_mb": (peak[0] - warm_peak) / 2**20, "total_mb": (peak[0] - before) / 2**20,
            "stream_mb": fb * n / 2**20}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
