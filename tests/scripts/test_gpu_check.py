"""scripts/gpu_check.sh cannot rot: its dry run goes through every step on CPU (tiny scenes, a few iterations, our
torch compositor standing in for gsplat) and writes the same results the GPU run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # four 3-step trainings and a tiny rasteriser comparison (~2 min on a busy 2-core machine)
def test_gpu_check_dry_run_goes_through_every_step(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GPU_CHECK_WORK": str(tmp_path),
        "PYTHON": sys.executable,
        "OUT": str(tmp_path / "out"),
    }
    (tmp_path / "out").mkdir()
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = [
        line.split("step ", 1)[1].split(":")[0] for line in proc.stdout.splitlines() if "] step " in line
    ]
    assert steps == [
        "environment",
        "install",
        "pip",
        "imports",
        "gsplat-build",
        "train",
        "compare-gsplat",
        "pack",
    ]

    bench = tmp_path / "benchmarks"
    report = json.loads((bench / "gpu_check_nvs.json").read_text())
    assert set(report["results"]) == {name for name in report["scenes"]} and len(report["results"]) == 2
    kinds = sorted(spec.get("kind", "orbit") for spec in report["scenes"].values())
    assert kinds == ["orbit", "room"]  # the sample scene and the (here shrunk) native-size room
    for res in report["results"].values():
        assert set(res) == {"spikegen-splat", "blur"} and all(0 < r["psnr"] < 60 for r in res.values())
    assert len(report["figures"]) == 2 and all(Path(p).is_file() for p in report["figures"])
    compare = json.loads((bench / "rasterizer_vs_gsplat.json").read_text())
    assert compare["rows"] and all(row["pass"] for row in compare["rows"])
    with tarfile.open(tmp_path / "out" / "gpu_check_results.tgz") as tar:
        names = set(tar.getnames())
    assert {"gpu_check_nvs.md", "rasterizer_vs_gsplat.json"} <= names
    assert (tmp_path / "out" / "gpu_check.log").stat().st_size > 0


def test_wheel_list_pins_what_the_constraints_pin() -> None:
    """The wheels carried to the GPU machine are the versions everyone else runs (fpsample: the newest with a
    Python 3.12 wheel; nerfstudio only imports it)."""
    pins = dict(
        line.split("#")[0].strip().split("==")
        for line in (REPO / "scripts" / "gpu_wheels.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    constraints = dict(
        line.strip().split("==")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    norm = {k.lower().replace("_", "-"): v for k, v in constraints.items()}
    differ = {k: (v, norm.get(k.lower().replace("_", "-"))) for k, v in pins.items()
              if norm.get(k.lower().replace("_", "-")) != v}  # fmt: skip
    assert set(differ) == {"fpsample"}, differ
    assert {"nerfstudio", "gsplat", "tyro", "viser"} <= set(pins)
