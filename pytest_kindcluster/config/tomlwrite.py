"""A small TOML writer: what :mod:`tomllib` reads, written back (for containerd's config).

Python reads TOML but does not write it. containerdConfigPatches need one round trip (read the
node's config.toml, merge, write), and the data is plain tables, arrays and scalars, so this
covers TOML 1.0's data model in one page rather than adding a dependency. The guarantee, which the
tests check, is ``tomllib.loads(dumps(x)) == x``; comments and formatting are not kept.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def dumps(data: Mapping[str, Any]) -> str:
    """Serialise a table; raises TypeError for values TOML cannot hold (None, objects)."""
    lines: list[str] = []
    _table(data, [], lines, array_item=False)
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = _float(value)
    elif isinstance(value, str):
        text = _string(value)
    elif isinstance(value, datetime.datetime | datetime.date | datetime.time):
        text = value.isoformat()
    else:
        raise TypeError(f"TOML cannot represent {type(value).__name__} value {value!r}")
    return text


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _table(data: Mapping[str, Any], path: list[str], lines: list[str], *, array_item: bool) -> None:
    scalars = {k: v for k, v in data.items() if not _is_subtable(v)}
    header = ".".join(_key(part) for part in path)
    # A table that holds only sub-tables needs no header of its own (they imply it), but an
    # empty one does, or it would vanish; array items always need theirs.
    if path and (array_item or scalars or not data):
        lines += ["", f"[[{header}]]" if array_item else f"[{header}]"]
    for key, value in scalars.items():
        lines.append(f"{_key(str(key))} = {_value(value)}")
    for key, value in data.items():
        if isinstance(value, Mapping):
            _table(value, [*path, str(key)], lines, array_item=False)
        elif _is_table_array(value):
            for item in value:
                _table(item, [*path, str(key)], lines, array_item=True)


def _is_subtable(value: Any) -> bool:
    return isinstance(value, Mapping) or _is_table_array(value)
