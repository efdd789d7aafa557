"""The spike camera model: integrate-and-fire pixels read out on a fixed clock.

Per tick every pixel adds ``gain * I`` to its potential; when the potential reaches ``threshold`` it emits a 1
and subtracts the threshold (reset by subtraction keeps the residue). The initial potential is uniform on
``[0, threshold)``. The per-tick increment is clipped to one threshold, so a pixel fires at most once per tick
and the mean rate is ``min(gain * I / threshold, 1)`` spikes per tick.

Colour spike cameras put the same array behind a Bayer colour filter array (``cfa``: ``RGGB``, ``BGGR``,
``GRBG`` or ``GBRG``, read row by row over each 2×2 tile from the top-left pixel of the upright frame): each
pixel integrates only its filter's channel of the LINEAR radiance, scaled by that channel's gain
(``cfa_gains``, filter transmission × sensor response). :func:`mosaic` is that projection; grey cameras use
the 0.299/0.587/0.114 luma of the same linear RGB.

Speed: the tick loop runs in chunks. Inside a chunk the potential is a cumulative sum of the increments, and a
pixel fires at tick ``k`` exactly when ``floor(potential / threshold)`` steps up, so one chunk costs a handful
of vectorised passes. When the input is a few frames linearly interpolated in time, the cumulative sum is a
small matrix product (ticks × frames) @ (frames × pixels), which writes the potential in a single pass.

Because the initial phase is uniform and increments never exceed one threshold, the phase stays uniform at
every tick; hence the expected count over any window is exactly the sum of the per-tick rates, which is what
:func:`expected_counts` returns (differentiable), and any single simulated count is within 1 of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikegen_core.errors import InputMismatchError, SpikeFileError
from spikegen_core.image import GREY_WEIGHTS as _CONVENTIONS
from spikegen_core.image import rgb_to_grey
from spikegen_core.spikes.stream import DEFAULT_CLOCK_HZ, SpikeStream

__all__ = [
    "CFA_PATTERNS",
    "CameraModel",
    "NoiseMaps",
    "cfa_channels",
    "check_cfa",
    "counts_to_intensity",
    "expected_counts",
    "integration_weights",
    "load_noise_maps",
    "mosaic",
    "shift_cfa",
    "simulate",
    "spike_rate",
    "to_grey",
]

DEFAULT_THRESHOLD = 2.0
DEFAULT_GAIN = 1.0
GREY_WEIGHTS = _CONVENTIONS["bt601"]
# Frames touched by one chunk above which the per-tick gather + cumsum beats the small matmul.
_MAX_MATMUL_FRAMES = 8
# Pixels per tile on CPU: chunk_ticks × tile × 4 bytes ≈ 1 MB stays in L2 cache.
_CPU_TILE_PIXELS = 8192

IntensitySource = torch.Tensor | np.ndarray | Callable[[float], torch.Tensor]
CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}
CfaGains = tuple[float, float, float]


def check_cfa(
    cfa: str | None, gains: Sequence[float] | None = None, *, where: str = "camera"
) -> tuple[str | None, CfaGains]:
    """Validated ``(pattern or None, (gain_r, gain_g, gain_b))``; raises :class:`InputMismatchError` naming the fix.

    ``cfa`` is case-insensitive; ``None`` or ``""`` is a grey camera (gains must then be absent or all 1).
    """
    pattern = cfa.upper() if isinstance(cfa, str) and cfa else None
    if cfa not in (None, "") and pattern not in CFA_PATTERNS:
        raise InputMismatchError(
            f"{where}: colour filter array {cfa!r} is not one of {', '.join(CFA_PATTERNS)}; pass one of them "
            "(the 2x2 tile read row by row from the top-left pixel) or none for a grey camera"
        )
    values = (1.0, 1.0, 1.0) if gains is None else tuple(float(g) for g in gains)
    if len(values) != 3 or not all(math.isfinite(g) and g > 0 for g in values):
        raise InputMismatchError(
            f"{where}: cfa_gains must be three positive numbers (R, G, B), got {gains!r}"
        )
    if pattern is None and values != (1.0, 1.0, 1.0):
        raise InputMismatchError(
            f"{where}: cfa_gains {list(values)} given without a colour filter array; add cfa="
        )
    return pattern, values  # type: ignore[return-value]


def cfa_channels(
    cfa: str, height: int, width: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(H, W)`` int64 channel index (0 R, 1 G, 2 B) of every pixel of an upright frame behind ``cfa``."""
    pattern, _ = check_cfa(cfa)
    tile = torch.tensor(
        [[_CHANNEL[c] for c in pattern[:2]], [_CHANNEL[c] for c in pattern[2:]]], device=device
    )
    return tile.repeat((height + 1) // 2, (width + 1) // 2)[:height, :width]


def shift_cfa(cfa: str, rows: int, cols: int) -> str:
    """The pattern seen from pixel ``(rows, cols)`` of a frame behind ``cfa``: a crop's new top-left tile."""
    pattern, _ = check_cfa(cfa)
    tile = [pattern[:2], pattern[2:]]
    return "".join(tile[(r + rows) % 2][(c + cols) % 2] for r in (0, 1) for c in (0, 1))


def mosaic(rgb: torch.Tensor, cfa: str, gains: Sequence[float] | None = None) -> torch.Tensor:
    """``(..., 3, H, W)`` linear RGB → ``(..., H, W)``: each pixel's filter channel times its gain (differentiable)."""
    _, g = check_cfa(cfa, gains)
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise InputMismatchError(f"mosaic: a colour camera needs (..., 3, H, W) RGB, got {tuple(rgb.shape)}")
    idx = cfa_channels(cfa, rgb.shape[-2], rgb.shape[-1], device=rgb.device)
    scale = torch.tensor(g, dtype=rgb.dtype, device=rgb.device)[idx]
    picked = torch.gather(rgb, -3, idx.expand(*rgb.shape[:-3], 1, *idx.shape)).squeeze(-3)
    return picked * scale


def to_grey(image: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` RGB → ``(..., H, W)`` grey with the field's 0.299/0.587/0.114 weights (BT.601)."""
    return rgb_to_grey(image, "bt601")


def spike_rate(intensity: torch.Tensor, *, threshold: float = DEFAULT_THRESHOLD, gain: float = DEFAULT_GAIN) -> torch.Tensor:
    """Spikes per tick for a grey intensity: ``clamp(gain * I / threshold, 0, 1)`` (differentiable inside)."""
    _check_threshold(threshold, gain)
    return (intensity * (gain / threshold)).clamp(0.0, 1.0)


def expected_counts(
    intensity: torch.Tensor,
    ticks_per_frame: float | torch.Tensor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    gain: float = DEFAULT_GAIN,
    dark_rate: float = 0.0,
    cfa: str | None = None,
    cfa_gains: Sequence[float] | None = None,
) -> torch.Tensor:
    """Expected spike counts of ``K`` held sub-frames, differentiable w.r.t. ``intensity``.

    ``intensity`` is ``(..., K, H, W)`` grey; sub-frame ``k`` lasts ``ticks_per_frame`` ticks. Returns
    ``(..., K, H, W)`` = ``ticks * P(spike per tick)``, which equals the mean count of :func:`simulate` run with
    ``interpolation="hold"`` (uniform initial potential). ``dark_rate`` adds independent dark spikes OR-ed in.
    With ``cfa`` (a colour camera) ``intensity`` is linear RGB ``(..., K, 3, H, W)``, seen through :func:`mosaic`.
    """
    if cfa:
        intensity = mosaic(intensity, cfa, cfa_gains)
    r = spike_rate(intensity, threshold=threshold, gain=gain)
    if dark_rate:
        r = r + dark_rate * (1.0 - r)
    return r * ticks_per_frame


def counts_to_intensity(
    counts: torch.Tensor,
    ticks: float | torch.Tensor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    gain: float = DEFAULT_GAIN,
) -> torch.Tensor:
    """Invert the mean rate: ``counts / ticks * threshold / gain`` (the same scale as ``tfp``)."""
    return counts / ticks * (threshold / gain)


# --------------------------------------------------------------------------------------------- noise maps
@dataclass
class NoiseMaps:
    """Per-pixel fixed-pattern-noise maps measured on a real sensor (SpikeNeRF's ``Nd``, ``Nl``, ``D_light``).

    :meth:`apply` maps an intensity ``x`` in [0, 1] through SpikeNeRF's transform
    ``x/4 → D = 1/(x+1e-5) − 1 → D' = D / (Nl + D·Nd/(D_light·(335+Nd))) → 1/(D'+1)`` and multiplies the
    result by 4 again so it stays on our intensity scale (x = 1 maps to about 0.72, x = 0 to a dark level of
    about 0.02 that makes dark-current spikes).
    """

    nd: torch.Tensor
    nl: torch.Tensor
    d_light: torch.Tensor
    source: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.nd.shape[-2]), int(self.nd.shape[-1]))

    def fit(self, height: int, width: int) -> NoiseMaps:
        """Maps for an ``height × width`` sensor: tiled periodically, then cropped from the top-left.

        Tiling (not resizing) keeps the maps' pixel-to-pixel independence; interpolation would smooth it away.
        """
        if (height, width) == self.shape:
            return self
        h, w = self.shape
        reps = (math.ceil(height / h), math.ceil(width / w))

        def tile(m: torch.Tensor) -> torch.Tensor:
            return m.repeat(*reps)[:height, :width].contiguous()

        return NoiseMaps(tile(self.nd), tile(self.nl), tile(self.d_light), self.source)

    def to(self, device: torch.device | str | None) -> NoiseMaps:
        return NoiseMaps(self.nd.to(device), self.nl.to(device), self.d_light.to(device), self.source)

    def apply(self, intensity: torch.Tensor) -> torch.Tensor:
        """Fixed-pattern-noise version of a grey ``(..., H, W)`` intensity (broadcast over leading axes)."""
        maps = self.fit(intensity.shape[-2], intensity.shape[-1]).to(intensity.device)
        x = intensity.clamp(0.0, 1.0) / 4.0
        d = 1.0 / (x + 1e-5) - 1.0
        d = d / (maps.nl + d * maps.nd / (maps.d_light * (335.0 + maps.nd)))
        return 4.0 / (d + 1.0)


def load_noise_maps(path: str | Path) -> NoiseMaps:
    """Read a ``.npz`` with float maps ``Nd``, ``Nl``, ``D_light`` (e.g. SpikeNeRF's calibration file)."""
    path = Path(path)
    if not path.is_file():
        raise SpikeFileError(
            f"{path}: noise-map file not found; pass the path of an .npz with Nd, Nl, D_light maps "
            "(e.g. ../shared/data/spike/noise_calib/spikenerf_noise_maps.npz) or use noise_maps=None"
        )
    try:
        with np.load(path) as data:
            missing = [k for k in ("Nd", "Nl", "D_light") if k not in data]
            if missing:
                raise SpikeFileError(
                    f"{path}: noise-map file lacks key(s) {missing} (has {sorted(data.files)}); "
                    "it needs float maps Nd, Nl and D_light of one shape"
                )
            maps = [torch.from_numpy(np.asarray(data[k], dtype=np.float32)) for k in ("Nd", "Nl", "D_light")]
    except (OSError, ValueError) as exc:
        if isinstance(exc, SpikeFileError):
            raise
        raise SpikeFileError(f"{path}: cannot read as .npz noise maps ({exc}); check the file is intact") from exc
    if maps[0].ndim != 2 or any(m.shape != maps[0].shape for m in maps):
        raise SpikeFileError(
            f"{path}: noise maps must be 2-D and of one shape, got {[tuple(m.shape) for m in maps]}"
        )
    return NoiseMaps(*maps, source=str(path))


# ------------------------------------------------------------------------------------------- the camera
@dataclass
class CameraModel:
    """Integrate-and-fire spike camera: threshold θ, gain, readout clock and optional noise.

    ``dark_rate``: probability per pixel per tick of an extra (dark-current) spike, OR-ed into the output.
    ``noise_maps``: a :class:`NoiseMaps` or the path of its ``.npz`` (read when the camera is made; never bundled).
    ``chunk_ticks``: ticks processed per vectorised step (memory ≈ chunk_ticks · H · W · 4 bytes).
    ``cfa``: colour filter array (``RGGB``/``BGGR``/``GRBG``/``GBRG``; ``None`` = grey) and ``cfa_gains`` its
    per-channel (R, G, B) gains: a colour camera takes linear RGB and each pixel sees its filter's channel.
    """

    threshold: float = DEFAULT_THRESHOLD
    gain: float = DEFAULT_GAIN
    clock_hz: float = DEFAULT_CLOCK_HZ
    dark_rate: float = 0.0
    noise_maps: NoiseMaps | str | Path | None = None
    chunk_ticks: int = 32
    cfa: str | None = None
    cfa_gains: CfaGains = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        _check_threshold(self.threshold, self.gain)
        self.cfa, self.cfa_gains = check_cfa(self.cfa, self.cfa_gains)
        if not 1 <= self.chunk_ticks <= 16_000:  # potentials per chunk must fit int16 (see iter_chunks)
            raise ValueError(f"chunk_ticks must be in [1, 16000], got {self.chunk_ticks}")
        if not 0.0 <= self.dark_rate < 1.0:
            raise ValueError(f"dark_rate must be a probability per tick in [0, 1), got {self.dark_rate}")
        if isinstance(self.noise_maps, (str, Path)):
            self.noise_maps = load_noise_maps(self.noise_maps)

    # -- differentiable forms
    def rate(self, intensity: torch.Tensor) -> torch.Tensor:
        """Per-tick spike probability of a grey intensity ``(..., H, W)`` (colour camera: linear RGB
        ``(..., 3, H, W)``), noise maps and dark rate included."""
        if self.cfa:
            intensity = mosaic(intensity, self.cfa, self.cfa_gains)
        x = self.noise_maps.apply(intensity) if isinstance(self.noise_maps, NoiseMaps) else intensity
        r = spike_rate(x, threshold=self.threshold, gain=self.gain)
        return r + self.dark_rate * (1.0 - r) if self.dark_rate else r

    def expected_counts(self, intensity: torch.Tensor, ticks_per_frame: float | torch.Tensor) -> torch.Tensor:
        """:func:`expected_counts` with this camera's settings (noise maps applied, differentiably)."""
        return self.rate(intensity) * ticks_per_frame

    # -- event simulation
    def simulate(
        self,
        intensity: IntensitySource,
        num_frames: int | None = None,
        *,
        seed: int = 0,
        init: torch.Tensor | None = None,
        frame_times: torch.Tensor | np.ndarray | list[float] | None = None,
        interpolation: str = "linear",
        device: torch.device | str | None = None,
    ) -> SpikeStream:
        """Simulate ``num_frames`` ticks of spikes; see :func:`simulate` for the arguments."""
        it = self.iter_chunks(
            intensity, num_frames, seed=seed, init=init, frame_times=frame_times,
            interpolation=interpolation, device=device,
        )
        first = next(it)
        total = self._num_ticks(intensity, num_frames)
        out = torch.empty((total, *first.shape[1:]), dtype=torch.uint8, device=first.device)
        out[: first.shape[0]] = first
        pos = first.shape[0]
        for chunk in it:
            out[pos : pos + chunk.shape[0]] = chunk
            pos += chunk.shape[0]
        return SpikeStream(
            out,
            clock_hz=self.clock_hz,
            threshold=self.threshold,
            source="simulated",
            cfa=self.cfa,
            cfa_gains=self.cfa_gains if self.cfa else None,
        )

    def iter_chunks(
        self,
        intensity: IntensitySource,
        num_frames: int | None = None,
        *,
        seed: int = 0,
        init: torch.Tensor | None = None,
        frame_times: torch.Tensor | np.ndarray | list[float] | None = None,
        interpolation: str = "linear",
        device: torch.device | str | None = None,
    ) -> Iterator[torch.Tensor]:
        """Like :meth:`simulate` but yields ``(L, H, W)`` uint8 chunks, so long streams need not fit in memory."""
        if interpolation not in ("linear", "hold"):
            raise ValueError(f"interpolation must be 'linear' or 'hold', got {interpolation!r}")
        total = self._num_ticks(intensity, num_frames)
        # Randomness comes from a CPU generator whatever the device, so CPU and CUDA give the same stream.
        gen = torch.Generator().manual_seed(int(seed))
        if callable(intensity) and not isinstance(intensity, (torch.Tensor, np.ndarray)):
            rates_of = self._callable_rates(intensity, device)
            probe = rates_of(0, 1)
            h, w = probe.shape[-2:]
            dev = probe.device
            frames = None
        else:
            frames = self._frame_rates(intensity, device)
            h, w = frames.shape[-2:]
            dev = frames.device
            positions = _tick_positions(frames.shape[0], total, frame_times, self.clock_hz, interpolation)
        base = self._initial_phase(init, h, w, gen).to(dev)
        lam = -math.log1p(-self.dark_rate) if self.dark_rate else 0.0
        base = base.reshape(-1)
        flat = frames.reshape(frames.shape[0], -1) if frames is not None else None
        # On CPU, pixel tiles keep a chunk's potentials in L2 cache (≈ 25 % faster); a GPU takes all at once.
        tile = _CPU_TILE_PIXELS if dev.type == "cpu" else h * w
        for a in range(0, total, self.chunk_ticks):
            b = min(a + self.chunk_ticks, total)
            spikes = torch.empty((b - a, h * w), dtype=torch.uint8, device=dev)
            if flat is None:
                base = _fire(torch.cumsum(rates_of(a, b).reshape(b - a, -1), dim=0).add_(base), spikes)
            else:
                plan = _chunk_plan(flat.shape[0], positions[a:b])
                if isinstance(plan[2], np.ndarray):  # few frames: potential = base + cum_weights @ frames
                    j0, j1, weights = plan
                    cum = torch.from_numpy(weights).to(flat)
                    new_base = torch.empty_like(base)
                    for s in range(0, h * w, tile):
                        v = torch.addmm(base[None, s : s + tile], cum, flat[j0 : j1 + 1, s : s + tile])
                        new_base[s : s + tile] = _fire(v, spikes[:, s : s + tile])
                    base = new_base
                else:
                    base = _fire(_gathered_potential(flat, *plan, base), spikes)
            spikes = spikes.view(b - a, h, w)
            if lam:
                _add_dark_spikes(spikes, lam, gen)
            yield spikes

    # -- helpers
    def _num_ticks(self, intensity: IntensitySource, num_frames: int | None) -> int:
        if num_frames is None:
            if callable(intensity) and not isinstance(intensity, (torch.Tensor, np.ndarray)):
                raise InputMismatchError("simulate: num_frames is required when intensity is a callable of time")
            num_frames = int(intensity.shape[0])
        if num_frames < 1:
            raise InputMismatchError(f"simulate: num_frames must be ≥ 1, got {num_frames}")
        return int(num_frames)

    def _to_rates(self, grey: torch.Tensor) -> torch.Tensor:
        if isinstance(self.noise_maps, NoiseMaps):
            grey = self.noise_maps.apply(grey)
        return spike_rate(grey, threshold=self.threshold, gain=self.gain)

    def _frame_rates(self, intensity: torch.Tensor | np.ndarray, device: torch.device | str | None) -> torch.Tensor:
        x = torch.as_tensor(intensity).detach()  # events carry no gradient: use expected_counts for losses
        if device is not None:
            x = x.to(device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.cfa:
            if x.ndim != 4 or x.shape[1] != 3:
                raise InputMismatchError(
                    f"simulate: a colour ({self.cfa}) camera needs (N, 3, H, W) linear RGB frames, got {tuple(x.shape)}"
                )
            x = mosaic(x, self.cfa, self.cfa_gains)
        elif x.ndim == 4 and x.shape[1] == 3:
            x = to_grey(x)
        elif x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise InputMismatchError(
                f"simulate: intensity must be (N, H, W) grey or (N, 3, H, W) RGB frames, got {tuple(x.shape)}"
            )
        return self._to_rates(x).contiguous()

    def _callable_rates(
        self, fn: Callable[[float], torch.Tensor], device: torch.device | str | None
    ) -> Callable[[int, int], torch.Tensor]:
        def rates(a: int, b: int) -> torch.Tensor:
            frames = []
            for k in range(a, b):
                x = torch.as_tensor(fn(k / self.clock_hz))
                if device is not None:
                    x = x.to(device)
                if self.cfa and (x.ndim != 3 or x.shape[0] != 3):
                    raise InputMismatchError(
                        f"simulate: a colour ({self.cfa}) camera's intensity callable must return (3, H, W) RGB, "
                        f"got {tuple(x.shape)}"
                    )
                if x.ndim == 3 and x.shape[0] == 3:
                    x = mosaic(x.float(), self.cfa, self.cfa_gains) if self.cfa else to_grey(x.float())
                if x.ndim != 2:
                    raise InputMismatchError(
                        f"simulate: the intensity callable must return (H, W) or (3, H, W), got {tuple(x.shape)}"
                    )
                frames.append(x.float())
            return self._to_rates(torch.stack(frames))

        return rates

    def _initial_phase(self, init: torch.Tensor | None, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
        if init is None:
            return torch.rand((h, w), generator=gen)
        init = torch.as_tensor(init, dtype=torch.float32).cpu()
        if init.shape != (h, w):
            raise InputMismatchError(f"simulate: init has shape {tuple(init.shape)}, the frames are {(h, w)}")
        # init is a potential in [0, threshold); the loop works in units of the threshold.
        return torch.remainder(init / self.threshold, 1.0)


def simulate(
    intensity: IntensitySource,
    num_frames: int | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    gain: float = DEFAULT_GAIN,
    clock_hz: float = DEFAULT_CLOCK_HZ,
    seed: int = 0,
    init: torch.Tensor | None = None,
    frame_times: torch.Tensor | np.ndarray | list[float] | None = None,
    interpolation: str = "linear",
    dark_rate: float = 0.0,
    noise_maps: NoiseMaps | str | Path | None = None,
    device: torch.device | str | None = None,
    cfa: str | None = None,
    cfa_gains: Sequence[float] | None = None,
) -> SpikeStream:
    """Simulate a spike stream of ``num_frames`` ticks.

    ``intensity``: ``(N, H, W)`` grey or ``(N, 3, H, W)`` RGB frames in [0, 1] (uint8 is divided by 255), spread
    evenly over the stream (frame 0 at the first tick, frame N−1 at the last) and linearly interpolated to every
    tick; or a callable ``t_seconds -> (H, W)`` evaluated at each tick ``t = k / clock_hz``.
    ``num_frames``: ticks to simulate (default N). ``frame_times``: explicit times in seconds of the N frames on
    the spike clock (held constant outside them). ``interpolation="hold"``: frame i instead covers ticks
    ``[i·T/N, (i+1)·T/N)`` unchanged (what :func:`expected_counts` models). ``init``: initial potential
    ``(H, W)`` in ``[0, threshold)``; default uniform from ``seed``. ``noise_maps``: path or :class:`NoiseMaps`.
    ``cfa``/``cfa_gains``: a colour spike camera (see :class:`CameraModel`); the frames must then be linear RGB.
    """
    camera = CameraModel(
        threshold=threshold,
        gain=gain,
        clock_hz=clock_hz,
        dark_rate=dark_rate,
        noise_maps=noise_maps,
        cfa=cfa,
        cfa_gains=(1.0, 1.0, 1.0) if cfa_gains is None else tuple(cfa_gains),
    )
    return camera.simulate(
        intensity, num_frames, seed=seed, init=init, frame_times=frame_times,
        interpolation=interpolation, device=device,
    )


# ----------------------------------------------------------------------------------------- internals
def _check_threshold(threshold: float, gain: float) -> None:
    if not threshold > 0 or not gain > 0:
        raise ValueError(f"threshold and gain must be positive, got threshold={threshold}, gain={gain}")


def _tick_positions(
    n: int,
    total: int,
    frame_times: torch.Tensor | np.ndarray | list[float] | None,
    clock_hz: float,
    interpolation: str,
) -> np.ndarray:
    """Fractional frame index of every tick (float64): the interpolation weights of the whole stream."""
    ticks = np.arange(total, dtype=np.float64)
    if frame_times is not None:
        ft = np.asarray(torch.as_tensor(frame_times).cpu(), dtype=np.float64).reshape(-1)
        if ft.shape[0] != n or np.any(np.diff(ft) <= 0):
            raise InputMismatchError(
                f"simulate: frame_times must be {n} increasing times (one per frame), got {ft.tolist()[:8]}…"
            )
        pos = np.interp(ticks / clock_hz, ft, np.arange(n, dtype=np.float64))
    elif n == 1:
        pos = np.zeros(total)
    elif interpolation == "hold":
        pos = np.floor(ticks * n / total)
    else:
        pos = ticks * (n - 1) / max(total - 1, 1)
    if interpolation == "hold":
        pos = np.floor(pos)
    return np.clip(pos, 0.0, n - 1)


def _chunk_plan(n: int, pos: np.ndarray) -> tuple:
    """How to build a chunk's potentials from ``n`` frames at fractional frame positions ``pos``.

    Few frames touched → ``(j0, j1, cumulative weights (ticks × frames))`` for one small matmul;
    many (e.g. one frame per tick) → ``(lo, frac, None)`` for a per-tick lerp and a cumulative sum.
    """
    lo, frac = _lerp_position(n, pos)
    j0, j1 = int(lo.min()), int(min(lo.max() + 1, n - 1))
    m = j1 - j0 + 1
    if m > _MAX_MATMUL_FRAMES:
        return lo, frac, None
    return j0, j1, np.cumsum(_lerp_weights(n, lo, frac, j0, m), axis=0)


def _lerp_position(n: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional positions on ``n`` frames as (lower frame, weight of the next): the last pair is ``n - 2, n - 1``."""
    lo = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
    return lo, (pos - lo if n > 1 else np.zeros_like(pos))


def _lerp_weights(n: int, lo: np.ndarray, frac: np.ndarray, j0: int, m: int) -> np.ndarray:
    """``(ticks, m)``: each tick's linear-interpolation weights on frames ``j0 … j0 + m - 1``."""
    weights = np.zeros((lo.shape[0], m))
    rows = np.arange(lo.shape[0])
    np.add.at(weights, (rows, lo - j0), 1.0 - frac)
    if n > 1:
        np.add.at(weights, (rows, np.minimum(lo + 1, n - 1) - j0), frac)
    return weights


def integration_weights(num_frames: int, num_ticks: int, frame_ticks: Sequence[float] | None = None) -> torch.Tensor:
    """``(num_ticks, num_frames)``: how much of each frame's rate a pixel's potential has accumulated by the end
    of every tick, with the frames linearly interpolated between their ticks ``frame_ticks`` (default: frame 0 at
    the first tick, the last at the last) and held beyond them, as :func:`simulate` integrates them. The
    potential after tick ``t`` is ``v0 + weights[t] @ rates``; the count, its floor."""
    times = None if frame_ticks is None else np.asarray(frame_ticks, dtype=np.float64)
    pos = _tick_positions(num_frames, num_ticks, times, 1.0, "linear")
    lo, frac = _lerp_position(num_frames, pos)
    return torch.from_numpy(np.cumsum(_lerp_weights(num_frames, lo, frac, 0, num_frames), axis=0)).float()


def _gathered_potential(flat: torch.Tensor, lo: np.ndarray, frac: np.ndarray, _: None, base: torch.Tensor) -> torch.Tensor:
    """``base + cumsum_k lerp(frames[lo_k], frames[lo_k + 1], frac_k)`` over a chunk, frames ``(N, P)``."""
    n = flat.shape[0]
    if not frac.any() and np.all(np.diff(lo) == 1):
        # One frame per tick (e.g. sharp frames rendered at the spike clock): no interpolation needed.
        inc = flat[int(lo[0]) : int(lo[-1]) + 1]
    else:
        lo_t = torch.from_numpy(lo).to(flat.device)
        hi_t = torch.clamp(lo_t + 1, max=n - 1)
        inc = torch.lerp(flat[lo_t], flat[hi_t], torch.from_numpy(frac).to(flat)[:, None])
    return torch.cumsum(inc, dim=0).add_(base)


def _fire(v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write the spikes of potentials ``v`` (ticks × pixels, in thresholds) into ``out``; return the residue.

    A pixel fires at tick k when floor(v) steps up. Potentials are ≥ 0 and < chunk_ticks + 1, so int16
    truncation is the floor, and integer differences are about 2× faster than float comparisons on CPU.
    The start phase is < 1, so its floor is 0.
    """
    residue = v[-1] - torch.floor(v[-1])
    level = v.to(torch.int16)
    out[0].copy_(level[0])
    out[1:].copy_(level[1:] - level[:-1])
    return residue


def _add_dark_spikes(spikes: torch.Tensor, lam: float, gen: torch.Generator) -> None:
    """OR in Bernoulli dark spikes: a Poisson number of uniformly placed events, so the cost scales with them."""
    numel = spikes.numel()
    count = int(torch.poisson(torch.tensor(lam * numel, dtype=torch.float64), generator=gen))
    if count:
        idx = torch.randint(0, numel, (count,), generator=gen).to(spikes.device)
        spikes.view(-1)[idx] = 1
