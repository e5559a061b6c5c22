"""Config text parsed within limits, so that a small file can take neither unbounded memory nor a
RecursionError: at most ``MAX_CONFIG_BYTES`` of text, ``MAX_DEPTH`` levels of nesting, and
``MAX_VALUES`` values counted as the config is used (a YAML alias counts its anchor's values each
time it is used: the "billion laughs" nest of aliases is refused before it is built). Mapping keys
are strings, as the config's own keys are. YAML anchors, aliases and merge keys within these
limits work as YAML says."""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 10_000


class ConfigTextError(ValueError):
    """Config text past a limit, or not a config's shape; the message says where, not the file."""


def parse_yaml(text: str) -> Any:
    """The one YAML document of ``text`` (None when empty), safe tags only; ``yaml.YAMLError``
    for its syntax, ``ConfigTextError`` past a limit, ``ValueError`` for a value Python cannot hold."""
    data = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader, with the limits
    check_keys(data)
    return data


def parse_json(text: str) -> Any:
    """``json.loads`` within the limits; ``json.JSONDecodeError`` for its syntax."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigTextError(
            f"nested deeper than Python can read (a config holds at most {MAX_DEPTH} levels)"
        ) from None
    _check_tree(data)
    return data


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._values = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            event = self.peek_event()
            line = event.start_mark.line + 1
            if self._depth > MAX_DEPTH:
                raise ConfigTextError(f"nested more than {MAX_DEPTH} levels deep (line {line}): not a config's shape")
            self._values += not isinstance(event, AliasEvent)  # an alias is counted where it expands
            if self._values > MAX_VALUES:
                raise ConfigTextError(f"more than {MAX_VALUES:,} values (line {line}): not a config")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            _check_graph(node)
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_graph(root: Node) -> None:
    """The values and depth of the document as built, aliases expanded, counted without building
    it: each node once (post-order, memoized), so a nest of aliases costs its size in the text."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) below and including it
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            below = [done[id(c)] for c in _children(node)]
            values = 1 + sum(v for v, _ in below)
            depth = 1 + max((d for _, d in below), default=0)
            line = node.start_mark.line + 1
            if values > MAX_VALUES:
                raise ConfigTextError(
                    f"aliases expand to more than {MAX_VALUES:,} values (the node at line {line}): "
                    "write the values out, or alias less"
                )
            if depth > MAX_DEPTH:
                raise ConfigTextError(f"aliases nest values more than {MAX_DEPTH} levels deep (line {line})")
            done[key] = (values, depth)
            on_path.discard(key)
        elif key in on_path:
            line = node.start_mark.line + 1
            raise ConfigTextError(
                f"an alias refers to a node that holds it (line {line}): a config cannot contain itself"
            )
        elif key not in done:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in done)


def _check_tree(data: Any) -> None:
    """Depth, value count and string keys of parsed JSON (a tree: nothing is shared)."""
    values = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        values += 1
        if depth > MAX_DEPTH:
            raise ConfigTextError(f"nested more than {MAX_DEPTH} levels deep: not a config's shape")
        if values > MAX_VALUES:
            raise ConfigTextError(f"more than {MAX_VALUES:,} values: not a config")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def check_keys(data: Any) -> None:
    """Every mapping key a string: the config's keys are names (YAML reads ``1:`` or ``yes:`` as
    a number or a boolean). Shared values (YAML aliases) are visited once."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            bad = next((k for k in value if not isinstance(k, str)), None)
            if bad is not None:
                raise ConfigTextError(f"key {bad!r} is not a string ({type(bad).__name__}): quote it")
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
