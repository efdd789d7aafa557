"""Gaussian rasterisation on any device: ``rasterization`` is gsplat's on CUDA tensors, ours on CPU tensors.

Ours (``cpu``) has gsplat 1.4's signature and ``meta`` keys: projection (``project``, ``numba_project``), tile
binning (``tiles``) and compositing (``numba_composite``, with ``torch_composite`` as the pure-PyTorch fallback).
``_reference`` is a dense float64 renderer for tests; ``_scenes`` makes random scenes for tests and benchmarks.

gsplat is imported only on the CUDA branch: on CPU-only machines calling into gsplat's CUDA wrappers
tries to JIT-compile its extension and fails.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from spikegen_nvs.rasterizer import cpu as render_cpu

_CPU_ONLY_KEYS = ("compositor",)


def rasterization(*args: Any, **kwargs: Any) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Drop-in for ``gsplat.rasterization`` (same arguments/outputs) that also works on CPU tensors."""
    means = args[0] if args else kwargs["means"]
    if means.is_cuda:
        from gsplat import rasterization as gsplat_rasterization

        for key in _CPU_ONLY_KEYS:
            kwargs.pop(key, None)
        return gsplat_rasterization(*args, **kwargs)
    return render_cpu.rasterization(*args, **kwargs)
