"""How RGB frames encode light: linear radiance ↔ display values, and the scene field that says which.

Spike counts are linear in radiance; RGB cameras store display-encoded frames (sRGB, or a plain gamma). Every
place that mixes the two goes through :class:`RgbResponse`: ``decode`` (display → linear) before spikes are
simulated from a frame or a frame is fed to a spike-conditioned model, ``encode`` (linear → display) before
a rendered or restored frame is compared with, or shown beside, the stored RGB frames. Both are differentiable.

The scene field (docs/INTERFACES.md, "Scene folder"): top-level ``rgb_response`` = ``"linear"`` | ``"srgb"`` |
``{"gamma": g}``. A scene without it holds sRGB frames (what phones, COLMAP inputs and video files hold),
except scenes written by ``spikegen make-scene`` before the field existed, whose frames were linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from spikegen_core.errors import SceneFormatError

FIELD = "rgb_response"
_SRGB_KNEE_LINEAR = 0.0031308
_SRGB_KNEE_DISPLAY = 0.04045
_POWER_FLOOR = 1e-6  # keeps x ** (1 / g) and its gradient finite at black
_LEGACY_LINEAR_GENERATORS = ("spikegen make-scene",)  # wrote linear frames and no rgb_response (format 1)


@dataclass(frozen=True)
class RgbResponse:
    """One encoding of RGB values: ``"linear"``, ``"srgb"`` (IEC 61966-2-1) or ``"gamma"`` (display = linear^(1/g))."""

    kind: Literal["linear", "srgb", "gamma"]
    gamma: float = 1.0

    @property
    def is_linear(self) -> bool:
        return self.kind == "linear" or (self.kind == "gamma" and self.gamma == 1.0)

    def to_json(self) -> str | dict[str, float]:
        """The value of the scene field."""
        return {"gamma": self.gamma} if self.kind == "gamma" else self.kind

    def __str__(self) -> str:
        return f"gamma:{self.gamma:g}" if self.kind == "gamma" else self.kind

    def encode(self, linear: torch.Tensor) -> torch.Tensor:
        """Linear radiance in [0, 1] → display values in [0, 1] (clamped first)."""
        x = linear.clamp(0.0, 1.0)
        if self.is_linear:
            return x
        if self.kind == "srgb":
            curve = 1.055 * x.clamp_min(_SRGB_KNEE_LINEAR) ** (1 / 2.4) - 0.055
            return torch.where(x <= _SRGB_KNEE_LINEAR, 12.92 * x, curve)
        return x.clamp_min(_POWER_FLOOR) ** (1.0 / self.gamma)

    def decode(self, display: torch.Tensor) -> torch.Tensor:
        """Display values in [0, 1] → linear radiance in [0, 1] (clamped first)."""
        y = display.clamp(0.0, 1.0)
        if self.is_linear:
            return y
        if self.kind == "srgb":
            curve = ((y.clamp_min(_SRGB_KNEE_DISPLAY) + 0.055) / 1.055) ** 2.4
            return torch.where(y <= _SRGB_KNEE_DISPLAY, y / 12.92, curve)
        return y.clamp_min(_POWER_FLOOR) ** self.gamma

    def encode_slope(self, linear: torch.Tensor) -> torch.Tensor:
        """d encode / d linear at ``linear`` (first-order transfer of small colour offsets, e.g. SH bands)."""
        x = linear.clamp(0.0, 1.0)
        if self.is_linear:
            return torch.ones_like(x)
        if self.kind == "srgb":
            curve = 1.055 / 2.4 * x.clamp_min(_SRGB_KNEE_LINEAR) ** (1 / 2.4 - 1)
            return torch.where(x <= _SRGB_KNEE_LINEAR, torch.full_like(x, 12.92), curve)
        return x.clamp_min(_POWER_FLOOR) ** (1.0 / self.gamma - 1) / self.gamma


LINEAR = RgbResponse("linear")
SRGB = RgbResponse("srgb")
DEFAULT = SRGB
"""What a scene without the field holds unless our generator wrote it (see the module docstring)."""


def parse(value: Any, where: Path | str = "rgb_response") -> RgbResponse:
    """The scene field's JSON value → :class:`RgbResponse`; SceneFormatError naming ``where``, the value and the fix."""
    if value in ("linear", "srgb"):
        return RgbResponse(value)
    if isinstance(value, dict) and set(value) == {"gamma"}:
        g = value["gamma"]
        if isinstance(g, int | float) and not isinstance(g, bool) and math.isfinite(g) and 0.1 <= g <= 10:
            return RgbResponse("gamma", float(g))
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise SceneFormatError(
        f'{where}: `{FIELD}` = {shown} is not a known RGB encoding. Write `{FIELD}` as "srgb" (phone and '
        'camera photos, video files), "linear" (raw/linear frames) or {"gamma": g} with 0.1 <= g <= 10'
    )


def from_text(text: str) -> RgbResponse:
    """A command-line value: ``linear``, ``srgb`` or ``gamma:G`` (e.g. ``gamma:2.2``)."""
    kind, _, g = text.strip().lower().partition(":")
    if kind == "gamma":
        try:
            return parse({"gamma": float(g)}, "--rgb-response")
        except ValueError:
            pass
    return parse(kind if not g else text, "--rgb-response")


def of_scene(meta: dict, where: Path | str) -> RgbResponse:
    """The ``rgb_response`` of a parsed ``transforms.json``, with the documented default when it is absent."""
    if FIELD in meta:
        return parse(meta[FIELD], where)
    generator = meta.get("generator")
    if isinstance(generator, dict) and generator.get("name") in _LEGACY_LINEAR_GENERATORS:
        return LINEAR
    return DEFAULT
