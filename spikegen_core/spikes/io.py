"""Reading and writing spike streams: the PKU/Vidar ``.dat`` layout, ``.npz`` and ``.npy``.

``.dat`` layout (no header; the layout used by SpikeCV, Spk2ImgNet, Spike-Zoo and USP-Gaussian):

- frames are concatenated, each ``ceil(H*W / 8)`` bytes. The field's loaders use ``H*W // 8``, which is the
  same for every real sensor (H*W divisible by 8); we round *up* so that any H×W round-trips, and the pad
  bits at the end of such a frame are written as 0 and ignored on read;
- pixel ``p`` (row-major index in the stored frame) is bit ``p % 8`` of byte ``p // 8``, least-significant
  bit first;
- rows are stored bottom-up: readers flip vertically, writers flip back. Streams in memory are upright.

H and W come from the caller or from a JSON sidecar. :func:`write_dat` writes ``<name>.dat.json`` beside
``<name>.dat``; :func:`read_dat` looks for ``<name>.dat.json`` first and then ``<name>.json`` (the spelling
some scene folders use). Sidecar keys: ``height``, ``width`` (the stored readout size), optional
``clock_hz``, ``threshold``, ``crop`` ``[left, right]`` (readout columns to drop, see :func:`read_dat`) and,
for a colour spike camera, ``cfa`` (``"RGGB"``…, the Bayer tile from the top-left pixel of the UPRIGHT stored
frame) with optional ``cfa_gains`` ``[r, g, b]``. Explicit arguments win over the sidecar. ``.npz`` files
written by :func:`write_npz` carry the same fields as members beside the ``spikes`` array.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import tokenize
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.spikes.camera import check_cfa, shift_cfa
from spikegen_core.spikes.stream import DEFAULT_CLOCK_HZ, SpikeStream
from spikegen_core.spikes.unpack import unpack_rows_flipped
from spikegen_core.utils import atomic_write

PathLike = str | os.PathLike

# Resolutions seen in the field, offered when a file does not divide into the frames asked for.
COMMON_SIZES: tuple[tuple[int, int], ...] = (
    (250, 400),
    (250, 416),
    (1000, 1000),
    (1000, 1024),
    (256, 256),
    (400, 250),
    (480, 640),
    (500, 800),
    (720, 1280),
)

_NPZ_KEYS = ("spk", "spikes", "spike", "arr_0", "data")

# What numpy/zipfile raise on a damaged file (a corrupt zip, a bad .npy header, an unsupported compression,
# a header too deep to parse...): all mean "this is not a readable spike array", so all become SpikeFileError.
_ARRAY_READ_ERRORS = (
    OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
    SyntaxError, tokenize.TokenError, MemoryError, RecursionError,
)  # fmt: skip


# Signatures of files people mistake for spike recordings (an image or archive renamed .dat). A .dat has no
# header, so only long or structured signatures are used: a real recording starting with one is negligible.
_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image", "pass the spike recording; to make spikes from an image use `spikegen simulate`"),
    (b"GIF87a", 0, "a GIF image", "pass the spike recording"),
    (b"GIF89a", 0, "a GIF image", "pass the spike recording"),
    (b"II*\x00", 0, "a TIFF image", "pass the spike recording"),
    (b"MM\x00*", 0, "a TIFF image", "pass the spike recording"),
    (b"\x93NUMPY", 0, "a numpy .npy array", "rename it to .npy"),
    (b"PK\x03\x04", 0, "a zip archive (an .npz?)", "rename it to .npz if it is a numpy archive, else unpack it"),
    (b"\x1f\x8b\x08", 0, "a gzip archive", "unpack it first (gunzip)"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive", "unpack it first"),
    (b"Rar!\x1a\x07", 0, "a RAR archive", "unpack it first"),
    (b"%PDF-", 0, "a PDF document", "pass the spike recording"),
    (b"ftyp", 4, "an MP4/MOV video", "pass the spike recording"),
    (b"\x1aE\xdf\xa3", 0, "a Matroska/WebM video", "pass the spike recording"),
)  # fmt: skip


def check_spike_file(path: PathLike) -> Path:
    """``path`` as a Path when it is an existing regular file; else SpikeFileError saying what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise SpikeFileError(
            f"{path}: is a folder, not a spike file; pass one .dat/.npz/.npy file (a folder of per-view "
            "windows is an input of spikegen-process-data)"
        )
    if not path.exists():
        raise SpikeFileError(f"{path}: spike file not found; check the path")
    if not path.is_file():
        raise SpikeFileError(f"{path}: not a regular file; pass a .dat/.npz/.npy spike file")
    return path


def _check_not_another_format(path: Path) -> None:
    """A .dat has no header: refuse one that begins like an image, archive or video (a renamed file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise SpikeFileError(f"{path}: cannot read the spike file ({e.strerror}); check its permissions") from e
    found = [(what, fix) for magic, offset, what, fix in _MAGIC if head[offset : offset + len(magic)] == magic]
    if head[:3] == b"\xff\xd8\xff" and head[6:10] in (b"JFIF", b"Exif"):
        found.append(("a JPEG image", "pass the spike recording; to make spikes from an image use `spikegen simulate`"))
    if head[:1] in (b"{", b"[") and path.stat().st_size < 1 << 20:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            json.loads(path.read_bytes())
            found.append(("a JSON file", "pass the .dat recording itself, not its sidecar"))
    if found:
        what, fix = found[0]
        raise SpikeFileError(f"{path}: starts with the signature of {what}, not raw spike frames; {fix}")


def frame_bytes(height: int, width: int) -> int:
    """Bytes one H×W frame takes in a ``.dat`` file (rounded up to whole bytes)."""
    return (height * width + 7) // 8  # integer maths: a float division overflows on absurd claimed sizes


def sidecar_path(path: PathLike) -> Path:
    """Where :func:`write_dat` puts the JSON sidecar of ``path``: ``<name>.dat.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _find_sidecar(path: Path) -> Path | None:
    for candidate in (sidecar_path(path), path.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> dict[str, Any]:
    side = _find_sidecar(path)
    if side is None:
        return {}
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise SpikeFileError(
            f"{side}: sidecar of {path.name} is not valid JSON ({e}); fix or delete it and pass "
            f"height=/width= to read_dat"
        ) from e
    if not isinstance(meta, dict):
        raise SpikeFileError(f"{side}: sidecar must be a JSON object with 'height' and 'width', got {meta!r}")
    for key in ("height", "width"):
        if key in meta and (not isinstance(meta[key], int) or isinstance(meta[key], bool) or meta[key] <= 0):
            raise SpikeFileError(
                f"{side}: sidecar field '{key}' must be a positive integer, got {meta[key]!r}; "
                f"fix it or pass {key}= to read_dat"
            )
    for key in ("clock_hz", "threshold"):
        value = meta.get(key)
        if value is not None and not _positive_number(value):
            raise SpikeFileError(
                f"{side}: sidecar field '{key}' must be a positive finite number, got {value!r}; "
                f"fix it, delete the field, or pass {key}= to read_dat"
            )
    if "cfa" in meta or "cfa_gains" in meta:
        meta["cfa"], meta["cfa_gains"] = _checked_cfa(side, meta.get("cfa"), meta.get("cfa_gains"))
    return meta


def _checked_cfa(where: Path, cfa: Any, gains: Any) -> tuple[str | None, tuple[float, float, float] | None]:
    """A file's colour filter array fields, validated; errors name the file and the fix."""
    try:
        if cfa is not None and not isinstance(cfa, str):
            raise InputMismatchError(f"cfa must be a string such as 'RGGB', got {cfa!r}")
        pattern, values = check_cfa(cfa, gains, where=str(where))
    except (InputMismatchError, TypeError) as e:
        raise SpikeFileError(
            f"{where}: bad colour filter array fields ({e}); set 'cfa' to RGGB, BGGR, GRBG or GBRG (or remove it "
            "for a grey camera) and 'cfa_gains' to three positive numbers, or pass cfa= when reading"
        ) from e
    return pattern, (values if pattern else None)


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _sizes_that_divide(nbytes: int) -> list[str]:
    return [f"{h}×{w}" for h, w in COMMON_SIZES if nbytes % frame_bytes(h, w) == 0]


def dat_num_frames(path: PathLike, height: int, width: int) -> int:
    """Number of H×W frames in a ``.dat`` file, checking that the file holds a whole number of them."""
    path = Path(path)
    if height <= 0 or width <= 0:
        raise SpikeFileError(f"{path}: height and width must be positive, got {height}×{width}")
    try:
        nbytes = path.stat().st_size
    except OSError as e:
        raise SpikeFileError(f"{path}: cannot read the spike file ({e.strerror}); check the path") from e
    fb = frame_bytes(height, width)
    if nbytes == 0:
        raise SpikeFileError(
            f"{path}: file is empty (0 bytes); expected frames of {fb:,} bytes ({height}×{width})"
        )
    if nbytes % fb:
        fits = _sizes_that_divide(nbytes)
        hint = (
            f"common sizes that divide it: {', '.join(fits)}"
            if fits
            else "none of the common sizes divide it"
        )
        raise SpikeFileError(
            f"{path}: {nbytes:,} bytes is not a whole number of {height}×{width} frames ({fb:,} bytes each; "
            f"{nbytes // fb} frames + {nbytes % fb:,} bytes); {hint}. Pass the right height=/width= or fix the "
            f"sidecar {sidecar_path(path).name}; a truncated recording can be cut to whole frames"
        )
    return nbytes // fb


_LAYOUT_CHECKED: dict[tuple, str | None] = {}


def _row_alignment(counts: np.ndarray, widths: list[int]) -> dict[int, float]:
    """Correlation of each pixel of the flattened count image with the pixel ``w`` further on, for each ``w``.

    In the true layout the pixel ``width`` further on is the one below, so it correlates as strongly as image
    neighbours do; at any other offset the pixels are far apart in the image and correlate far less.
    """
    x = counts.astype(np.float64).ravel()
    x = x - x.mean()
    var = float((x * x).mean())
    if var <= 0:
        return dict.fromkeys(widths, 0.0)
    return {w: float((x[w:] * x[:-w]).mean() / var) for w in widths if 0 < w < x.size}


def check_layout(path: PathLike, height: int, width: int) -> str | None:
    """Why reading ``path`` as ``height``×``width`` frames looks wrong, or None when it looks right or no
    clear call can be made.

    Reads up to a few MB of frames, sums them into a spike-count image, and compares how well rows line up
    (see :func:`_row_alignment`) at the given width and at every other width of the same pixel count (8 to
    pixels/8). Only a clear case is reported: another width lines up at > 0.2 and at least twice as well
    (RELIABILITY.md lists the values measured on simulated and REDS files). Not caught: a size of another pixel count that happens to divide the
    file (its frames straddle the true ones), nor scenes without spatial structure (no call is made).
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, height, width)
    if key in _LAYOUT_CHECKED:
        return _LAYOUT_CHECKED[key]
    pixels = height * width
    reason = None
    total = st.st_size // frame_bytes(height, width)
    if pixels >= 256 and total >= 1:
        n = int(min(total, max(1, (8 << 20) // pixels), 400))
        packed = np.fromfile(path, dtype=np.uint8, count=n * frame_bytes(height, width))
        bits = np.unpackbits(packed.reshape(n, -1), axis=-1, bitorder="little")[:, :pixels]
        counts = bits.sum(0, dtype=np.int64)
        widths = sorted({w for w in range(8, pixels // 8 + 1) if pixels % w == 0} | {width})
        align = _row_alignment(counts, widths)
        best = max(align, key=align.get)
        own = align.get(width, 0.0)
        if best != width and align[best] > 0.2 and own < 0.5 * align[best]:
            reason = (
                f"read as {height}×{width}, its rows do not line up (correlation {own:.2f} with the row below) "
                f"while as {pixels // best}×{best} they do ({align[best]:.2f}): it looks like "
                f"height={pixels // best}, width={best}"
            )
    _LAYOUT_CHECKED[key] = reason
    return reason


def _check_crop(path: Path, crop: Sequence[int] | None, width: int) -> tuple[int, int]:
    if crop is None:
        return 0, 0
    try:
        left, right = (int(c) for c in crop)
    except (TypeError, ValueError, OverflowError) as e:
        raise SpikeFileError(f"{path}: crop must be (left, right) column counts, got {crop!r}") from e
    if left < 0 or right < 0 or left + right >= width:
        raise SpikeFileError(
            f"{path}: crop {crop!r} drops {left}+{right} of {width} columns; use non-negative counts that "
            f"leave at least one column (e.g. (16, 0) for a 416-wide readout cropped to 400)"
        )
    return left, right


def _frame_range(path: Path, total: int, start: int, count: int | None, layout: str) -> int:
    if count is None:
        count = total - start
    if start < 0 or count <= 0 or start + count > total:
        raise SpikeFileError(
            f"{path}: frames [{start}, {start + count}) are outside the file's {total} frames ({layout}); "
            f"ask for start >= 0, count >= 1 and start + count <= {total}"
        )
    return count


def decode_frames(
    packed: np.ndarray,
    height: int,
    width: int,
    crop: tuple[int, int] = (0, 0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Unpack ``(N, ceil(H*W/8))`` ``.dat`` bytes to upright ``(N, H, W - left - right)`` uint8 0/1 frames.

    The common case (W and the crops divisible by 8) runs the numba kernel of ``unpack.py``, which flips and
    crops as it writes, into ``out`` when given (C-contiguous uint8/bool of the output shape: reusing one buffer
    avoids first-touch page faults on every window of a long stream). Other sizes use ``np.unpackbits``.
    """
    n = packed.shape[0]
    left, right = crop
    shape = (n, height, width - left - right)
    if out is not None:
        if tuple(out.shape) != shape or out.dtype not in (np.uint8, np.bool_) or not out.flags.c_contiguous:
            raise InputMismatchError(
                f"out= must be a C-contiguous uint8 or bool array of shape {shape}, got {out.dtype} "
                f"{tuple(out.shape)}{'' if out.flags.c_contiguous else ' (not contiguous)'}"
            )
    if width % 8 == 0 and left % 8 == 0 and right % 8 == 0:
        frames = out if out is not None else np.empty(shape, np.uint8)
        unpack_rows_flipped(np.ascontiguousarray(packed), frames, height, width, left)
        return frames
    bits = np.unpackbits(packed, axis=-1, bitorder="little")[:, : height * width]
    upright = bits.reshape(n, height, width)[:, ::-1, left : width - right]
    if out is None:
        return upright.copy()  # copy: torch wants positive strides
    np.copyto(out, upright, casting="unsafe")
    return out


def _mapped_frames(path: Path, offset: int, count: int, frame_size: int) -> np.ndarray:
    """``(count, frame_size)`` bytes of ``path`` from ``offset``, memory-mapped (only that range is read) and
    pre-faulted in one call where the OS can (MAP_POPULATE: a page fault per 4 KiB costs ~10 % of a decode).
    The mapping lives as long as the returned array."""
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    length = offset - start + count * frame_size
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), length, flags=flags, prot=mmap.PROT_READ, offset=start)
    return np.frombuffer(m, dtype=np.uint8, count=count * frame_size, offset=offset - start).reshape(count, frame_size)


def _numpy_view(out: torch.Tensor) -> np.ndarray:
    """The numpy view of a CPU tensor; its shape, dtype and layout are checked by :func:`decode_frames`."""
    if not isinstance(out, torch.Tensor) or out.device.type != "cpu":
        raise InputMismatchError("out= must be a CPU torch tensor of dtype uint8 or bool")
    return out.numpy()


def encode_frames(spikes: np.ndarray) -> np.ndarray:
    """Pack upright ``(N, H, W)`` 0/1 frames into ``(N, ceil(H*W/8))`` ``.dat`` bytes (rows bottom-up)."""
    n, height, width = spikes.shape
    flat = np.ascontiguousarray(spikes[:, ::-1, :] != 0).reshape(n, height * width)
    return np.packbits(flat, axis=-1, bitorder="little")


def read_dat(
    path: PathLike,
    height: int | None = None,
    width: int | None = None,
    *,
    start: int = 0,
    count: int | None = None,
    crop: Sequence[int] | None = None,
    clock_hz: float | None = None,
    threshold: float | None = None,
    out: torch.Tensor | None = None,
    cfa: str | None = None,
    cfa_gains: Sequence[float] | None = None,
    force_size: bool = False,
) -> SpikeStream:
    """Read frames ``[start, start + count)`` of a PKU ``.dat`` spike file as an upright :class:`SpikeStream`.

    Only the bytes of the asked frames are read (numpy memmap). ``height``/``width`` are the stored readout
    size; when omitted they come from the sidecar. ``crop=(left, right)`` drops that many columns from the
    left/right edge of each upright frame (e.g. ``(16, 0)`` turns a 416-wide readout into 400 columns).
    ``out``: a contiguous CPU uint8/bool tensor of the output shape to decode into (the stream then shares
    its memory); reading a long file window by window into one buffer is the fastest way through it.
    ``cfa``/``cfa_gains``: a colour camera's filter array (default: the sidecar's; none = grey), given for the
    uncropped upright frame; a crop with an odd left edge shifts the returned stream's pattern accordingly.

    A size is checked before it is used: given ``height``/``width`` that disagree with the sidecar, or (without
    a sidecar) whose rows do not line up where another layout's do (:func:`check_layout`), raise
    SpikeFileError; ``force_size=True`` reads the file as told.
    """
    path = check_spike_file(path)
    _check_not_another_format(path)
    meta = read_sidecar(path)
    given = {k: v for k, v in (("height", height), ("width", width)) if v is not None}
    if not force_size and {"height", "width"} <= meta.keys() and any(meta[k] != v for k, v in given.items()):
        flags = " ".join(f"--{k} {v}" for k, v in given.items())
        raise SpikeFileError(
            f"{path}: {flags} disagrees with its sidecar {_find_sidecar(path).name}, which says "
            f"{meta['height']}×{meta['width']}; leave the size out to use the sidecar, fix the sidecar, or pass "
            f"--force-size (force_size=True) to read it as {given.get('height', meta['height'])}×"
            f"{given.get('width', meta['width'])}"
        )
    cfa, cfa_gains = _checked_cfa(path, cfa or meta.get("cfa"), cfa_gains or meta.get("cfa_gains"))
    height = height if height is not None else meta.get("height")
    width = width if width is not None else meta.get("width")
    if height is None or width is None:
        raise SpikeFileError(
            f"{path}: .dat files carry no header and no sidecar ({sidecar_path(path).name}) gave the size; "
            f"pass height= and width= (e.g. 250, 400 for REDS-style streams, 1000, 1000 for SPS100)"
        )
    crop = crop if crop is not None else meta.get("crop")
    left, right = _check_crop(path, crop, width)
    total = dat_num_frames(path, height, width)  # checked before any allocation: bounded memory
    if given and not {"height", "width"} <= meta.keys() and not force_size:
        wrong = check_layout(path, height, width)
        if wrong:
            raise SpikeFileError(
                f"{path}: {wrong}. Pass that size (--height/--width, height=/width=); if {height}×{width} is "
                f"right, pass --force-size (force_size=True) or write it to {sidecar_path(path).name}"
            )
    fb = frame_bytes(height, width)
    layout = f"{total * fb:,} bytes of {height}×{width} frames, {fb:,} bytes each"
    count = _frame_range(path, total, start, count, layout)
    packed = _mapped_frames(path, start * fb, count, fb)
    try:
        frames = decode_frames(packed, height, width, (left, right), None if out is None else _numpy_view(out))
    finally:
        del packed  # release the mapping now rather than at garbage collection
    return SpikeStream(
        out if out is not None else torch.from_numpy(frames),
        clock_hz=float(clock_hz if clock_hz is not None else meta.get("clock_hz") or DEFAULT_CLOCK_HZ),
        threshold=threshold if threshold is not None else meta.get("threshold"),
        source=str(path),
        start_frame=start,
        cfa=shift_cfa(cfa, 0, left) if cfa else None,
        cfa_gains=cfa_gains,
    )


def _as_numpy_frames(spikes: torch.Tensor | np.ndarray | SpikeStream, what: str) -> np.ndarray:
    data = spikes.spikes if isinstance(spikes, SpikeStream) else spikes
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if arr.ndim != 3:
        raise SpikeFileError(f"{what}: spikes must be (T, H, W), got shape {arr.shape}")
    return arr


def write_dat(
    path: PathLike, spikes: torch.Tensor | np.ndarray | SpikeStream, *, sidecar: bool = True
) -> Path:
    """Write upright ``(T, H, W)`` spikes (nonzero = spike) as a PKU ``.dat`` file, atomically.

    With ``sidecar=True`` also writes ``<name>.dat.json`` (height, width, clock, threshold, frame count) so
    :func:`read_dat` needs no size arguments. Returns the ``.dat`` path.
    """
    path = Path(path)
    arr = _as_numpy_frames(spikes, str(path))
    _, height, width = arr.shape
    # The .dat and its sidecar are two renames: drop an earlier sidecar first, so that a run killed between
    # them never leaves a sidecar describing another file's frames (a size that may divide: silent garbage).
    # (Only our own <name>.dat.json: a <name>.json may be the user's file.)
    sidecar_path(path).unlink(missing_ok=True)
    with atomic_write(path) as f:
        # Chunked so that writing a long stream never holds more than a few MB of booleans.
        step = max(1, (8 << 20) // max(1, height * width))
        for i in range(0, arr.shape[0], step):
            f.write(encode_frames(arr[i : i + step]).tobytes())
    if sidecar:
        meta: dict[str, Any] = {"height": height, "width": width, "num_frames": int(arr.shape[0])}
        if isinstance(spikes, SpikeStream):
            meta["clock_hz"] = spikes.clock_hz
            if spikes.threshold is not None:
                meta["threshold"] = spikes.threshold
            if spikes.cfa:
                meta["cfa"] = spikes.cfa
                meta["cfa_gains"] = list(spikes.cfa_gains or (1.0, 1.0, 1.0))
        meta["layout"] = "pku-dat: ceil(H*W/8) bytes per frame, LSB-first, rows bottom-up"
        with atomic_write(sidecar_path(path), "w") as f:
            json.dump(meta, f, indent=1)
    return path


def write_npz(path: PathLike, spikes: torch.Tensor | np.ndarray | SpikeStream) -> Path:
    """Write upright ``(T, H, W)`` spikes as a compressed ``.npz`` (member ``spikes``, uint8 0/1), atomically.

    A :class:`SpikeStream` also stores ``clock_hz``, ``threshold`` and, for a colour camera, ``cfa`` and
    ``cfa_gains``, which :func:`read_npz` reads back.
    """
    path = Path(path)
    arr = (_as_numpy_frames(spikes, str(path)) != 0).astype(np.uint8)
    members: dict[str, np.ndarray] = {"spikes": arr}
    if isinstance(spikes, SpikeStream):
        members["clock_hz"] = np.float64(spikes.clock_hz)
        if spikes.threshold is not None:
            members["threshold"] = np.float64(spikes.threshold)
        if spikes.cfa:
            members["cfa"] = np.array(spikes.cfa)
            members["cfa_gains"] = np.asarray(spikes.cfa_gains or (1.0, 1.0, 1.0), dtype=np.float64)
    with atomic_write(path) as f:
        np.savez_compressed(f, **members)
    return path


def _unreadable_array(path: Path, error: BaseException) -> SpikeFileError:
    """The one error for a ``.npz``/``.npy`` that numpy or zipfile cannot read (one of ``_ARRAY_READ_ERRORS``)."""
    return SpikeFileError(
        f"{path}: cannot read as {path.suffix or 'npz'} ({type(error).__name__}: {error}); the file is damaged or "
        f"not a numpy array file: re-export it with numpy.save/savez"
    )


def _npz_cfa(archive: Any) -> tuple[Any, Any]:
    """The ``cfa``/``cfa_gains`` members of an ``.npz`` (None where absent)."""
    names = archive.files
    cfa = str(archive["cfa"]) if "cfa" in names else None
    gains = archive["cfa_gains"].tolist() if "cfa_gains" in names else None
    return cfa, gains


def _parse_axes(path: Path, axes: str) -> str:
    if not isinstance(axes, str) or sorted(axes.upper()) != ["H", "T", "W"]:
        raise SpikeFileError(
            f"{path}: axes must be a permutation of 'THW' such as 'THW' or 'HWT', got {axes!r}"
        )
    return axes.upper()


def _check_axis_order(path: Path, shape: tuple[int, ...], axes: str) -> None:
    """Refuse an axis order that makes an implausible image; name the order that looks right instead.

    No spike camera has an aspect ratio beyond 4:1, so an H×W of e.g. 400×20000 means the time axis
    was given the wrong place (an (H, W, T) recording read as 'THW', or the reverse).
    """

    def aspect(order: str) -> float:
        h, w = shape[order.index("H")], shape[order.index("W")]
        return max(h, w) / max(1, min(h, w))

    if aspect(axes) <= 8:
        return
    plausible = [o for o in ("THW", "HWT", "TWH", "WHT") if aspect(o) <= 4]
    guess = f"it looks like axes={plausible[0]!r}" if plausible else "no axis order gives a plausible image"
    raise SpikeFileError(
        f"{path}: array of shape {shape} read with axes={axes!r} gives a "
        f"{shape[axes.index('H')]}×{shape[axes.index('W')]} image, which no spike camera makes; {guess}. "
        f"Pass the axis order of the file (time first: 'THW', time last: 'HWT')"
    )


def _check_member_size(path: Path, archive: zipfile.ZipFile, key: str) -> None:
    """Refuse a member whose ``.npy`` header claims more bytes than the zip says it holds, before numpy
    allocates the claimed array (a damaged or hostile header must not cost gigabytes of memory)."""
    name = key + ".npy" if key + ".npy" in archive.namelist() else key
    info = archive.getinfo(name)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            return  # format 3.0 (rare): numpy checks it while reading
        shape, _, dtype = read_header[version](member)
        claimed = math.prod(shape) * dtype.itemsize
        if claimed + member.tell() > info.file_size:
            raise SpikeFileError(
                f"{path}: array {key!r} claims shape {shape} of {dtype} ({claimed:,} bytes) but the archive holds "
                f"{info.file_size:,} bytes for it; the file is truncated or damaged: re-export it"
            )


def _lag1_autocorrelation(arr: np.ndarray) -> list[float]:
    """Lag-1 autocorrelation of the 0/1 values along each axis of a ≤128³ corner of ``arr``."""
    block = np.asarray(arr[:128, :128, :128], dtype=np.float32)
    out = []
    for axis in range(3):
        x = np.moveaxis(block, axis, -1)
        x = x - x.mean(-1, keepdims=True)
        out.append(float((x[..., 1:] * x[..., :-1]).mean() / ((x * x).mean() + 1e-9)))
    return out


def _check_time_axis(path: Path, arr: np.ndarray, axes: str) -> None:
    """Refuse an axis order whose time axis is plainly a spatial one.

    An integrate-and-fire pixel fires at regular intervals, so along the time axis consecutive values are
    anti-correlated (measured: −0.3 to −0.5 on REDS and the SpikingSIM trees recording), while along a
    spatial axis the same tick's neighbours are uncorrelated (|r| < 0.05). Only a clear case raises: the
    strongest anti-correlation below −0.1 on another axis and at least twice the claimed time axis's.
    """
    if min(arr.shape) < 8:
        return
    r = _lag1_autocorrelation(arr)
    best = int(np.argmin(r))
    claimed = axes.index("T")
    if best == claimed or r[best] > -0.1 or r[claimed] < 0.5 * r[best]:
        return
    spatial = [a for a in axes if a != "T"]  # keep the user's H/W order, move T to where the data has it
    likely = "".join("T" if i == best else spatial.pop(0) for i in range(3))
    raise SpikeFileError(
        f"{path}: axes={axes!r} puts time on axis {claimed} of shape {arr.shape}, but the spikes are regular "
        f"along axis {best} (lag-1 autocorrelation {r[best]:.2f} vs {r[claimed]:.2f}), as only time is; "
        f"it looks like axes={likely!r}. Pass axes={likely!r} (time first: 'THW', time last: 'HWT')"
    )


def read_npz(
    path: PathLike,
    *,
    axes: str = "THW",
    key: str | None = None,
    start: int = 0,
    count: int | None = None,
    clock_hz: float = DEFAULT_CLOCK_HZ,
    threshold: float | None = None,
    cfa: str | None = None,
    cfa_gains: Sequence[float] | None = None,
) -> SpikeStream:
    """Read 0/1 spikes from ``.npz`` (array ``key``) or ``.npy`` with the given axis order.

    ``axes`` names the stored order, e.g. ``"THW"`` (time first) or ``"HWT"`` (time last). Without ``key``
    a single-array ``.npz`` uses that array, otherwise the first of ``spk``, ``spikes``, ``spike``, ``arr_0``,
    ``data`` present. ``.npy`` files are memory-mapped so only the asked frames are read; ``.npz`` members
    are decompressed whole (zip members cannot be sliced). ``cfa``/``cfa_gains``: a colour camera's filter
    array; default: the archive's ``cfa``/``cfa_gains`` members (see :func:`write_npz`), else grey.
    """
    path = check_spike_file(path)
    axes = _parse_axes(path, axes)
    stored_cfa: tuple[Any, Any] = (None, None)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    key = names[0] if len(names) == 1 else next((k for k in _NPZ_KEYS if k in names), None)
                if key not in names:
                    raise SpikeFileError(
                        f"{path}: no array {key!r} in the archive; it holds {names}. Pass --key with one of them "
                        f"(key= in Python), e.g. --key {names[0] if names else 'spk'}"
                    )
                _check_member_size(path, archive.zip, key)
                arr = archive[key]
                stored_cfa = _npz_cfa(archive)
    except SpikeFileError:
        raise
    except _ARRAY_READ_ERRORS as e:
        raise _unreadable_array(path, e) from e
    if arr.ndim != 3:
        raise SpikeFileError(f"{path}: spikes must be a 3-D array ({axes}), got shape {arr.shape}")
    if 0 in (arr.shape[axes.index("H")], arr.shape[axes.index("W")]):
        raise SpikeFileError(f"{path}: array of shape {arr.shape} ({axes}) has an empty image axis; re-export it")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)):
        raise SpikeFileError(f"{path}: spikes must be bool or integer 0/1, got dtype {arr.dtype}")
    _check_axis_order(path, arr.shape, axes)
    _check_time_axis(path, arr, axes)
    total = arr.shape[axes.index("T")]
    count = _frame_range(path, total, start, count, f"array {key or 'npy'} of shape {arr.shape}, axes {axes}")
    # A slice (not fancy indexing) so a memory-mapped .npy only touches the asked frames.
    index = tuple(slice(start, start + count) if a == "T" else slice(None) for a in axes)
    window = arr[index]
    window = np.ascontiguousarray(np.transpose(window, [axes.index(a) for a in "THW"]))
    if window.size and (window.min() < 0 or window.max() > 1):
        raise SpikeFileError(
            f"{path}: values span [{window.min()}, {window.max()}], not 0/1 spikes; if these are counts or "
            f"images, convert them first (e.g. simulate() for intensities)"
        )
    pattern, gains = _checked_cfa(path, cfa or stored_cfa[0], cfa_gains or stored_cfa[1])
    return SpikeStream(
        torch.from_numpy(window.astype(np.uint8, copy=not window.flags.writeable)),  # a read-only memory map: copy
        clock_hz=float(clock_hz),
        threshold=threshold,
        source=str(path) + (f"[{key}]" if key else ""),
        start_frame=start,
        cfa=pattern,
        cfa_gains=gains,
    )


def spike_file_cfa(path: PathLike) -> str | None:
    """The colour filter array a spike file declares (a ``.dat``'s sidecar, an ``.npz``'s ``cfa`` member)
    without reading its frames; None for a grey camera or a file that cannot say (``.npy``)."""
    path = check_spike_file(path)
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return read_sidecar(path).get("cfa")
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                cfa, gains = _npz_cfa(archive)
        except _ARRAY_READ_ERRORS as e:
            raise _unreadable_array(path, e) from e
        return _checked_cfa(path, cfa, gains)[0]
    return None


def load_spikes(
    path: PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    axes: str = "THW",
    key: str | None = None,
    start: int = 0,
    count: int | None = None,
    force_size: bool = False,
    **kwargs: Any,
) -> SpikeStream:
    """Read any supported spike file: ``.dat`` → :func:`read_dat`, ``.npz``/``.npy`` → :func:`read_npz`.

    Size arguments (and ``force_size``) apply to ``.dat`` files, ``axes``/``key`` to arrays; the frame range
    to both.
    """
    path = check_spike_file(path)  # before the suffix: a missing file or a folder is said as such
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return read_dat(path, height, width, start=start, count=count, force_size=force_size, **kwargs)
    if suffix in (".npz", ".npy"):
        return read_npz(path, axes=axes, key=key, start=start, count=count, **kwargs)
    raise SpikeFileError(
        f"{path}: unknown spike file type {suffix!r}; use .dat (with a sidecar or size), .npz or .npy"
    )
