"""Image-level synthetic training data: a sharp image moved over an exposure → blurred RGB + spikes + sharp.

One sample: pick an image (a procedural texture, or a random crop of a user image) as a canvas, draw a random
motion (translation, rotation, zoom, maybe accelerating), render sharp views through the moving window at the
spike clock (or ``K`` sub-frames linearly interpolated to it), average them into the blurred frame, simulate the
spike stream over the same window, and keep the sharp view at the exposure centre as the target.
Everything is seeded: the same seed (and index) gives the same sample on any machine and worker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from spikegen_core.data.motion import Motion, path_length_px, random_motion, render_views
from spikegen_core.data.textures import SAMPLE_PATH, random_texture
from spikegen_core.errors import ImageFileError, InputMismatchError, SpikeGenError
from spikegen_core.image import load_image, save_image
from spikegen_core.spikes.camera import CameraModel, counts_to_intensity, to_grey
from spikegen_core.spikes.stream import SpikeStream
from spikegen_core.utils import atomic_write

__all__ = [
    "MotionSample",
    "PairFolder",
    "SyntheticPairs",
    "load_image",
    "make_motion_sample",
    "make_pairs",
    "make_pairs_command",
    "simulate_command",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PAIRS_FORMAT = "spikegen-pairs"


@dataclass
class MotionSample:
    """One synthetic exposure. Images are float ``[0, 1]``; ``spikes`` is ``(T, H, W)`` uint8."""

    sharp: torch.Tensor  # (3, H, W) view at the exposure centre
    blurred: torch.Tensor  # (3, H, W) exposure average
    spikes: torch.Tensor  # (T, H, W) uint8 over the same exposure
    frames: torch.Tensor  # (K, 3, H, W) sharp sub-frames spread evenly over the exposure
    threshold: float
    gain: float = 1.0
    motion: Motion | None = None

    def tfp(self) -> torch.Tensor:
        """Texture from playback over the whole window, on the intensity scale: ``(H, W)``."""
        counts = self.spikes.float().sum(0)
        return counts_to_intensity(counts, self.spikes.shape[0], threshold=self.threshold, gain=self.gain)

    def training_item(self) -> dict[str, torch.Tensor]:
        """The trainer's sample: ``sharp``, ``blurred``, ``spikes``, ``tfp`` and the camera's ``threshold``."""
        return {"sharp": self.sharp, "blurred": self.blurred, "spikes": self.spikes, "tfp": self.tfp(),
                "threshold": torch.tensor(float(self.threshold))}  # fmt: skip


# ------------------------------------------------------------------------------------------------ images
def _image_paths(images: str | Path | Sequence[str | Path] | None) -> list[Path]:
    """A folder (its image files, sorted), a single file, or a list of files."""
    if images is None:
        return []
    if isinstance(images, (str, Path)):
        p = Path(images)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise SpikeGenError(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)}); add some or omit it")
            return found
        return [p]
    return [Path(q) for q in images]


def _canvas_from_image(
    image: torch.Tensor, canvas_hw: tuple[int, int], out_hw: tuple[int, int], generator: torch.Generator | None
) -> torch.Tensor:
    """Fit an image to the canvas.

    With a generator: a random crop (random scale and place) resized to the canvas, so the view sees more of
    the image than the output. Without: the image is fitted to the output (cover + centre crop) and
    reflection-padded to the canvas, so the still view shows the whole image at its own resolution.
    """
    if generator is None:
        fitted = _crop_resize(image, out_hw, 1.0, None)
        pad_h, pad_w = (canvas_hw[0] - out_hw[0]) // 2, (canvas_hw[1] - out_hw[1]) // 2
        if pad_h >= out_hw[0] or pad_w >= out_hw[1]:  # reflection needs the pad smaller than the image
            return _crop_resize(image, canvas_hw, 1.0, None)
        return F.pad(fitted[None], (pad_w, pad_w, pad_h, pad_h), mode="reflect")[0]
    return _crop_resize(image, canvas_hw, None, generator)


def _crop_resize(
    image: torch.Tensor, hw: tuple[int, int], frac: float | None, generator: torch.Generator | None
) -> torch.Tensor:
    """Crop a region of ``hw``'s aspect ratio (``frac`` of the largest; random size/place with a generator)."""
    _, h, w = image.shape
    th, tw = hw
    aspect = tw / th
    full_h = min(h, w / aspect)  # largest crop of the target aspect ratio that fits
    if frac is None:
        lo = min(1.0, th / full_h)  # never smaller than 1:1 with the target
        frac = lo + (1.0 - lo) * float(torch.rand((), generator=generator))
    crop_h = max(1, min(h, round(full_h * frac)))
    crop_w = max(1, min(w, round(crop_h * aspect)))
    if generator is not None:
        top = int(torch.randint(h - crop_h + 1, (), generator=generator))
        left = int(torch.randint(w - crop_w + 1, (), generator=generator))
    else:
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = image[:, top : top + crop_h, left : left + crop_w]
    if crop.shape[-2:] == (th, tw):
        return crop.contiguous()
    return F.interpolate(crop[None], size=(th, tw), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def _canvas_hw(size: tuple[int, int], motion_scale: float) -> tuple[int, int]:
    # Margin around the output so the moving window stays on real content for typical motions.
    # An even surplus keeps output pixel centres on canvas pixel centres, so a still view is not resampled.
    margin = 0.15 + 0.2 * min(max(motion_scale, 0.0), 3.0)
    return tuple(s + 2 * math.ceil(s * margin / 2) for s in size)


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = (int(v) for v in size)
    return (h, w)


# ------------------------------------------------------------------------------------------------ samples
def make_motion_sample(
    image: torch.Tensor | str | Path | None = None,
    *,
    size: int | Sequence[int] = (64, 64),
    num_spike_frames: int = 32,
    num_sharp: int | None = None,
    motion_scale: float = 1.0,
    threshold: float = 2.0,
    gain: float = 1.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
    motion: Motion | None = None,
    random_crop: bool = True,
    camera: CameraModel | None = None,
) -> MotionSample:
    """One synthetic exposure from ``image`` (tensor ``(3, H, W)``, a path, or ``None`` for a procedural texture).

    ``num_spike_frames`` ticks of spikes cover the exposure; ``num_sharp`` sharp sub-frames are rendered at evenly
    spread times and linearly interpolated to the ticks (default: enough that pixels move ≤ ~1 px between
    sub-frames, at most one per tick). ``motion_scale`` scales the
    random motion (0 = still); pass ``motion`` to fix it. ``camera`` overrides threshold/gain (e.g. to add noise).
    Draws from ``generator`` if given, else from ``seed``.
    """
    out_hw = _as_hw(size)
    t = int(num_spike_frames)
    k = t if num_sharp is None else int(num_sharp)  # refined below once the motion is known
    if t < 1 or k < 1:
        raise InputMismatchError(f"make_motion_sample: need num_spike_frames ≥ 1 and num_sharp ≥ 1, got {t}, {k}")
    g = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    canvas_hw = _canvas_hw(out_hw, motion_scale)
    if image is None:
        canvas = random_texture(*canvas_hw, generator=g)
    else:
        img = load_image(image) if isinstance(image, (str, Path)) else torch.as_tensor(image).float()
        if img.ndim != 3 or img.shape[0] != 3:
            raise InputMismatchError(f"make_motion_sample: image must be (3, H, W), got {tuple(img.shape)}")
        canvas = _canvas_from_image(img, canvas_hw, out_hw, g if random_crop else None)
    if motion is None:
        motion = random_motion(g, min(out_hw), motion_scale)
    if num_sharp is None:
        # Enough sub-frames that no pixel moves more than ~1 px between them: linear interpolation of
        # neighbouring views is then as good as rendering every tick, and still exposures cost 2 renders.
        k = min(t, max(2, math.ceil(path_length_px(motion, out_hw)) + 1))
    times = torch.linspace(-0.5, 0.5, k) if k > 1 else torch.zeros(1)
    views = render_views(canvas, motion, torch.cat([times, torch.zeros(1)]), out_hw)
    frames, sharp = views[:k], views[k]
    blurred = torch.einsum("k,kchw->chw", _exposure_weights(k, t), frames)
    cam = camera or CameraModel(threshold=threshold, gain=gain)
    spike_seed = int(torch.randint(2**31 - 1, (), generator=g))
    spikes = cam.simulate(to_grey(frames), t, seed=spike_seed).spikes
    return MotionSample(sharp, blurred, spikes, frames, cam.threshold, cam.gain, motion)


def _exposure_weights(k: int, t: int) -> torch.Tensor:
    """Weight of each of ``k`` sub-frames in the mean over ``t`` ticks under linear interpolation (sums to 1)."""
    if k == 1:
        return torch.ones(1)
    pos = np.arange(t) * (k - 1) / max(t - 1, 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), k - 2)
    frac = pos - lo
    w = np.bincount(lo, 1 - frac, minlength=k) + np.bincount(lo + 1, frac, minlength=k)
    return torch.from_numpy(w / w.sum()).float()


def _sample_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed per (dataset seed, index), whatever the worker order."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


class SyntheticPairs(Dataset):
    """Endless-looking dataset of synthetic exposures, generated on the fly and deterministic per index.

    Items are dicts ``{"sharp": (3,H,W), "blurred": (3,H,W), "spikes": (T,H,W), "tfp": (H,W)}`` (float32
    spikes by default: ``spike_dtype=torch.uint8`` keeps them small). ``images``: a folder, a file or a list
    of files to crop from (mixed with procedural textures at ``texture_fraction``); ``None`` = textures only.
    """

    def __init__(
        self,
        size: int | Sequence[int] = 64,
        num_spike_frames: int = 32,
        length: int = 10_000,
        seed: int = 0,
        images: str | Path | Sequence[str | Path] | None = None,
        threshold: float = 2.0,
        motion_scale: float = 1.0,
        *,
        gain: float = 1.0,
        num_sharp: int | None = None,
        texture_fraction: float = 0.25,
        spike_dtype: torch.dtype = torch.float32,
        camera: CameraModel | None = None,
    ) -> None:
        self.size = _as_hw(size)
        self.num_spike_frames = int(num_spike_frames)
        self.length = int(length)
        self.seed = int(seed)
        self.image_paths = _image_paths(images)
        for p in self.image_paths:
            if not p.is_file():
                raise ImageFileError(f"{p}: image not found; check the images= argument")
        self.threshold = float(threshold)
        self.gain = float(gain)
        self.motion_scale = float(motion_scale)
        self.num_sharp = num_sharp
        self.texture_fraction = float(texture_fraction) if self.image_paths else 1.0
        self.spike_dtype = spike_dtype
        self.camera = camera or CameraModel(threshold=self.threshold, gain=self.gain)
        self._cache: dict[int, torch.Tensor] = {}  # decoded user images, per worker

    def __len__(self) -> int:
        return self.length

    def _image(self, i: int) -> torch.Tensor:
        if i not in self._cache:
            self._cache[i] = load_image(self.image_paths[i])
        return self._cache[i]

    def sample(self, index: int) -> MotionSample:
        if not 0 <= index < self.length:
            raise IndexError(f"SyntheticPairs index {index} out of range [0, {self.length})")
        g = torch.Generator().manual_seed(_sample_seed(self.seed, index))
        image = None
        if self.image_paths and float(torch.rand((), generator=g)) >= self.texture_fraction:
            image = self._image(int(torch.randint(len(self.image_paths), (), generator=g)))
        return make_motion_sample(
            image,
            size=self.size,
            num_spike_frames=self.num_spike_frames,
            num_sharp=self.num_sharp,
            motion_scale=self.motion_scale,
            generator=g,
            camera=self.camera,
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.sample(index)
        return {"sharp": s.sharp, "blurred": s.blurred, "spikes": s.spikes.to(self.spike_dtype), "tfp": s.tfp()}


# ------------------------------------------------------------------------------------------ pair folders
def make_pairs(
    out_dir: str | Path,
    n: int,
    *,
    size: int | Sequence[int] = 64,
    num_spike_frames: int = 32,
    seed: int = 0,
    images: str | Path | Sequence[str | Path] | None = None,
    threshold: float = 2.0,
    motion_scale: float = 1.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``n`` synthetic pairs to ``out_dir`` and return the path of its ``index.json``.

    Layout: ``sharp/NNNNNN.png``, ``blurred/NNNNNN.png``, ``spikes/NNNNNN.npz`` (key ``spikes``: ``(T, H, W)``
    uint8, plus ``threshold``), and ``index.json`` listing them with the settings. Every file is written
    atomically and the index last, so an interrupted run never leaves an index pointing at missing files.
    """
    from rich.progress import Progress

    out = Path(out_dir)
    index_path = out / "index.json"
    if index_path.exists() and not overwrite:
        raise SpikeGenError(f"{index_path}: a pair folder already exists here; pick another folder or overwrite=True")
    data = SyntheticPairs(
        size, num_spike_frames, length=n, seed=seed, images=images, threshold=threshold,
        motion_scale=motion_scale, spike_dtype=torch.uint8,
    )
    entries = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"writing {n} pairs to {out}", total=n)
        for i in range(n):
            s = data.sample(i)
            name = f"{i:06d}"
            save_image(out / "sharp" / f"{name}.png", s.sharp)
            save_image(out / "blurred" / f"{name}.png", s.blurred)
            with atomic_write(out / "spikes" / f"{name}.npz") as f:
                np.savez_compressed(f, spikes=s.spikes.numpy(), threshold=np.float32(s.threshold))
            entries.append({
                "sharp": f"sharp/{name}.png",
                "blurred": f"blurred/{name}.png",
                "spikes": f"spikes/{name}.npz",
                "motion": asdict(s.motion) if s.motion else None,
            })
            bar.advance(task)
    index = {
        "format": PAIRS_FORMAT,
        "version": 1,
        "settings": {
            "size": list(data.size), "num_spike_frames": num_spike_frames, "seed": seed, "threshold": threshold,
            "gain": data.gain, "motion_scale": motion_scale, "images": [str(p) for p in data.image_paths],
        },
        "pairs": entries,
    }
    with atomic_write(index_path, "w") as f:
        json.dump(index, f, indent=1)
    return index_path


class PairFolder(Dataset):
    """Reads a folder written by :func:`make_pairs`; items match :class:`SyntheticPairs`."""

    def __init__(self, root: str | Path, spike_dtype: torch.dtype = torch.float32) -> None:
        self.root = Path(root)
        index_path = self.root / "index.json"
        try:
            index = json.loads(index_path.read_text())
        except FileNotFoundError as exc:
            raise SpikeGenError(f"{index_path}: no pair index; write the folder with `spikegen make-pairs`") from exc
        except json.JSONDecodeError as exc:
            raise SpikeGenError(f"{index_path}: not valid JSON ({exc}); rewrite the folder with make-pairs") from exc
        if index.get("format") != PAIRS_FORMAT:
            raise SpikeGenError(f"{index_path}: format is {index.get('format')!r}, expected {PAIRS_FORMAT!r}")
        self.pairs = index["pairs"]
        self.settings = index.get("settings", {})
        self.spike_dtype = spike_dtype

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        entry = self.pairs[i]
        with np.load(self.root / entry["spikes"]) as z:
            spikes = torch.from_numpy(z["spikes"].astype(np.uint8))
            threshold = float(z["threshold"]) if "threshold" in z else float(self.settings.get("threshold", 2.0))
        gain = float(self.settings.get("gain", 1.0))
        tfp = counts_to_intensity(spikes.float().sum(0), spikes.shape[0], threshold=threshold, gain=gain)
        return {
            "sharp": load_image(self.root / entry["sharp"]),
            "blurred": load_image(self.root / entry["blurred"]),
            "spikes": spikes.to(self.spike_dtype),
            "tfp": tfp,
        }


# --------------------------------------------------------------------------------------- CLI entry points
def make_pairs_command(
    out: Path,
    n: int = 1000,
    size: int = 64,
    spike_frames: int = 32,
    threshold: float = 2.0,
    motion_scale: float = 1.0,
    seed: int = 0,
    images: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a folder of synthetic training pairs (sharp PNG, blurred PNG, spikes .npz, index.json).

    Args:
        out: Folder to create (its index.json lists every pair).
        n: Number of pairs.
        size: Side of the square images in pixels.
        spike_frames: Spike frames (clock ticks) per exposure.
        threshold: Spike camera threshold θ (rate = intensity / θ per tick).
        motion_scale: Scale of the random motion (0 = still camera).
        seed: Random seed; the same seed writes the same pairs.
        images: Optional image file or folder to crop from, mixed with procedural textures.
        overwrite: Replace an existing pair folder.
    """
    index = make_pairs(
        out, n, size=size, num_spike_frames=spike_frames, seed=seed, images=images, threshold=threshold,
        motion_scale=motion_scale, overwrite=overwrite,
    )
    print(f"wrote {n} pairs ({size}×{size}, {spike_frames} spike frames, θ={threshold}) to {out}; index: {index}")
    return index


def simulate_command(
    image: Path | None = None,
    out: Path = Path("spikes.dat"),
    frames: int = 400,
    motion: float = 1.0,
    threshold: float = 2.0,
    seed: int = 0,
    clock_hz: float = 20_000.0,
) -> Path:
    """Simulate a spike stream from an image moved by a random motion, and write it as a PKU .dat file.

    Args:
        image: Input image (PNG/JPEG); default: the bundled sample image.
        out: Output .dat path; a .dat.json sidecar and the sharp/blurred PNGs are written beside it.
        frames: Number of spike frames (clock ticks) to simulate.
        motion: Scale of the random motion over the stream (0 = still camera).
        threshold: Spike camera threshold θ (rate = intensity / θ per tick).
        seed: Random seed for the motion and the initial potentials.
        clock_hz: Spike clock in Hz (stored in the sidecar).
    """
    from spikegen_core.spikes.io import write_dat

    image = Path(image) if image is not None else SAMPLE_PATH
    img = load_image(image)
    hw = (int(img.shape[1]), int(img.shape[2]))
    camera = CameraModel(threshold=threshold, clock_hz=clock_hz)
    g = torch.Generator().manual_seed(seed)
    moves = random_motion(g, min(hw), motion, allow_still=False) if motion > 0 else Motion()
    # ~1 px between rendered sub-frames, capped so large images stay within memory (64 full-size frames).
    num_sharp = min(frames, 64, max(2, math.ceil(path_length_px(moves, hw)) + 1))
    sample = make_motion_sample(
        img, size=hw, num_spike_frames=frames, num_sharp=num_sharp, motion_scale=motion, generator=g,
        motion=moves, random_crop=False, camera=camera,
    )
    stream = SpikeStream(sample.spikes, clock_hz=clock_hz, threshold=threshold, source=str(image))
    out = Path(out)
    if out.suffix.lower() != ".dat":
        out = out.with_suffix(".dat")
    write_dat(out, stream)
    sharp_png, blurred_png = out.with_suffix(".sharp.png"), out.with_suffix(".blurred.png")
    save_image(sharp_png, sample.sharp)
    save_image(blurred_png, sample.blurred)
    rate = float(stream.spikes.float().mean())
    print(
        f"simulated {frames} spike frames of {hw[0]}×{hw[1]} from {image} (θ={threshold}, mean rate {rate:.3f}/tick)\n"
        f"  spikes:  {out} (+ sidecar {out.name}.json)\n  sharp:   {sharp_png}\n  blurred: {blurred_png}"
    )
    return out
