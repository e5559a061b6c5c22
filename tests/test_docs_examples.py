"""Every example of README.md and docs/ runs, and shows what it prints (tests/docs_examples.py says
how blocks are found and what the hidden directives mean).

Each page runs in its own temporary folder, its blocks in order: Python blocks in one namespace,
``resnetkit`` commands in this process through ``resnetkit.cli.main`` (no interpreter start per
command). The folder holds a copy of ``docs/results/gradcam/inputs`` (the images the pages use)
and ``runs/my-run``, one tiny training run shared by every page."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from pathlib import Path

import pytest
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).parent))
import resnetkit
from docs_examples import ROOT, Block, all_blocks, blocks, pages, same_output
from resnetkit.cli import main as cli_main

MAX_ILLUSTRATIVE = 0.10
EXAMPLE_PAGES = [p for p in pages() if blocks(p)]


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every xdist worker of this session sees (each worker's base temp folder is one of
    this session's), for what is made once under a ``FileLock`` in it."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/my-run``: ResNet-20 on Fashion-MNIST for 2 steps, made once for all workers."""
    root = _shared_dir(tmp_path_factory, "docs-examples")
    run = root / "my-run"
    with FileLock(str(root / "lock")):
        if not (run / "last.pt").exists():
            shutil.rmtree(run, ignore_errors=True)
            argv = ["train", "--model", "resnet20", "--epochs", "1", "--max-steps", "2", "--out", str(root)]
            assert cli_main([*argv, "--name", "my-run", "--no-progress"]) == 0
    return run


def _workspace(tmp_path: Path, run: Path) -> Path:
    # the pictures the pages feed in, copied: commands that write under docs/results write here
    shutil.copytree(
        ROOT / "docs" / "results" / "gradcam" / "inputs", tmp_path / "docs" / "results" / "gradcam" / "inputs"
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "my-run").symlink_to(run)
    return tmp_path


def _run_python(block: Block, namespace: dict) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.text, block.name, "exec"), namespace)
    if block.output is not None:
        assert same_output(block.output.splitlines(), out.getvalue(), block.directives), (
            f"{block.name}: printed\n{out.getvalue()}\nthe page shows\n{block.output}"
        )


def _run_shell(block: Block) -> None:
    for command in block.commands():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli_main(command.argv)
        assert rc == 0, f"{block.name}: resnetkit {' '.join(command.argv)} exited {rc}"
        if command.expected:
            assert same_output(command.expected, out.getvalue(), block.directives), (
                f"{block.name}: resnetkit {' '.join(command.argv)} printed\n{out.getvalue()}\n"
                f"the page shows\n" + "\n".join(command.expected)
            )


@pytest.mark.slow
@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, tmp_path: Path, shared_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_workspace(tmp_path, shared_run))
    monkeypatch.setenv("RESNETKIT_TEST", "1")
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.illustrative:
            continue
        if block.lang == "python":
            _run_python(block, namespace)
        else:
            _run_shell(block)


def test_illustrative_blocks_are_few() -> None:
    """Blocks marked illustrative run nothing: they are listed here, and at most 10% of all."""
    found = all_blocks()
    marked = [b for b in found if b.illustrative]
    listing = "\n".join(f"  {b.name}: {b.directives['illustrative']}" for b in marked)
    print(f"{len(marked)} of {len(found)} example blocks are illustrative only:\n{listing}")
    assert found, "no example found: the collector is broken"
    assert len(marked) <= MAX_ILLUSTRATIVE * len(found), listing
    assert all(b.directives["illustrative"] for b in marked), "an illustrative mark must give its reason"


def test_collector_reads_directives_and_outputs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- example: small -->\n```bash\nresnetkit train --model resnet20  # note\nmake x\n```\n\n"
        "```console\n$ resnetkit info resnet20\nmodel  params\nresnet20  1\n```\n\n"
        "```python\nprint(1)\n```\n<!-- example: output -->\n```text\n1\n```\n\n```bash\nmake docs\n```\n"
    )
    found = blocks(page)
    assert [b.lang for b in found] == ["bash", "console", "python"]  # `make docs` alone is no example
    assert found[0].commands()[0].argv == ["train", "--model", "resnet20", "--epochs", "1", "--max-steps", "2"]
    assert found[1].commands()[0].expected == ["model  params", "resnet20  1"]
    assert found[2].output == "1"
    assert same_output(["a 1.5%  b"], "a 2.25%   b\n", {"numbers-vary"})
    assert not same_output(["a 1.5%"], "a 2.25%\n")
    assert same_output(["layers fp32"], "layers bf16\n", {"precision-varies"})
    assert not same_output(["layers fp32"], "layers bf16\n", {"numbers-vary"})


def test_top_level_names_have_docstrings_and_api_pages() -> None:
    api = (ROOT / "docs" / "reference" / "api.md").read_text()
    top = api.split("## ", 2)[1]  # the section of `import resnetkit`
    for name in resnetkit.__all__:
        if name == "__version__":
            continue
        obj = getattr(resnetkit, name)
        assert (obj.__doc__ or "").strip(), f"resnetkit.{name} has no docstring"
        assert f"\n   {name}\n" in top, f"resnetkit.{name} is not in the API reference's top-level section"
    for name in ("create_model", "list_models", "load_model", "save_weights", "export_weights"):
        assert name in resnetkit.__all__
    for name in ("optimize_for_inference", "export", "fit", "TrainConfig", "predict", "evaluate"):
        assert name in resnetkit.__all__


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for all workers: autosummary writes its pages into the source tree
    (docs/reference/generated), so two builds at once race on the same files."""
    from sphinx.cmd.build import build_main

    root = _shared_dir(tmp_path_factory, "docs-site")
    out, built = root / "html", root / "built"
    with FileLock(str(root / "lock")):
        if not built.exists():
            shutil.rmtree(out, ignore_errors=True)
            rc = build_main(
                ["-W", "--keep-going", "-q", "-b", "html", "-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out)]
            )
            assert rc == 0, "sphinx-build -W failed: see the warnings above"
            built.touch()
    return out


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(built_site: Path) -> None:
    for page in ("index.html", "reference/api.html", "reference/cli.html", "reference/models.html"):
        assert (built_site / page).is_file(), page
    assert (built_site / "reference" / "generated" / "resnetkit.create_model.html").is_file()
    assert "resnet1202" in (built_site / "reference" / "models.html").read_text()


@pytest.mark.slow
def test_cli_reference_lists_every_command_and_flag(built_site: Path) -> None:
    """Every subcommand and every option string `resnetkit CMD --help` prints is on the CLI page."""
    import argparse

    from resnetkit.cli import build_parser

    html = (built_site / "reference" / "cli.html").read_text()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in html, f"{prefix} {flag} is not on the CLI reference page"
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert name in html, f"{prefix} {name} is not on the CLI reference page"
                    walk(sub, f"{prefix} {name}")

    walk(build_parser(), "resnetkit")


def test_readme_is_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in __import__("re").findall(r"\]\((?!https?://)([^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    assert os.path.exists(ROOT / "docs" / "conf.py")


@pytest.fixture(scope="module")
def site_url(built_site: Path):
    """The built site over HTTP on 127.0.0.1 at a free port (what `python -m http.server` does)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.slow
def test_site_in_a_browser_searches_and_links_with_nothing_fetched_from_outside(site_url: str, tmp_path: Path) -> None:
    """Headless Chromium: the home page loads, the search box finds the fine-tuning tutorial by the
    word "finetune", the API reference links to create_model's page, and no request leaves the
    machine (fonts, scripts and the search index are all local)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=flags
        )
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(site_url) else outside.append(r.url))
            page.goto(f"{site_url}/index.html")
            assert "resnetkit" in page.title()
            page.fill("input[name=q]", "finetune")
            page.keyboard.press("Enter")
            page.wait_for_selector("#search-results ul.search li", timeout=60_000)
            found = page.locator("#search-results ul.search li a").all_text_contents()
            assert any("Fine-tune with few labels" in t for t in found), found
            page.goto(f"{site_url}/reference/api.html")
            page.locator("a", has_text="create_model").first.click()
            page.wait_for_load_state()
            assert page.url.endswith("resnetkit.create_model.html")
            assert "create_model" in (page.locator("dt.sig").first.text_content() or "")
            assert not outside, outside
        finally:
            browser.close()
