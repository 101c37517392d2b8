"""YAML for params: a key set twice in one mapping is an error, not "the last one wins".

PyYAML keeps the last of two equal keys without a word, so a pasted-in block can silently
override a setting above it. This loader composes the node tree first, checks every mapping for
repeated keys (naming the dotted key and both lines) and only then builds the Python objects.
Imports nothing from ``pipeline`` so the config base layer can use it.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ValueError):
    """A mapping in a YAML document sets the same key twice."""


def _check_mappings(
    loader: yaml.SafeLoader, node: yaml.Node, path: tuple[str, ...], source: str, seen_nodes: set[int]
) -> None:
    if id(node) in seen_nodes:  # an alias: checked where its anchor was (and a recursive one ends here)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_mappings(loader, item, (*path, str(index)), source, seen_nodes)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:  # `<<: *anchor` merges defaults; explicit keys may override them
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: PyYAML's constructor reports it below
            seen = None
        dotted = ".".join((*path, str(key)))
        if seen is not None:
            raise DuplicateKeyError(f"{source}:{line}: duplicate key {dotted!r} (first set at line {seen})")
        try:
            first_line[key] = line
        except TypeError:
            pass
        _check_mappings(loader, value_node, (*path, str(key)), source, seen_nodes)


def load_yaml(text: str, source: str = "<yaml>") -> Any:
    """``yaml.safe_load`` that raises DuplicateKeyError on a repeated key; ``source`` names the file."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_mappings(loader, node, (), source, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()
