"""Sphinx configuration of resnetkit's documentation site (``make docs`` builds it into ``site/``).

Two pages are written from the code at every build, so they cannot drift from it: the model table
(from the registry, measured as ``resnetkit info`` measures it) and the HTTP API's OpenAPI schema
(the one the server serves). The CLI reference is drawn from the argparse parsers themselves
(sphinx-argparse) and the API reference from the docstrings (autodoc, autosummary, napoleon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))  # cli_parser, the parser the CLI page is drawn from

import resnetkit  # noqa: E402

project = "resnetkit"
author = "the resnetkit authors"
copyright = "the resnetkit authors, MIT license"  # noqa: A001
release = version = resnetkit.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated", "results/README.md", "results/**/README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"resnetkit {release}"
html_static_path: list[str] = []
# Everything the pages load is local: furo ships its fonts and scripts, and the search index is built.
html_theme_options = {"navigation_with_keys": True}

autosummary_generate = True
templates_path = ["_templates"]
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
# Help texts and commands are shown as typed: "--set" must not become an en dash, nor quotes curl.
smartquotes = False

GENERATED = HERE / "_generated"


def _model_table() -> str:
    """The classifier registry as ``resnetkit info`` measures it (parameters and GMACs on the meta
    device, at the family's default input side)."""
    from resnetkit.models import list_models
    from resnetkit.models.profile import profile_model

    lines = [
        "| model | params | GMACs | input side | depth |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in list_models("*"):
        r = profile_model(name).as_dict()
        lines.append(f"| `{name}` | {r['params']:,} | {r['gmacs']:.3f} | {r['image_size']} | {r['depth']} |")
    return "\n".join(lines) + "\n"


def _openapi() -> dict:
    """The schema the server serves at ``/openapi.json`` (the app is built; no model is loaded)."""
    from resnetkit.serve.app import create_app

    return create_app("resnet20.fashion_mnist").openapi()


def _routes_table(schema: dict) -> str:
    lines = ["| method | path | summary |", "|---|---|---|"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            lines.append(f"| `{method.upper()}` | `{path}` | {op.get('summary', '')} |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:  # unchanged files keep Sphinx's cache valid
        path.write_text(text)


def _models_key() -> str:
    """A hash of the model code: the table is measured again whenever it changes (profiling every
    model takes about 40 s of CPU, which a build with an unchanged registry need not spend)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((HERE.parent / "src" / "resnetkit" / "models").rglob("*.py")):
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _generate(app: object) -> None:
    key = GENERATED / "models.key"
    if not (GENERATED / "models.md").exists() or not key.exists() or key.read_text() != _models_key():
        _write(GENERATED / "models.md", _model_table())
        _write(key, _models_key())
    schema = _openapi()
    _write(GENERATED / "openapi.json", json.dumps(schema, indent=2) + "\n")
    _write(GENERATED / "routes.md", _routes_table(schema))


def _clean_api_pages(app: object) -> None:
    """autosummary writes a page per name but never removes one: a name taken off the API page
    would leave an orphan page (a warning, so a failed build)."""
    import shutil

    shutil.rmtree(HERE / "reference" / "generated", ignore_errors=True)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", _clean_api_pages, priority=100)  # before autosummary writes them
    app.connect("builder-inited", _generate)
