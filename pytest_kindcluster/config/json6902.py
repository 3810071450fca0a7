"""RFC 6902 (JSON Patch) for kind's ``*PatchesJSON6902`` fields, applied by :mod:`jsonpatch`.

What stays here is what the library does not do for us: reading a patch written as YAML or JSON
(kind accepts both) and checking every operation up front, so a cluster file's mistakes are all
reported, with their operation index, before anything is created; and, when the library refuses
an operation, saying where and why in the same words the config validation uses (its own
messages name no index or length, and dump the whole document).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from pytest_kindcluster.config.validate import yaml_problem
from pytest_kindcluster.errors import PatchError

OPS = ("add", "remove", "replace", "move", "copy", "test")
_NEEDS_VALUE = ("add", "replace", "test")
_NEEDS_FROM = ("move", "copy")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_STRAY_TILDE = re.compile(r"~(?![01])")


class _KindPointer(jsonpointer.JsonPointer):
    """An RFC 6901 pointer, read the way kind's json-patch reads it.

    kind (evanphx/json-patch) takes a ``~`` that starts no ``~0``/``~1`` escape as itself, where
    jsonpointer refuses the whole pointer; escaping it first keeps such paths working.
    """

    def __init__(self, pointer: str) -> None:
        super().__init__(_STRAY_TILDE.sub("~0", pointer))


@dataclass(frozen=True)
class Operation:
    """One checked JSON Patch operation; ``source`` is the ``from`` pointer of move and copy."""

    op: str
    path: str
    value: Any = None
    source: str = ""

    def as_json(self) -> dict[str, Any]:
        """The operation as RFC 6902 writes it, for :mod:`jsonpatch`."""
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op in _NEEDS_VALUE:
            out["value"] = self.value
        if self.op in _NEEDS_FROM:
            out["from"] = self.source
        return out


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: ``/a/b~1c`` -> ``["a", "b/c"]``; the empty pointer is the whole document."""
    try:
        return list(_KindPointer(pointer).parts)
    except jsonpointer.JsonPointerException as exc:
        raise PatchError(f"JSON pointer {pointer!r} must be empty or start with '/'") from exc


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
        if op.op == "move" and op.source == "" == op.path:
            # The whole document onto itself: a no-op to jsonpatch, refused by kind (and before).
            raise PatchError("cannot remove the whole document")
        # One operation at a time, on a copy: when one fails, ``result`` is still the document
        # it was applied to, which is what _explain needs to say where it went wrong.
        patch = jsonpatch.JsonPatch([op.as_json()], pointer_cls=_KindPointer)
        try:
            result = patch.apply(result)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise PatchError(_explain(result, op, exc)) from exc
    return result


def _explain(doc: Any, op: Operation, exc: Exception) -> str:
    """Why jsonpatch refused ``op`` on ``doc``, naming the pointer and the part that failed."""
    if op.op in _NEEDS_FROM:
        problem = _problem(doc, op.source, "get")
        if problem:
            return problem
        if op.op == "move":
            source, target = parse_pointer(op.source), parse_pointer(op.path)
            if target != source and target[: len(source)] == source:
                return f"move {op.source} -> {op.path}: cannot move into a child"
            # RFC 6902 moves by removing first: the target is resolved without the source.
            removal = {"op": "remove", "path": op.source}
            doc = jsonpatch.JsonPatch([removal], pointer_cls=_KindPointer).apply(doc)
    use = {"move": "add", "copy": "add", "test": "get"}.get(op.op, op.op)
    problem = _problem(doc, op.path, use)
    if problem:
        return problem
    if op.op == "test":
        actual = _KindPointer(op.path).resolve(doc)
        return f"test {op.path}: expected {op.value!r}, found {actual!r}"
    return f"{op.op} {op.path}: {exc}"


def _problem(doc: Any, pointer: str, use: str) -> str | None:
    """What stops ``pointer`` from being used in ``doc``, or None.

    ``use`` is ``get`` (the target must exist), ``add`` (its parent must), or ``remove`` /
    ``replace`` (it must exist, in an object or array).
    """
    parts = parse_pointer(pointer)
    if not parts and use == "remove":
        return "cannot remove the whole document"
    node = doc
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        reason = _refusal(node, part, use if last else "get")
        if reason:
            return f"path {pointer}: {reason}"
        if not last:
            node = node[int(part)] if isinstance(node, list) else node[part]
    return None


def _refusal(node: Any, part: str, use: str) -> str | None:
    """Why one reference token cannot be used on ``node`` (``use`` as for _problem), or None."""
    if isinstance(node, dict):
        if part in node or use == "add":
            return None
        verb = f" to {use}" if use in ("remove", "replace") else ""
        return f"no key {part!r}{verb}"
    if isinstance(node, list):
        if part == "-" and use == "add":
            return None
        if not _ARRAY_INDEX.fullmatch(part):
            return f"{part!r} is not an array index"
        end = len(node) + (1 if use == "add" else 0)
        return None if int(part) < end else f"index {part} is out of range (length {len(node)})"
    return (
        f"{part!r} is inside a scalar" if use == "get" else "the parent is not an object or array"
    )
