"""Long streams: reading a multi-GB ``.dat`` window by window keeps memory flat.

The file is sparse (``truncate`` to 3 GB of zero frames at 250×400: no disk is used), and the windows are
read in a fresh child process whose peak RSS (``ru_maxrss``) after a warm-up read is the baseline, so a
reader that kept frames, mapped the whole file into resident memory or leaked per window would show.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

H, W = 250, 400
FRAME = H * W // 8
FRAMES = 240_000  # 3.0 GB at 12,500 bytes per frame

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import torch
from spikegen_core.spikes.io import read_dat
from spikegen_core.video.windows import SpikeSource

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, frames, windows, length = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
read_dat(path, start=0, count=length)  # warm-up: imports, first allocations
base = peak_mb()
t0 = time.perf_counter()
seen = 0
for k in range(windows):  # windows spread from the first frame to the very last one
    start = (frames - length) * k // (windows - 1)
    w = read_dat(path, start=start, count=length)
    assert w.spikes.shape == (length, 250, 400) and w.start_frame == start
    seen += int(w.spikes.any())
source = SpikeSource.open(path)
for k in range(windows):
    seen += int(source.read((frames - length) * k // (windows - 1), length).any())
print(json.dumps({"base_mb": base, "growth_mb": peak_mb() - base, "spikes": seen,
                  "seconds": time.perf_counter() - t0, "num_frames": source.num_frames}))
"""


@pytest.mark.slow
def test_multi_gb_dat_window_by_window_keeps_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "long.dat"
    with open(path, "wb") as f:
        f.truncate(FRAMES * FRAME)  # sparse: reads as zeros, costs no disk
    path.with_name("long.dat.json").write_text(json.dumps({"height": H, "width": W}))
    assert path.stat().st_size == 3_000_000_000
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(FRAMES), "150", "41"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["num_frames"] == FRAMES and result["spikes"] == 0  # zero frames decode to no spikes
    # 300 windows of 41 frames (4 MB decoded each) over a 3 GB file: peak memory grows by less than 100 MB.
    assert result["growth_mb"] < 100, result
