"""Durations as people type them on a command line: ``30m``, ``6h``, ``2d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> timedelta:
    """A positive duration of number-unit parts (s, m, h, d); ValueError naming the fix if not."""
    compact = text.strip().lower()
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError("not a duration; write a number and a unit: 30m, 6h, 2d or 1h30m")
    value = sum((timedelta(**{_UNITS[unit]: float(n)}) for n, unit in parts), timedelta())
    if value <= timedelta():
        raise ValueError("must be longer than zero")
    return value
