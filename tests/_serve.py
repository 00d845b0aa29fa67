"""Helpers for the web-app tests: a workspace to serve, models, a live server on a loopback port, a browser."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("SHAPEKIT_ARTIFACTS", REPO / "tests" / "artifacts"))
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium on a machine without network or GPU (swiftshader gives WebGL for the 3D view).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-unsafe-swiftshader"]


def make_workspace(root: Path, landmark_checkpoint: Path) -> Path:
    """root/specimens (6 synthetic images + TPS with ID/SCALE/COMMENT lines), root/models/landmarks.ckpt."""
    from shapekit.io import tps
    from shapekit.synthetic import make_landmark_dataset

    make_landmark_dataset(root / "specimens", n_images=6, seed=3)
    path = root / "specimens" / "landmarks.tps"
    specimens = tps.read_tps(path)
    for k, spec in enumerate(specimens):  # fields a morphometrician's file has, which a save must keep
        spec.scale = 0.0125 + k * 1e-4
        spec.comment = f"digitised by hand {k}"
    tps.write_tps(path, specimens)
    (root / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy2(landmark_checkpoint, root / "models" / "landmarks.ckpt")
    return root


def random_mesh_checkpoint(path: Path) -> Path:
    """An untrained mesh model (small template), enough to exercise the mesh result and the 3D view."""
    import torch

    from shapekit.config import RunConfig
    from shapekit.engine.checkpoint import save_model_checkpoint
    from shapekit.tasks import get_task

    config = RunConfig(task="mesh", input_size=64, encoder_weights="none",
                       options={"template_level": 2, "texture_size": [32, 64], "shape_features": "pooled"})
    task = get_task("mesh")(config, {"input_shape": [64, 64], "shape_features": "pooled"})
    torch.manual_seed(0)
    return save_model_checkpoint(task, task.build_model(pretrained=False), path)


def photo(path: Path) -> Path:
    """scikit-image's astronaut photo (shipped with the package) as a JPEG."""
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(path, quality=92)
    return path


class FakeLandmarks3D:
    """A landmarks3d-kind task with a fixed, instant result (for API tests that need control over timing)."""

    name = "fake3d"
    web_kind = "landmarks3d"

    def __init__(self, points: int = 12):
        self.count = points

    def predict_image(self, model, image, runtime, **_):
        height, width = image.shape[:2]
        angles = np.linspace(0, 2 * np.pi, self.count, endpoint=False)
        cx, cy, r = width / 2, height / 2, min(width, height) / 4
        points = [[float(cx + r * np.cos(a)), float(cy + r * np.sin(a)), float(20 * np.sin(2 * a))] for a in angles]
        return {"kind": "landmarks3d", "names": [f"p{k}" for k in range(self.count)],
                "instances": [{"box": [cx - r - 5, cy - r - 5, cx + r + 5, cy + r + 5], "points": points,
                               "confidence": [0.9] * self.count, "score": 0.9}], "score": 0.9, "message": None}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(app):
    """uvicorn serving ``app`` on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def browser_page(user_data_dir: Path, width: int = 1280, height: int = 800):
    """A page in Debian's chromium driven by Playwright, with a fresh user-data dir; page errors fail the test."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does this on CI)")
    errors: list[str] = []
    with sync_playwright() as playwright:
        # bypass_csp: Playwright's waiting helpers evaluate strings, which the page's CSP rightly forbids.
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, bypass_csp=True,
            viewport={"width": width, "height": height}, accept_downloads=True)
        try:
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(60000)
            yield page
        finally:
            context.close()
    assert not errors, errors


def canvas_pixel(page, x: float, y: float) -> list[int]:
    """RGBA of the 2D canvas at CSS pixel (x, y) of the canvas."""
    return page.evaluate("""([x, y]) => {
        const canvas = document.getElementById('canvas');
        const dpr = canvas.width / canvas.getBoundingClientRect().width;
        return Array.from(canvas.getContext('2d').getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data);
    }""", [x, y])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and modification time (to show that nothing was written)."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}
