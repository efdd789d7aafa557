"""Bit unpacking of ``.dat`` frames: a branch-free numba kernel that writes 8 output pixels per packed byte.

``np.unpackbits`` spends as long on its own loop as the kernel does, and cannot write into a caller's
buffer, so a long stream read window by window would first-touch (page-fault and zero) a fresh output
array every time. The kernel below flips the rows and crops byte-aligned columns as it goes and writes
straight into the destination: one uint64 store per input byte, computed with SWAR arithmetic
(broadcast the byte, mask bit i into byte i, turn non-zero bytes into 1) that LLVM vectorises.
"""

from __future__ import annotations

import functools

import numpy as np

_BROADCAST = np.uint64(0x0101010101010101)
_BIT_OF_BYTE = np.uint64(0x8040201008040201)  # byte i (little-endian) keeps bit i of the input byte
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_SEVEN = np.uint64(7)


def _unpack_flip_py(packed: np.ndarray, out64: np.ndarray, height: int, row_bytes: int, first: int) -> None:
    ncols = out64.shape[2]
    for f in range(packed.shape[0]):
        for r in range(height):
            row_in = packed[f, (height - 1 - r) * row_bytes + first :]
            row_out = out64[f, r]
            for c in range(ncols):
                x = (np.uint64(row_in[c]) * _BROADCAST) & _BIT_OF_BYTE
                row_out[c] = ((x + _LOW7) & _HIGH) >> _SEVEN


@functools.cache
def _unpack_flip():  # noqa: ANN202 - a numba dispatcher
    """The compiled kernel; numba is imported on first use (it costs about half a second at start-up)."""
    from numba import njit

    return njit(cache=True, nogil=True, boundscheck=False)(_unpack_flip_py)


def unpack_rows_flipped(packed: np.ndarray, out: np.ndarray, height: int, width: int, left: int) -> None:
    """Decode ``packed`` ``(N, H*W/8)`` (rows stored bottom-up, W divisible by 8) into ``out`` ``(N, H, Wc)``
    upright, starting at column ``left``; ``left`` and ``Wc`` must be multiples of 8 and ``out`` C-contiguous
    uint8 or bool (it is viewed as uint64, 8 pixels per store)."""
    _unpack_flip()(packed, out.view(np.uint8).view(np.uint64), height, width // 8, left // 8)
