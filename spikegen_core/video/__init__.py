"""Video: dense high-frame-rate reconstruction and RGB video deblurring from long spike streams.

Modules: ``windows`` (memory-mapped sliding windows), ``restorers`` (TFP / adaptive TFP / SpikeGen model behind
one callable interface), ``dense`` (stream → high-rate video), ``deblur`` (blurred RGB + spikes → sharp,
upsampled video), ``writer`` (PNG sequence + MP4), ``consistency`` (flicker, temporal and warping error),
``synthetic`` (sequences with ground truth).
"""

from spikegen_core.video.deblur import deblur_frames, deblur_video, deblur_video_command
from spikegen_core.video.dense import RestoreResult, restore_frames, restore_video, restore_video_command
from spikegen_core.video.restorers import (
    AdaptiveTFPRestorer,
    ModelRestorer,
    Restorer,
    TFPRestorer,
    make_restorer,
)
from spikegen_core.video.windows import SpikeSource, iter_window_batches, window_centres
from spikegen_core.video.writer import FrameWriter

__all__ = [
    "AdaptiveTFPRestorer",
    "FrameWriter",
    "ModelRestorer",
    "RestoreResult",
    "Restorer",
    "SpikeSource",
    "TFPRestorer",
    "deblur_frames",
    "deblur_video",
    "deblur_video_command",
    "iter_window_batches",
    "make_restorer",
    "restore_frames",
    "restore_video",
    "restore_video_command",
    "window_centres",
]
