"""The ``resnetkit`` command: thin subcommands over the library, one module per command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

# One module per command, named as the command is typed; each adds its parser and imports the
# library only when it runs, so `resnetkit info` never loads the training engine.
COMMANDS = (
    "info",
    "train",
    "finetune",
    "eval",
    "embed",
    "predict",
    "export",
    "bench",
    "serve",
    "gradcam",
    "analyze",
    "experiment",
    "publish",
)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="resnetkit", description="Residual networks: models, training, evaluation, analysis."
    )
    parser.add_argument("--version", action="version", version=f"resnetkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    # Under torchrun only global rank 0 reports progress; the others speak only to warn.
    quiet = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    from ..data import DatasetError, max_image_pixels, set_max_image_pixels

    limit = max_image_pixels()
    try:
        if getattr(args, "max_image_pixels", None) is not None:
            set_max_image_pixels(args.max_image_pixels)
        return int(args.func(args))
    except (ValueError, DatasetError) as e:  # bad input: one line that names it, no traceback
        return _error(args.command, str(e))
    except OSError as e:  # the machine said no (a full disk, a read-only folder, a missing file)
        return _error(args.command, _os_error(e))
    except KeyboardInterrupt as e:
        # Ctrl-C, or SIGTERM, which the engine turns into TrainingInterrupted after a checkpoint:
        # one line that says how to go on (a command that resumes says so: ``on_interrupt``), and
        # the exit status a shell gives a process the signal ended (130, 143).
        detail = str(e) or "interrupted"
        print(f"\nresnetkit {args.command}: {detail}{getattr(args, 'on_interrupt', '')}", file=sys.stderr)
        return 128 + int(getattr(e, "signum", signal.SIGINT))
    finally:
        set_max_image_pixels(limit)  # main() called from Python leaves the process as it found it


def _error(command: str, message: str) -> int:
    print(f"resnetkit {command}: error: {message}", file=sys.stderr)
    return 2


def _os_error(e: OSError) -> str:
    text = e.strerror or str(e)
    return f"{e.filename}: {text}" if e.filename else text


__all__ = ["COMMANDS", "build_parser", "main"]
