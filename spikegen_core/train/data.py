"""Endless synthetic training batches from ``spikegen_core.data.pairs.make_motion_sample``.

Each sample: the sharp frame at the window centre, the blurred RGB exposure over the window, the spike
window (our camera model, θ drawn per sample so the model copes with cameras of other sensitivity), and
its TFP image. One window length T per batch (drawn from ``spike_frames``) so samples stack.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from spikegen_core.data.pairs import make_motion_sample


def motion_sample(
    generator: torch.Generator, size: int, num_frames: int, threshold: float, motion_scale: float = 1.0
) -> dict[str, torch.Tensor]:
    """One training sample as a dict of tensors (images (3, size, size) in [0, 1])."""
    s = make_motion_sample(
        None, size=size, num_spike_frames=num_frames, threshold=threshold, motion_scale=motion_scale,
        generator=generator,
    )
    return {
        "sharp": s.sharp,
        "blurred": s.blurred,
        "spikes": s.spikes,
        "tfp": s.tfp(),
        "threshold": torch.tensor(float(threshold)),
    }


def training_batches(
    batch_size: int,
    size: int,
    spike_frames: tuple[int, int],
    threshold_range: tuple[float, float],
    seed: int = 0,
    motion_range: tuple[float, float] = (0.0, 2.0),
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless stacked batches; different ``seed`` (e.g. per DDP rank) → different data.

    θ and the motion scale are drawn uniformly per sample from their ranges."""

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    g = torch.Generator().manual_seed(seed)
    lo, hi = spike_frames
    while True:
        t = int(torch.randint(lo, hi + 1, (1,), generator=g))
        samples = []
        for _ in range(batch_size):
            samples.append(motion_sample(g, size, t, uniform(*threshold_range), uniform(*motion_range)))
        yield {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def prefetch(batches: Iterator[dict[str, torch.Tensor]], depth: int = 2) -> Iterator[dict[str, torch.Tensor]]:
    """Build the next batches in a background thread (torch releases the GIL), overlapping data and compute."""
    q: queue.Queue = queue.Queue(maxsize=depth)

    def work() -> None:
        try:
            for b in batches:
                q.put(b)
        except BaseException as e:  # hand the failure to the training thread instead of hanging it
            q.put(e)

    threading.Thread(target=work, daemon=True).start()
    while True:
        item = q.get()
        if isinstance(item, BaseException):
            raise item
        yield item
