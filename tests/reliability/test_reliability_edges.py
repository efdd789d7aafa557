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
    (folder / "transforms.json").write_text(
        json.dumps({"generator": {"name": "spikegen-process-data"}, "frames": []})
    )
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
    with pytest.raises(
        SceneFormatError,
        match=r"scene: --output-dir holds files spikegen-process-data did not "
        r"write \(images, notes.txt, transforms.json\).*--overwrite",
    ):
        process(ProcessDataConfig(data=photos, output_dir=scene, simulate_spikes=True, window=8), quiet=True)
    assert _tree(scene) == before


@pytest.mark.parametrize("where", ["same", "inside"])
def test_process_data_refuses_inputs_inside_the_output_folder(tmp_path: Path, where: str) -> None:
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    photos = _photos(tmp_path / "photos")
    out = photos if where == "same" else tmp_path
    before = _tree(photos)
    with pytest.raises(
        InputMismatchError,
        match=r"photos: --data lies inside --output-dir .*which this command "
        r"replaces; pass an --output-dir outside it",
    ):
        process(
            ProcessDataConfig(data=photos, output_dir=out, simulate_spikes=True, window=8, overwrite=True),
            quiet=True,
        )  # fmt: skip  (even --overwrite does not let it replace its own input)
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


def test_sigkilled_folder_rewrite_leaves_the_old_folder_and_the_next_run_clears_its_temp(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess
    import sys

    from spikegen_core.utils import atomic_dir

    out = tmp_path / "frames"
    out.mkdir()
    for i in range(5):
        (out / f"frame_{i:06d}.png").write_bytes(b"old")
    before = _tree(out)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"}
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


# -- the spikegen CLI, driven in-process as a user types it ----------------------------------------------------
ASSETS = Path(__file__).resolve().parents[2] / "spikegen_core" / "assets"


def run_spikegen(argv: list[str], capsys: pytest.CaptureFixture, main=None) -> tuple[int, str, str]:
    """``spikegen <argv>`` in this process: (exit code, stdout, stderr)."""
    import sys

    from spikegen_core import cli

    old = sys.argv
    sys.argv = ["spikegen", *argv]
    code = 0
    try:
        (main or cli.main)()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(result: tuple[int, str, str], *needles: str) -> str:
    code, _, err = result
    assert code == 1 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spikegen"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write_40x64(path: Path, *, sidecar: bool) -> Path:
    """60 spike frames of the sample image at 40×64 (H×W)."""
    import torch.nn.functional as F

    from spikegen_core.image import load_image
    from spikegen_core.spikes.camera import simulate
    from spikegen_core.spikes.io import write_dat

    grey = F.interpolate(
        load_image(ASSETS / "sample.png", mode="grey")[None, None], size=(40, 64), mode="area"
    )
    return write_dat(path, simulate(grey[0, 0], 60, seed=0), sidecar=sidecar)


def _sized(command: str, path: Path) -> list[str]:
    return [command, str(path), "--height", "40", "--width", "64"]


@pytest.fixture(scope="module")
def spikes_40x64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of a 40×64 (H×W) scene, no sidecar."""
    return write_40x64(tmp_path_factory.mktemp("edges") / "x.dat", sidecar=False)


def test_a_size_whose_rows_do_not_line_up_is_refused_and_named(
    spikes_40x64: Path, tmp_path: Path, capsys
) -> None:
    """Item 2: 40×64 read as 64×40 (both divide the file) was decoded to stripes without a word."""
    line = assert_one_line_error(
        run_spikegen(
            ["reconstruct", str(spikes_40x64), "--height", "64", "--width", "40", "--out", str(tmp_path)],
            capsys,
        ),  # fmt: skip
        "x.dat: read as 64×40, its rows do not line up",
        "it looks like height=40, width=64",
        "--force-size",
    )
    assert not list(tmp_path.iterdir()), line  # nothing written
    code, out, _ = run_spikegen([*_sized("reconstruct", spikes_40x64), "--out",
                                 str(tmp_path)], capsys)  # fmt: skip
    assert code == 0 and "60 spike frames of 40×64" in out
    code, _, _ = run_spikegen(["reconstruct", str(spikes_40x64), "--height", "64", "--width", "40", "--force-size",
                               "--out", str(tmp_path / "forced")], capsys)  # fmt: skip
    assert code == 0  # the user's word wins when asked


def test_flags_that_disagree_with_the_sidecar_are_refused(spikes_40x64: Path, tmp_path: Path, capsys) -> None:
    """Item 3: the flags overrode a sidecar saying 40×64 silently."""
    import shutil

    path = tmp_path / "s.dat"
    shutil.copy(spikes_40x64, path)
    (tmp_path / "s.dat.json").write_text(json.dumps({"height": 40, "width": 64}))
    assert_one_line_error(
        run_spikegen(["reconstruct", str(path), "--height", "64", "--width", "40"], capsys),
        "s.dat: --height 64 --width 40 disagrees with its sidecar s.dat.json, which says 40×64",
        "--force-size",
    )


@pytest.mark.parametrize("command", ["reconstruct", "restore"])
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--threshold", "-2", "--threshold -2.0: must be a number > 0"),  # item 4: a black image
        ("--threshold", "0", "--threshold 0.0: must be a number > 0"),
        ("--threshold", "nan", "--threshold nan: must be a number > 0"),
        ("--window", "-5", "--window -5: must be an integer >= 1"),  # item 9: RuntimeError from a conv
        (
            "--window",
            "0",
            "--window 0: must be an integer >= 1",
        ),  # item 17: "a None-frame window" / silently 41
    ],
)
def test_options_out_of_range_are_refused_at_parse_time(
    spikes_40x64: Path, command: str, flag: str, value: str, message: str, capsys
) -> None:
    """Items 4, 9 and 17."""
    assert_one_line_error(run_spikegen([*_sized(command, spikes_40x64), flag, value], capsys), message)


def test_restore_more_ddim_steps_than_the_model_was_trained_with_is_refused(
    spikes_40x64: Path, tmp_path: Path, capsys
) -> None:
    """`--steps` had no upper bound: past the model's training timesteps diffusers raised from inside the sampler."""
    out = tmp_path / "r.png"
    argv = [*_sized("restore", spikes_40x64), "--sampler", "ddim", "--steps", "5000", "--out", str(out)]
    assert_one_line_error(run_spikegen(argv, capsys), "--steps 5000", "trained with 1000 diffusion timesteps")
    assert not out.exists()


def test_restore_video_rerun_shorter_leaves_only_its_own_frames_and_no_temp_video(
    spikes_40x64: Path, tmp_path: Path, capsys
) -> None:
    """Item 5: a killed run's frame_*.png stayed beside a shorter rerun's, and its hidden temp .mp4 stayed."""
    import subprocess
    import sys

    out = tmp_path / "video"
    args = ["restore-video", "--spikes", str(spikes_40x64), "--height", "40", "--width", "64", "--out", str(out),
            "--fps", "2000", "--window", "11", "--frames", "--restorer", "tfp"]  # fmt: skip
    assert run_spikegen(args, capsys)[0] == 0
    folder = out / "x_tfp_2000fps"
    assert len(list(folder.glob("frame_*.png"))) == 5  # centres 5, 15, 25, 35, 45 (every 10 ticks)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = out / f".x_tfp_2000fps.mp4.{int(dead.stdout)}.abc123.mp4"  # what a SIGKILLed run leaves
    stale.write_bytes(b"half a video")
    assert run_spikegen([*args, "--stop", "30"], capsys)[0] == 0
    count = json.loads((out / "x_tfp_2000fps.json").read_text())["frames"]
    assert count == 3 and sorted(p.name for p in folder.iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]
    assert sorted(p.name for p in out.iterdir()) == [
        "x_tfp_2000fps",
        "x_tfp_2000fps.json",
        "x_tfp_2000fps.mp4",
    ]


def test_a_pose_whose_3x3_is_not_a_rotation_is_refused(tmp_path: Path) -> None:
    """Item 6: a transform_matrix with one rotation entry ×5 trained without a word."""
    from test_reliability_inputs import _parse, _scene

    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"][1]["transform_matrix"][0][0] *= 5
    (root / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(
        SceneFormatError, match=r"frames\[1\].transform_matrix's 3x3 is not a rotation .*det 5"
    ):
        _parse(root)


def test_an_image_renamed_dat_is_refused(tmp_path: Path, capsys) -> None:
    """Item 7: a PNG renamed .dat was decoded as spikes."""
    import shutil

    shutil.copy(ASSETS / "sample.png", tmp_path / "p.dat")
    (tmp_path / "p.dat.json").write_text(
        json.dumps({"height": 8, "width": 8})
    )  # even a sidecar does not help
    assert_one_line_error(run_spikegen(["reconstruct", str(tmp_path / "p.dat")], capsys),
                          "p.dat: starts with the signature of a PNG image, not raw spike frames")  # fmt: skip
    np.savez(tmp_path / "a.npz", spk=np.zeros((4, 8, 8), np.uint8))
    shutil.copy(tmp_path / "a.npz", tmp_path / "a.dat")
    assert_one_line_error(run_spikegen(["reconstruct", str(tmp_path / "a.dat"), "--height", "8", "--width", "8"],
                                       capsys), "a zip archive (an .npz?)", "rename it to .npz")  # fmt: skip


@pytest.mark.parametrize("sizes", [[], ["--height", "40", "--width", "64"]])
def test_a_folder_as_the_spike_file_is_named_as_a_folder(tmp_path: Path, sizes: list[str], capsys) -> None:
    """Item 8: IsADirectoryError (or, with other sizes, a misleading message)."""
    (tmp_path / "d.dat").mkdir()
    assert_one_line_error(run_spikegen(["reconstruct", str(tmp_path / "d.dat"), *sizes], capsys),
                          "d.dat: is a folder, not a spike file")  # fmt: skip


def test_restore_out_that_is_a_folder_is_refused_before_the_model_runs(
    spikes_40x64: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Item 10: IsADirectoryError after the whole model run."""
    import importlib

    monkeypatch.setattr(
        importlib.import_module("spikegen_core.train.restore"),
        "load_model",
        lambda *a, **k: pytest.fail("the model ran"),
    )
    assert_one_line_error(
        run_spikegen([*_sized("restore", spikes_40x64), "--out", str(tmp_path)], capsys),  # fmt: skip
        f"{tmp_path}: --out is an existing folder; give a file name, e.g. {tmp_path / 'restored.png'}",
    )


def test_restore_video_fps_zero_is_refused(spikes_40x64: Path, tmp_path: Path, capsys) -> None:
    """Item 11: ZeroDivisionError."""
    assert_one_line_error(
        run_spikegen(
            [
                "restore-video",
                "--spikes",
                str(spikes_40x64),
                "--height",
                "40",
                "--width",
                "64",
                "--fps",
                "0",
                "--out",
                str(tmp_path),
            ],
            capsys,
        ),  # fmt: skip
        "--fps 0.0: must be a number > 0",
    )
    assert not list(tmp_path.iterdir())


def test_a_missing_spike_file_is_said_to_be_missing(tmp_path: Path, capsys) -> None:
    """Item 12: "no sidecar … pass height=" for a file that does not exist."""
    assert_one_line_error(run_spikegen(["reconstruct", str(tmp_path / "missing.dat")], capsys),
                          "missing.dat: spike file not found")  # fmt: skip


def test_an_npz_without_a_known_key_names_the_key_flag_that_exists(tmp_path: Path, capsys) -> None:
    """Item 13: "Pass key=", but the CLI had no --key."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "r.npz", meta=np.zeros(3), events=(rng.random((50, 40, 64)) < 0.2).astype(np.uint8))
    assert_one_line_error(run_spikegen(["reconstruct", str(tmp_path / "r.npz")], capsys),
                          "no array None in the archive", "Pass --key with one of them")  # fmt: skip
    code, out, _ = run_spikegen(["reconstruct", str(tmp_path / "r.npz"), "--key", "events", "--out",
                                 str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 0 and "50 spike frames of 40×64" in out


def test_restore_rgb_of_another_size_names_both_files(spikes_40x64: Path, tmp_path: Path, capsys) -> None:
    """Item 14: the size mismatch named neither file."""
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "blur.png")
    assert_one_line_error(
        run_spikegen(
            [
                *_sized("restore", spikes_40x64),
                "--rgb",
                str(tmp_path / "blur.png"),
                "--out",
                str(tmp_path / "o.png"),
            ],
            capsys,
        ),  # fmt: skip
        "blur.png: the RGB frame is 32×32 but the spikes of",
        "x.dat are 40×64",
        "resize or crop",
    )


def test_a_grey_plus_alpha_rgb_frame_is_read_as_grey(spikes_40x64: Path, tmp_path: Path, capsys) -> None:
    """Item 15: "must be (B, 3, H, W), got (1, 2, 64, 64)"."""
    from spikegen_core.image import load_image

    la = np.stack([np.full((40, 64), 128, np.uint8), np.full((40, 64), 255, np.uint8)], -1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.shape == (3, 40, 64) and torch.allclose(img, torch.full_like(img, 128 / 255))
    code, out, err = run_spikegen([*_sized("restore", spikes_40x64), "--rgb",
                                   str(tmp_path / "la.png"), "--out", str(tmp_path / "o.png")], capsys)  # fmt: skip
    assert code == 0 and (tmp_path / "o.png").is_file(), err


@pytest.mark.parametrize("command", ["restore", "reconstruct"])
def test_a_window_longer_than_the_stream_is_refused(spikes_40x64: Path, command: str, capsys) -> None:
    """Item 16: --window 500 on 60 frames was silently cut to 60."""
    assert_one_line_error(
        run_spikegen(
            [command, str(spikes_40x64), "--height", "40", "--width", "64", "--window", "500"], capsys
        ),
        "x.dat: --window 500 does not fit its 60 frames; pass --window between 1 and 60",
    )


def test_a_json_passed_as_the_checkpoint_names_the_weights_file(
    spikes_40x64: Path, tmp_path: Path, capsys
) -> None:
    """Item 18: "corrupt or truncated" for the checkpoint's JSON config."""
    assert_one_line_error(
        run_spikegen(
            [
                *_sized("restore", spikes_40x64),
                "--checkpoint",
                str(ASSETS / "spikegen_tiny.json"),
                "--out",
                str(tmp_path / "o.png"),
            ],
            capsys,
        ),  # fmt: skip
        "spikegen_tiny.json: is the JSON config of a checkpoint, not its weights",
        f"beside it: {ASSETS / 'spikegen_tiny.safetensors'}",
    )


def test_a_checkpoint_with_a_nan_weight_is_named(spikes_40x64: Path, tmp_path: Path, capsys) -> None:
    """Item 19: a NaN weight was blamed on the output image."""
    import shutil

    from safetensors.torch import load_file, save_file

    state = load_file(str(ASSETS / "spikegen_tiny.safetensors"))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(tmp_path / "bad.safetensors"))
    shutil.copy(ASSETS / "spikegen_tiny.json", tmp_path / "bad.json")
    assert_one_line_error(
        run_spikegen(
            [
                *_sized("restore", spikes_40x64),
                "--checkpoint",
                str(tmp_path / "bad.safetensors"),
                "--out",
                str(tmp_path / "o.png"),
            ],
            capsys,
        ),  # fmt: skip
        "bad.safetensors: weights hold NaN/Inf in " + name,
        "use an earlier checkpoint",
    )
    assert not (tmp_path / "o.png").exists()


def test_a_train_view_listed_three_times_is_warned_about(tmp_path: Path, capsys) -> None:
    """Item 20: a training frame listed three times: no warning."""
    from test_reliability_inputs import _parse, _scene

    root = _scene(tmp_path)
    meta = json.loads((root / "transforms.json").read_text())
    train = [f for f in meta["frames"] if "gt_path" not in f]
    meta["frames"] += [train[0], train[0]]
    (root / "transforms.json").write_text(json.dumps(meta))
    capsys.readouterr()
    out = _parse(root)
    text = " ".join(capsys.readouterr().out.split())
    assert "listed 3 times, so it trains with 3x the weight of the others; remove the copies" in text
    assert len(out.metadata["spike_views"]) == len(train) + 2  # still trains as written


# -- everywhere: one line per user error, --debug / SPIKEGEN_DEBUG=1 give the traceback --------------------------
def test_user_errors_are_one_line_and_debug_brings_the_traceback_back(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from spikegen_core.errors import SpikeFileError

    argv = ["reconstruct", str(tmp_path / "missing.dat")]
    assert_one_line_error(run_spikegen(argv, capsys), "spikegen reconstruct: error: ")
    with pytest.raises(SpikeFileError, match="missing.dat: spike file not found"):
        run_spikegen([*argv, "--debug"], capsys)
    monkeypatch.setenv("SPIKEGEN_DEBUG", "1")
    with pytest.raises(SpikeFileError, match="missing.dat: spike file not found"):
        run_spikegen(argv, capsys)


def test_process_data_errors_are_one_line_too(tmp_path: Path, capsys) -> None:
    from spikegen_nvs.process_data.pipeline import main

    (tmp_path / "empty").mkdir()
    code, _, err = run_spikegen(["--data", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "o")], capsys,
                                main=main)  # fmt: skip
    assert code == 1 and err.strip().splitlines() == [
        f"spikegen-process-data: error: {tmp_path / 'empty'}: holds neither spike files (.dat, .npz, .npy) nor "
        "images; check the path"
    ]
    code, _, err = run_spikegen(["--data", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "o"),
                                 "--num-views", "0"], capsys, main=main)  # fmt: skip
    assert code == 1 and "--num-views 0: must be an integer >= 1" in err and "Traceback" not in err


def test_a_dat_rewrite_that_dies_never_leaves_a_sidecar_of_other_frames(tmp_path: Path, monkeypatch) -> None:
    """The .dat and its sidecar are two files: a rewrite killed between them must not pair old and new."""
    from spikegen_core.spikes import io

    path = io.write_dat(tmp_path / "v.dat", torch.ones(4, 24, 24, dtype=torch.uint8))
    monkeypatch.setattr(io, "encode_frames", lambda frames: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # dies while writing 16×16 frames
        io.write_dat(path, torch.ones(9, 16, 16, dtype=torch.uint8))
    assert path.stat().st_size == 4 * 24 * 24 // 8  # the old frames, whole
    assert not io.sidecar_path(path).exists()  # no sidecar claiming 24×24 for frames it no longer describes
    assert io.read_dat(path, 24, 24).spikes.shape == (4, 24, 24)


def test_process_data_refuses_a_wrong_looking_size_unless_forced(spikes_40x64: Path, tmp_path: Path) -> None:
    """Item 2 for spikegen-process-data, whose --force-size the message names."""
    from spikegen_nvs.process_data.pipeline import ProcessDataConfig, process

    cfg = ProcessDataConfig(data=spikes_40x64, output_dir=tmp_path / "s", height=64, width=40, window=128)
    with pytest.raises(SpikeFileError, match="it looks like height=40, width=64.*--force-size"):
        process(cfg, quiet=True)
    cfg.force_size = True  # accepted as told: it fails later, for being shorter than one window
    with pytest.raises(SpikeFileError, match="60 frames, shorter than one window of 128"):
        process(cfg, quiet=True)


def test_a_video_rewrite_dying_before_its_json_leaves_no_json_of_the_earlier_run(
    tmp_path: Path, monkeypatch
) -> None:
    """The MP4 and its .json are two renames: the new video must never sit beside the old run's .json."""
    from spikegen_core.video import writer

    with writer.FrameWriter(tmp_path / "v.mp4", meta={"run": "old"}) as w:
        w.write(torch.zeros(2, 1, 16, 16))
    assert json.loads((tmp_path / "v.json").read_text())["run"] == "old"

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # killed after the video's rename, before the .json's

    monkeypatch.setattr(writer, "atomic_write", dies)
    with pytest.raises(KeyboardInterrupt), writer.FrameWriter(tmp_path / "v.mp4", meta={"run": "new"}) as w:
        w.write(torch.ones(5, 1, 16, 16))
    assert not (tmp_path / "v.json").exists()
    import imageio.v3 as iio

    assert iio.improps(tmp_path / "v.mp4", plugin="pyav").shape[0] == 5  # the new, complete video
