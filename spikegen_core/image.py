"""Images as float tensors in [0, 1]: load, save, and RGB → grey in the two conventions the field uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import imageio.v3 as iio
import numpy as np
import torch

from spikegen_core.errors import ImageFileError, InputMismatchError
from spikegen_core.utils import atomic_path

# Weights (R, G, B). "bt601" is ITU-R BT.601 luma (PIL's "L", OpenCV); "reds" is the REDS/Spk2ImgNet
# benchmark's 0.11·B + 0.59·G + 0.30·R, used for its grey ground truth.
GREY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "bt601": (0.299, 0.587, 0.114),
    "reds": (0.30, 0.59, 0.11),
}
GreyConvention = Literal["bt601", "reds"]


def rgb_to_grey(rgb: torch.Tensor, convention: GreyConvention = "bt601") -> torch.Tensor:
    """``(..., 3, H, W)`` RGB → ``(..., H, W)`` grey with the ``bt601`` or ``reds`` weights."""
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise InputMismatchError(f"rgb_to_grey wants (..., 3, H, W), got shape {tuple(rgb.shape)}")
    if convention not in GREY_WEIGHTS:
        raise InputMismatchError(f"unknown grey convention {convention!r}; use one of {sorted(GREY_WEIGHTS)}")
    r, g, b = rgb.unbind(-3)
    wr, wg, wb = GREY_WEIGHTS[convention]
    return r * wr + g * wg + b * wb


def load_image(
    path: str | os.PathLike, *, mode: Literal["rgb", "grey", "keep"] = "rgb", grey: GreyConvention = "bt601"
) -> torch.Tensor:
    """Read an image file as float32 in [0, 1]: ``(3, H, W)`` for ``mode="rgb"``, ``(H, W)`` for ``"grey"``.

    8- and 16-bit files are scaled by their dtype's maximum; alpha is dropped. ``mode="keep"`` returns
    ``(H, W)`` for single-channel files and ``(3, H, W)`` otherwise.
    """
    path = Path(path)
    try:
        arr = np.asarray(iio.imread(path))
    except (OSError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read as an image ({e}); check the path and format") from e
    if np.issubdtype(arr.dtype, np.integer):
        img = torch.from_numpy(arr.astype(np.float32) / np.iinfo(arr.dtype).max)
    else:
        img = torch.from_numpy(arr.astype(np.float32))
    if img.ndim == 3:
        if img.shape[-1] not in (1, 2, 3, 4):
            raise ImageFileError(
                f"{path}: has {img.shape[-1]} channels; expected grey, grey+alpha, RGB or RGBA. Save it as RGB"
            )
        # HWC → CHW; alpha dropped (of RGBA, and of grey+alpha, which has 2 channels)
        img = img[..., :1] if img.shape[-1] == 2 else img[..., :3]
        img = img.permute(2, 0, 1)
        if img.shape[0] == 1:
            img = img[0]
    elif img.ndim != 2:
        raise ImageFileError(f"{path}: an image of shape {tuple(img.shape)} (several pages?); pass one RGB image")
    if mode == "rgb":
        return img.expand(3, *img.shape).contiguous() if img.ndim == 2 else img.contiguous()
    if mode == "grey":
        return img if img.ndim == 2 else rgb_to_grey(img, grey)
    return img.contiguous()


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def check_output_image(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output image path that cannot be written (a folder, an unknown suffix) before any work."""
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"{path}: {flag} is an existing folder; give a file name, e.g. {path / 'restored.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageFileError(
            f"{path}: {flag} needs an image suffix ({', '.join(IMAGE_SUFFIXES)}), got {path.suffix or 'none'}; "
            f"e.g. {path.with_suffix('.png')}"
        )
    return path


def save_image(path: str | os.PathLike, image: torch.Tensor) -> Path:
    """Write a ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` image in [0, 1] as 8-bit (atomic; format from suffix).

    Values outside [0, 1] are clipped; NaN is an error rather than a silently black pixel.
    """
    path = Path(path)
    img = image.detach().to("cpu", torch.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
    elif img.ndim != 2:
        raise InputMismatchError(
            f"{path}: save_image wants (H, W), (1, H, W) or (3, H, W), got {tuple(image.shape)}"
        )
    if not torch.isfinite(img).all():
        raise InputMismatchError(f"{path}: image has NaN/Inf values; check the model output before saving")
    arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, arr, extension=path.suffix or ".png")
    return path
