"""Camera poses: the one pose interpolation every module uses (the scene stream's ground truth, the spike loss's
virtual views, spikegen-process-data's window edges and the prior's in-between views)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial.transform import Rotation


def interpolate_pose(
    times: Sequence[float] | np.ndarray,
    poses: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
    t: float | Sequence[float] | np.ndarray,
) -> np.ndarray | torch.Tensor:
    """Camera-to-world at time(s) ``t`` from ``poses`` known at sorted ``times``.

    Between two neighbouring poses the rotation follows the geodesic (slerp) and the position the straight
    line; outside ``[times[0], times[-1]]`` the nearest pair's motion is extrapolated (a window edge can lie half
    a window beyond the first or last view). ``poses``: ``(K, 3, 4)`` or ``(K, 4, 4)``, numpy or torch. Returns
    the same kind, rows and (for a tensor) dtype and device: ``(rows, 4)`` for a scalar ``t``, else
    ``(len(t), rows, 4)``. Poses are data: no gradient flows through a tensor's interpolation.
    """
    as_tensor = isinstance(poses, torch.Tensor)
    keys = (
        poses.detach().to("cpu", torch.float64).numpy() if as_tensor else np.asarray(poses, dtype=np.float64)
    )
    key_times = np.asarray(times, dtype=np.float64)
    if len(key_times) == 0 or len(key_times) != len(keys):
        raise ValueError(
            f"interpolate_pose needs one pose per time, got {len(keys)} poses at {len(key_times)} times"
        )
    query = np.asarray(t, dtype=np.float64)
    at = np.atleast_1d(query)
    rows = keys.shape[1]
    out = np.broadcast_to(np.eye(4), (len(at), 4, 4)).copy()
    if len(key_times) == 1:
        out[:, :rows] = keys[0]
    else:
        i = np.clip(np.searchsorted(key_times, at, side="right") - 1, 0, len(key_times) - 2)
        span = key_times[i + 1] - key_times[i]
        alpha = np.where(span > 0, (at - key_times[i]) / np.where(span > 0, span, 1.0), 0.0)
        r0, r1 = keys[i, :3, :3], keys[i + 1, :3, :3]
        step = Rotation.from_matrix(r1 @ np.swapaxes(r0, -1, -2)).as_rotvec()  # rotation from pose i to i + 1
        out[:, :3, :3] = (Rotation.from_rotvec(step * alpha[:, None]) * Rotation.from_matrix(r0)).as_matrix()
        out[:, :3, 3] = (1 - alpha[:, None]) * keys[i, :3, 3] + alpha[:, None] * keys[i + 1, :3, 3]
    result = out[:, :rows] if query.ndim else out[0, :rows]
    if as_tensor:
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=poses.device, dtype=poses.dtype)
    return result
