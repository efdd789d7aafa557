"""The REDS spike benchmark (Spk2ImgNet's "REDS" set, as redistributed by Spike-Zoo): its protocol and its θ.

Protocol of the field: a 41-frame window centred on the key frame (frame 150 of the 301-frame streams), grey
target ``0.11·B + 0.59·G + 0.30·R``, PSNR/SSIM on [0, 1].

Its simulator's threshold is not recorded with the data, so it is calibrated once, as a property of the data
set, from the training recordings we have (``spike/train_203_part{2,3}_key_id151.dat``, both from REDS's
train split): θ = Σ mean(ground truth) / Σ mean spike rate over the whole streams, pooled over the recordings.
:func:`calibrate_threshold` recomputes it (1.6694 on the shared samples; per recording 1.6720 and 1.6663).
That one constant, :data:`REDS_THRESHOLD`, is used for every method and every test image; nothing is fitted per
image.
"""

from __future__ import annotations

from pathlib import Path

from spikegen_core.errors import InputMismatchError
from spikegen_core.image import load_image, rgb_to_grey
from spikegen_core.spikes.io import read_dat

REDS_THRESHOLD = 1.67
"""θ of the REDS spike set (camera intensity units, gain 1), calibrated once from the training recordings."""
REDS_WINDOW = 41
"""Spike frames around the key frame in the field's protocol."""
REDS_KEY_FRAME = 150
"""The frame the ground truth shows (the middle of the 301-frame streams)."""


def reds_recordings(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, .dat, ground-truth .png) of every recording in a REDS-layout folder (spike/ + gt/)."""
    root = Path(root)
    out = [(d.stem, d, root / "gt" / f"{d.stem}.png") for d in sorted((root / "spike").glob("*.dat"))]
    out = [r for r in out if r[2].is_file()]
    if not out:
        raise InputMismatchError(f"{root}: no spike/<name>.dat with a matching gt/<name>.png; is this the REDS folder?")
    return out


def calibrate_threshold(root: str | Path) -> float:
    """θ = Σ mean(grey ground truth) / Σ mean spike rate over every recording's whole stream (pooled)."""
    grey_sum = rate_sum = 0.0
    for _, dat, gt_path in reds_recordings(root):
        gt = rgb_to_grey(load_image(gt_path), "reds")
        spikes = read_dat(dat, *gt.shape).spikes
        grey_sum += float(gt.mean())
        rate_sum += float(spikes.float().mean())
    return grey_sum / max(rate_sum, 1e-9)
