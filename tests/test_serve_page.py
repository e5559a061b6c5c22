"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright. A real
Fashion-MNIST test image is uploaded; the page shows the right label, the top-k bars and the
Grad-CAM heat map. Set RESNETKIT_SCREENSHOT=FILE to keep a screenshot (docs/serve-page.png)."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import sync_playwright

from serve_helpers import INPUTS, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server("resnet20.fashion_mnist", log=tmp_path_factory.mktemp("page") / "server.log")
    yield srv
    srv.stop()


@pytest.mark.parametrize("image", ["1-trouser-test2.png", "9-ankle-boot-test0.png"])
def test_uploading_a_real_image_shows_its_label_bars_and_heat_map(server, tmp_path, image):
    path = next(p for p in INPUTS if p.name == image)
    expected = {"1-trouser-test2.png": "Trouser", "9-ankle-boot-test0.png": "Ankle boot"}[image]
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(  # a fresh profile folder
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1000, "height": 560},
        )
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("document.getElementById('model').textContent.includes('resnet20')")
            page.set_input_files("#file", str(path))
            page.wait_for_function(
                "(want) => document.getElementById('label').textContent === want", arg=expected, timeout=30_000
            )
            assert page.locator(".bar").count() == 5
            assert page.locator(".bar .name").first.text_content() == expected
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0", timeout=30_000)
            assert page.evaluate("document.getElementById('heatmap').naturalWidth") == 224
            assert "answered in" in (page.locator("#status").text_content() or "")
            shot = os.environ.get("RESNETKIT_SCREENSHOT")
            if shot and image.startswith("9-"):
                page.screenshot(path=shot)
        finally:
            browser.close()


def test_the_openapi_page_renders_offline(server, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            page = browser.new_page()
            outside = []
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_text_contents()
            assert "/v1/predict" in " ".join(paths) and not outside  # nothing fetched from anywhere else
        finally:
            browser.close()
