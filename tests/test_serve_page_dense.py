"""The web page in a real browser (Debian's Chromium, headless, driven by Playwright) for each task:
a segmenter's mask and a detector's boxes drawn over the uploaded image, and, before anything is
chosen, an empty state without broken images. RESNETKIT_SCREENSHOTS=DIR keeps one screenshot per
task (docs/serve-page-*.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from dense_helpers import detector, scene, segmenter
from serve_helpers import Server
from test_serve_page import CHROMIUM, FLAGS

BUILDERS = {"segmentation": segmenter, "detection": detector}


class Servers:
    """One server per task, started when a test first asks for it, stopped after the module."""

    def __init__(self, folder: Path):
        self.folder, self.running = folder, {}

    def __call__(self, task: str) -> Server:
        if task not in self.running:
            source = "resnet20.fashion_mnist" if task == "classification" else str(BUILDERS[task](self.folder))
            self.running[task] = Server(source, "--precision", "fp32", log=self.folder / f"{task}.log")
        return self.running[task]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    started = Servers(tmp_path_factory.mktemp("pages"))
    yield started
    for srv in started.running.values():
        srv.stop()


def _browser(p, tmp_path: Path):
    return p.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=FLAGS,
        viewport={"width": 1000, "height": 560},
    )


@pytest.mark.parametrize("task", ["classification", "segmentation", "detection"])
def test_the_empty_page_shows_no_broken_images(servers, task, tmp_path):
    server = servers(task)
    with sync_playwright() as p:
        browser = _browser(p, tmp_path)
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("document.getElementById('model').textContent.includes('(')")
            assert f"({task})" in (page.locator("#model").text_content() or "")
            for img in ("preview", "heatmap"):  # no src yet: hidden, so no broken-image icon is drawn
                style = page.evaluate(f"getComputedStyle(document.getElementById('{img}')).visibility")
                assert style == "hidden", img
            shot = os.environ.get("RESNETKIT_SCREENSHOTS")
            if shot and task == "classification":
                page.screenshot(path=str(Path(shot) / "serve-page-empty.png"))
        finally:
            browser.close()


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_a_dense_answer_is_drawn_over_the_image(servers, task, tmp_path):
    server = servers(task)
    image = scene(tmp_path, (64, 96))
    with sync_playwright() as p:
        browser = _browser(p, tmp_path)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/?min_score=0.5")
            page.wait_for_function(f"document.getElementById('model').textContent.includes('({task})')")
            page.set_input_files("#file", str(image))
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0", timeout=30_000)
            width, height = page.evaluate(
                "[document.getElementById('heatmap').naturalWidth, document.getElementById('heatmap').naturalHeight]"
            )
            assert width * 64 == height * 96  # the answer is drawn at the image's own shape
            label = page.locator("#label").text_content() or ""
            assert page.locator(".bar").count() >= 1 and label
            if task == "detection":
                assert "object" in label
            assert "answered in" in (page.locator("#status").text_content() or "")
            shot = os.environ.get("RESNETKIT_SCREENSHOTS")
            if shot:
                page.screenshot(path=str(Path(shot) / f"serve-page-{task}.png"))
        finally:
            browser.close()
