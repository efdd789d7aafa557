"""Spike-aware full-image datamanager: a restored dense frame per training view plus its raw spike window.

Dense frames come from a pluggable *restorer* (``"tfp"``; ``"spikegen"``, the core model; ``"spikegen-fast"``, the
one-pass fast model; ``"auto"``, the fast model for spike-rich windows and the core model for sparse ones,
spikegen-splat's default; or ``restorer="package.module:factory"``) and are cached on disk, keyed by the restorer's
id (which carries its checkpoint hash) and a hash of the spike window, so a second run or another method reuses them.
Each training batch also carries the view's spike window, read from the memory-mapped file (only the
window's frames), the blurred RGB frame when the scene has one, and whether the dense frame is grey.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.datamanagers.full_images_datamanager import (
    FullImageDatamanager,
    FullImageDatamanagerConfig,
)
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.utils.rich_utils import CONSOLE
from rich.progress import track

from spikegen_core.errors import CheckpointError, SceneFormatError
from spikegen_core.image import load_image
from spikegen_core.radiometry import LINEAR, RgbResponse
from spikegen_core.spikes.reconstruct import colour_frame
from spikegen_core.spikes.stream import SpikeStream
from spikegen_core.utils import atomic_write, file_digest
from spikegen_nvs.dataparser import SpikeDataParserConfig, SpikeView


class Restorer(Protocol):
    """Spike window (+ optional blurred RGB ``(3, H, W)``) → dense frame: ``(H, W)`` grey or ``(3, H, W)`` RGB in [0, 1]."""

    restorer_id: str
    """Names the method and its weights (e.g. ``"spikegen-<checkpoint sha>"``): part of the cache key."""

    def __call__(self, spikes: SpikeStream, view: SpikeView, blurred: torch.Tensor | None) -> torch.Tensor: ...


@dataclass(frozen=True)
class TFPDenseRestorer:
    """Texture from playback over the whole window (or ``window`` frames around its centre): grey, or
    demosaiced linear RGB for a colour (Bayer CFA) stream over ``colour_window`` frames (None: the whole window).

    A colour site sees one channel at a quarter (R, B) or half (G) of the pixels, and the demosaicer spreads each
    site's count noise over its neighbours, so colour frames want every spike of the window even at the cost of
    motion blur; grey frames are sharper from the centre (benchmarks/cfa.md, benchmarks/nvs.md)."""

    window: int | None = None
    colour_window: int | None = None

    @property
    def restorer_id(self) -> str:
        return f"tfp-w{self.window or 'all'}-cw{self.colour_window or 'all'}"

    def __call__(self, spikes: SpikeStream, view: SpikeView, blurred: torch.Tensor | None) -> torch.Tensor:
        window = self.colour_window if spikes.cfa else self.window
        window = min(window, spikes.num_frames) if window else None
        return colour_frame(spikes, window=window, threshold=view.threshold, gain=view.gain).clamp(0.0, 1.0)


def _model_id(checkpoint: Path | None, fast: bool = False) -> str:
    """Cache id of the core model as restorer. A given checkpoint's hash is added by ``restorer_key``; the shipped
    default weights (tiny; for the fast model: fast) may change between releases, so their hash is part of the id
    itself."""
    from spikegen_core.train.checkpoint import SHIPPED, SHIPPED_NAMES

    name = "spikegen-fast" if fast else "spikegen"
    if checkpoint is not None:
        return name
    return f"{name}-{file_digest(SHIPPED_NAMES['fast'] if fast else SHIPPED)[:16]}"


class SpikeGenRestorer:
    """The core SpikeGen model (``spikegen_core.video.restorers.ModelRestorer``, the one model restorer): deblurs
    the view's blurred RGB with its spikes (colour), or reconstructs a grey frame from the spikes alone when the
    view has no RGB. ``checkpoint=None`` is the shipped tiny model. ``fast``: the one-pass fast model instead (its
    luma, in the blurred RGB's chroma when the view has one; ``checkpoint=None``: the shipped ``fast``)."""

    def __init__(self, checkpoint: Path | None = None, fast: bool = False) -> None:
        from spikegen_core.video.restorers import ModelRestorer

        self.restorer = ModelRestorer(checkpoint, fast=fast).load()
        self.model = self.restorer.model
        self.restorer_id = _model_id(checkpoint, fast)

    def __call__(self, spikes: SpikeStream, view: SpikeView, blurred: torch.Tensor | None) -> torch.Tensor:
        if spikes.cfa:  # colour spikes: each filter site's plane restored as grey, then demosaiced
            from spikegen_core.video.restorers import DemosaicRestorer

            per_site = DemosaicRestorer(self.restorer, spikes.cfa, spikes.cfa_gains, per_site=True)
            return per_site(spikes.spikes[None], threshold=view.threshold / view.gain)[0]
        rgb = None if blurred is None else blurred[None]
        return self.restorer(spikes.spikes[None], rgb, threshold=view.threshold / view.gain)[0].squeeze(0)


class AutoRestorer:
    """Per window: the one-pass fast model (grey) where the window holds enough spikes, the full core model where it
    does not, demosaiced TFP for colour (CFA) windows.

    Where spikes are plentiful the fast model's frames are far closer to the sharp views than TFP's (it learned
    what a window average blurs or leaves noisy; `benchmarks/dense_frames.md`), and grey: the spikes carry the
    luminance, the re-blur loss the colour. With one or two spikes per pixel every spike-only frame is mostly
    noise, and the full model, which fuses the view's blurred RGB with its spikes, is the better target
    (benchmarks/prior.md). ``checkpoint`` is the full model's (default: the shipped tiny one); the fast model is
    the shipped ``fast``. Models are loaded only when a view needs them."""

    def __init__(
        self,
        checkpoint: Path | None = None,
        tfp_window: int | None = None,
        min_spikes: float = 4.0,
        tfp_colour_window: int | None = None,
    ) -> None:
        self.tfp = TFPDenseRestorer(tfp_window, tfp_colour_window)
        self.checkpoint = checkpoint
        self.min_spikes = min_spikes
        self.restorer_id = (f"auto-s{min_spikes:g}-{self.tfp.restorer_id}-{_model_id(None, fast=True)}-"
                            f"{_model_id(checkpoint)}")  # fmt: skip

    @cached_property
    def model(self) -> SpikeGenRestorer:
        return SpikeGenRestorer(self.checkpoint)

    @cached_property
    def fast(self) -> Restorer:
        """The fast model as a grey restorer (the blurred RGB is left to the re-blur loss)."""
        model = SpikeGenRestorer(fast=True)
        return lambda spikes, view, blurred: model(spikes, view, None)

    def choose(self, spikes: SpikeStream) -> Restorer:
        """The restorer for this window: the fast model if the mean spike count per pixel reaches ``min_spikes``."""
        # Colour (CFA) windows get the demosaiced TFP: the shipped model, run per filter site, scores below it
        # there (benchmarks/cfa_restore.md); `restorer spikegen` forces the model.
        if spikes.cfa:
            return self.tfp
        per_pixel = float(spikes.spikes.float().mean()) * spikes.num_frames
        return self.fast if per_pixel >= self.min_spikes else self.model

    def __call__(self, spikes: SpikeStream, view: SpikeView, blurred: torch.Tensor | None) -> torch.Tensor:
        return self.choose(spikes)(spikes, view, blurred)


def build_restorer(
    spec: str,
    checkpoint: Path | None = None,
    tfp_window: int | None = None,
    min_spikes: float = 4.0,
    tfp_colour_window: int | None = None,
) -> Restorer:
    """``"tfp"``, ``"spikegen"`` (the core model; default weights: the shipped tiny checkpoint), ``"spikegen-fast"``
    (the one-pass fast model; default weights: the shipped fast checkpoint), ``"auto"`` (the fast model where
    windows are spike-rich, else the core model) or ``"package.module:factory"`` where ``factory(checkpoint) -> Restorer``."""
    if spec == "tfp":
        return TFPDenseRestorer(tfp_window, tfp_colour_window)
    if spec in ("spikegen", "spikegen-fast", "auto"):
        from spikegen_core.train.checkpoint import checkpoint_path

        checkpoint = checkpoint_path(checkpoint) if checkpoint is not None else None  # "natural": the shipped one
        if checkpoint is not None and not checkpoint.is_file():
            raise CheckpointError(f"{checkpoint}: SpikeGen checkpoint not found; pass an existing file or omit it")
        if spec != "auto":
            return SpikeGenRestorer(checkpoint, fast=spec == "spikegen-fast")
        return AutoRestorer(checkpoint, tfp_window, min_spikes, tfp_colour_window)
    if ":" not in spec:
        raise CheckpointError(
            f"restorer {spec!r} is not 'tfp', 'spikegen', 'spikegen-fast', 'auto' or 'package.module:factory'; "
            "pass one of those"
        )
    module, _, name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"restorer {spec!r} cannot be imported ({err}); check the module path") from err
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CheckpointError(f"{checkpoint}: restorer checkpoint not found; pass an existing file or use 'tfp'")
    return factory(checkpoint)


@dataclass
class SpikeDatamanagerConfig(FullImageDatamanagerConfig):
    """Full images + spike windows; dense frames restored from spikes for the photometric loss."""

    _target: type = field(default_factory=lambda: SpikeDatamanager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=SpikeDataParserConfig)
    dense_target: Literal["restored", "dataparser"] = "restored"
    """Photometric target of train views: the restored dense frame, or the image the dataparser chose."""
    restorer: str = "tfp"
    """'tfp', 'spikegen' (the core model deblurs each view's RGB with its spikes), 'spikegen-fast' (the one-pass fast
    model, grey), 'auto' (the fast model, grey, where a window holds at least 4
    spikes per pixel, else the core model: spikegen-splat's setting) or 'package.module:factory' (factory(checkpoint) ->
    Restorer)."""
    restorer_checkpoint: Path | None = None
    """Weights for the restorer (a file, or a shipped checkpoint's name: ``natural``, ``tiny``); their SHA-256 is
    part of the cache key."""
    auto_min_spikes: float = 4.0
    """'auto' restorer: the fast model for windows with at least this many spikes per pixel on average, else the
    full core model."""
    tfp_window: int | None = None
    """Frames around the window centre for the TFP restorer on grey spikes (default: the whole window)."""
    tfp_colour_window: int | None = None
    """The same for colour (CFA) spikes (default: the whole window; see TFPDenseRestorer)."""
    dense_cache_dir: Path | None = None
    """Cache of restored frames; default `<scene>/.spikegen_cache/dense`."""
    cache_images: Literal["cpu", "gpu"] = "gpu"
    """'gpu' keeps images on the training device (also right on CPU, where 'cpu' would pin memory)."""
    cache_images_type: Literal["uint8", "float32"] = "uint8"


class SpikeDatamanager(FullImageDatamanager[InputDataset]):
    """See the module docstring. Batches: ``image`` (dense frame), ``spikes`` ``(T, H, W)`` uint8,
    ``spike_threshold``, ``spike_gain``, ``dense_is_grey``, ``dense_is_linear`` (a restored frame: linear
    intensity; else the RGB file, display-encoded), ``blur`` ``(H, W, 3)`` (as stored) when present, and
    ``spike_cfa``/``spike_cfa_gains`` for colour spike windows."""

    config: SpikeDatamanagerConfig

    @cached_property
    def spike_views(self) -> list[SpikeView]:
        views = self.train_dataparser_outputs.metadata.get("spike_views")
        if views is None:
            raise SceneFormatError(
                f"{self.config.data}: the dataparser gave no spike windows; spikegen-splat needs the spike-data "
                "dataparser (drop the dataparser subcommand or pass `spike-data`)"
            )
        return views

    @cached_property
    def restorer(self) -> Restorer:
        with torch.random.fork_rng(devices=[]):  # see dense_frame
            return build_restorer(
                self.config.restorer,
                self.config.restorer_checkpoint,
                self.config.tfp_window,
                self.config.auto_min_spikes,
                self.config.tfp_colour_window,
            )

    @cached_property
    def restorer_key(self) -> str:
        ident = self.restorer.restorer_id
        if self.config.restorer_checkpoint is not None:
            from spikegen_core.train.checkpoint import checkpoint_path

            ident += "-" + file_digest(checkpoint_path(self.config.restorer_checkpoint))[:16]
        return re.sub(r"[^A-Za-z0-9_.-]", "_", ident)

    def _dense_cache_dir(self) -> Path:
        if self.config.dense_cache_dir is not None:
            return Path(self.config.dense_cache_dir)
        root = Path(self.config.dataparser.data)
        root = root.parent if root.suffix == ".json" else root
        return root / ".spikegen_cache" / "dense"

    @cached_property
    def rgb_response(self) -> RgbResponse:
        """How the scene's RGB files encode light; restorers get them linearised (spikes are linear)."""
        return self.train_dataparser_outputs.metadata.get("rgb_response", LINEAR)

    @staticmethod
    def _read_rgb(path: Path) -> torch.Tensor:
        """``(3, H, W)`` float in [0, 1]."""
        return load_image(path, mode="rgb")

    def dense_frame(self, idx: int) -> torch.Tensor:
        """Restored dense frame of train view ``idx`` as ``(H, W)`` or ``(3, H, W)``; cached on disk."""
        view = self.spike_views[idx]
        spikes = view.read()
        digest = hashlib.sha256(np.ascontiguousarray(spikes.spikes.numpy()).tobytes())
        digest.update(f"{tuple(spikes.spikes.shape)}|{view.threshold}|{view.gain}".encode())
        if spikes.cfa:
            digest.update(f"|{spikes.cfa}|{spikes.cfa_gains}".encode())
        if view.blur_path is not None:
            digest.update(f"{file_digest(view.blur_path)}|{self.rgb_response}".encode())
        path = self._dense_cache_dir() / self.restorer_key / f"{digest.hexdigest()[:32]}.npy"
        if path.is_file():
            return torch.from_numpy(np.load(path))
        # The restorer works in linear light, as the spikes: the stored (encoded) blurred frame is linearised.
        blurred = self.rgb_response.decode(self._read_rgb(view.blur_path)) if view.blur_path is not None else None
        # A model restorer draws its initial weights from the global RNG when it loads (on first need): without the
        # fork, the training's random stream would depend on whether the frames came from the disk cache.
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            frame = self.restorer(spikes, view, blurred).detach().to("cpu", torch.float32)
        if frame.shape not in ((view.height, view.width), (3, view.height, view.width)):
            raise CheckpointError(
                f"restorer {self.restorer_key} returned shape {tuple(frame.shape)} for {view.spike_path}; "
                f"expected ({view.height}, {view.width}) or (3, {view.height}, {view.width})"
            )
        with atomic_write(path) as f:
            np.save(f, frame.numpy())
        return frame

    def _load_images(self, split: Literal["train", "eval"], cache_images_device: Literal["cpu", "gpu"]) -> list[dict]:
        cached = super()._load_images(split, cache_images_device)
        if split != "train":
            return cached
        device = self.device if cache_images_device == "gpu" else "cpu"
        CONSOLE.log(f"Dense frames for {len(cached)} train views: restorer {self.restorer_key}")
        views = track(enumerate(cached), total=len(cached), description="dense frames", console=CONSOLE, transient=True)
        for idx, data in views:
            view = self.spike_views[idx]
            data["dense_is_grey"] = data["dense_is_linear"] = False
            if self.config.dense_target == "restored":
                frame = self.dense_frame(idx)
                data["dense_is_grey"] = frame.ndim == 2
                data["dense_is_linear"] = True  # restored frames are linear intensity (the model compares like with like)
                rgb = frame.expand(3, -1, -1) if frame.ndim == 2 else frame
                data["image"] = rgb.permute(1, 2, 0).contiguous().to(device)
            if view.blur_path is not None:
                data["blur"] = self._read_rgb(view.blur_path).permute(1, 2, 0).contiguous().to(device)
        return cached

    def next_train(self, step: int) -> tuple[Cameras, dict]:
        camera, data = super().next_train(step)
        view = self.spike_views[int(camera.metadata["cam_idx"])]
        stream = view.read()
        data["spikes"] = stream.spikes  # memory-mapped read of this window only
        data["spike_threshold"] = view.threshold
        data["spike_gain"] = view.gain
        if stream.cfa:  # a colour spike camera: the spike loss sees the render through this filter array
            data["spike_cfa"], data["spike_cfa_gains"] = stream.cfa, stream.cfa_gains
        if "blur" in data:
            data["blur"] = data["blur"].to(self.device)
        return camera, data
