"""Endless synthetic training batches from ``spikegen_core.data.pairs.make_motion_sample``.

Each sample: the sharp frame at the window centre, the blurred RGB exposure over the window, the spike
window (our camera model, θ drawn per sample so the model copes with cameras of other sensitivity), and
its TFP image. One window length T per batch (drawn from ``spike_frames``) so samples stack.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch

from spikegen_core.data.natural import natural_sample
from spikegen_core.data.pairs import make_motion_sample
from spikegen_core.data.textures import _uniform
from spikegen_core.train.config import TrainConfig


def motion_sample(
    generator: torch.Generator, size: int, num_frames: int, threshold: float, motion_scale: float = 1.0
) -> dict[str, torch.Tensor]:
    """One training sample as a dict of tensors (images (3, size, size) in [0, 1])."""
    s = make_motion_sample(
        None, size=size, num_spike_frames=num_frames, threshold=threshold, motion_scale=motion_scale,
        generator=generator,
    )
    return s.training_item()


def batch_seed(seed: int, index: int) -> int:
    """The generator seed of batch ``index`` of stream ``seed`` (well mixed, so neighbours are unrelated)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]) >> 1


def training_batches(
    batch_size: int,
    size: int,
    spike_frames: tuple[int, int],
    threshold_range: tuple[float, float],
    seed: int = 0,
    motion_range: tuple[float, float] = (0.0, 2.0),
    start: int = 0,
    source: str = "textures",
    dark_rate_max: float = 0.0,
    collage_fraction: float = 0.0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless stacked batches ``start, start + 1, ...``; different ``seed`` (e.g. per DDP rank) → different data.

    Batch ``i`` depends only on ``(seed, i)``, so a resumed run continues the exact stream of an uninterrupted
    one by starting at its step. θ and the motion scale are drawn uniformly per sample from their ranges.
    ``source``: "textures" (procedural) or "natural" (photographs, data.natural; half the samples get dark
    noise up to ``dark_rate_max``; ``collage_fraction`` of the canvases are photo collages,
    ``data.natural.collage_canvas``)."""
    if source not in ("textures", "natural"):
        raise ValueError(f"unknown training data source {source!r}; choose 'textures' or 'natural'")
    lo, hi = spike_frames
    index = start
    while True:
        g = torch.Generator().manual_seed(batch_seed(seed, index))

        t = int(torch.randint(lo, hi + 1, (1,), generator=g))
        samples = []
        for _ in range(batch_size):
            theta, motion = _uniform(g, *threshold_range), _uniform(g, *motion_range)
            if source == "natural":
                dark = _uniform(g, 0.0, dark_rate_max) if float(torch.rand((), generator=g)) < 0.5 else 0.0
                samples.append(natural_sample(g, size, t, theta, motion, dark, collage_fraction=collage_fraction))
            else:
                samples.append(motion_sample(g, size, t, theta, motion))
        yield {**{k: torch.stack([s[k] for s in samples]) for k in samples[0]}, "index": torch.tensor(index)}
        index += 1


def prefetch(batches: Iterator[dict[str, torch.Tensor]], depth: int = 2) -> Iterator[dict[str, torch.Tensor]]:
    """Build the next batches in a background thread (torch releases the GIL), overlapping data and compute.

    Closing the returned generator stops the thread (it would otherwise sit on ``depth`` finished batches)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            for b in batches:
                if stop.is_set():
                    return
                put(b)
        except BaseException as e:  # hand the failure to the training thread instead of hanging it
            put(e)

    threading.Thread(target=work, daemon=True).start()
    try:
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def batch_stream(cfg: TrainConfig, seed: int) -> Callable[[int], Iterator[dict[str, torch.Tensor]]]:
    """``start → batches start, start + 1, ...`` of ``cfg``'s synthetic data (prefetched if ``cfg.prefetch``);
    what the training loop calls once it knows the step it starts (or resumes) at."""

    def at(start: int) -> Iterator[dict[str, torch.Tensor]]:
        it = training_batches(
            cfg.batch_size, cfg.image_size, cfg.spike_frames, cfg.threshold_range,
            seed=seed, motion_range=cfg.motion_range, start=start, source=cfg.data,
            dark_rate_max=cfg.dark_rate_max, collage_fraction=cfg.collage_fraction,
        )
        return prefetch(it) if cfg.prefetch else it

    return at
