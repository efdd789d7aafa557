"""Typed readers for ``transforms.json`` fields: each returns a checked value or raises SceneFormatError.

JSON lets any field hold any type (a string, null, a list, an object, NaN via ``1e400``), and bare
``int()``/``float()``/``Path /`` calls turn those into ValueError/TypeError/OverflowError that name neither the
file nor the field. These helpers name ``where`` (the file and frame), the field, the value, and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from spikegen_core import radiometry
from spikegen_core.errors import SceneFormatError

FLOAT32_MAX = 3.4028234663852886e38  # larger values turn into inf once nerfstudio stores them as float32


def fail(where: Path | str, problem: str, fix: str) -> SceneFormatError:
    """The error every scene check raises: "<where>: <problem>. <fix>"."""
    return SceneFormatError(f"{where}: {problem}. {fix}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."  # a huge list or string must not flood the message


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # JSON true/false are not numbers


def number(value: Any, where: Path | str, name: str, *, positive: bool = False) -> float:
    """A float that stays finite in float32 (cameras and losses are float32), and > 0 when ``positive``."""
    out = math.nan
    if _is_number(value):
        try:
            out = float(value)
        except OverflowError:  # an integer beyond float range
            out = math.inf
    ok = abs(out) <= FLOAT32_MAX and (out > 0 or not positive)  # False for NaN too
    if not ok:
        kind = "a positive finite number" if positive else "a finite number"
        raise fail(where, f"`{name}` = {_shown(value)} is not {kind}", f"Write `{name}` as {kind}")
    return out


def integer(value: Any, where: Path | str, name: str, *, minimum: int | None = None) -> int:
    """An integer (integral floats such as ``24.0`` accepted), at least ``minimum`` when given."""
    out: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        out = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        out = int(value)
    if out is None or (minimum is not None and out < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise fail(where, f"`{name}` = {_shown(value)} is not an integer{bound}", f"Write `{name}` as an integer{bound}")
    return out


def integer_pair(value: Any, where: Path | str, name: str, *, minimum: int | None = None) -> tuple[int, int]:
    """A JSON list of exactly two integers."""
    if not isinstance(value, list) or len(value) != 2:
        raise fail(where, f"`{name}` = {_shown(value)} is not a list of two integers", f"Write `{name}` as [a, b]")
    return integer(value[0], where, f"{name}[0]", minimum=minimum), integer(value[1], where, f"{name}[1]", minimum=minimum)


def relative_path(value: Any, root: Path, where: Path | str, name: str, *, must_exist: bool = True) -> Path:
    """``root / value`` for a non-empty string ``value``; checked to be an existing file when ``must_exist``."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise fail(where, f"`{name}` = {_shown(value)} is not a file path",
                   f"Write `{name}` as a path relative to the scene folder {root}")  # fmt: skip
    path = root / value
    try:
        exists = path.is_file()
    except OSError:  # e.g. a name too long for the filesystem
        exists = False
    if must_exist and not exists:
        raise fail(where, f"{name} {path} does not exist",
                   f"Regenerate the scene or fix `{name}` (relative to the scene folder {root})")  # fmt: skip
    return path


def obj(value: Any, where: Path | str, name: str) -> dict:
    """A JSON object."""
    if not isinstance(value, dict):
        raise fail(where, f"`{name}` = {_shown(value)} is not a JSON object", f"Write `{name}` as {{...}}")
    return value


def text(value: Any, where: Path | str, name: str) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise fail(where, f"`{name}` = {_shown(value)} is not a string", f"Write `{name}` as a string")
    return value


def rgb_response(meta: dict, where: Path | str) -> radiometry.RgbResponse:
    """The scene's ``rgb_response`` (``"linear"``, ``"srgb"`` or ``{"gamma": g}``); absent: sRGB, or linear for
    scenes ``spikegen make-scene`` wrote before the field existed (spikegen_core/radiometry.py)."""
    return radiometry.of_scene(meta, where)
def cfa(value: Any, where: Path | str, name: str) -> str | None:
    """A colour spike camera's Bayer pattern (``"RGGB"``, ``"BGGR"``, ``"GRBG"``, ``"GBRG"``); ``null`` = grey."""
    from spikegen_core.spikes.camera import CFA_PATTERNS

    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in CFA_PATTERNS:
        raise fail(where, f"`{name}` = {_shown(value)} is not a Bayer pattern",
                   f"Write `{name}` as one of {', '.join(CFA_PATTERNS)} (the 2x2 tile from the top-left pixel; "
                   "`spikegen reconstruct --guess-cfa` tells it from a recording) or remove it for a grey camera")  # fmt: skip
    return value.upper()


def cfa_gains(value: Any, where: Path | str, name: str) -> tuple[float, float, float]:
    """Per-channel (R, G, B) gains of a colour spike camera: a list of three positive numbers."""
    if not isinstance(value, list) or len(value) != 3:
        raise fail(where, f"`{name}` = {_shown(value)} is not a list of three numbers",
                   f"Write `{name}` as [gain_r, gain_g, gain_b], e.g. [1.0, 1.0, 1.0]")  # fmt: skip
    r, g, b = (number(v, where, f"{name}[{i}]", positive=True) for i, v in enumerate(value))
    return r, g, b
