"""The files of a scene folder that ``spikegen make-scene`` and ``spikegen-process-data`` both write:
``transforms.json`` (nerfstudio's format plus the ``spike`` block, docs/INTERFACES.md) and ``sparse_pc.ply``
(seed points). One writer each, so the two commands cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from spikegen_core.utils import atomic_path, atomic_write

TRANSFORMS = "transforms.json"


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray, comment: str | None = None) -> Path:
    """Binary little-endian PLY of points: ``x y z`` float and ``red green blue`` uchar (what nerfstudio's
    ``ply_file_path`` loader and open3d read); written atomically."""
    from plyfile import PlyData, PlyElement

    xyz, rgb = np.asarray(xyz), np.asarray(rgb)
    rec = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                                    ("blue", "u1")])  # fmt: skip
    rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rec["red"], rec["green"], rec["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    ply = PlyData([PlyElement.describe(rec, "vertex")], byte_order="<", comments=[comment] if comment else [])
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
    return Path(path)


def write_transforms(folder: Path, meta: dict[str, Any]) -> Path:
    """Write ``folder/transforms.json`` atomically; write it last: its presence marks a complete scene."""
    path = Path(folder) / TRANSFORMS
    with atomic_write(path, "w") as f:
        json.dump(meta, f, indent=2)
    return path
