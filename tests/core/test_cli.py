"""The ``spikegen`` command line: version, the spike file as the first positional of every verb."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikegen_core import __version__
from spikegen_core.cli import main, spikes_flag_to_positional


def test_version_is_the_package_version(capsys):
    main(["--version"])
    assert capsys.readouterr().out.strip() == f"spikegen {__version__}"
    assert __version__.count(".") == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["restore-video", "--spikes", "s.dat", "--fps", "10"], ["restore-video", "s.dat", "--fps", "10"]),
        (["restore-video", "--fps", "10", "--spikes=s.dat"], ["restore-video", "s.dat", "--fps", "10"]),
        (["restore-video", "s.dat", "--fps", "10"], ["restore-video", "s.dat", "--fps", "10"]),
        (
            ["restore", "--spikes", "s.dat"],
            ["restore", "--spikes", "s.dat"],
        ),  # only restore-video had the flag
    ],
)
def test_spikes_flag_alias(args, expected):
    assert spikes_flag_to_positional(args) == expected


def test_restore_video_positional_and_flag_write_the_same_video(tmp_path, capsys):
    spikes = (
        (torch.rand(120, 16, 24, generator=torch.Generator().manual_seed(0)) < 0.4).to(torch.uint8).numpy()
    )
    np.savez_compressed(tmp_path / "rec.npz", arr_0=np.transpose(spikes, (1, 2, 0)))
    common = ["--fps", "2000", "--window", "21", "--axes", "HWT", "--no-mp4", "--frames"]
    main(["restore-video", str(tmp_path / "rec.npz"), "--out", str(tmp_path / "a"), *common])
    main(["restore-video", "--spikes", str(tmp_path / "rec.npz"), "--out", str(tmp_path / "b"), *common])
    a = sorted((tmp_path / "a" / "rec_spikegen-fast_2000fps").glob("*.png"))  # the default: the fast model
    b = sorted((tmp_path / "b" / "rec_spikegen-fast_2000fps").glob("*.png"))
    assert len(a) == len(b) == 10
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    assert capsys.readouterr().out.count("10 frames at 2000 fps") == 2
