"""Spike streams as data: file I/O (``.dat``/``.npz``/``.npy``), the camera model, TFP/TFI reconstructions."""

from spikegen_core.spikes.camera import CameraModel, expected_counts, simulate
from spikegen_core.spikes.io import dat_num_frames, load_spikes, read_dat, read_npz, write_dat, write_npz
from spikegen_core.spikes.reconstruct import tfi, tfp
from spikegen_core.spikes.stream import SpikeStream

__all__ = [
    "CameraModel",
    "SpikeStream",
    "dat_num_frames",
    "expected_counts",
    "load_spikes",
    "read_dat",
    "read_npz",
    "simulate",
    "tfi",
    "tfp",
    "write_dat",
    "write_npz",
]
