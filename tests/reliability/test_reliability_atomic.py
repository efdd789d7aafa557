"""Atomic writes: a process SIGKILLed in the middle of writing a large file never leaves a partial file.

A child writes ~48 MB through ``atomic_write`` / ``atomic_path`` (each version filled with its own byte, so
a mix of versions or a short file is detectable); the parent kills it once the temp file holds some data.
The destination must then be absent (first write) or byte-identical to the previous complete version.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikegen_core.utils import atomic_path, atomic_write, file_digest

CHUNK = 1 << 20
CHUNKS = 48

CHILD = r"""
import sys, time
from pathlib import Path
from spikegen_core.utils import atomic_path, atomic_write
dest, version, how = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
block = bytes([version]) * (1 << 20)
def fill(f):
    for _ in range(48):
        f.write(block)
        f.flush()
        time.sleep(0.01)  # a slow disk: gives the parent time to kill it mid-write
if how == "write":
    with atomic_write(dest) as f:
        fill(f)
else:
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        fill(f)
"""


def _writer(dest: Path, version: int, how: str) -> subprocess.Popen:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(dest), str(version), how], env=env, cwd=root)


def _kill_mid_write(dest: Path, version: int, how: str, at_bytes: int) -> None:
    proc = _writer(dest, version, how)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        temps = [p for p in dest.parent.iterdir() if p.name.startswith(".") and p.stat().st_size >= at_bytes]
        if temps:
            break
        time.sleep(0.005)
    else:
        proc.kill()
        pytest.fail("the writer never got going")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def _digest_of_version(version: int) -> str:
    h = hashlib.sha256()
    for _ in range(CHUNKS):
        h.update(bytes([version]) * CHUNK)
    return h.hexdigest()


@pytest.mark.parametrize("how", ["write", "path"])
def test_sigkill_mid_write_leaves_old_version_or_nothing(tmp_path: Path, how: str) -> None:
    dest = tmp_path / "big.bin"
    _kill_mid_write(dest, 1, how, at_bytes=4 * CHUNK)  # first write killed: no file at all
    assert not dest.exists()

    proc = _writer(dest, 1, how)  # a complete first version
    assert proc.wait(60) == 0
    assert file_digest(dest) == _digest_of_version(1)

    for at in (2 * CHUNK, 20 * CHUNK, 40 * CHUNK):  # killed early, midway and late in the second version
        _kill_mid_write(dest, 2, how, at_bytes=at)
        assert dest.stat().st_size == CHUNKS * CHUNK and file_digest(dest) == _digest_of_version(1)

    proc = _writer(dest, 2, how)  # a run that is not killed replaces it completely
    assert proc.wait(60) == 0
    assert file_digest(dest) == _digest_of_version(2)
    leftovers = [p.name for p in tmp_path.iterdir() if p != dest]
    assert all(name.startswith(".big.") for name in leftovers)  # only hidden temp files of killed runs


def test_failed_block_keeps_previous_version_and_cleans_up(tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.bin"
    dest.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_write(dest) as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder crashed")
    assert dest.read_bytes() == b"good" and sorted(tmp_path.iterdir()) == [dest]


def test_written_files_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    os.umask(old)
    expected = 0o666 & ~old
    with atomic_write(tmp_path / "a.json", "w") as f:
        f.write("{}")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected  # not mkstemp's private 0600
