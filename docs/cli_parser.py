"""The parser the CLI reference page is drawn from: ``resnetkit.cli.build_parser()`` itself, with
the characters reStructuredText reads as markup (``*``, ``|``) escaped in its help texts, so a help
such as ``'resnet*'`` reads on the page as ``resnetkit CMD --help`` prints it."""

from __future__ import annotations

import argparse

from resnetkit.cli import build_parser


def _escape(text: str | None) -> str | None:
    if not isinstance(text, str):
        return text
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")


def _walk(parser: argparse.ArgumentParser) -> None:
    parser.description = _escape(parser.description)
    parser.epilog = _escape(parser.epilog)
    for action in parser._actions:
        action.help = _escape(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = _escape(choice.help)
            for sub in action.choices.values():
                _walk(sub)


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    _walk(p)
    return p
