"""The wheel a user installs (issue 25, item 7): built from this tree, installed into a fresh
virtual environment, and run from there. The environment borrows this one's installed
dependencies through a path file (nothing is downloaded in a test), but not its editable
resnetkit: a ``.pth`` line adds a folder to ``sys.path`` without running the ``.pth`` files inside
it, so the editable install's finder stays out and ``import resnetkit`` finds the wheel's copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "results" / "gradcam" / "inputs" / "9-ankle-boot-test0.png"


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_environment_and_runs(tmp_path):
    # Built from a copy of what the wheel is made of: setuptools builds in the tree it is given,
    # and a build/ folder left in the checkout could carry stale modules into a later wheel.
    tree = tmp_path / "tree"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, tree])
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("resnetkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "resnetkit/serve/page.html" in names
    assert "resnetkit/weights/resnet20.fashion_mnist.safetensors" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE is not in the wheel"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "_borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")  # dependencies, not resnetkit
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])
    assert installed.returncode == 0, installed.stderr[-2000:]

    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(
        [python, "-c", "import resnetkit, json; print(json.dumps(resnetkit.__file__))"], env=clean, cwd=tmp_path
    )
    assert Path(json.loads(where.stdout)).is_relative_to(env_dir), where.stdout + where.stderr
    cli = env_dir / "bin" / "resnetkit"
    version = _run([cli, "--version"], env=clean, cwd=tmp_path)
    assert version.returncode == 0 and "0.1.0" in version.stdout + version.stderr
    predicted = _run([cli, "predict", "resnet20.fashion_mnist", PICTURE, "--top-k", "1"], env=clean, cwd=tmp_path)
    assert predicted.returncode == 0 and "Ankle boot" in predicted.stdout, predicted.stdout + predicted.stderr
    served = _run([cli, "serve", "--help"], env=clean, cwd=tmp_path)
    assert served.returncode == 0 and "--model-repository" in served.stdout
