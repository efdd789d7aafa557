"""The viewer is a web page, so test it as one: ``ns-viewer`` on a trained scene, opened in headless Chromium.

Skipped (with the reason) where Chromium or Playwright is missing; ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network and no GPU (WebGL through SwiftShader).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture(scope="module")
def trained_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spikegen_core.data.scene import make_scene

    root = tmp_path_factory.mktemp("viewer")
    scene = make_scene(root / "scene", preset="sample", width=48, height=36, num_train=6, num_test=2)
    cmd = [_bin("ns-train"), "spikegen-splat", "--data", str(scene), "--max-num-iterations", "10",
           "--vis", "tensorboard", "--output-dir", str(root / "out"), "--experiment-name", "v",
           "--timestamp", "t"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root / "out" / "v" / "spikegen-splat" / "t" / "config.yml"


def _render_region(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255.0
    h, w, _ = img.shape
    # Left of the control panel (480 px wide at this viewport), below the 50-px title bar.
    return img[60 : h - 60, 10 : w - 330]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run does)")
def test_viewer_shows_the_trained_scene(trained_config: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    port = _free_port()
    log = open(tmp_path / "viewer.log", "w")
    viewer = subprocess.Popen(
        [_bin("ns-viewer"), "--load-config", str(trained_config), "--viewer.websocket-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)
                break
            except OSError:
                assert viewer.poll() is None, (tmp_path / "viewer.log").read_text()[-3000:]
                assert time.time() < deadline, "ns-viewer did not serve HTTP within 240 s"
                time.sleep(1)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 800, "height": 600})
            page.goto(f"http://127.0.0.1:{port}")
            shown = None
            deadline = time.time() + 360  # loaded CI machines render the first frame slowly; a pass exits early
            while time.time() < deadline:
                time.sleep(3)
                text = page.inner_text("body")
                m = re.search(r"Resolution:\s*(\d+)\s*[×x]\s*(\d+)", text)
                if m and int(m.group(1)) > 0:
                    shown = page.screenshot()
                    region = _render_region(shown)
                    if region.std() > 0.03:
                        break
            png_path = tmp_path / "viewer.png"
            if shown is not None:
                png_path.write_bytes(shown)
            browser.close()
        assert shown is not None, f"the viewer never reported a rendered frame; page text: {text[:500]!r}"
        region = _render_region(shown)
        assert "error" not in text.lower()[:2000], text[:2000]
        # The scene is textured and colourful; a blank page is flat, the empty viewer is a dark grey.
        assert region.std() > 0.03, f"render area is flat (std {region.std():.4f}); screenshot {png_path}"
        saturation = region.max(axis=2) - region.min(axis=2)
        assert saturation.mean() > 0.03, f"render area has no colour; screenshot {png_path}"
        dark = (region.max(axis=2) < 0.15).mean()
        assert dark < 0.5, f"{dark:.0%} of the render area is background; screenshot {png_path}"
    finally:
        os.killpg(viewer.pid, signal.SIGTERM)
        try:
            viewer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(viewer.pid, signal.SIGKILL)
        log.close()
