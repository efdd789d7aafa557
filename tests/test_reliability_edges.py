"""Issue 21, "safe at the edges": bad inputs and faults a new user meets, each with the behaviour it must get.

Item numbers refer to the issue; RELIABILITY.md has a row per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spikegen_core.errors import InputMismatchError, SceneFormatError, SpikeFileError


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _photos(folder: Path, n: int = 4, size: int = 16) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _our_scene(folder: Path) -> Path:
    """What an earlier spikegen-process-data run leaves (the parts these tests look at)."""
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "v0.png").write_bytes(b"earlier image")
    (folder / "transforms.json").write_text(json.dumps({"generator": {"name": "spikegen-process-data"}, "frames": []}))
    return folder


# -- item 1: process-data never deletes or overwrites a user's files --------------------------------------------
def test_process_data_with_an_empty_input_folder_leaves_the_existing_scene_untouched(tmp_path: Path) -> None:
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    (tmp_path / "empty").mkdir()
    scene = _our_scene(tmp_path / "scene")
    before = _tree(scene)
    with pytest.raises(SpikeFileError, match="empty: holds neither spike files"):
        process(ProcessDataConfig(data=tmp_path / "empty", output_dir=scene), quiet=True)
    assert _tree(scene) == before  # was: transforms.json deleted before any input was checked


def test_process_data_refuses_a_scene_it_did_not_write_unless_told_to_overwrite(tmp_path: Path) -> None:
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    scene = tmp_path / "scene"
    (scene / "images").mkdir(parents=True)
    (scene / "transforms.json").write_text(json.dumps({"generator": {"name": "make_scene"}, "frames": []}))
    (scene / "notes.txt").write_text("mine")
    before = _tree(scene)
    photos = _photos(tmp_path / "photos")
    with pytest.raises(SceneFormatError, match=r"scene: --output-dir holds files spikegen-process-data did not "
                                               r"write \(images, notes.txt, transforms.json\).*--overwrite"):
        process(ProcessDataConfig(data=photos, output_dir=scene, simulate_spikes=True, window=8), quiet=True)
    assert _tree(scene) == before


@pytest.mark.parametrize("where", ["same", "inside"])
def test_process_data_refuses_inputs_inside_the_output_folder(tmp_path: Path, where: str) -> None:
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    photos = _photos(tmp_path / "photos")
    out = photos if where == "same" else tmp_path
    before = _tree(photos)
    with pytest.raises(InputMismatchError, match=r"photos: --data lies inside --output-dir .*which this command "
                                                 r"replaces; pass an --output-dir outside it"):
        process(ProcessDataConfig(data=photos, output_dir=out, simulate_spikes=True, window=8, overwrite=True),
                quiet=True)  # fmt: skip  (even --overwrite does not let it replace its own input)
    assert _tree(photos) == before  # was: images/p0.png overwritten with --output-dir equal to --data


def test_process_data_failing_midway_leaves_the_previous_scene_as_it_was(tmp_path: Path) -> None:
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    photos = _photos(tmp_path / "photos")
    scene = _our_scene(tmp_path / "scene")
    before = _tree(scene)
    calls = {"n": 0}

    def failing(spikes: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:  # two views' images already written
            raise RuntimeError("restorer died")
        return spikes.float().mean(0)

    with pytest.raises(RuntimeError, match="restorer died"):
        process(ProcessDataConfig(data=photos, output_dir=scene, simulate_spikes=True, window=8), failing,
                quiet=True)  # fmt: skip
    assert calls["n"] == 3 and _tree(scene) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "scene"]  # no temp folder left


# -- folders that replace earlier ones: the old one or the complete new one, never a mix ------------------------
_SLOW_FOLDER_WRITER = """
import sys, time
from pathlib import Path
from spikegen_core.utils import atomic_dir
with atomic_dir(Path(sys.argv[1])) as tmp:
    for i in range(1000):
        (tmp / f"frame_{i:06d}.png").write_bytes(b"new")
        if i == 3:
            print("midway", flush=True)
        time.sleep(0.01)
"""


def test_sigkilled_folder_rewrite_leaves_the_old_folder_and_the_next_run_clears_its_temp(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from spikegen_core.utils import atomic_dir

    out = tmp_path / "frames"
    out.mkdir()
    for i in range(5):
        (out / f"frame_{i:06d}.png").write_bytes(b"old")
    before = _tree(out)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_FOLDER_WRITER, str(out)], stdout=subprocess.PIPE, env=env,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "midway"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _tree(out) == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "frames"]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".frames.{proc.pid}.")  # the killed run's temp
    with atomic_dir(out) as tmp:  # a shorter rerun: exactly its own frames, and the killed run's temp is gone
        (tmp / "frame_000000.png").write_bytes(b"rerun")
    assert _tree(out) == {"frame_000000.png": b"rerun"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
