"""RFC 6902 (JSON Patch) and RFC 7386 (JSON Merge Patch) on plain Python data.

kind applies both kinds of patch to the kubeadm documents and to containerd's configuration. The
operations are small enough that owning them is cheaper than a dependency, and parsing is kept
apart from applying so a cluster file's patches are checked before anything is created.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_kindcluster.config.validate import yaml_problem

OPS = ("add", "remove", "replace", "move", "copy", "test")
_NEEDS_VALUE = ("add", "replace", "test")
_NEEDS_FROM = ("move", "copy")


class PatchError(ValueError):
    """A patch that cannot be parsed, or cannot be applied to its target."""


@dataclass(frozen=True)
class Operation:
    """One JSON Patch operation; ``source`` is the ``from`` pointer of move and copy."""

    op: str
    path: str
    value: Any = None
    source: str = ""


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: ``/a/b~1c`` -> ``["a", "b/c"]``; the empty pointer is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def parse_json6902(text: str) -> list[Operation]:
    """Read a patch written as YAML or JSON (kind accepts both) into checked operations."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PatchError(f"not valid YAML or JSON: {yaml_problem(exc)}") from exc
    if not isinstance(data, list):
        raise PatchError(f"a JSON 6902 patch is a list of operations, got {type(data).__name__}")
    ops: list[Operation] = []
    problems: list[str] = []
    for index, item in enumerate(data):
        try:
            ops.append(_operation(item))
        except PatchError as exc:
            problems.append(f"operation {index}: {exc}")
    if problems:
        raise PatchError("; ".join(problems))
    return ops


def _operation(item: object) -> Operation:
    if not isinstance(item, dict):
        raise PatchError(f"expected a mapping with op and path, got {item!r}")
    op = item.get("op")
    if op not in OPS:
        raise PatchError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    unknown = sorted(set(item) - {"op", "path", "value", "from"})
    if unknown:
        raise PatchError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    path = item.get("path")
    if not isinstance(path, str):
        raise PatchError(f"{op}: path must be a string, got {path!r}")
    parse_pointer(path)
    if op in _NEEDS_VALUE and "value" not in item:
        raise PatchError(f"{op} {path}: needs a value")
    source = item.get("from", "")
    if op in _NEEDS_FROM:
        if not isinstance(source, str) or "from" not in item:
            raise PatchError(f"{op} {path}: needs a 'from' pointer")
        parse_pointer(source)
    return Operation(op, path, item.get("value"), source)


def apply_json6902(doc: Any, ops: Sequence[Operation]) -> Any:
    """Apply the operations in order to a copy of ``doc``; the first failure raises."""
    result = copy.deepcopy(doc)
    for op in ops:
        result = _apply_one(result, op)
    return result


def _apply_one(doc: Any, op: Operation) -> Any:
    if op.op == "test":
        actual = _get(doc, parse_pointer(op.path), op.path)
        if actual != op.value:
            raise PatchError(f"test {op.path}: expected {op.value!r}, found {actual!r}")
        return doc
    if op.op in _NEEDS_FROM:
        value = copy.deepcopy(_get(doc, parse_pointer(op.source), op.source))
        if op.op == "move":
            if (op.path + "/").startswith(op.source + "/") and op.path != op.source:
                raise PatchError(f"move {op.source} -> {op.path}: cannot move into a child")
            doc = _remove(doc, parse_pointer(op.source), op.source)
        return _add(doc, parse_pointer(op.path), value, op.path)
    if op.op == "remove":
        return _remove(doc, parse_pointer(op.path), op.path)
    if op.op == "replace":
        doc = _remove(doc, parse_pointer(op.path), op.path)
    return _add(doc, parse_pointer(op.path), copy.deepcopy(op.value), op.path)


def _get(doc: Any, parts: list[str], pointer: str) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                raise PatchError(f"path {pointer}: no key {part!r}")
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer}: {part!r} is inside a scalar")
    return node


def _index(seq: list[Any], part: str, pointer: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(seq)
    if not part.isdigit() or (part.startswith("0") and part != "0"):
        raise PatchError(f"path {pointer}: {part!r} is not an array index")
    index = int(part)
    if index > len(seq) or (index == len(seq) and not allow_end):
        raise PatchError(f"path {pointer}: index {index} is out of range (length {len(seq)})")
    return index


def _add(doc: Any, parts: list[str], value: Any, pointer: str) -> Any:
    if not parts:
        return value
    parent = _get(doc, parts[:-1], pointer)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, allow_end=True), value)
    else:
        raise PatchError(f"path {pointer}: the parent is not an object or array")
    return doc


def _remove(doc: Any, parts: list[str], pointer: str) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _get(doc, parts[:-1], pointer)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer}: no key {last!r} to remove")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, pointer, allow_end=False)]
    else:
        raise PatchError(f"path {pointer}: the parent is not an object or array")
    return doc


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces.

    Returns a new value; neither argument is modified.
    """
    return _merge(copy.deepcopy(target), patch)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result
