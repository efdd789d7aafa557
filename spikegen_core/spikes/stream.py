"""The ``SpikeStream`` type: a T×H×W binary spike tensor plus what is known about how it was recorded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

DEFAULT_CLOCK_HZ = 20_000.0


@dataclass
class SpikeStream:
    """Binary spike frames ``spikes[t, y, x] in {0, 1}`` (uint8 or bool), rows top-to-bottom (upright).

    ``start_frame`` is the index of ``spikes[0]`` in the file it came from, so windows keep their clock.
    ``cfa``: the colour filter array of a colour spike camera (``RGGB``…; None = grey) and ``cfa_gains`` its
    (R, G, B) gains (see ``spikegen_core.spikes.camera``).
    """

    spikes: torch.Tensor
    clock_hz: float = DEFAULT_CLOCK_HZ
    threshold: float | None = None
    source: str | None = None
    start_frame: int = 0
    cfa: str | None = None
    cfa_gains: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.spikes.ndim != 3:
            raise ValueError(f"SpikeStream wants a T×H×W tensor, got shape {tuple(self.spikes.shape)}")

    @property
    def num_frames(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def height(self) -> int:
        return int(self.spikes.shape[1])

    @property
    def width(self) -> int:
        return int(self.spikes.shape[2])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.clock_hz

    def __len__(self) -> int:
        return self.num_frames

    def window(self, center: int, length: int) -> SpikeStream:
        """The ``length`` frames centred on frame ``center`` (indices relative to this stream)."""
        start = center - length // 2
        if start < 0 or start + length > self.num_frames:
            raise IndexError(
                f"window of {length} frames around frame {center} leaves the stream "
                f"({self.num_frames} frames{', ' + self.source if self.source else ''})"
            )
        return replace(self, spikes=self.spikes[start : start + length], start_frame=self.start_frame + start)

    def to(self, device: torch.device | str) -> SpikeStream:
        return replace(self, spikes=self.spikes.to(device))

    def float(self) -> torch.Tensor:
        return self.spikes.float()


def central_start(num_frames: int, length: int, centre: Literal["key", "middle"] = "key") -> int:
    """First frame of the ``length`` central frames of a ``num_frames`` stream (``length <= num_frames``).

    ``"key"``: centred on the key frame ``num_frames // 2``, as :meth:`SpikeStream.window` and ``tfp`` centre
    by default (start ``T // 2 − n // 2``). ``"middle"``: the window's middle at the stream's middle (start
    ``(T − n) // 2``). The two differ only for an even ``T`` and odd ``n``, where ``"middle"`` starts one frame
    earlier; the model's training windows use ``"middle"``.
    """
    return num_frames // 2 - length // 2 if centre == "key" else (num_frames - length) // 2
