"""The CLIs driven with random option values (hypothesis): a clean error or a correct output, never a traceback,
never a partial file.

Each example runs ``spikegen <command>`` (or ``spikegen-process-data``) in this process on a small input with
1–3 numeric options set to values drawn from edge cases (0, negatives, NaN, inf, huge, text) and ordinary ones.
Accepted outcomes: exit 0 with every file it reports complete and readable; exit 1 with one stderr line naming
the command; exit 2 from tyro's own parse error (e.g. text for an integer). Either way no hidden temp file is
left, and an error writes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_reliability_edges import run_spikegen, write_40x64

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)

EDGE_VALUES = ["0", "-1", "1", "2", "3", "7", "41", "59", "60", "61", "1e309", "-1e309", "nan", "inf", "0.5",
               "1e12", "-0.0", "abc", ""]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(0, 80).map(str),  # ordinary values, so that successful runs are drawn too
)


def _options(names: list[str]) -> st.SearchStrategy[list[str]]:
    pairs = st.lists(
        st.tuples(st.sampled_from(names), VALUES), min_size=1, max_size=3, unique_by=lambda p: p[0]
    )
    return pairs.map(lambda ps: [x for name, value in ps for x in (f"--{name}", value)])


@pytest.fixture(scope="module")
def spike_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of 40×64 with a sidecar."""
    return write_40x64(tmp_path_factory.mktemp("cli_fuzz") / "s.dat", sidecar=True)


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


def _check(result: tuple[int, str, str], prog: str, out: Path) -> int:
    code, stdout, stderr = result
    assert "Traceback" not in stderr, stderr
    assert not _hidden(out.parent), _hidden(out.parent)  # no temp file or folder left
    if code == 0:
        return code
    if code == 1:  # one error line, the last (process-data's progress bars may precede it on stderr)
        lines = stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
        assert errors == lines[-1:], stderr
        assert ".tmp" not in errors[0], errors  # the message names the user's paths, not our temp folder
    else:
        assert (
            code == 2
            and "usage" in stderr.lower()
            or "required" in stderr.lower()
            or "error" in stderr.lower()
        )
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), list(
        out.rglob("*")
    )  # nothing written
    return code


@settings(max_examples=60, **SETTINGS)
@given(options=_options(["window", "center", "threshold", "height", "width"]),
       method=st.sampled_from(["tfp", "tfi", "both"]))  # fmt: skip
def test_reconstruct_with_random_options(spike_file: Path, tmp_path: Path, capsys, options, method) -> None:
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    argv = ["reconstruct", str(spike_file), "--out", str(out), "--method", method, *options]
    if _check(run_spikegen(argv, capsys), "spikegen reconstruct", out) == 0:
        pngs = sorted(out.glob("*.png"))
        assert len(pngs) == (2 if method == "both" else 1)
        for png in pngs:
            assert Image.open(png).size == (64, 40)  # complete, and at the file's own size


@settings(max_examples=40, **SETTINGS)
@given(options=_options(["fps", "window", "short-window", "batch-size", "start", "stop", "threshold", "clock-hz",
                         "play-fps"]),
       restorer=st.sampled_from(["tfp", "tfp_adaptive"]))  # fmt: skip
def test_restore_video_with_random_options(
    spike_file: Path, tmp_path: Path, capsys, options, restorer
) -> None:
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    argv = ["restore-video", "--spikes", str(spike_file), "--out", str(out), "--restorer", restorer, "--frames",
            "--no-mp4", *options]  # fmt: skip
    code, stdout, stderr = result = run_spikegen(argv, capsys)
    if _check(result, "spikegen restore-video", out) == 0:
        (folder,) = out.iterdir()
        count = int(stdout.split(" frames at ")[0].split()[-1])  # "<n> frames at <fps> fps from ..."
        frames = sorted(folder.iterdir())
        assert count >= 1 and [p.name for p in frames] == [f"frame_{i:06d}.png" for i in range(count)]
        assert all(Image.open(p).size == (64, 40) for p in frames)


@settings(max_examples=6, **SETTINGS)
@given(options=_options(["window", "center", "threshold"]))
def test_restore_with_random_options(spike_file: Path, tmp_path: Path, capsys, options) -> None:
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    argv = ["restore", str(spike_file), "--out", str(out / "r.png"), *options]
    if _check(run_spikegen(argv, capsys), "spikegen restore", out) == 0:
        assert Image.open(out / "r.png").size == (64, 40)


@settings(max_examples=12, **SETTINGS)
@given(options=_options(["num-views", "window", "threshold", "clock-hz", "gain", "downscale", "jitter-px",
                         "min-registered-fraction", "max-num-features", "num-threads", "sequential-overlap",
                         "eval-every", "height", "width"]))  # fmt: skip
def test_process_data_with_random_options(spike_file: Path, tmp_path: Path, capsys, options) -> None:
    """The stream is 60 frames: every run ends in a clean error (too short, or an option refused) or, for a
    short --window and few views, a COLMAP registration error; never a traceback or a partial scene."""
    from spikegen_nvs.process_data.pipeline import main

    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "scene"
    argv = ["--data", str(spike_file), "--output-dir", str(out), "--num-threads", "1", *options]
    code = _check(run_spikegen(argv, capsys, main=main), "spikegen-process-data", out)
    if code == 0:
        assert (out / "transforms.json").is_file()


def test_the_option_table_refuses_what_the_fuzz_found(capsys) -> None:
    """Examples the property tests above would otherwise only meet by chance."""
    from spikegen_core.cli_guard import check_options
    from spikegen_core.errors import OptionError

    for name, value in [("window", 0), ("fps", float("nan")), ("threshold", -2.0), ("height", 10**9),
                        ("ema_decay", 1.5), ("threshold_range", (3.0, 1.5)), ("num_threads", -2)]:  # fmt: skip
        with pytest.raises(OptionError, match=f"--{name.replace('_', '-')} "):
            check_options({name: value})
    check_options(
        {"window": 41, "fps": 1000.0, "num_threads": -1, "threshold_range": (1.5, 3.0), "other": 1e9}
    )
    _ = np  # numpy is used by the fixtures' helpers
