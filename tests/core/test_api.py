"""The public Python API (``from spikegen_core import …``) and the import cost of our entry points."""

from __future__ import annotations

import subprocess
import sys

import torch

import spikegen_core
from spikegen_core import load_spikes, restore, simulate, tfp
from spikegen_core.spikes.io import write_dat
from spikegen_core.train.restore import restore_image


def test_api_names_are_the_library_functions():
    assert restore is restore_image
    assert set(spikegen_core.__all__) >= {"load_spikes", "simulate", "tfp", "restore", "__version__"}
    assert {"load_spikes", "restore"} <= set(dir(spikegen_core))


def test_simulate_write_load_tfp_recovers_the_intensity(tmp_path):
    intensity = (
        torch.tensor([0.2, 0.5, 0.8]).repeat_interleave(8).reshape(1, 1, 24).expand(1, 8, 24).contiguous()
    )
    stream = simulate(intensity, num_frames=400, threshold=2.0, seed=1)
    path = write_dat(tmp_path / "s.dat", stream)
    loaded = load_spikes(path)
    assert torch.equal(loaded.spikes.to(torch.uint8), stream.spikes.to(torch.uint8))
    columns = tfp(loaded, threshold=2.0).mean(dim=0).reshape(3, 8).mean(dim=1)
    assert torch.allclose(columns, torch.tensor([0.2, 0.5, 0.8]), atol=0.02), columns


def _imported_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_spikegen_core_is_light():
    assert "torch" not in _imported_after("import spikegen_core")


def test_cli_and_nerfstudio_entry_points_skip_heavy_modules():
    """``spikegen --help`` and every ``ns-*`` command import these modules; diffusers, numba and torchmetrics
    cost seconds and are imported only when a model is built, a .dat decoded or a metric computed."""
    heavy = {"diffusers", "numba", "torchmetrics"}
    assert not heavy & _imported_after("from spikegen_core.cli import _commands; _commands()")
    nvs = _imported_after("import spikegen_nvs.config, spikegen_nvs.dataparser_spec")
    assert not {"diffusers", "numba"} & nvs
