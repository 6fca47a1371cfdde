"""YAML read safely into plain data, with the line and column of every key and value kept.

Only the safe YAML tags are constructed. Aliases (`*name`) are refused, so a small file
cannot expand into a huge one; duplicate keys and keys that YAML would read as something
other than text (`yes`, `1`, `~`) are problems, not silent surprises. Dates used as keys
(`2026-12-27:`) are kept as their ISO text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hub.rules.problems import RuleProblem, key_path

Path = tuple[str | int, ...]
MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
STR_TAG = "tag:yaml.org,2002:str"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases instead of resolving them."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in rule files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


@dataclass(slots=True)
class SourceMap:
    """Where each key path of one file is: its value's position, and its key's position."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int], *, at_key: bool = False) -> tuple[int, int]:
        """Line and column of a path; the nearest enclosing one that exists if it does not."""
        probe = tuple(path)
        while True:
            if at_key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def problem(self, path: Sequence[str | int], message: str, *, at_key: bool = False) -> RuleProblem:
        """A problem at a key path of this file."""
        line, column = self.locate(path, at_key=at_key)
        return RuleProblem(self.file, line, column, key_path(path), message)


def parse(text: str, file: str) -> tuple[Any, SourceMap, list[RuleProblem]]:
    """The data of one YAML document, its source map, and every problem found reading it."""
    source = SourceMap(file)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None, source, [RuleProblem(file, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")]
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(p for p in (err.context, err.problem) if p) or str(err)
        return None, source, [RuleProblem(file, line, column, "", f"not valid YAML: {reason}")]
    except yaml.YAMLError as err:
        return None, source, [RuleProblem(file, 1, 1, "", f"not valid YAML: {err}")]
    finally:
        loader.dispose()
    if node is None:
        return None, source, []
    reader = _Reader(loader, source)
    data = reader.value(node, ())
    return data, source, reader.problems


class _Reader:
    def __init__(self, loader: yaml.SafeLoader, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[RuleProblem] = []
        self.nodes = 0

    def value(self, node: Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        self.source.values[path] = _position(node)
        expected = MAP_TAG if isinstance(node, MappingNode) else SEQ_TAG
        if isinstance(node, MappingNode | SequenceNode) and node.tag != expected:
            line, column = _position(node)
            self.problems.append(
                RuleProblem(
                    self.source.file, line, column, key_path(path), f"unsupported YAML tag {node.tag}"
                )
            )
            return None
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as err:
            reason = str(err.problem)
        except (ValueError, OverflowError) as err:
            reason = f"{node.value!r} cannot be read ({err})"
        line, column = _position(node)
        self.problems.append(
            RuleProblem(self.source.file, line, column, key_path(path), f"bad value: {reason}")
        )
        return None

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in out:
                line, column = _position(key_node)
                first = self.source.keys[child][0]
                self.problems.append(
                    RuleProblem(
                        self.source.file,
                        line,
                        column,
                        key_path(child),
                        f"duplicate key {key!r} (first on line {first})",
                    )
                )
                continue
            self.source.keys[child] = _position(key_node)
            out[key] = self.value(value_node, child)
        return out

    def key(self, node: Node, path: Path) -> str | None:
        line, column = _position(node)
        if not isinstance(node, ScalarNode):
            self.problems.append(
                RuleProblem(self.source.file, line, column, key_path(path), "keys must be plain text")
            )
            return None
        if node.tag == STR_TAG:
            return str(node.value)
        if node.tag == TIMESTAMP_TAG:
            value = self.scalar(node, path)
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                return value.isoformat()
            if value is None:
                return None
        self.problems.append(
            RuleProblem(
                self.source.file,
                line,
                column,
                key_path(path),
                f"key {node.value!r} is not text to YAML; put it in quotes",
            )
        )
        return None


class _TooLarge(Exception):
    pass


def parse_checked(text: str, file: str) -> tuple[Any, SourceMap, list[RuleProblem]]:
    """`parse`, with a document of too many nodes reported as a problem."""
    try:
        return parse(text, file)
    except _TooLarge:
        return None, SourceMap(file), [RuleProblem(file, 1, 1, "", f"more than {MAX_NODES} values")]


def _position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
