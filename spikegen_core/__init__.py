"""SpikeGen core: spike streams, the spike camera model, synthetic data and the SpikeGen model.

Nothing in this package imports nerfstudio; ``spikegen_nvs`` builds on it, never the reverse.

The public API is imported on first use, so ``import spikegen_core`` stays light (no torch until needed)::

    from spikegen_core import load_spikes, restore, simulate, tfp

    stream = load_spikes("recording.dat", height=250, width=400)  # SpikeStream: (T, H, W) binary spikes
    texture = tfp(stream, window=41)                                # (H, W) intensity from the spike rate
    sharp = restore("recording.dat")                                # (3, H, W): the SpikeGen model's frame
    synthetic = simulate(frames, num_frames=400)                    # (N, H, W) frames in [0, 1] -> SpikeStream

- :func:`load_spikes` reads ``.dat`` (with its sidecar JSON or ``height``/``width``), ``.npz`` and ``.npy``.
- :func:`simulate` is the spike camera model (integrate-and-fire, the one every loss and simulator uses).
- :func:`tfp` / :func:`tfi` reconstruct an image from a window of spikes (mean rate / inter-spike interval).
- :func:`restore` restores a frame with the SpikeGen model (the shipped tiny checkpoint unless one is given).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "SpikeStream": ("spikegen_core.spikes.stream", "SpikeStream"),
    "load_spikes": ("spikegen_core.spikes.io", "load_spikes"),
    "simulate": ("spikegen_core.spikes.camera", "simulate"),
    "tfp": ("spikegen_core.spikes.reconstruct", "tfp"),
    "tfi": ("spikegen_core.spikes.reconstruct", "tfi"),
    "restore": ("spikegen_core.train.restore", "restore_image"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'spikegen_core' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
