"""Sliding spike windows over long streams, read through memory mapping so memory stays flat.

A :class:`SpikeSource` opens a spike file without reading it: ``.dat`` and ``.npy`` frames are fetched
per request through numpy memmaps (see :func:`spikegen_core.spikes.read_dat`), so a multi-GB stream costs
only the frames of the current batch. ``.npz`` members are zip entries that cannot be sliced, so they are
decompressed once and held (convert long recordings to ``.dat`` with ``write_dat``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.spikes.io import check_spike_file, dat_num_frames, read_dat, read_npz, read_sidecar
from spikegen_core.spikes.stream import DEFAULT_CLOCK_HZ, SpikeStream

__all__ = ["SpikeSource", "WindowBatch", "iter_window_batches", "window_centres"]


@dataclass
class SpikeSource:
    """A spike stream that is read on demand: ``read(start, count)`` → ``(count, H, W)`` uint8 tensor.

    Build with :meth:`open` (a file) or :meth:`from_stream` (an in-memory :class:`SpikeStream`).
    """

    num_frames: int
    height: int
    width: int
    clock_hz: float
    threshold: float | None
    name: str
    _path: Path | None = None
    _kind: str = "memory"  # "dat", "npy" or "memory"
    _read_kw: dict | None = None
    _stream: SpikeStream | None = None
    cfa: str | None = None
    """Bayer pattern of a colour spike camera (from the file's sidecar / members), else None (grey)."""
    cfa_gains: tuple[float, float, float] | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        height: int | None = None,
        width: int | None = None,
        axes: str = "THW",
        key: str | None = None,
        clock_hz: float | None = None,
        threshold: float | None = None,
        force_size: bool = False,
    ) -> SpikeSource:
        """Open a ``.dat`` (size from args or its sidecar), ``.npy`` (memory-mapped) or ``.npz`` file.

        ``force_size``: read a ``.dat`` at the given size even where it disagrees with its sidecar or looks wrong
        (see :func:`~spikegen_core.spikes.io.read_dat`)."""
        path = check_spike_file(path)
        suffix = path.suffix.lower()
        if suffix == ".dat":
            # One frame tells the size, clock and threshold (from args or the sidecar) without reading more.
            probe = read_dat(path, height, width, count=1, clock_hz=clock_hz, threshold=threshold,
                             force_size=force_size)  # fmt: skip
            meta_h = height if height is not None else probe.height
            kw = {"height": height, "width": width, "clock_hz": clock_hz, "threshold": threshold,
                  "force_size": force_size}  # fmt: skip
            # The stored (uncropped) width sets the frame size; io has no public accessor for the sidecar.
            stored_w = width if width is not None else read_sidecar(path).get("width", probe.width)
            total = dat_num_frames(path, meta_h, stored_w)
            return cls(total, probe.height, probe.width, probe.clock_hz, probe.threshold, str(path),
                       path, "dat", kw, cfa=probe.cfa, cfa_gains=probe.cfa_gains)
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            axes_u = axes.upper()
            if arr.ndim != 3 or sorted(axes_u) != ["H", "T", "W"]:
                raise SpikeFileError(f"{path}: expected a 3-D array with axes {axes!r}, got shape {arr.shape}")
            dims = {a: arr.shape[i] for i, a in enumerate(axes_u)}
            del arr
            kw = {"axes": axes, "clock_hz": clock_hz or DEFAULT_CLOCK_HZ, "threshold": threshold}
            return cls(dims["T"], dims["H"], dims["W"], float(kw["clock_hz"]), threshold, str(path),
                       path, "npy", kw)
        if suffix == ".npz":
            stream = read_npz(path, axes=axes, key=key, clock_hz=clock_hz or DEFAULT_CLOCK_HZ, threshold=threshold)
            return cls.from_stream(stream)
        raise SpikeFileError(f"{path}: unknown spike file type {suffix!r}; use .dat (with a sidecar or size), .npz or .npy")

    @classmethod
    def from_stream(cls, stream: SpikeStream) -> SpikeSource:
        """Wrap spikes already in memory (tests, simulated sequences, ``.npz`` recordings)."""
        return cls(stream.num_frames, stream.height, stream.width, stream.clock_hz, stream.threshold,
                   stream.source or "spike stream", None, "memory", None, stream, stream.cfa, stream.cfa_gains)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.clock_hz

    def read(self, start: int, count: int) -> torch.Tensor:
        """Frames ``[start, start + count)`` as an upright ``(count, H, W)`` uint8 tensor."""
        if start < 0 or count < 0 or start + count > self.num_frames:
            raise InputMismatchError(
                f"{self.name}: frames [{start}, {start + count}) leave the stream of {self.num_frames} frames; "
                "use windows that fit inside it"
            )
        if self._kind == "dat":
            return read_dat(self._path, start=start, count=count, **self._read_kw).spikes
        if self._kind == "npy":
            return read_npz(self._path, start=start, count=count, **self._read_kw).spikes
        return self._stream.spikes[start : start + count]


def window_centres(
    num_frames: int, window: int, *, clock_hz: float = DEFAULT_CLOCK_HZ, fps: float | None = None,
    step: int | None = None, start: int = 0, stop: int | None = None,
) -> np.ndarray:
    """Centre frames of sliding windows: one every ``clock_hz / fps`` ticks (or every ``step`` ticks).

    Centres lie where the whole ``window`` fits (same convention as ``SpikeStream.window``:
    ``[c - window//2, c - window//2 + window)``); ``start``/``stop`` limit them to a part of the stream.
    Non-integer steps (e.g. 20 kHz → 3,000 fps) are rounded per frame, so the mean rate is exact.
    """
    if window < 1 or window > num_frames:
        raise InputMismatchError(
            f"a {window}-frame window does not fit a stream of {num_frames} frames; use a window of 1–{num_frames}"
        )
    if (fps is None) == (step is None):
        raise InputMismatchError("give exactly one of fps (output frames per second) or step (ticks between frames)")
    ticks = float(step) if step is not None else clock_hz / float(fps)
    if not ticks >= 1 - 1e-9 or not math.isfinite(ticks):  # < 1: more output frames than spike frames
        rate = f"--fps {fps:g} on a {clock_hz:g} Hz spike clock" if fps is not None else f"step {step}"
        raise InputMismatchError(
            f"{rate} gives a frame every {ticks:g} ticks; at most one frame per tick: choose 0 < fps <= "
            f"clock_hz ({clock_hz:g})"
        )
    lo = max(window // 2, start)
    hi = num_frames - (window - window // 2)  # last centre whose window still fits
    if stop is not None:
        hi = min(hi, stop - 1)
    if hi < lo:
        return np.zeros(0, dtype=np.int64)
    n = int(math.floor((hi - lo) / ticks + 1e-9)) + 1
    return np.round(lo + np.arange(n) * ticks).astype(np.int64)


@dataclass
class WindowBatch:
    """``spikes`` ``(B, T, H, W)`` uint8 windows around the ``centres`` (frame indices in the source)."""

    centres: np.ndarray
    spikes: torch.Tensor


def iter_window_batches(
    source: SpikeSource, centres: np.ndarray, window: int, batch_size: int = 8
) -> Iterator[WindowBatch]:
    """Yield batches of windows; overlapping windows of a batch cost one contiguous read, sparse ones a read each.

    Memory per batch is at most ``2·B·window·H·W`` bytes (plus the unpacking temporaries): it does not grow
    with the stream or with the step between windows.
    """
    if batch_size < 1:
        raise InputMismatchError(f"batch_size must be ≥ 1, got {batch_size}")
    half = window // 2
    for i in range(0, len(centres), batch_size):
        cs = np.asarray(centres[i : i + batch_size], dtype=np.int64)
        lo, hi = int(cs.min()) - half, int(cs.max()) - half + window
        if hi - lo <= len(cs) * window:
            # Overlapping (dense) windows: one read of the span they cover.
            span = source.read(lo, hi - lo)
            spikes = torch.stack([span[c - half - lo : c - half - lo + window] for c in cs.tolist()])
        else:
            # Sparse windows (step > window): read each, never the gaps between them.
            spikes = torch.stack([source.read(c - half, window) for c in cs.tolist()])
        yield WindowBatch(cs, spikes)
