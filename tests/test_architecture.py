"""The package stack as users meet it: each entry point loads only what it needs."""

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_gradcam_loads_neither_the_training_engine_nor_matplotlib():
    loaded = _loaded_after("import resnetkit.analysis.gradcam")
    assert "resnetkit.analysis.gradcam" in loaded
    assert not {m for m in loaded if m.startswith(("resnetkit.train", "resnetkit.experiments", "matplotlib"))}


@pytest.mark.parametrize(
    "command,forbidden",
    [
        ("info", ("resnetkit.train", "resnetkit.analysis", "resnetkit.experiments", "resnetkit.infer", "matplotlib")),
        ("predict", ("resnetkit.train.engine", "resnetkit.analysis", "resnetkit.experiments", "matplotlib")),
        ("eval", ("resnetkit.train.engine", "resnetkit.analysis", "resnetkit.experiments")),
        ("gradcam", ("resnetkit.train.engine", "resnetkit.experiments")),
    ],
)
def test_a_command_loads_only_what_it_needs(command, forbidden):
    # What the command's function imports when it runs (its parser is built for every command).
    imports = {
        "info": "from resnetkit.models.profile import profile_model",
        "predict": "from resnetkit.artifacts import load_model; from resnetkit.infer import predict",
        "eval": "from resnetkit.infer import evaluate_source",
        "gradcam": "from resnetkit.analysis import grad_cam; from resnetkit.infer import load_images",
    }[command]
    loaded = _loaded_after(f"from resnetkit.cli import build_parser; build_parser(); {imports}")
    assert not {m for m in loaded if m.startswith(forbidden)}


def test_the_parser_alone_loads_no_library_package():
    loaded = _loaded_after("from resnetkit.cli import build_parser; build_parser()")
    heavy = ("resnetkit.train", "resnetkit.analysis", "resnetkit.experiments", "resnetkit.infer", "matplotlib")
    assert not {m for m in loaded if m.startswith(heavy)}
