"""The serve page's screenshots in docs/, made from real runs: each SOURCE served by
``resnetkit serve`` on 127.0.0.1, a test scene of the garment scenes uploaded in headless Chromium,
and the page saved once it has drawn the answer.

    python docs/make_screenshots.py segmentation=runs/seg detection=runs/det

(the runs: ``resnetkit train --recipe scenes-segmentation`` and ``--recipe scenes-detection``).
The test suite drives the same page for every task (tests/test_serve_page*.py); this script only
keeps pictures of it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright

from resnetkit.data.dense import load_dense_dataset
from resnetkit.data.scenes import SceneSpec

DOCS = Path(__file__).resolve().parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shoot(name: str, source: str, image: Path, folder: Path) -> Path:
    port = free_port()
    cmd = [sys.executable, "-m", "resnetkit", "serve", source, "--port", str(port), "--precision", "fp32"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(folder / f"profile-{name}"),
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                headless=True,
                args=FLAGS,
                viewport={"width": 1000, "height": 520},
            )
            page = browser.new_page()
            page.goto(f"{url}/?min_score=0.5")
            page.wait_for_function("document.getElementById('model').textContent.includes('(')")
            page.set_input_files("#file", str(image))
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0", timeout=60_000)
            out = DOCS / f"serve-page-{name}.png"
            page.screenshot(path=str(out))
            browser.close()
        return out
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str]) -> int:
    scenes = load_dense_dataset("fashion-mnist-scenes", "test", None, True, SceneSpec(test_scenes=8), 0, "mask")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "scene-test3.png"
        Image.fromarray(scenes.images[3, 0].numpy()).save(image)
        for arg in argv:
            name, _, source = arg.partition("=")
            print(shoot(name, source, image, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
