"""Synthetic data: image-level motion pairs (blurred RGB + spikes + sharp) and procedural textures.

The 3-D scene generator lives in :mod:`spikegen_core.data.scene` (imported on demand, it is heavier).
"""

from spikegen_core.data.motion import Motion, random_motion, render_views
from spikegen_core.data.pairs import (
    MotionSample,
    PairFolder,
    SyntheticPairs,
    load_image,
    make_motion_sample,
    make_pairs,
    make_pairs_command,
    simulate_command,
)
from spikegen_core.data.textures import random_texture

__all__ = [
    "Motion",
    "MotionSample",
    "PairFolder",
    "SyntheticPairs",
    "load_image",
    "make_motion_sample",
    "make_pairs",
    "make_pairs_command",
    "random_motion",
    "random_texture",
    "render_views",
    "simulate_command",
]
