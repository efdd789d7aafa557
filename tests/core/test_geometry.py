"""spikegen_core.geometry: the one pose interpolation (slerp + linear, piecewise, extrapolating)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from spikegen_core.geometry import interpolate_pose


def _keys() -> np.ndarray:
    rots = Rotation.from_rotvec([[0, 0, 0], [0.1, 0.5, 0], [0.3, 0.9, -0.2]]).as_matrix()
    keys = np.tile(np.eye(4), (3, 1, 1))
    keys[:, :3, :3] = rots
    keys[:, :3, 3] = [[0, 0, 0], [1, 2, 0], [3, 2, 1]]
    return keys


def test_matches_scipy_slerp_and_linear_position_through_several_keys() -> None:
    keys, times = _keys(), [0.0, 0.5, 1.0]
    t = np.linspace(0, 1, 9)
    got = interpolate_pose(times, keys, t)
    expected_rot = Slerp(times, Rotation.from_matrix(keys[:, :3, :3]))(t).as_matrix()
    expected_pos = np.stack([np.interp(t, times, keys[:, i, 3]) for i in range(3)], axis=-1)
    np.testing.assert_allclose(got[:, :3, :3], expected_rot, atol=1e-12)
    np.testing.assert_allclose(got[:, :3, 3], expected_pos, atol=1e-12)
    np.testing.assert_allclose(got[:, 3], np.tile([0, 0, 0, 1.0], (9, 1)))
    np.testing.assert_allclose(
        interpolate_pose(times, keys, 0.5), keys[1], atol=1e-12
    )  # a key time: its pose


def test_tensors_keep_rows_dtype_and_device_and_one_pose_is_constant() -> None:
    keys = torch.from_numpy(_keys()[:, :3]).float()
    out = interpolate_pose([0.0, 1.0, 2.0], keys, [0.5, 1.5])
    assert out.shape == (2, 3, 4) and out.dtype == torch.float32
    assert interpolate_pose([3.0], keys[:1], 7.0).tolist() == keys[0].tolist()
    with pytest.raises(ValueError, match="one pose per time"):
        interpolate_pose([0.0, 1.0], keys, 0.5)
