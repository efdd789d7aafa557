"""Write restored frames as a PNG sequence and/or an H.264 MP4 (imageio's ffmpeg plugin, bundled binary).

High-frame-rate output (e.g. 1,000 frames/s from a 20 kHz stream) cannot be played at its real rate, so
the MP4 plays at ``play_fps`` (slow motion); the real rate goes into the sidecar ``<name>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError, SpikeGenError
from spikegen_core.image import save_image
from spikegen_core.utils import atomic_dir, atomic_path, atomic_write, remove_stale_temps

__all__ = ["FrameWriter", "to_uint8"]


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``(B, C, H, W)`` / ``(B, H, W)`` floats in [0, 1] → ``(B, H, W, 3)`` uint8 (grey repeated to RGB)."""
    if frames.ndim == 3:
        frames = frames.unsqueeze(1)
    if frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise InputMismatchError(f"frames must be (B, 1|3, H, W) or (B, H, W), got {tuple(frames.shape)}")
    x = (frames.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


class FrameWriter:
    """Context manager: ``writer.write(frames)`` appends ``(B, C, H, W)`` frames to the outputs.

    ``mp4``: path of the video (None = none); written to a temp file and renamed on success, so an interrupted
    run leaves no half video. ``frames_dir``: folder for ``frame_000000.png`` … (None = none).
    ``quality``: imageio's 0–10 scale (8 ≈ visually lossless). ``preset``: x264 speed preset; "veryfast" is
    4× faster than the default "medium" at the same size on noisy spike frames. ``meta``: saved beside the MP4.
    """

    def __init__(self, mp4: str | Path | None = None, frames_dir: str | Path | None = None, *,
                 play_fps: float = 30.0, quality: float = 8.0, preset: str = "veryfast",
                 meta: dict | None = None) -> None:
        self.mp4 = Path(mp4) if mp4 is not None else None
        self.frames_dir = Path(frames_dir) if frames_dir is not None else None
        self.play_fps, self.quality, self.preset = float(play_fps), float(quality), preset
        self.meta = dict(meta or {})
        self.count = 0
        self._writer = None
        self._atomic = None
        self._tmp: Path | None = None
        self._atomic_dir = None
        self._frames_tmp: Path | None = None

    def __enter__(self) -> FrameWriter:
        if self.frames_dir is not None:
            # Frames go to a temp folder that replaces frames_dir on success: a killed or shorter rerun never
            # leaves an earlier run's frame_*.png beside its own.
            self._atomic_dir = atomic_dir(self.frames_dir)
            self._frames_tmp = self._atomic_dir.__enter__()
        if self.mp4 is not None:
            import imageio.v2 as iio

            remove_stale_temps(self.mp4)  # a killed run's hidden temp video
            self._atomic = atomic_path(self.mp4)
            self._tmp = self._atomic.__enter__()
            try:
                # macro_block_size=2: only even sizes are needed for yuv420p, so 250×400 is not rescaled.
                self._writer = iio.get_writer(self._tmp, format="FFMPEG", mode="I", fps=self.play_fps,
                                              codec="libx264", quality=self.quality, macro_block_size=2,
                                              pixelformat="yuv420p", ffmpeg_params=["-preset", self.preset])
            except Exception as exc:
                self._atomic.__exit__(type(exc), exc, exc.__traceback__)
                if self._atomic_dir is not None:
                    self._atomic_dir.__exit__(type(exc), exc, exc.__traceback__)
                raise SpikeGenError(
                    f"{self.mp4}: cannot start the ffmpeg writer ({exc}); check that imageio-ffmpeg is installed "
                    "or pass --no-mp4 to write PNG frames only"
                ) from exc
        return self

    def write(self, frames: torch.Tensor) -> None:
        arr = to_uint8(frames)
        for img in arr:
            if self._writer is not None:
                self._writer.append_data(img)
            if self._frames_tmp is not None:
                save_image(self._frames_tmp / f"frame_{self.count:06d}.png",
                           torch.from_numpy(img).permute(2, 0, 1).float() / 255.0)
            self.count += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is None and self.mp4 is not None:
            # The video and its .json are two renames: drop the earlier .json first, so a kill between them
            # never pairs the new video with the old run's frame count and rates.
            self.mp4.with_suffix(".json").unlink(missing_ok=True)
        if self._atomic is not None:
            self._atomic.__exit__(exc_type, exc, tb)  # renames into place only on success
        if self._atomic_dir is not None:
            self._atomic_dir.__exit__(exc_type, exc, tb)  # swaps the frame folder in only on success
        if exc_type is None and self.mp4 is not None:
            with atomic_write(self.mp4.with_suffix(".json"), "w") as f:
                json.dump({**self.meta, "frames": self.count, "play_fps": self.play_fps}, f, indent=1)
