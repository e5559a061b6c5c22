"""The collector behind tests/test_docs_examples.py: every code block of README.md and docs/ that is
Python or a ``resnetkit`` command, with the hidden directives a page puts before a block.

A directive is an HTML comment on the line before the fence (Markdown and the site hide it):

- ``<!-- example: illustrative REASON -->``: not run; counted and listed, at most 10% of blocks;
- ``<!-- example: small -->``: ``resnetkit train``/``finetune`` lines run with ``--epochs 1 --max-steps 2``
  (the page says the real command trains longer);
- ``<!-- example: args FLAGS -->``: FLAGS appended to every ``train``/``finetune``/``experiment``/``analyze``
  command (a later flag wins in argparse: the tests' small settings over the page's real ones);
- ``<!-- example: output -->`` before a ``text`` block: the Python block above must print exactly it;
- ``<!-- example: numbers-vary -->``: shown output is checked with every number as a wildcard;
- ``<!-- example: precision-varies -->``: shown output is checked with fp32, bf16 and fp16 as one word
  (what a fast path picks depends on the CPU).

In a shell block, ``$ resnetkit ...`` lines are followed by the output they print, which is checked;
lines that are not ``resnetkit`` commands (``make``, ``curl``, ``torchrun``) are not run, and a block
with no ``resnetkit`` command and no Python is no example.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(```+)\s*([\w-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*example:\s*([\w-]+)\s*(.*?)\s*-->\s*$")
SMALL = ["--epochs", "1", "--max-steps", "2"]
TRAINING = ("train", "finetune", "experiment", "analyze")  # the commands `args` shortens (`small`: the first two)


@dataclass
class Command:
    argv: list[str]
    expected: list[str] = field(default_factory=list)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    directives: dict[str, str]
    output: str | None = None  # the text block an `output` directive shows after a Python block

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def illustrative(self) -> bool:
        return "illustrative" in self.directives

    def commands(self) -> list[Command]:
        """The ``resnetkit`` commands of a shell block, in order, each with the output shown after it."""
        out: list[Command] = []
        joined = re.sub(r"\\\n\s*", " ", self.text)
        current: Command | None = None
        for raw in joined.splitlines():
            prompt = raw.startswith("$ ")
            line = raw[2:] if prompt else raw
            words = shlex.split(line, comments=True) if line.strip() and not (current and not prompt) else []
            if words and words[0] == "resnetkit":
                argv = words[1:]
                if "small" in self.directives and argv and argv[0] in ("train", "finetune"):
                    argv = argv + SMALL
                if "args" in self.directives and argv and argv[0] in TRAINING:
                    argv = argv + shlex.split(self.directives["args"])
                argv = [w for word in argv for w in _expand(word)]
                current = Command(argv)
                out.append(current)
                if not prompt:
                    current = None
            elif prompt:
                current = None  # another program's prompt: its output is not checked
            elif current is not None:
                current.expected.append(raw)
        return out

    def is_example(self) -> bool:
        if self.lang == "python":
            return True
        return self.lang in SHELL and bool(self.commands())


def _expand(word: str) -> list[str]:
    """The shell's brace expansion of one ``{a,b}`` group, and ``*`` globs in the current folder."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if m:
        return [w for part in m.group(1).split(",") for w in _expand(word[: m.start()] + part + word[m.end() :])]
    if "*" in word:
        found = sorted(str(p) for p in Path().glob(word))
        return found or [word]
    return [word]


def pages() -> list[Path]:
    docs = ROOT / "docs"
    skip = {docs / "results", docs / "_generated", docs / "reference" / "generated"}
    found = [p for p in sorted(docs.rglob("*.md")) if not any(s in p.parents for s in skip)]
    return [ROOT / "README.md", *found]


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    out: list[Block] = []
    i = 0
    directives: dict[str, str] = {}
    while i < len(lines):
        d = DIRECTIVE.match(lines[i])
        if d:
            directives[d.group(1)] = d.group(2)
            i += 1
            continue
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                directives = {}
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        text = "\n".join(lines[start:j])
        if "output" in directives and out and out[-1].lang == "python":
            out[-1].output = text
        else:
            out.append(Block(page, start, lang, text, directives))
        directives = {}
        i = j + 1
    return [b for b in out if b.is_example()]


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in blocks(p)]


NUMBER = re.compile(r"-?\d[\d,]*(\.\d+)?(e[-+]?\d+)?%?")
FLOAT_PRECISION = re.compile(r"\b(fp32|bf16|fp16)\b")


def same_output(expected: list[str], actual: str, directives: Collection[str] = ()) -> bool:
    """Shown output against printed output, line by line, trailing space ignored. ``directives`` (a
    block's) may loosen it: ``numbers-vary``, every number matches any number; ``precision-varies``,
    the floating-point precision words match one another (which one a fast path runs at depends
    on the CPU: bf16 where it has native bf16, else fp32)."""
    got = [line.rstrip() for line in actual.strip("\n").splitlines()]
    want = [line.rstrip() for line in "\n".join(expected).strip("\n").splitlines()]
    if "numbers-vary" in directives:
        got = [re.sub(r"\s+", " ", NUMBER.sub("#", line)) for line in got]
        want = [re.sub(r"\s+", " ", NUMBER.sub("#", line)) for line in want]
    if "precision-varies" in directives:
        got = [FLOAT_PRECISION.sub("float", line) for line in got]
        want = [FLOAT_PRECISION.sub("float", line) for line in want]
    return got == want
